//! The runc Options that change the shim itself rather than the runtime's command line:
//! `ShimCgroup` (the shim moves into that existing cgroup) and `IoUid`/`IoGid` (the owner
//! of the stdio pipes). The shim is driven directly over ttrpc (`containerd.task.v3`), as
//! in shim_v3.rs, with a `containerd.runc.v1.Options` packed in each CreateTaskRequest;
//! its runtime is patina next to it in this build's target dir.
//!
//! Each test has its own dir (bundle, runtime root, sockets), namespace and ids; it stops
//! and reaps its own shim by pid and removes the cgroups it created, and nothing else.

use containerd_shim_patina::proto::*;
use containerd_shim_patina::ttrpc::{self, Client, Handler, RpcResult, Status};
use integration::containerd::{shim_path, target_dir};
use integration::procfs;
use integration::runtime::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const V3: &str = "containerd.task.v3.Task";
const NS: &str = "shimopts";
const ID: &str = "c";

/// containerd's event service, as the shim finds it through TTRPC_ADDRESS: accepts all.
struct Events;

impl Handler for Events {
    fn handle(&self, _service: &str, _method: &str, _payload: &[u8]) -> RpcResult<Vec<u8>> {
        Ok(Empty {}.encode())
    }
}

/// A name unique to this test process and call.
fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One shim daemon serving one busybox bundle, all in `/tmp/pshim-opt-<unique>`.
struct Shim {
    dir: PathBuf,
    bundle: PathBuf,
    pid: i32,
    client: Client,
    /// a task was created and not yet deleted
    task: bool,
}

impl Shim {
    /// Build a bundle running `args` and start its shim daemon.
    fn start(name: &str, args: &[&str]) -> Shim {
        integration::container::init_process();
        let dir = std::env::temp_dir().join(format!("pshim-opt-{}", unique(name)));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/busybox-bundle.sh");
        let ok = Command::new(fixture)
            .arg(&bundle)
            .args(args)
            .env("PATINA", target_dir().join("patina"))
            .status()
            .unwrap();
        assert!(ok.success(), "busybox bundle");

        let events_sock = dir.join("events.sock");
        let listener = UnixListener::bind(&events_sock).unwrap();
        std::thread::spawn(move || ttrpc::serve(listener, Arc::new(Events)));

        let start = Command::new(shim_path())
            .args(["-namespace", NS, "-id", ID, "-address"])
            .arg(dir.join("containerd.sock"))
            .arg("start")
            .current_dir(&bundle)
            .env("TTRPC_ADDRESS", &events_sock)
            // no options on stdin: each Create brings its own
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = start.wait_with_output().unwrap();
        assert!(out.status.success(), "shim start: {out:?}");
        let address = String::from_utf8(out.stdout).unwrap();
        // The daemon: our child (we are a subreaper), working in this test's bundle.
        let pids: Vec<i32> = integration::containerd::children_named("containerd-shim")
            .into_iter()
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == bundle)
            })
            .collect();
        assert_eq!(pids.len(), 1, "one shim daemon for {}", bundle.display());
        let client = Client::connect(&address).unwrap();
        Shim {
            dir,
            bundle,
            pid: pids[0],
            client,
            task: false,
        }
    }

    /// runc Options with this shim's own runtime root, and `f` applied.
    fn options(&self, f: impl FnOnce(&mut RuncOptions)) -> Any {
        let mut o = RuncOptions {
            root: self.dir.join("root").to_string_lossy().into_owned(),
            ..Default::default()
        };
        f(&mut o);
        Any::pack("containerd.runc.v1.Options", &o)
    }

    fn try_call<Req: Message, Resp: Message>(
        &mut self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, Status> {
        self.client.call(V3, method, req).expect("ttrpc call")
    }

    fn call<Req: Message, Resp: Message>(&mut self, method: &str, req: &Req) -> Resp {
        self.try_call(method, req)
            .unwrap_or_else(|s| panic!("{method}: {s:?}"))
    }

    /// Create the task with `options`, its stdout and stderr appended to `log`.
    fn create(&mut self, options: Any, log: &Path) -> Result<u32, Status> {
        let req = CreateTaskRequest {
            id: ID.into(),
            bundle: self.bundle.to_string_lossy().into(),
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", log.display()),
            options: Some(options),
            ..Default::default()
        };
        let created: CreateTaskResponse = self.try_call("Create", &req)?;
        self.task = true;
        Ok(created.pid)
    }

    fn start_task(&mut self, exec_id: &str) -> u32 {
        let req = StartRequest {
            id: ID.into(),
            exec_id: exec_id.into(),
        };
        let started: StartResponse = self.call("Start", &req);
        started.pid
    }

    fn wait(&mut self, exec_id: &str) -> u32 {
        let req = WaitRequest {
            id: ID.into(),
            exec_id: exec_id.into(),
        };
        let waited: WaitResponse = self.call("Wait", &req);
        waited.exit_status
    }

    /// Exec `args` in the task, its output appended to `log`; returns its exit status.
    fn exec(&mut self, exec_id: &str, args: &[&str], log: &Path) -> u32 {
        let spec = serde_json::json!({"args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
        let req = ExecProcessRequest {
            id: ID.into(),
            exec_id: exec_id.into(),
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", log.display()),
            spec: Some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: spec.to_string().into_bytes(),
            }),
            ..Default::default()
        };
        let _: Empty = self.call("Exec", &req);
        self.start_task(exec_id);
        let status = self.wait(exec_id);
        let del = DeleteRequest {
            id: ID.into(),
            exec_id: exec_id.into(),
        };
        let _: DeleteResponse = self.call("Delete", &del);
        status
    }

    /// SIGKILL the task (all its processes), wait for it and delete it.
    fn kill_and_delete(&mut self) {
        let k = KillRequest {
            id: ID.into(),
            signal: 9,
            all: true,
            ..Default::default()
        };
        let _: Result<Empty, _> = self.try_call("Kill", &k);
        self.wait("");
        let d = DeleteRequest {
            id: ID.into(),
            ..Default::default()
        };
        let _: DeleteResponse = self.call("Delete", &d);
        self.task = false;
    }

    /// Shut the daemon down and reap it; true when it exited in time.
    fn shutdown(&mut self) -> bool {
        let req = ShutdownRequest {
            id: ID.into(),
            now: true,
        };
        let _ = self.client.call::<_, Empty>(V3, "Shutdown", &req);
        integration::container::reap(self.pid, Duration::from_secs(5))
    }
}

