//! Container engines (podman, containerd, docker) driving the runtime under test.
//!
//! One engine instance per test file: started on first use (a `OnceLock`), with every
//! directory private (`/dev/shm/pe-<pid>-<engine>`), unix sockets only, `--network none`,
//! cgroupfs with a cgroup parent beneath this process's own cgroup, and torn down when the
//! test process exits (an `atexit` hook: stop the daemon by pid, unmount, remove dirs and
//! cgroups, check that nothing is left; a leak makes the test binary exit non-zero).
//!
//! Each scenario runs first with Debian's runc (the reference) and then with the runtime under
//! test ([`crate::runtime_path`], `$PATINA_RUNTIME`), both through a wrapper script that logs
//! the argv the engine passed. Each run yields a [`Transcript`] of what the container showed,
//! step by step; both must equal the test's expectation, so a failure names the step that
//! differs and shows what runc gave there. When the runtime under test is runc itself the
//! scenario runs once.

pub mod containerd;
pub mod docker;
pub mod docker_like;
pub mod docker_rootless;
pub mod podman;
pub mod podman_rootless;
pub mod systemd;

use crate::container::{init_process, reap};
use crate::procfs;
use crate::runtime::{exec, runtime_path, try_exec, wait_for, Output};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Debian's runc: the reference every scenario is compared with.
pub const RUNC: &str = "/usr/sbin/runc";

/// Time limit for one engine command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// One runtime an engine is pointed at: a wrapper script (same file name as the real binary,
/// so engines that key behaviour on the name see the real one) that logs argv and execs it.
#[derive(Debug, Clone)]
pub struct Rt {
    /// `runc` for the reference, else the file name of the runtime under test.
    pub label: String,
    /// The wrapper to hand to the engine.
    pub path: PathBuf,
    /// The binary the wrapper runs.
    pub real: PathBuf,
    /// True for the reference (Debian's runc).
    pub reference: bool,
}

impl Rt {
    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// True when the runtime under test is Debian's runc (scenarios then run once).
pub fn testing_runc() -> bool {
    std::fs::canonicalize(runtime_path()).ok() == std::fs::canonicalize(RUNC).ok()
}

/// The private world of one engine instance, and what its teardown must undo.
pub struct Private {
    pub tag: String,
    /// `/dev/shm/pe-<pid>-<tag>`: short, unix socket paths live below it.
    pub dir: PathBuf,
    /// Command output files.
    pub scratch: PathBuf,
    /// Cgroup parent (a path relative to each hierarchy's root) beneath our own cgroup.
    pub cgroup_parent: String,
    /// Every runtime invocation by the engine, one line each: `<label> <argv...>`.
    pub argv_log: PathBuf,
    pub reference: Rt,
    pub under_test: Rt,
    /// Host paths outside `dir` the engine may create: (path, existed before).
    outside: Mutex<Vec<(PathBuf, bool)>>,
    netns_before: Vec<String>,
    cgroup: CgroupParent,
    /// Container scopes before the engine started (systemd driver).
    scopes: systemd::ScopeWatch,
}

/// A cgroup parent for an engine's containers (a path relative to each hierarchy's root),
/// and what its teardown must remove.
pub struct CgroupParent {
    pub path: String,
    /// Ancestors of the parent that did not exist (in some hierarchy) before: engines
    /// create them (`mkdir -p`); removed deepest first at teardown if empty.
    ancestors: Vec<PathBuf>,
}

impl CgroupParent {
    pub fn new(path: String) -> Self {
        let mut ancestors = Vec::new();
        let parts: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
        for mnt in cgroup_mounts() {
            let mut p = mnt.clone();
            for part in &parts[..parts.len().saturating_sub(1)] {
                p = p.join(part);
                if !p.exists() {
                    ancestors.push(p.clone());
                }
            }
        }
        ancestors.reverse();
        CgroupParent { path, ancestors }
    }

