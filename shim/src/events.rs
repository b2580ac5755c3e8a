//! The event publisher: containerd's `Events.Forward` over ttrpc to `TTRPC_ADDRESS`.
//!
//! Events are queued and sent in order by one thread, so TaskStart always reaches
//! containerd before the TaskExit of the same process. A failed send reconnects and
//! retries for a while (containerd may be restarting), then drops the event with a log.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::proto::{self, Any, Envelope, ForwardRequest, Message, Timestamp};
use crate::ttrpc::Client;

const SERVICE: &str = "containerd.services.events.ttrpc.v1.Events";

pub struct Publisher {
    tx: Sender<Envelope>,
    namespace: String,
    pending: Arc<(Mutex<usize>, Condvar)>,
}

/// A task event: its topic and type name (`containerd.events.<Name>`).
pub trait Event: Message + std::fmt::Debug {
    const TOPIC: &'static str;
    const NAME: &'static str;
}

macro_rules! event {
    ($t:ident, $topic:literal) => {
        impl Event for proto::$t {
            const TOPIC: &'static str = $topic;
            const NAME: &'static str = concat!("containerd.events.", stringify!($t));
        }
    };
}
event!(TaskCreate, "/tasks/create");
event!(TaskStart, "/tasks/start");
event!(TaskExit, "/tasks/exit");
event!(TaskDelete, "/tasks/delete");
event!(TaskPaused, "/tasks/paused");
event!(TaskResumed, "/tasks/resumed");
event!(TaskExecAdded, "/tasks/exec-added");
event!(TaskExecStarted, "/tasks/exec-started");
event!(TaskOOM, "/tasks/oom");

impl Publisher {
    /// Start the sending thread; with no address, events are only logged.
    pub fn new(address: Option<String>, namespace: &str) -> Publisher {
        let (tx, rx) = channel::<Envelope>();
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let counter = pending.clone();
        crate::ttrpc::spawn("events", move || {
            let mut client: Option<Client> = None;
            for envelope in rx {
                let _done = Done(&counter);
                let Some(address) = address.as_deref() else {
                    continue;
                };
                let req = ForwardRequest {
                    envelope: Some(envelope),
                };
                let mut delay = Duration::from_millis(10);
                let mut sent = false;
                for _ in 0..40 {
                    if client.is_none() {
                        client = Client::connect(address).ok();
                    }
                    if let Some(c) = client.as_mut() {
                        match c.call::<_, proto::Empty>(SERVICE, "Forward", &req) {
                            Ok(Ok(_)) => {
                                sent = true;
                                break;
                            }
                            Ok(Err(status)) => {
                                crate::log::warn(&format!(
                                    "containerd refused an event: {}",
                                    status.message
                                ));
                                sent = true;
                                break;
                            }
                            Err(_) => client = None,
                        }
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                if !sent {
                    let e = req.envelope.unwrap_or_default();
                    crate::log::error(&format!("event {} to {address} dropped", e.topic));
                }
            }
        });
        Publisher {
            tx,
            namespace: namespace.to_string(),
            pending,
        }
    }

    /// Wait (at most `limit`) until every published event was sent.
    pub fn flush(&self, limit: Duration) {
        let (count, cond) = &*self.pending;
        let guard = count.lock().unwrap_or_else(|p| p.into_inner());
        let _ = cond.wait_timeout_while(guard, limit, |n| *n > 0);
    }

    pub fn publish<E: Event>(&self, event: &E) {
        crate::log::debug(&format!("event {} {:?}", E::TOPIC, event));
        let envelope = Envelope {
            timestamp: Some(Timestamp::now()),
            namespace: self.namespace.clone(),
            topic: E::TOPIC.to_string(),
            event: Some(Any::pack(E::NAME, event)),
        };
        *self.pending.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        if self.tx.send(envelope).is_err() {
            *self.pending.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        }
    }
}

/// Counts an event out when its sending is over, however it ended.
struct Done<'a>(&'a (Mutex<usize>, Condvar));

impl Drop for Done<'_> {
    fn drop(&mut self) {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.0 .1.notify_all();
    }
}