impl Drop for Shim {
    /// After a failed assertion: the task and the daemon go too (the daemon by its pid).
    fn drop(&mut self) {
        if self.task {
            let k = KillRequest {
                id: ID.into(),
                signal: 9,
                all: true,
                ..Default::default()
            };
            let _ = self.client.call::<_, Empty>(V3, "Kill", &k);
            let d = DeleteRequest {
                id: ID.into(),
                ..Default::default()
            };
            let _ = self.client.call::<_, DeleteResponse>(V3, "Delete", &d);
        }
        if procfs::pid_alive(self.pid) && !self.shutdown() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            integration::container::reap(self.pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cgroup this test makes beneath its own: `/<base>/<name>` where `base` is our
/// shallowest own cgroup path, in every hierarchy where that is our cgroup (on a hybrid
/// host where e.g. only memory has us deeper, that one hierarchy is left out: the same
/// path there would not be beneath our own cgroup, and creating it is not ours to do).
struct TestCgroup {
    /// the ShimCgroup value: the path from each hierarchy's root
    path: String,
    /// the directories created, one per hierarchy
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn create(name: &str) -> TestCgroup {
        let mounts: Vec<PathBuf> =
            procfs::parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap())
                .into_iter()
                .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
                .map(|m| PathBuf::from(m.mount_point))
                .collect();
        // (own cgroup dir, its path below the hierarchy's mount point)
        let own: Vec<(PathBuf, PathBuf)> = procfs::own_cgroup_dirs()
            .into_iter()
            .filter_map(|dir| {
                let mount = mounts
                    .iter()
                    .filter(|m| dir.starts_with(m))
                    .max_by_key(|m| m.components().count())?;
                let rel = dir.strip_prefix(mount).ok()?.to_path_buf();
                Some((dir, rel))
            })
            .collect();
        let base = own
            .iter()
            .map(|(_, rel)| rel.clone())
            .min_by_key(|rel| rel.components().count())
            .expect("our own cgroups");
        let leaf = unique(name);
        let mut cg = TestCgroup {
            path: format!("/{}", base.join(&leaf).display()),
            dirs: Vec::new(),
        };
        for (dir, _) in own.iter().filter(|(_, rel)| *rel == base) {
            let target = dir.join(&leaf);
            std::fs::create_dir(&target)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", target.display()));
            cg.dirs.push(target.clone());
            init_cpuset(dir, &target);
        }
        assert!(!cg.dirs.is_empty(), "no hierarchy to make {} in", cg.path);
        cg
    }

    fn procs(dir: &Path) -> Vec<i32> {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Sub-cgroups still there (a container's cgroup its runtime did not remove).
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            collect_subdirs(dir, &mut out);
        }
        out
    }
}

impl Drop for TestCgroup {
    /// Removes what the test created (deepest first: a leftover sub-cgroup is removed too
    /// once empty, so that a failed run leaves nothing); each must be empty of processes.
    fn drop(&mut self) {
        for dir in &self.dirs {
            let mut subs = Vec::new();
            collect_subdirs(dir, &mut subs);
            for sub in subs.iter().rev() {
                let _ = wait_for(Duration::from_secs(5), || std::fs::remove_dir(sub).ok());
            }
            if wait_for(Duration::from_secs(5), || std::fs::remove_dir(dir).ok()).is_none() {
                eprintln!("could not remove {}: {:?}", dir.display(), Self::procs(dir));
            }
        }
    }
}

/// Every cgroup beneath `dir`, parents before children.
fn collect_subdirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            collect_subdirs(&e.path(), out);
        }
    }
}