    /// Removes the parent and everything beneath it in every hierarchy (processes still in
    /// it are leaks, killed), then the ancestors it created.
    pub fn remove(&self, leaks: &mut Vec<String>) {
        for mnt in cgroup_mounts() {
            let root = mnt.join(self.path.trim_start_matches('/'));
            if root.is_dir() {
                remove_cgroup_tree(&root, leaks);
            }
        }
        for a in &self.ancestors {
            let _ = std::fs::remove_dir(a);
        }
    }
}

fn netns_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The deepest of our cgroup paths (on a hybrid host, e.g. `memory:/a/b` while the other
/// hierarchies say `/`): beneath it we are beneath our own cgroup in every hierarchy whose
/// path is a prefix of it.
pub fn own_cgroup_path() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .unwrap_or("/")
        .trim_end_matches('/')
        .to_string()
}

/// Every cgroup hierarchy mount point (v1 controllers, named, and v2).
fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    procfs::parse_mountinfo(&mi)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

fn write_wrapper(path: &Path, label: &str, real: &Path, log: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"{label} $*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.display()
    );
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Private {
    /// Creates the private dir and the runtime wrappers of engine `tag`.
    pub fn new(tag: &str) -> Self {
        init_process();
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/dev/shm/pe-{pid}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create engine dir");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let argv_log = dir.join("runtime-argv.log");
        std::fs::write(&argv_log, "").unwrap();
        let real = runtime_path().to_path_buf();
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into());
        let reference = Rt {
            label: "runc".into(),
            path: dir.join("bin/ref/runc"),
            real: PathBuf::from(RUNC),
            reference: true,
        };
        let under_test = Rt {
            label: name.clone(),
            path: dir.join("bin/test").join(&name),
            real,
            reference: false,
        };
        for rt in [&reference, &under_test] {
            write_wrapper(&rt.path, &rt.label, &rt.real, &argv_log);
        }
        let cgroup = CgroupParent::new(format!("{}/pe-{pid}-{tag}", own_cgroup_path()));
        Private {
            tag: tag.to_string(),
            dir,
            scratch,
            cgroup_parent: cgroup.path.clone(),
            argv_log,
            reference,
            under_test,
            outside: Mutex::new(Vec::new()),
            netns_before: netns_entries(),
            cgroup,
            scopes: systemd::ScopeWatch::new(),
        }
    }

    /// `dir/<rel>` as a string.
    pub fn path(&self, rel: &str) -> String {
        self.dir.join(rel).to_string_lossy().into_owned()
    }

    /// Records a host path the engine may create outside `dir` (call before starting it):
    /// at teardown, if it did not exist before, a file is removed and a dir is pruned of
    /// empty dirs (never of files: another engine on the host may be using it meanwhile).
    pub fn watch_outside(&self, path: &str) {
        let p = PathBuf::from(path);
        let existed = p.exists();
        self.outside.lock().unwrap().push((p, existed));
    }

    /// The runtimes a scenario runs with: the reference first, then the runtime under test
    /// (only once when that is runc).
    pub fn runtimes(&self) -> Vec<&Rt> {
        if testing_runc() {
            vec![&self.under_test]
        } else {
            vec![&self.reference, &self.under_test]
        }
    }

