//! Driving the shim directly over ttrpc with the `containerd.task.v3` protos (what
//! containerd 2.x speaks): a busybox bundle, a stand-in for containerd's event service
//! that records what the shim publishes, the shim daemon, and typed calls.
//!
//! Each [`Shim`] has its own dir (`/tmp/pshim-<name>-<pid>-<n>`: bundle, sockets, runtime
//! root); dropping it kills and deletes a task left behind, shuts the daemon down (by its
//! pid if it does not go) and removes the dir.

use containerd_shim_patina::proto::*;
use containerd_shim_patina::ttrpc::{self, Client, Handler, RpcResult, Status};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::containerd::{children_named, shim_path, target_dir};

pub const V3: &str = "containerd.task.v3.Task";

/// containerd's event service, as the shim finds it through TTRPC_ADDRESS: it records
/// the topic of every event forwarded to it.
#[derive(Default)]
pub struct Events(Mutex<Vec<String>>);

impl Handler for Events {
    fn handle(&self, service: &str, method: &str, payload: &[u8]) -> RpcResult<Vec<u8>> {
        assert_eq!(
            (service, method),
            ("containerd.services.events.ttrpc.v1.Events", "Forward")
        );
        let req = ForwardRequest::decode(payload).unwrap();
        self.0.lock().unwrap().push(req.envelope.unwrap().topic);
        Ok(Empty {}.encode())
    }
}

impl Events {
    /// Serves on a new socket at `path`, in a thread of its own.
    pub fn serve(path: &Path) -> Arc<Events> {
        let events = Arc::new(Events::default());
        let listener = UnixListener::bind(path).unwrap();
        let handler: Arc<dyn Handler> = events.clone();
        std::thread::spawn(move || ttrpc::serve(listener, handler));
        events
    }

    pub fn topics(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A name unique to this test process and call.
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// A scratch dir of its own under /tmp.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pshim-{}", unique(name)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shim daemons (our children: we are a subreaper) working in `bundle`.
pub fn daemons_in(bundle: &Path) -> Vec<i32> {
    children_named("containerd-shim")
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == bundle))
        .collect()
}

/// Shuts the daemon down and reaps it; true when it exited in time.
pub fn shutdown(client: &mut Client, id: &str, pid: i32, now: bool) -> bool {
    let req = ShutdownRequest { id: id.into(), now };
    let _ = client.call::<_, Empty>(V3, "Shutdown", &req);
    crate::container::reap(pid, Duration::from_secs(5))
}

/// One shim daemon serving one busybox bundle, with task id `id` in namespace `ns`.
pub struct Shim {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub pid: i32,
    pub client: Client,
    pub events: Arc<Events>,
    id: String,
    /// A task was created and not yet deleted.
    task: bool,
}

impl Shim {
    /// Builds a bundle running `args` and starts its shim daemon; `stdin_options` (given
    /// the dir) is what containerd writes on the start command's stdin, if anything.
    pub fn start(
        name: &str,
        (ns, id): (&str, &str),
        args: &[&str],
        stdin_options: impl FnOnce(&Path) -> Option<Any>,
    ) -> Shim {
        crate::container::init_process();
        let dir = scratch_dir(name);
        let bundle = dir.join("bundle");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/busybox-bundle.sh");
        let ok = Command::new(fixture)
            .arg(&bundle)
            .args(args)
            .env("PATINA", target_dir().join("patina"))
            .status()
            .unwrap();
        assert!(ok.success(), "busybox bundle");
        Shim::start_in(dir, bundle, (ns, id), stdin_options)
    }