/// A new v1 cpuset cgroup has no cpus and mems, and nothing can join it until it has:
/// it gets its parent's.
fn init_cpuset(parent: &Path, dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if let Ok(value) = std::fs::read_to_string(parent.join(file)) {
            std::fs::write(dir.join(file), value.trim())
                .unwrap_or_else(|e| panic!("write {}: {e}", dir.join(file).display()));
        }
    }
}

#[test]
fn shim_cgroup_is_joined() {
    let cg = TestCgroup::create("pshimcg");
    let mut shim = Shim::start("cgroup", &["sleep", "1000"]);
    let before: Vec<Vec<i32>> = cg.dirs.iter().map(|d| TestCgroup::procs(d)).collect();
    assert!(before.iter().all(Vec::is_empty), "{before:?}");

    let opts = shim.options(|o| o.shim_cgroup = cg.path.clone());
    let log = shim.dir.join("out.log");
    let pid = shim.create(opts, &log).expect("create with ShimCgroup");
    assert!(pid > 0);
    for dir in &cg.dirs {
        let procs = TestCgroup::procs(dir);
        assert!(
            procs.contains(&shim.pid),
            "shim {} not in {}: {procs:?}",
            shim.pid,
            dir.display()
        );
    }
    // /proc agrees: every hierarchy we made the cgroup in names it for the shim.
    let shim_cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.pid)).unwrap();
    let named = shim_cgroups
        .lines()
        .filter(|l| l.ends_with(&format!(":{}", cg.path)))
        .count();
    assert_eq!(named, cg.dirs.len(), "{shim_cgroups}");

    shim.start_task("");
    shim.kill_and_delete();
    assert!(shim.shutdown(), "shim {} did not exit", shim.pid);
    assert_eq!(cg.leftovers(), Vec::<PathBuf>::new(), "cgroups left");
    drop(shim);
    drop(cg);
}

#[test]
fn shim_cgroup_missing_is_refused() {
    let mut shim = Shim::start("cgroup-missing", &["true"]);
    let path = format!("/{}", unique("patina-no-such-cgroup"));
    let roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .collect();
    let exists = |roots: &[PathBuf]| roots.iter().any(|r| r.join(&path[1..]).exists());
    assert!(!exists(&roots), "{path} exists before the test");
    let before = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.pid)).unwrap();

    let opts = shim.options(|o| o.shim_cgroup = path.clone());
    let log = shim.dir.join("out.log");
    let status = shim
        .create(opts, &log)
        .expect_err("create with a missing ShimCgroup");
    assert!(
        status.message.contains("ShimCgroup") && status.message.contains(&path),
        "{status:?}"
    );
    assert!(!status.message.contains('\n'), "{status:?}");

    // Nothing was made: no cgroup, no move, no container, no saved options, no task.
    assert!(!exists(&roots), "{path} was created");
    let after = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.pid)).unwrap();
    assert_eq!(before, after);
    assert!(!shim.dir.join("root").join(NS).join(ID).exists());
    assert!(!shim.bundle.join("patina-shim.json").exists());
    let state = shim.try_call::<_, StateResponse>(
        "State",
        &StateRequest {
            id: ID.into(),
            ..Default::default()
        },
    );
    assert_eq!(
        state.expect_err("no task").code,
        ttrpc::Code::NotFound as i32
    );
    assert!(shim.shutdown(), "shim {} did not exit", shim.pid);
}

/// The owner of the container's stdout pipe, as the container's init and an exec'd
/// process see it through /proc/self/fd/1, with `io` as IoUid/IoGid.
fn stdout_owner_seen(name: &str, io: (u32, u32)) -> (String, String) {
    let stat = "stat -L -c %u:%g /proc/self/fd/1";
    let init = format!("{stat}; exec sleep 1000");
    let mut shim = Shim::start(name, &["sh", "-c", &init]);
    let opts = shim.options(|o| (o.io_uid, o.io_gid) = io);
    let log = shim.dir.join("init.log");
    shim.create(opts, &log).expect("create");
    shim.start_task("");
    let read = |p: &Path| {
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(p)
                .ok()
                .filter(|s| s.ends_with('\n'))
        })
        .unwrap_or_else(|| format!("(nothing in {})", p.display()))
    };
    let from_init = read(&log);
    let exec_log = shim.dir.join("exec.log");
    let status = shim.exec("x", &["sh", "-c", stat], &exec_log);
    assert_eq!(status, 0, "exec: {}", read(&exec_log));
    let from_exec = read(&exec_log);
    shim.kill_and_delete();
    assert!(shim.shutdown(), "shim {} did not exit", shim.pid);
    (from_init.trim().to_string(), from_exec.trim().to_string())
}

#[test]
fn io_uid_gid_own_the_stdio_pipes() {
    let seen = stdout_owner_seen("io-1000", (1000, 1000));
    assert_eq!(seen, ("1000:1000".to_string(), "1000:1000".to_string()));
}

#[test]
fn stdio_pipes_stay_root_without_io_uid_gid() {
    let seen = stdout_owner_seen("io-default", (0, 0));
    assert_eq!(seen, ("0:0".to_string(), "0:0".to_string()));
}
