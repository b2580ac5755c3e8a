//! The Task service, served under both `containerd.task.v2.Task` (containerd 1.6/1.7)
//! and `containerd.task.v3.Task` (containerd 2.x): the two define the same messages
//! field for field, so one implementation answers both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::Publisher;
use crate::io::{ProcessIo, Stdio3};
use crate::options::Options;
use crate::process::Process;
use crate::proto::*;
use crate::reaper::Reaper;
use crate::runtime::Runtime;
use patina::{Error, Kind};

use crate::errors::rpc;
use crate::ttrpc::{Handler, RpcError, RpcResult};

pub const TASK_V2: &str = "containerd.task.v2.Task";
pub const TASK_V3: &str = "containerd.task.v3.Task";

/// The file in the bundle that keeps the options for `delete` after a lost shim.
pub const OPTIONS_FILE: &str = "patina-shim.json";

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub init: Arc<Process>,
    pub execs: Mutex<HashMap<String, Arc<Process>>>,
    /// IoUid/IoGid: the owner of the stdio pipes of init and of exec'd processes
    io_owner: Option<(u32, u32)>,
    rootfs_mounted: bool,
    /// false when init shares the host's (or another) pid namespace: then the other
    /// processes are killed when init exits, as the kernel would otherwise do
    own_pid_ns: bool,
    /// Restored from a checkpoint at Create: already running, Start only reports it.
    restored: bool,
}

pub struct Service {
    pub namespace: String,
    pub socket: PathBuf,
    pub defaults: Options,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    publisher: Arc<Publisher>,
    reaper: Arc<Reaper>,
    exiting: AtomicBool,
}

/// A failure of the shim's own (a file it could not write, a mount): kind Other.
fn unknown(msg: String) -> RpcError {
    failed(Error::msg(msg))
}

/// A failure worth the shim's log (the runtime's, or the shim's own), answered with
/// its kind's code (errors.rs).
fn failed(e: Error) -> RpcError {
    crate::log::error(&e.to_string());
    e.into()
}

impl Handler for Service {
    fn handle(&self, service: &str, method: &str, payload: &[u8]) -> RpcResult<Vec<u8>> {
        if service != TASK_V2 && service != TASK_V3 {
            return Err(rpc(
                Kind::Unsupported,
                format!("service {service} is not served by this shim"),
            ));
        }
        crate::log::debug(&format!("{service}.{method}"));
        macro_rules! call {
            ($f:ident) => {{
                let req = Message::decode(payload)
                    .map_err(|e| rpc(Kind::InvalidConfig, format!("{method}: {e}")))?;
                self.$f(req).map(|r| r.encode())
            }};
        }
        match method {
            "State" => call!(state),
            "Create" => call!(create),
            "Start" => call!(start),
            "Delete" => call!(delete),
            "Pids" => call!(pids),
            "Pause" => call!(pause),
            "Resume" => call!(resume),
            "Checkpoint" => call!(checkpoint),
            "Kill" => call!(kill),
            "Exec" => call!(exec),
            "ResizePty" => call!(resize_pty),
            "CloseIO" => call!(close_io),
            "Update" => call!(update),
            "Wait" => call!(wait),
            "Stats" => call!(stats),
            "Connect" => call!(connect),
            "Shutdown" => call!(shutdown),
            m => Err(rpc(Kind::Unsupported, format!("method {m}"))),
        }
    }

    fn after_response(&self, method: &str) {
        if method == "Shutdown" && self.exiting.load(Ordering::SeqCst) {
            self.publisher.flush(Duration::from_secs(5));
            let _ = std::fs::remove_file(&self.socket);
            crate::log::info("shutdown");
            std::process::exit(0);
        }
    }
}

impl Service {
    pub fn new(
        namespace: &str,
        socket: PathBuf,
        defaults: Options,
        publisher: Publisher,
        reaper: Arc<Reaper>,
    ) -> Service {
        Service {
            namespace: namespace.to_string(),
            socket,
            defaults,
            containers: Mutex::new(HashMap::new()),
            publisher: Arc::new(publisher),
            reaper,
            exiting: AtomicBool::new(false),
        }
    }

    fn container(&self, id: &str) -> RpcResult<Arc<Container>> {
        let map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .cloned()
            .ok_or_else(|| rpc(Kind::NotFound, format!("container {id}: not found")))
    }