    /// Runs `argv` (stdio to files, timeout).
    pub fn run(&self, argv: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]).current_dir(&self.dir);
        for (k, v) in env {
            c.env(k, v);
        }
        exec(&mut c, &self.scratch, CMD_TIMEOUT)
    }

    /// Lines of the argv log for runtime `label`.
    pub fn argv_lines(&self, label: &str) -> Vec<String> {
        let prefix = format!("{label} ");
        std::fs::read_to_string(&self.argv_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// Spawns a daemon with stdout/stderr to `dir/<name>.log`.
    pub fn spawn_daemon(&self, name: &str, argv: &[&str], env: &[(&str, &str)]) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in env {
            c.env(k, v);
        }
        c.spawn().unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
    }

    /// Waits until `ready` succeeds (at most 30 s) while `child` is alive; panics with the log.
    pub fn wait_ready(&self, name: &str, child: &mut Child, ready: impl FnMut() -> bool) {
        wait_daemon_ready(name, child, &self.dir.join(format!("{name}.log")), ready)
    }

    pub fn log_tail(&self, name: &str) -> String {
        log_tail(&self.dir.join(format!("{name}.log")), 30)
    }

    /// Teardown after the engine's own cleanup and daemon stop: unmount, processes, cgroups,
    /// outside paths, network namespaces, the private dir. Returns the leaks found.
    pub fn teardown(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let dir = self.dir.to_string_lossy().into_owned();
        // Processes that name our private dir (conmon, shims, a daemon's containerd).
        let me = std::process::id() as i32;
        for (pid, cmd) in processes_mentioning(&dir) {
            if pid != me {
                leaks.push(format!("process {pid} left: {cmd}"));
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                reap(pid, Duration::from_secs(5));
            }
        }
        reap_zombie_children();
        unmount_under(&dir, &mut leaks);
        self.cgroup.remove(&mut leaks);
        leaks.extend(self.scopes.leaks());
        // Paths outside the private dir the engine created.
        for (p, existed) in self.outside.lock().unwrap().iter() {
            if *existed || !p.exists() {
                continue;
            }
            if p.is_dir() {
                // Shared with whatever else on the host uses it by then (another containerd's
                // shims, say): only empty dirs go; our leftovers show as processes above.
                prune_empty_dirs(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
        // Named network namespaces as podman (netns-*) and CNI (cni-*) name them: none may be
        // new (everything runs with --network none). Reported, not removed: on a shared host
        // another user may have made it.
        for ns in netns_entries() {
            if !self.netns_before.contains(&ns)
                && (ns.starts_with("netns-") || ns.starts_with("cni-"))
            {
                leaks.push(format!("network namespace left: /run/netns/{ns}"));
            }
        }
        if let Some(out) = std::env::var_os("PATINA_ENGINE_ARGV_DIR") {
            let _ = std::fs::create_dir_all(&out);
            let _ = std::fs::copy(
                &self.argv_log,
                Path::new(&out).join(format!("{}.argv", self.tag)),
            );
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            leaks.push(format!("cannot remove {dir}: {e}"));
        }
        crate::image::remove();
        leaks
    }
}

/// The user a rootless engine runs as, with its own systemd (the engine's systemd cgroup
/// driver makes the containers' scopes through it); removed at teardown
/// ([`RootlessUser::release`]).
pub struct RootlessUser {
    /// Dropped manager first (userdel refuses a user with processes).
    held: Mutex<Option<(crate::rootless::UserManager, crate::rootless::TestUser)>>,
    pub uid: u32,
    prefix: Vec<String>,
}

impl RootlessUser {
    /// Gives the engine's private dir to the user (its storage, state, the runtimes'
    /// argv log) and a home in it.
    pub fn new(
        p: &Private,
        manager: crate::rootless::UserManager,
        user: crate::rootless::TestUser,
    ) -> RootlessUser {
        std::fs::create_dir_all(p.dir.join("home")).unwrap();
        user.give(&p.dir);
        let mut prefix = user.setpriv();
        prefix.extend(manager.env());
        prefix.push(format!("HOME={}", p.path("home")));
        RootlessUser {
            uid: user.uid,
            held: Mutex::new(Some((manager, user))),
            prefix,
        }
    }

    /// `setpriv` to the user with its login's environment: what goes before the engine's
    /// command.
    pub fn prefix(&self) -> Vec<String> {
        self.prefix.clone()
    }

    /// `systemctl --user <args>` of the user's manager (None once released).
    pub fn systemctl(&self, args: &[&str]) -> Option<String> {
        let held = self.held.lock().unwrap();
        held.as_ref().map(|(manager, _)| manager.systemctl(args))
    }

    /// The user's scopes named `<prefix>...` (the engine's containers'): each a leak.
    pub fn scopes_left(&self, prefix: &str) -> Vec<String> {
        let units = [
            "list-units",
            "--type=scope",
            "--all",
            "--no-legend",
            "--plain",
        ];
        let text = self.systemctl(&units).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| format!("user scope left: {l}"))
            .collect()
    }

    /// Stops the user's systemd (and every process of the user with it), removes the user.
    pub fn release(&self) {
        drop(self.held.lock().unwrap().take());
    }
}

/// The last `n` lines of the log file `path`.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until `ready` succeeds (at most 30 s) while daemon `child` is alive; panics with
/// the tail of its `log`.
pub fn wait_daemon_ready(
    name: &str,
    child: &mut Child,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) {
    let ok = wait_for(Duration::from_secs(30), || {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{name} exited during startup ({st}): {}", log_tail(log, 30));
        }
        if ready() {
            Some(())
        } else {
            std::thread::sleep(Duration::from_millis(50));
            None
        }
    });
    assert!(
        ok.is_some(),
        "{name} not ready after 30 s: {}",
        log_tail(log, 30)
    );
}

/// Unmounts everything below `dir` (deepest first). An engine may leave its storage mounts
/// (not a leak of the runtime); container mounts (rootfs, shm, netns) are leaks.
pub fn unmount_under(dir: &str, leaks: &mut Vec<String>) {
    let mut mounts = crate::containerd::mounts_under(&format!("{dir}/"));
    mounts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for m in &mounts {
        let rel = &m[dir.len()..];
        if rel.contains("/merged")
            || rel.ends_with("/rootfs")
            || rel.contains("/shm")
            || rel.contains("/netns/")
        {
            leaks.push(format!("mount left: {m}"));
        }
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Removes `dir` and the dirs below it that are (then) empty; files stay.
pub fn prune_empty_dirs(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                prune_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes a cgroup subtree depth-first; a cgroup with processes in it is a leak (they are
/// killed by pid first).
fn remove_cgroup_tree(dir: &Path, leaks: &mut Vec<String>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path(), leaks);
            }
        }
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        leaks.push(format!("process {pid} left in cgroup {}", dir.display()));
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        reap(pid, Duration::from_secs(5));
    }
    let ok = wait_for(Duration::from_secs(5), || std::fs::remove_dir(dir).ok());
    if ok.is_none() && dir.exists() {
        leaks.push(format!("cannot remove cgroup {}", dir.display()));
    }
}

/// (pid, cmdline) of live processes whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && procfs::pid_alive(pid) {
                out.push((pid, cmd));
            }
        }
    }
    out
}

