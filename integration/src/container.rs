//! The per-test fixture: a bundle and a `--root` on tmpfs, a unique container
//! id, lifecycle helpers, and a teardown that cleans up and checks for leaks.

use crate::procfs;
use crate::runtime::{self, exec, runtime_path, wait_for, Output, TIMEOUT};
use crate::{rootfs, spec};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Makes this test process a child subreaper, once, so that detached
/// container processes are re-parented to it (and can be reaped by pid)
/// instead of lingering as zombies of pid 1.
pub fn init_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// Waits for `pid` to be gone: reaped by us if it is our child, else simply
/// absent (or a zombie of another process). Returns false on timeout.
pub fn reap(pid: i32, timeout: Duration) -> bool {
    wait_for(timeout, || {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(_) => Some(()),
            Err(_) => (!procfs::pid_alive(pid)).then_some(()),
        }
    })
    .is_some()
}

/// A process the test started on the host (e.g. a namespace holder),
/// killed and reaped on drop.
pub struct HostProcess {
    pub child: std::process::Child,
}

impl HostProcess {
    /// Spawns `argv` with null stdio.
    pub fn spawn(argv: &[&str]) -> Self {
        init_process();
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        HostProcess { child }
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The slice and prefix of the suite's containers under the systemd driver: the unit of
/// container `<id>` is `patina-it-<id>.scope` in system.slice.
pub const SYSTEMD_SLICE: &str = "system.slice";
pub const SYSTEMD_PREFIX: &str = "patina-it";

/// True when the suite runs its containers with the systemd cgroup driver:
/// `PATINA_TEST_CGROUP=systemd` (the systemd guest runs cgroups.rs and lifecycle.rs so,
/// against patina and runc). Each container then gets `--systemd-cgroup` and the
/// cgroupsPath `system.slice:patina-it:<id>`; otherwise no cgroupsPath (cgroupfs, beneath
/// the test's own cgroup).
pub fn systemd_driver() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let on = std::env::var("PATINA_TEST_CGROUP").is_ok_and(|v| v == "systemd");
        assert!(
            !on || Path::new("/run/systemd/system").exists(),
            "PATINA_TEST_CGROUP=systemd needs a host that runs systemd"
        );
        on
    })
}

/// The v2 directory of container `id`'s scope under the systemd driver.
pub fn systemd_scope_dir(id: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(SYSTEMD_SLICE)
        .join(format!("{SYSTEMD_PREFIX}-{id}.scope"))
}

/// One test's container: unique id, bundle with a busybox rootfs, its own
/// `--root`, and the config to write. Dropping it force-deletes the
/// container, reaps its processes, checks that nothing leaked (state dir,
/// mounts, processes, cgroups) and removes the directories.
pub struct Container {
    pub id: String,
    /// Scratch dir of this test: `/dev/shm/patina-it-<unique>`.
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The runtime's `--root`.
    pub root: PathBuf,
    /// The runtime binary this fixture drives: [`runtime_path`] unless the test
    /// asked for a private copy ([`Container::use_private_runtime`]).
    pub runtime: PathBuf,
    /// A program and arguments the runtime is run through (e.g. `setpriv` as another
    /// user: rootless tests); empty for none.
    pub wrapper: Vec<String>,
    /// Written to `bundle/config.json` by [`Container::write_config`]
    /// (and by `create`/`run`).
    pub config: Value,
    pids: Vec<i32>,
    host_mounts: Vec<PathBuf>,
    cleanups: Vec<Box<dyn FnOnce()>>,
    /// Extra container ids created in the same `--root`.
    extra_ids: Vec<String>,
}