    fn process(&self, id: &str, exec_id: &str) -> RpcResult<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        if exec_id.is_empty() {
            let init = c.init.clone();
            return Ok((c, init));
        }
        let p = c
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(exec_id)
            .cloned();
        let p = p.ok_or_else(|| {
            rpc(
                Kind::NotFound,
                format!("process {exec_id} of {id}: not found"),
            )
        })?;
        Ok((c, p))
    }

    /// Hand the exit of `pid` to `p` when the reaper sees it.
    fn watch(&self, c: &Arc<Container>, p: &Arc<Process>, pid: u32) {
        let (c, p, publisher) = (c.clone(), p.clone(), self.publisher.clone());
        self.reaper.watch(pid as i32, move |exit| {
            crate::ttrpc::spawn("exit", move || {
                if p.exec_id.is_empty() && !c.own_pid_ns {
                    let _ = c.runtime.kill(&c.id, libc::SIGKILL as u32, true);
                }
                p.exited(exit, &publisher);
            });
        });
    }

    fn create(&self, req: CreateTaskRequest) -> RpcResult<CreateTaskResponse> {
        if self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&req.id)
        {
            return Err(rpc(
                Kind::AlreadyExists,
                format!("container {}: already exists", req.id),
            ));
        }
        let opts = match req.options.as_ref() {
            Some(any) => Options::from_any(Some(any)).map_err(|e| rpc(Kind::InvalidConfig, e))?,
            None => self.defaults.clone(),
        };
        // Before anything is made: a ShimCgroup that cannot be joined leaves nothing behind.
        if !opts.shim_cgroup.is_empty() {
            let joined = crate::cgroup::join(&opts.shim_cgroup).map_err(|e| {
                crate::log::error(&e);
                rpc(Kind::InvalidConfig, e)
            })?;
            crate::log::info(&format!("joined ShimCgroup {joined:?}"));
        }
        let io_owner = opts.io_owner();
        let bundle = PathBuf::from(&req.bundle);
        let saved = serde_json::to_vec(&opts).unwrap_or_default();
        std::fs::write(bundle.join(OPTIONS_FILE), saved).map_err(|e| {
            unknown(format!(
                "write {}: {e}",
                bundle.join(OPTIONS_FILE).display()
            ))
        })?;
        let runtime = Runtime::new(&opts, &bundle, &self.namespace, self.reaper.clone());
        let rootfs = bundle.join("rootfs");
        if !req.rootfs.is_empty() {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| unknown(format!("mkdir {}: {e}", rootfs.display())))?;
            crate::mount::mount_rootfs(&req.rootfs, &rootfs).map_err(unknown)?;
        }
        let undo = |e: Error| {
            if !req.rootfs.is_empty() {
                let _ = crate::mount::unmount_all(&rootfs);
            }
            failed(e.wrap(format!("create {}", req.id)))
        };
        let stdio = Stdio3 {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let mut prepared = ProcessIo::prepare(&stdio, &req.id, &self.namespace, io_owner)
            .map_err(|e| undo(Error::msg(e.to_string())))?;
        let pid_file = bundle.join("init.pid");
        let restored = !req.checkpoint.is_empty();
        if restored {
            // The image containerd unpacked: restored now (containerd's runc shim waits
            // for Start), so that a failure is Create's, with nothing left.
            let work = bundle.join("criu-work");
            runtime
                .restore(
                    &req.id,
                    &bundle,
                    &pid_file,
                    Path::new(&req.checkpoint),
                    &work,
                    &mut prepared,
                )
                .map_err(&undo)?;
        } else {
            runtime
                .create(&req.id, &bundle, &pid_file, &mut prepared)
                .map_err(&undo)?;
        }
        let io = prepared
            .finish(&stdio)
            .map_err(|e| undo(Error::msg(e.to_string())))?;
        let pid = read_pid(&pid_file).map_err(|e| undo(Error::msg(e)))?;
        let init = Process::new(&req.id, "", stdio.clone(), Vec::new());
        init.set_io(io);
        init.lock().pid = pid;
        let c = Arc::new(Container {
            id: req.id.clone(),
            bundle: bundle.clone(),
            runtime,
            init: init.clone(),
            execs: Mutex::new(HashMap::new()),
            io_owner,
            rootfs_mounted: !req.rootfs.is_empty(),
            own_pid_ns: own_pid_namespace(&bundle),
            restored,
        });
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.id.clone(), c.clone());
        self.watch(&c, &init, pid);
        crate::oom::watch(&req.id, pid, self.publisher.clone());
        self.publisher.publish(&TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
            }),
            checkpoint: req.checkpoint,
            pid,
        });
        crate::log::info(&format!(
            "created {} (pid {pid}) with {}",
            req.id,
            c.runtime.binary.display()
        ));
        Ok(CreateTaskResponse { pid })
    }

    fn start(&self, req: StartRequest) -> RpcResult<StartResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        {
            let mut st = p.lock();
            if st.status != status::CREATED || st.exit.is_some() || st.starting {
                return Err(rpc(
                    Kind::WrongState,
                    format!("{}: not in the created state", p.event_id()),
                ));
            }
            st.starting = true;
        }
        let done = |result: RpcResult<u32>| {
            let mut st = p.lock();
            if let Ok(pid) = result {
                st.pid = pid;
                if st.exit.is_none() {
                    st.status = status::RUNNING;
                }
                if p.exec_id.is_empty() {
                    self.publisher.publish(&TaskStart {
                        container_id: c.id.clone(),
                        pid,
                    });
                } else {
                    self.publisher.publish(&TaskExecStarted {
                        container_id: c.id.clone(),
                        exec_id: p.exec_id.clone(),
                        pid,
                    });
                }
            }
            st.starting = false;
            drop(st);
            p.notify();
            result.map(|pid| StartResponse { pid })
        };
        if p.exec_id.is_empty() {
            let pid = p.pid();
            let result = match c.restored {
                true => Ok(pid),
                false => c.runtime.start(&c.id).map(|()| pid).map_err(failed),
            };
            return done(result);
        }
        let result = self.start_exec(&c, &p);
        if result.is_err() {
            // The exec never ran: it is stopped with an error status, as runc's shim does.
            let mut st = p.lock();
            st.status = status::STOPPED;
            st.exit = Some(crate::reaper::Exit {
                status: 255,
                at: std::time::SystemTime::now(),
            });
        }
        done(result)
    }

    fn start_exec(&self, c: &Arc<Container>, p: &Arc<Process>) -> RpcResult<u32> {
        let spec_file = c.bundle.join(format!("exec-{}.json", p.exec_id));
        let pid_file = c.bundle.join(format!("exec-{}.pid", p.exec_id));
        std::fs::write(&spec_file, &p.spec)
            .map_err(|e| unknown(format!("write {}: {e}", spec_file.display())))?;
        let fail = |e: Error| {
            let _ = std::fs::remove_file(&spec_file);
            failed(e.wrap(format!("exec {} in {}", p.exec_id, c.id)))
        };
        let mut prepared = ProcessIo::prepare(&p.stdio, &c.id, &self.namespace, c.io_owner)
            .map_err(|e| fail(Error::msg(e.to_string())))?;
        c.runtime
            .exec(&c.id, &spec_file, &pid_file, &mut prepared)
            .map_err(&fail)?;
        let io = prepared
            .finish(&p.stdio)
            .map_err(|e| fail(Error::msg(e.to_string())))?;
        let pid = read_pid(&pid_file).map_err(|e| fail(Error::msg(e)))?;
        let _ = std::fs::remove_file(&spec_file);
        let _ = std::fs::remove_file(&pid_file);
        p.set_io(io);
        p.lock().pid = pid;
        self.watch(c, p, pid);
        Ok(pid)
    }

    fn exec(&self, req: ExecProcessRequest) -> RpcResult<Empty> {
        let c = self.container(&req.id)?;
        if c.init.lock().exit.is_some() {
            return Err(rpc(
                Kind::WrongState,
                format!("container {}: stopped", req.id),
            ));
        }
        let spec = req.spec.map(|a| a.value).unwrap_or_default();
        let stdio = Stdio3 {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            terminal: req.terminal,
        };
        {
            let mut execs = c.execs.lock().unwrap_or_else(|p| p.into_inner());
            if execs.contains_key(&req.exec_id) {
                return Err(rpc(
                    Kind::AlreadyExists,
                    format!("process {}: already exists", req.exec_id),
                ));
            }
            execs.insert(
                req.exec_id.clone(),
                Process::new(&req.id, &req.exec_id, stdio, spec),
            );
        }
        self.publisher.publish(&TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
        });
        Ok(Empty {})
    }

    fn state(&self, req: StateRequest) -> RpcResult<StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let st = p.lock();
        let (exit_status, exited_at) = match st.exit {
            Some(e) => (e.status, Some(Timestamp::from(e.at))),
            None => (0, None),
        };
        Ok(StateResponse {
            id: c.id.clone(),
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: st.pid,
            status: st.status,
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status,
            exited_at,
            exec_id: p.exec_id.clone(),
        })
    }

    fn wait(&self, req: WaitRequest) -> RpcResult<WaitResponse> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let exit = p.wait();
        Ok(WaitResponse {
            exit_status: exit.status,
            exited_at: Some(Timestamp::from(exit.at)),
        })
    }

    fn kill(&self, req: KillRequest) -> RpcResult<Empty> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        if p.exec_id.is_empty() {
            if p.lock().exit.is_some() && !req.all {
                return Err(rpc(
                    Kind::NotFound,
                    format!("container {}: process already finished", c.id),
                ));
            }
            c.runtime.kill(&c.id, req.signal, req.all).map_err(|e| {
                if p.lock().exit.is_some() {
                    rpc(
                        Kind::NotFound,
                        format!("container {}: process already finished", c.id),
                    )
                } else {
                    failed(e)
                }
            })?;
            return Ok(Empty {});
        }
        let st = p.lock();
        if st.exit.is_some() || st.pid == 0 {
            return Err(rpc(
                Kind::NotFound,
                format!("process {}: not running", p.exec_id),
            ));
        }
        let sig = nix::sys::signal::Signal::try_from(req.signal as i32)
            .map_err(|e| rpc(Kind::InvalidConfig, format!("signal {}: {e}", req.signal)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid as i32), sig)
            .map_err(|e| unknown(format!("kill process {} (pid {}): {e}", p.exec_id, st.pid)))?;
        Ok(Empty {})
    }

    fn delete(&self, req: DeleteRequest) -> RpcResult<DeleteResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        if !p.exec_id.is_empty() {
            let exit = {
                let st = p.lock();
                if st.exit.is_none() && st.status != status::CREATED {
                    return Err(rpc(
                        Kind::WrongState,
                        format!("process {}: still running", p.exec_id),
                    ));
                }
                st.exit
            };
            c.execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&p.exec_id);
            return Ok(DeleteResponse {
                pid: p.pid(),
                exit_status: exit.map(|e| e.status).unwrap_or(0),
                exited_at: exit.map(|e| Timestamp::from(e.at)),
            });
        }
        let (status_now, exited) = {
            let st = p.lock();
            (st.status, st.exit.is_some())
        };
        if !exited && status_now != status::CREATED {
            return Err(rpc(
                Kind::WrongState,
                format!("container {}: still running", c.id),
            ));
        }
        if let Err(e) = c.runtime.delete(&c.id, true) {
            crate::log::warn(&format!("delete {}: {e}", c.id));
        }
        // A created container was killed by the delete: its exit is reported first.
        let exit = p
            .wait_timeout(Duration::from_secs(10))
            .unwrap_or(crate::reaper::Exit {
                status: 137,
                at: std::time::SystemTime::now(),
            });
        if c.rootfs_mounted {
            crate::mount::unmount_all(&c.bundle.join("rootfs")).map_err(unknown)?;
        }
        let _ = std::fs::remove_file(c.bundle.join("init.pid"));
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        let pid = p.pid();
        self.publisher.publish(&TaskDelete {
            container_id: c.id.clone(),
            pid,
            exit_status: exit.status,
            exited_at: Some(Timestamp::from(exit.at)),
            id: c.id.clone(),
        });
        Ok(DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: Some(Timestamp::from(exit.at)),
        })
    }

    fn pids(&self, req: PidsRequest) -> RpcResult<PidsResponse> {
        let c = self.container(&req.id)?;
        let pids = c.runtime.ps(&c.id).map_err(failed)?;
        let execs: HashMap<u32, String> = c
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|p| (p.pid(), p.exec_id.clone()))
            .collect();
        let processes = pids
            .into_iter()
            .map(|pid| ProcessInfo {
                pid,
                info: execs.get(&pid).map(|exec_id| {
                    Any::pack(
                        "containerd.runc.v1.ProcessDetails",
                        &ProcessDetails {
                            exec_id: exec_id.clone(),
                        },
                    )
                }),
            })
            .collect();
        Ok(PidsResponse { processes })
    }

    fn pause(&self, req: PauseRequest) -> RpcResult<Empty> {
        let c = self.container(&req.id)?;
        c.runtime.pause(&c.id).map_err(failed)?;
        let mut st = c.init.lock();
        if st.exit.is_none() {
            st.status = status::PAUSED;
        }
        self.publisher.publish(&TaskPaused {
            container_id: c.id.clone(),
        });
        Ok(Empty {})
    }

    fn resume(&self, req: ResumeRequest) -> RpcResult<Empty> {
        let c = self.container(&req.id)?;
        c.runtime.resume(&c.id).map_err(failed)?;
        let mut st = c.init.lock();
        if st.exit.is_none() {
            st.status = status::RUNNING;
        }
        self.publisher.publish(&TaskResumed {
            container_id: c.id.clone(),
        });
        Ok(Empty {})
    }

    fn checkpoint(&self, req: CheckpointTaskRequest) -> RpcResult<Empty> {
        let c = self.container(&req.id)?;
        let opts = match req.options.as_ref().filter(|a| !a.value.is_empty()) {
            Some(any) => CheckpointOptions::decode(&any.value)
                .map_err(|e| rpc(Kind::InvalidConfig, format!("checkpoint options: {e}")))?,
            None => CheckpointOptions::default(),
        };
        // The path containerd gives, else the options' (ctr --image-path); CRIU's work
        // files and log next to the bundle, as containerd's runc shim keeps them.
        let image = match (req.path.as_str(), opts.image_path.as_str()) {
            ("", "") => return Err(rpc(Kind::InvalidConfig, "checkpoint: no image path")),
            ("", path) | (path, _) => PathBuf::from(path),
        };
        let work = match opts.work_path.as_str() {
            "" => c.bundle.join("criu-work"),
            path => PathBuf::from(path),
        };
        c.runtime
            .checkpoint(&c.id, &image, &work, &opts)
            .map_err(failed)?;
        Ok(Empty {})
    }

    fn resize_pty(&self, req: ResizePtyRequest) -> RpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let io = p
            .io()
            .ok_or_else(|| rpc(Kind::WrongState, "the process has not started"))?;
        io.resize(req.width, req.height)
            .map_err(|e| rpc(Kind::WrongState, e.to_string()))?;
        Ok(Empty {})
    }

    fn close_io(&self, req: CloseIORequest) -> RpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if let Some(io) = p.io() {
            io.close_stdin();
        }
        Ok(Empty {})
    }

    fn update(&self, req: UpdateTaskRequest) -> RpcResult<Empty> {
        let c = self.container(&req.id)?;
        let resources = req.resources.map(|a| a.value).unwrap_or_default();
        let file = c.bundle.join("update-resources.json");
        std::fs::write(&file, resources)
            .map_err(|e| unknown(format!("write {}: {e}", file.display())))?;
        let result = c.runtime.update(&c.id, &file).map_err(failed);
        let _ = std::fs::remove_file(&file);
        result.map(|()| Empty {})
    }

    fn stats(&self, req: StatsRequest) -> RpcResult<StatsResponse> {
        let c = self.container(&req.id)?;
        let pid = c.init.pid();
        let stats = crate::stats::collect(pid).map_err(failed)?;
        Ok(StatsResponse { stats: Some(stats) })
    }

    fn connect(&self, req: ConnectRequest) -> RpcResult<ConnectResponse> {
        let task_pid = self.container(&req.id).map(|c| c.init.pid()).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: crate::VERSION.to_string(),
        })
    }

    fn shutdown(&self, req: ShutdownRequest) -> RpcResult<Empty> {
        let empty = self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if empty || req.now {
            self.exiting.store(true, Ordering::SeqCst);
        }
        Ok(Empty {})
    }
}

fn read_pid(path: &Path) -> Result<u32, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("pid file {}: {text:?} is not a pid", path.display()))
}

/// Whether config.json gives the container a new pid namespace (no `path`).
fn own_pid_namespace(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return true;
    };
    v["linux"]["namespaces"].as_array().is_some_and(|ns| {
        ns.iter()
            .any(|n| n["type"] == "pid" && n["path"].as_str().unwrap_or_default().is_empty())
    })
}