/// Reaps the zombies among our children: shims and conmon daemonize and, since this process
/// is a child subreaper, are re-parented to it.
pub fn reap_zombie_children() {
    let me = std::process::id().to_string();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
            let mut f = after.split_whitespace();
            let (state, ppid) = (f.next(), f.next());
            if state == Some("Z") && ppid == Some(me.as_str()) {
                let _ = nix::sys::wait::waitpid(
                    Pid::from_raw(pid),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                );
            }
        }
    }
}

/// Stops a daemon by pid: SIGTERM, up to `grace`, then SIGKILL. Returns a leak note if it
/// had to be killed.
pub fn stop_daemon(name: &str, child: &mut Child, grace: Duration) -> Option<String> {
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Some(format!("{name} (pid {pid}) ignored SIGTERM for {grace:?}"))
}

/// The engine instance of a test process: `pub fn engine()` starts it on first use (with
/// `$start`) and registers its `teardown()` (returning the leaks) to run at exit, where
/// leaks fail the process.
macro_rules! engine_instance {
    ($ty:ty, $name:literal, $start:path, $doc:literal) => {
        static ENGINE: std::sync::OnceLock<$ty> = std::sync::OnceLock::new();

        #[doc = $doc]
        pub fn engine() -> &'static $ty {
            ENGINE.get_or_init(|| {
                let e = $start();
                super::at_exit(teardown_at_exit);
                e
            })
        }

        extern "C" fn teardown_at_exit() {
            if let Some(e) = ENGINE.get() {
                let leaks = std::panic::catch_unwind(|| e.teardown())
                    .unwrap_or_else(|_| vec![concat!($name, " teardown panicked").into()]);
                super::report_leaks($name, leaks);
            }
        }
    };
}
pub(crate) use engine_instance;

/// Runs the teardown at process exit and makes the process fail on leaks.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: registering a plain extern "C" function with no captured state.
    let rc = unsafe { libc::atexit(f) };
    assert_eq!(rc, 0, "atexit");
}

/// Reports the leaks of `engine`'s teardown (at exit); non-empty ends the process with 1.
pub fn report_leaks(engine: &str, leaks: Vec<String>) {
    if leaks.is_empty() {
        return;
    }
    eprintln!(
        "engine teardown ({engine}) found leaks:\n  {}",
        leaks.join("\n  ")
    );
    // SAFETY: ending the process from an atexit handler without running the others again.
    unsafe { libc::_exit(1) };
}

/// Why a scenario stopped early (its transcript says at which step).
#[derive(Debug)]
pub struct Stop;