impl Container {
    /// A fresh fixture for test `name`, running `true` by default.
    pub fn new(name: &str) -> Self {
        init_process();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        let id = format!("it-{short}-{pid}-{n}");
        let dir = PathBuf::from(format!("/dev/shm/patina-it-{pid}-{n}-{short}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&bundle).unwrap();
        rootfs::build(&rootfs);
        let root = dir.join("state");
        let mut config = spec::base_config(&["true"], "patina-test");
        if systemd_driver() {
            config["linux"]["cgroupsPath"] =
                format!("{SYSTEMD_SLICE}:{SYSTEMD_PREFIX}:{id}").into();
        }
        Container {
            config,
            id,
            dir,
            bundle,
            rootfs,
            root,
            runtime: runtime_path().to_path_buf(),
            wrapper: Vec::new(),
            pids: Vec::new(),
            host_mounts: Vec::new(),
            cleanups: Vec::new(),
            extra_ids: Vec::new(),
        }
    }

    /// Path of a scratch file in the test dir (outside the bundle).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        spec::set_args(&mut self.config, args);
        self
    }

    /// `sh -c script`.
    pub fn set_sh(&mut self, script: &str) -> &mut Self {
        self.set_args(&["sh", "-c", script])
    }

    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        std::fs::write(self.bundle.join("config.json"), text).expect("write config.json");
    }

    /// Drives a copy of the runtime binary in this test's dir from now on, for tests
    /// that attack the binary: whether it changed says something only if no other
    /// test runs it (a running executable cannot be opened for writing: ETXTBSY).
    pub fn use_private_runtime(&mut self) -> PathBuf {
        let name = runtime_path().file_name().expect("runtime file name");
        let copy = self.dir.join("runtime").join(name);
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(runtime_path(), &copy).expect("copy the runtime binary");
        self.runtime = copy.clone();
        copy
    }