    /// [`Shim::start`] on a bundle the caller made in `dir` (removed with the shim).
    pub fn start_in(
        dir: PathBuf,
        bundle: PathBuf,
        (ns, id): (&str, &str),
        stdin_options: impl FnOnce(&Path) -> Option<Any>,
    ) -> Shim {
        crate::container::init_process();
        let events_sock = dir.join("events.sock");
        let events = Events::serve(&events_sock);
        let mut start = Command::new(shim_path())
            .args(["-namespace", ns, "-id", id, "-address"])
            .arg(dir.join("containerd.sock"))
            .arg("start")
            .current_dir(&bundle)
            .env("TTRPC_ADDRESS", &events_sock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = start.stdin.take().unwrap();
        if let Some(options) = stdin_options(&dir) {
            stdin.write_all(&options.encode()).unwrap();
        }
        drop(stdin);
        let out = start.wait_with_output().unwrap();
        assert!(out.status.success(), "shim start: {out:?}");
        let address = String::from_utf8(out.stdout).unwrap();
        assert!(address.starts_with("unix://"), "{address}");
        let pids = daemons_in(&bundle);
        assert_eq!(pids.len(), 1, "one shim daemon for {}", bundle.display());
        let client = Client::connect(&address).unwrap();
        Shim {
            dir,
            bundle,
            pid: pids[0],
            client,
            events,
            id: id.into(),
            task: false,
        }
    }

    /// runc Options with this shim's own runtime root, and `f` applied.
    pub fn runc_options(&self, f: impl FnOnce(&mut RuncOptions)) -> Any {
        let mut o = RuncOptions {
            root: self.dir.join("root").to_string_lossy().into_owned(),
            ..Default::default()
        };
        f(&mut o);
        Any::pack("containerd.runc.v1.Options", &o)
    }

    pub fn try_call<Req: Message, Resp: Message>(
        &mut self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, Status> {
        self.client.call(V3, method, req).expect("ttrpc call")
    }

    pub fn call<Req: Message, Resp: Message>(&mut self, method: &str, req: &Req) -> Resp {
        self.try_call(method, req)
            .unwrap_or_else(|s| panic!("{method}: {s:?}"))
    }

    /// Creates the task with `options`, its stdout and stderr appended to `log`.
    pub fn create(
        &mut self,
        options: Option<Any>,
        log: &Path,
    ) -> Result<CreateTaskResponse, Status> {
        let req = CreateTaskRequest {
            id: self.id.clone(),
            bundle: self.bundle.to_string_lossy().into(),
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", log.display()),
            options,
            ..Default::default()
        };
        let created = self.try_call("Create", &req)?;
        self.task = true;
        Ok(created)
    }

    /// The state of the task (`exec_id` ""), or of one of its exec'd processes.
    pub fn state(&mut self, exec_id: &str) -> Result<StateResponse, Status> {
        let req = StateRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
        };
        self.try_call("State", &req)
    }

    /// Starts the task or an exec'd process; its pid.
    pub fn start_task(&mut self, exec_id: &str) -> u32 {
        let req = StartRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
        };
        let started: StartResponse = self.call("Start", &req);
        started.pid
    }

    /// Waits for the task or an exec'd process; its exit status.
    pub fn wait(&mut self, exec_id: &str) -> u32 {
        let req = WaitRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
        };
        let waited: WaitResponse = self.call("Wait", &req);
        waited.exit_status
    }

    pub fn delete(&mut self, exec_id: &str) -> DeleteResponse {
        let req = DeleteRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
        };
        let deleted = self.call("Delete", &req);
        if exec_id.is_empty() {
            self.task = false;
        }
        deleted
    }

    pub fn kill(&mut self, signal: u32, all: bool) -> Result<Empty, Status> {
        let req = KillRequest {
            id: self.id.clone(),
            signal,
            all,
            ..Default::default()
        };
        self.try_call("Kill", &req)
    }

    /// Adds and starts `args` as an exec'd process with `stdout`/`stderr` as containerd
    /// sends them (a FIFO path, `file://...`, "" for none); its pid.
    pub fn exec_start(&mut self, exec_id: &str, args: &[&str], stdout: &str, stderr: &str) -> u32 {
        let spec = serde_json::json!({"args": args, "cwd": "/", "env": ["PATH=/bin"],
                                      "user": {"uid": 0, "gid": 0}});
        let req = ExecProcessRequest {
            id: self.id.clone(),
            exec_id: exec_id.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            spec: Some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: spec.to_string().into_bytes(),
            }),
            ..Default::default()
        };
        let _: Empty = self.call("Exec", &req);
        self.start_task(exec_id)
    }

    /// Execs `args` in the task (output appended to `log`, if given), waits for it and
    /// deletes it; returns its exit status.
    pub fn exec(&mut self, exec_id: &str, args: &[&str], log: Option<&Path>) -> u32 {
        let io = log
            .map(|l| format!("file://{}", l.display()))
            .unwrap_or_default();
        self.exec_start(exec_id, args, &io, &io);
        let status = self.wait(exec_id);
        self.delete(exec_id);
        status
    }

    /// SIGKILL the task (all its processes), wait for it and delete it.
    pub fn kill_and_delete(&mut self) {
        let _ = self.kill(9, true);
        self.wait("");
        self.delete("");
    }

    /// Shuts the daemon down and reaps it; true when it exited in time.
    pub fn shutdown(&mut self, now: bool) -> bool {
        shutdown(&mut self.client, &self.id, self.pid, now)
    }
}

impl Drop for Shim {
    /// After a failed assertion: the task and the daemon go too (the daemon by its pid).
    fn drop(&mut self) {
        if self.task {
            let _ = self.kill(9, true);
            let req = DeleteRequest {
                id: self.id.clone(),
                ..Default::default()
            };
            let _ = self.client.call::<_, DeleteResponse>(V3, "Delete", &req);
        }
        if crate::procfs::pid_alive(self.pid) && !self.shutdown(true) {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            crate::container::reap(self.pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