/// A scenario's result: `Err(Stop)` when a step failed and later steps make no sense.
pub type Step = Result<(), Stop>;

/// What one run of a scenario showed, step by step.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transcript {
    pub steps: Vec<(String, String)>,
}

impl Transcript {
    /// Records an observation.
    pub fn note(&mut self, step: &str, value: impl Into<String>) {
        self.steps.push((step.to_string(), value.into()));
    }

    /// Records `ok` for a command that must succeed and returns its stdout; a failure is
    /// recorded with its exit code and stderr, and stops the scenario.
    pub fn ok(&mut self, step: &str, out: &Output) -> Result<String, Stop> {
        if out.success() {
            self.note(step, "ok");
            Ok(out.stdout.clone())
        } else {
            self.note(step, failure(out));
            Err(Stop)
        }
    }

    /// Records the exit code of a command (`exit N`).
    pub fn exit(&mut self, step: &str, out: &Output) -> Option<i32> {
        match out.code {
            Some(c) => self.note(step, format!("exit {c}")),
            None => self.note(step, format!("killed by signal {:?}", out.signal)),
        }
        out.code
    }
}

/// A failed command as one line.
pub fn failure(out: &Output) -> String {
    let err = out
        .stderr_lines()
        .into_iter()
        .rev()
        .take(3)
        .collect::<Vec<_>>();
    let err: Vec<&str> = err.into_iter().rev().collect();
    format!(
        "FAILED (exit {:?}, signal {:?}): {} {}",
        out.code,
        out.signal,
        err.join(" | "),
        out.stdout.trim()
    )
}

/// An engine the scenarios run on.
pub trait Engine: Sync {
    fn private(&self) -> &Private;
    /// Removes container `name` (force, no grace period) if it exists.
    fn remove(&self, name: &str);
}

/// Runs `scenario` with runc and with the runtime under test (container names
/// `<test>-<label>`), removes the containers, and asserts that both transcripts equal
/// `expected`. The failure message names each differing step with what runc showed there.
#[track_caller]
pub fn verify(
    engine: &dyn Engine,
    test: &str,
    expected: &[(&str, &str)],
    scenario: impl Fn(&Rt, &str, &mut Transcript) -> Step,
) {
    let p = engine.private();
    let want = Transcript {
        steps: expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let mut results: Vec<(&Rt, Transcript)> = Vec::new();
    for rt in p.runtimes() {
        let name = format!("{test}-{}", rt.label.replace(['.', '/'], "_"));
        let mut t = Transcript::default();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = scenario(rt, &name, &mut t);
        }));
        engine.remove(&name);
        if let Err(e) = r {
            std::panic::resume_unwind(e);
        }
        results.push((rt, t));
    }
    let mut msg = String::new();
    let reference = results.iter().find(|(rt, _)| rt.reference).map(|x| &x.1);
    for (rt, got) in &results {
        if *got == want {
            continue;
        }
        let _ = writeln!(
            msg,
            "\n[{}] {} with {} ({}) differs from the expectation:",
            p.tag,
            test,
            rt.label,
            rt.real.display()
        );
        let n = want.steps.len().max(got.steps.len());
        for i in 0..n {
            let w = want.steps.get(i);
            let g = got.steps.get(i);
            if w == g {
                continue;
            }
            let step = w.or(g).map(|s| s.0.as_str()).unwrap_or("?");
            let _ = writeln!(
                msg,
                "  step {i} {step:?}: expected {:?}, got {:?}{}",
                w.map(|s| &s.1),
                g.map(|s| (&s.0, &s.1)),
                match reference.filter(|_| !rt.reference) {
                    Some(r) => format!(", runc gave {:?}", r.steps.get(i).map(|s| &s.1)),
                    None => String::new(),
                }
            );
        }
        // This scenario's invocations when they name its container, else the latest ones.
        let name = format!("{test}-{}", rt.label.replace(['.', '/'], "_"));
        let all = p.argv_lines(&rt.label);
        let mine: Vec<String> = all.iter().filter(|l| l.contains(&name)).cloned().collect();
        let argv = if mine.is_empty() { all } else { mine };
        let _ = writeln!(
            msg,
            "  last runtime invocations by {}:\n    {}",
            p.tag,
            argv[argv.len().saturating_sub(8)..].join("\n    ")
        );
    }
    assert!(msg.is_empty(), "{msg}");
}