    /// A command for the runtime with `--root` set, cwd = test dir.
    pub fn command(&self) -> Command {
        let mut c = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.runtime);
                c
            }
            None => Command::new(&self.runtime),
        };
        if systemd_driver() {
            c.arg("--systemd-cgroup");
        }
        c.arg("--root").arg(&self.root).current_dir(&self.dir);
        c
    }

    /// The cgroup directory the suite's driver gives this container on a pure v2 host:
    /// its scope with the systemd driver, else `<own cgroup>/<id>`.
    pub fn v2_cgroup_dir(&self) -> PathBuf {
        if systemd_driver() {
            return systemd_scope_dir(&self.id);
        }
        let own = procfs::own_cgroup_dirs().into_iter().next();
        own.expect("own cgroup").join(&self.id)
    }

    /// Runs the runtime with `--root <root>` and `args`.
    #[track_caller]
    pub fn rt(&self, args: &[&str]) -> Output {
        exec(self.command().args(args), &self.dir, TIMEOUT)
    }

    /// [`Container::rt`] without panicking (for teardown): None if it could not run.
    fn try_rt(&self, args: &[&str]) -> Option<Output> {
        runtime::try_exec(self.command().args(args), &self.dir, TIMEOUT).ok()
    }

    /// Runs an arbitrary prepared command (stdio to files, with timeout).
    #[track_caller]
    pub fn exec(&self, cmd: &mut Command) -> Output {
        exec(cmd, &self.dir, TIMEOUT)
    }

    /// Remembers a pid to reap (and check gone) at teardown.
    pub fn track_pid(&mut self, pid: i32) {
        if pid > 0 && !self.pids.contains(&pid) {
            self.pids.push(pid);
        }
    }

    /// Registers a host mount made by the test; unmounted at teardown before the leak check.
    pub fn track_host_mount(&mut self, p: &Path) {
        self.host_mounts.push(p.to_path_buf());
    }

    /// Registers a cleanup action run at teardown (after the leak check).
    pub fn on_teardown(&mut self, f: impl FnOnce() + 'static) {
        self.cleanups.push(Box::new(f));
    }

    /// Registers another container id living in this fixture's `--root`.
    pub fn track_id(&mut self, id: &str) {
        self.extra_ids.push(id.to_string());
    }

    fn bundle_str(&self) -> String {
        self.bundle.to_string_lossy().into_owned()
    }

    /// Asserts a clean rejection of bad input: a non-zero exit and no container left;
    /// for patina also exactly one line on stderr that mentions every key.
    #[track_caller]
    pub fn assert_rejected(&self, out: &Output, keys: &[&str]) {
        out.assert_failed();
        assert!(
            self.state().is_none(),
            "container exists after a failed create"
        );
        if !crate::is_runc() {
            let lines = out.stderr_lines();
            assert_eq!(
                lines.len(),
                1,
                "expected exactly one error line, got {:?}",
                out.stderr
            );
            for k in keys {
                assert!(
                    lines[0].contains(k),
                    "{:?} does not mention {k:?}",
                    lines[0]
                );
            }
        }
    }

    /// Writes the config and runs `create --bundle <bundle> <id>` (plus `extra`
    /// options before the id). On success the container's pid is tracked.
    #[track_caller]
    pub fn create_with(&mut self, extra: &[&str]) -> Output {
        self.write_config();
        let b = self.bundle_str();
        let id = self.id.clone();
        let mut args = vec!["create", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = self.rt(&args);
        if out.success() {
            if let Some(pid) = self.state().and_then(|s| s["pid"].as_i64()) {
                self.track_pid(pid as i32);
            }
        }
        out
    }

    #[track_caller]
    pub fn create(&mut self) -> Output {
        self.create_with(&[])
    }

    /// `create`, asserting success; returns the container pid.
    #[track_caller]
    pub fn create_ok(&mut self) -> i32 {
        self.create().assert_ok();
        self.pid()
    }

    #[track_caller]
    pub fn start(&self) -> Output {
        self.rt(&["start", &self.id])
    }

    #[track_caller]
    pub fn kill(&self, sig: &str) -> Output {
        self.rt(&["kill", &self.id, sig])
    }

    #[track_caller]
    pub fn delete(&self, force: bool) -> Output {
        if force {
            self.rt(&["delete", "--force", &self.id])
        } else {
            self.rt(&["delete", &self.id])
        }
    }

    /// `state <id>` parsed, or None if the command fails.
    pub fn state(&self) -> Option<Value> {
        let out = self.rt(&["state", &self.id]);
        if !out.success() {
            return None;
        }
        Some(
            serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("state is not JSON ({e}): {:?}", out.stdout)),
        )
    }

    #[track_caller]
    pub fn state_ok(&self) -> Value {
        self.state().unwrap_or_else(|| {
            panic!(
                "state {} failed: {:?}",
                self.id,
                self.rt(&["state", &self.id])
            )
        })
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state_ok()["status"]
            .as_str()
            .expect("status string")
            .to_string()
    }

    /// The container's pid according to `state`.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.state_ok()["pid"].as_i64().expect("pid number") as i32
    }

    /// Polls `state` until the status is `want` (at most 10 s).
    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        let mut last = String::new();
        let ok = wait_for(Duration::from_secs(10), || {
            last = self
                .state()
                .map(|s| s["status"].as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            (last == want).then_some(())
        });
        assert!(
            ok.is_some(),
            "container {} never reached {want:?} (last: {last:?})",
            self.id
        );
    }

    /// Writes the config and runs `run --bundle <bundle> [extra...] <id>` in the foreground.
    #[track_caller]
    pub fn run_with(&mut self, extra: &[&str]) -> Output {
        self.write_config();
        let b = self.bundle_str();
        let id = self.id.clone();
        let mut args = vec!["run", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = self.rt(&args);
        if extra.contains(&"--detach") || extra.contains(&"-d") {
            if let Some(pid) = self.state().and_then(|s| s["pid"].as_i64()) {
                self.track_pid(pid as i32);
            }
        }
        out
    }

    #[track_caller]
    pub fn run(&mut self) -> Output {
        self.run_with(&[])
    }

    /// Runs `sh -c script` in the foreground and returns the output.
    #[track_caller]
    pub fn sh(&mut self, script: &str) -> Output {
        self.set_sh(script);
        self.run()
    }

    /// Runs `sh -c script`, asserts exit 0, returns stdout.
    #[track_caller]
    pub fn sh_ok(&mut self, script: &str) -> String {
        let out = self.sh(script);
        out.assert_ok();
        out.stdout
    }

    /// Teardown: force-delete, reap, then check for leaks. Returns the leaks found.
    fn teardown(&mut self) -> Vec<String> {
        let mut leaks = Vec::new();
        let mut ids = vec![self.id.clone()];
        ids.extend(self.extra_ids.iter().cloned());
        // Processes a test exec'd into a container are ours to reap (we are their
        // subreaper, as an engine's shim is): do it first, or the init of a pid namespace
        // cannot finish exiting and `delete --force` waits on it.
        for &pid in self.pids.iter().skip(1) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            reap(pid, Duration::from_secs(5));
        }
        for id in &ids {
            if let Some(pid) = self
                .try_rt(&["state", id])
                .and_then(|o| o.stdout.parse::<Value>().ok())
                .and_then(|s| s["pid"].as_i64())
            {
                self.track_pid(pid as i32);
            }
            // A container that never existed (or was already deleted) is fine.
            if self.try_rt(&["delete", "--force", id]).is_none() {
                leaks.push(format!("`delete --force {id}` could not run or timed out"));
            }
        }
        // Newest first: the init of a pid namespace cannot finish exiting while a process
        // of its namespace (an exec'd one, whose parent is us) waits to be reaped.
        for &pid in self.pids.iter().rev() {
            if !reap(pid, Duration::from_secs(10)) {
                leaks.push(format!("process {pid} still alive after delete --force"));
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                reap(pid, Duration::from_secs(5));
            }
        }
        for m in self.host_mounts.drain(..).rev() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        // Processes whose command line names this test (e.g. a runtime helper left behind).
        let me = std::process::id().to_string();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                    continue;
                }
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                let pid: i32 = name.parse().unwrap_or(0);
                if (cmd.contains(self.dir.to_string_lossy().as_ref())
                    || ids.iter().any(|id| cmd.split(' ').any(|a| a == id)))
                    && procfs::pid_alive(pid)
                {
                    leaks.push(format!("process {pid} left: {cmd}"));
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    reap(pid, Duration::from_secs(5));
                }
            }
        }
        // State dirs left in --root.
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                leaks.push(format!("state left in --root: {}", e.path().display()));
            }
        }
        // Mounts mentioning our directory.
        let dir = self.dir.to_string_lossy().into_owned();
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut leaked_mounts: Vec<String> = mi
            .lines()
            .filter(|l| l.contains(&dir))
            .map(|l| l.to_string())
            .collect();
        for l in &leaked_mounts {
            leaks.push(format!("mount left on the host: {l}"));
        }
        // Cgroups named after the container below our own.
        for cg in procfs::own_cgroup_dirs() {
            for id in &ids {
                let p = cg.join(id);
                if p.exists() {
                    leaks.push(format!("cgroup left: {}", p.display()));
                    let _ = std::fs::remove_dir(&p);
                }
            }
        }
        // Scopes of the systemd driver (they go once their last process is reaped).
        if systemd_driver() {
            for id in &ids {
                let unit = format!("{SYSTEMD_PREFIX}-{id}.scope");
                let gone = runtime::wait_for(Duration::from_secs(5), || {
                    (!systemd_scope_dir(id).exists()).then_some(())
                });
                if gone.is_none() {
                    leaks.push(format!("scope left: {unit}"));
                    let _ = Command::new("systemctl").args(["stop", &unit]).status();
                }
            }
        }
        // Clean up whatever leaked, then the test's own resources.
        leaked_mounts.reverse();
        for l in leaked_mounts {
            if let Some(m) = procfs::parse_mountinfo(&l).first() {
                let _ =
                    nix::mount::umount2(m.mount_point.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for f in self.cleanups.drain(..) {
            f();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            leaks.push(format!("cannot remove {}: {e}", self.dir.display()));
        }
        leaks
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let leaks = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.teardown()))
        {
            Ok(l) => l,
            Err(_) => vec!["teardown panicked".to_string()],
        };
        if leaks.is_empty() {
            return;
        }
        let msg = format!(
            "leak check failed for {} ({}):\n  {}",
            self.id,
            runtime::runtime_path().display(),
            leaks.join("\n  ")
        );
        if std::thread::panicking() {
            eprintln!("{msg}");
        } else {
            panic!("{msg}");
        }
    }
}
