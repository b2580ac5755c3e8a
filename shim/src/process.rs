//! A container's processes (its init and each exec'd one): pid, status, exit, stdio.
//!
//! Exits are recorded once: the reaper hands the exit to [`Process::exited`], which
//! waits until the output written before the exit is relayed and until a `Start` in
//! progress has published its event, then publishes TaskExit and wakes `Wait`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::events::Publisher;
use crate::io::{ProcessIo, Stdio3};
use crate::proto::{status, TaskExit, Timestamp};
use crate::reaper::Exit;

#[derive(Default)]
pub struct PState {
    pub pid: u32,
    pub status: i32,
    pub exit: Option<Exit>,
    /// a Start is running: the exit (if any) is published after TaskStart
    pub starting: bool,
}

pub struct Process {
    pub container_id: String,
    /// empty for the container's init
    pub exec_id: String,
    pub stdio: Stdio3,
    /// for an exec'd process: the runtime-spec process JSON containerd sent
    pub spec: Vec<u8>,
    state: Mutex<PState>,
    cond: Condvar,
    io: Mutex<Option<Arc<ProcessIo>>>,
}

impl Process {
    pub fn new(container_id: &str, exec_id: &str, stdio: Stdio3, spec: Vec<u8>) -> Arc<Process> {
        Arc::new(Process {
            container_id: container_id.to_string(),
            exec_id: exec_id.to_string(),
            stdio,
            spec,
            state: Mutex::new(PState {
                status: status::CREATED,
                ..Default::default()
            }),
            cond: Condvar::new(),
            io: Mutex::new(None),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, PState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn notify(&self) {
        self.cond.notify_all();
    }

    pub fn set_io(&self, io: Arc<ProcessIo>) {
        *self.io.lock().unwrap_or_else(|p| p.into_inner()) = Some(io);
    }

    pub fn io(&self) -> Option<Arc<ProcessIo>> {
        self.io.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn pid(&self) -> u32 {
        self.lock().pid
    }

    /// The id containerd knows the process by in events: the exec id, or the container's.
    pub fn event_id(&self) -> &str {
        if self.exec_id.is_empty() {
            &self.container_id
        } else {
            &self.exec_id
        }
    }

    /// The process exited (called on its own thread, off the reaper).
    pub fn exited(&self, exit: Exit, publisher: &Publisher) {
        if let Some(io) = self.io() {
            if !io.wait_drained(Duration::from_secs(2)) {
                crate::log::warn(&format!(
                    "{}: output still open 2s after exit",
                    self.event_id()
                ));
            }
        }
        let mut st = self.lock();
        while st.starting {
            st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        publisher.publish(&TaskExit {
            container_id: self.container_id.clone(),
            id: self.event_id().to_string(),
            pid: st.pid,
            exit_status: exit.status,
            exited_at: Some(Timestamp::from(exit.at)),
        });
        st.status = status::STOPPED;
        st.exit = Some(exit);
        drop(st);
        self.cond.notify_all();
    }

    /// Block until the process has exited.
    pub fn wait(&self) -> Exit {
        let mut st = self.lock();
        loop {
            if let Some(exit) = st.exit {
                return exit;
            }
            st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Like [`wait`](Self::wait), at most `limit`.
    pub fn wait_timeout(&self, limit: Duration) -> Option<Exit> {
        let st = self.lock();
        let (st, _) = self
            .cond
            .wait_timeout_while(st, limit, |s| s.exit.is_none())
            .unwrap_or_else(|p| p.into_inner());
        st.exit
    }
}