/// Runs `argv` on a new pty of `rows` x `cols` that is its controlling terminal (as a user
/// at a terminal would), and returns what appeared on the terminal (`\r` and NULs removed)
/// as stdout, with the exit code.
pub fn run_in_pty(argv: &[&str], env: &[(&str, &str)], rows: u16, cols: u16, cwd: &Path) -> Output {
    use std::os::unix::process::CommandExt;
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let mut child = {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..])
            .current_dir(cwd)
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
        for (k, v) in env {
            c.env(k, v);
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c.spawn().unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
    };
    drop(pty.slave);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut master = std::fs::File::from(pty.master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > CMD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // What is still in flight after the client exited (the reader ends at EIO, or when a
    // process that inherited the slave lingers, at the deadline).
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(chunk) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        out.extend(chunk);
    }
    let text = String::from_utf8_lossy(&out).replace(['\r', '\0'], "");
    use std::os::unix::process::ExitStatusExt;
    Output {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout: text,
        stderr: if status.is_none() {
            format!("timed out after {CMD_TIMEOUT:?}")
        } else {
            String::new()
        },
    }
}

/// Shell script for a container that counts in `/tmp/count` ten times a second and exits 7
/// on SIGTERM.
pub const COUNTER: &str =
    "trap 'exit 7' TERM; i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done";

/// Shell script for a terminal check: the tty name, then its size once the engine has set it
/// (engines resize the pty after start).
pub const TTY_CHECK: &str = "tty; i=0; s=$(stty size 2>/dev/null); while { [ -z \"$s\" ] || [ \"$s\" = '0 0' ]; } && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); s=$(stty size 2>/dev/null); done; echo size=$s";

/// Normalizes the output of [`TTY_CHECK`]: `/dev/pts/N` becomes `/dev/pts/*`.
pub fn tty_summary(out: &str) -> String {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with("/dev/pts/") && l[9..].bytes().all(|b| b.is_ascii_digit()) {
                "/dev/pts/*".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Reads the [`COUNTER`] of the container whose init is `pid` (through /proc/PID/root).
pub fn read_counter(pid: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/root/tmp/count"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `frozen` if the counter of `pid` does not move over 400 ms, else `advancing`.
pub fn counter_motion(pid: i32) -> String {
    // Let a write in flight land, then watch.
    std::thread::sleep(Duration::from_millis(150));
    let a = read_counter(pid);
    std::thread::sleep(Duration::from_millis(400));
    let b = read_counter(pid);
    match (a, b) {
        (Some(a), Some(b)) if a == b => "frozen".into(),
        (Some(a), Some(b)) if b > a => "advancing".into(),
        other => format!("unreadable counter {other:?}"),
    }
}

/// `advancing` once the counter of `pid` moves (within 5 s: a thawed counter on a slow
/// machine, such as a TCG guest, can take longer than [`counter_motion`]'s 400 ms to tick),
/// else `frozen`.
pub fn counter_resumed(pid: i32) -> String {
    let Some(a) = read_counter(pid) else {
        return "unreadable counter".into();
    };
    let moved = wait_for(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(50));
        read_counter(pid).filter(|&b| b > a).map(|_| ())
    });
    if moved.is_some() {
        "advancing".into()
    } else {
        "frozen".into()
    }
}

/// Waits (at most 5 s) until the counter of `pid` has reached at least 1.
pub fn wait_counter(pid: i32) -> bool {
    wait_for(Duration::from_secs(5), || {
        read_counter(pid).filter(|&n| n >= 1).map(|_| ())
    })
    .is_some()
}

/// True if process `pid` is gone within `timeout`.
pub fn gone(pid: i32, timeout: Duration) -> bool {
    wait_for(timeout, || (!procfs::pid_alive(pid)).then_some(())).is_some()
}

/// [`try_exec`] re-exported for teardown code.
pub fn try_run(argv: &[&str], env: &[(&str, &str)], scratch: &Path) -> Option<Output> {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    for (k, v) in env {
        c.env(k, v);
    }
    try_exec(&mut c, scratch, CMD_TIMEOUT).ok()
}
