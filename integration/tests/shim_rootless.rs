//! The shim under rootless containerd (issue 16): containerd run by a test user inside
//! rootlesskit's user and mount namespaces, as `containerd-rootless.sh` runs it
//! (`--copy-up=/etc --copy-up=/run --propagation=rslave`; host network: no slirp4netns, the
//! containers have network namespaces of their own), with the user's root, state and socket
//! in a private dir and the `native` snapshotter (overlayfs needs user xattrs on tmpfs, which
//! the guest's 6.1 kernel lacks). `ctr` runs as the user inside those namespaces, as
//! `containerd-rootless-setuptool.sh nsenter` does. Each scenario runs with
//! io.containerd.runc.v2 and Debian's runc, then with io.containerd.patina.v2
//! (containerd-shim-patina-v2) driving the runtime under test.
//!
//! Needs rootlesskit and a user with subordinate ranges (the systemd guest:
//! `integration/systemd-vm/run.sh 'shim_rootless patina'`) on cgroup v2; the systemd-driver
//! test also needs systemd as PID 1. Elsewhere each test says by name that it skips.

use integration::containerd::{shim_dir, shim_runtime, RUNTIME};
use integration::rootless::{TestUser, UserManager};
use integration::runtime::{try_exec, wait_for, Output};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NS: &str = "patina-test";
const RUNC: &str = "/usr/sbin/runc";
const ROOTLESSKIT: &str = "/usr/bin/rootlesskit";
const TIMEOUT: Duration = Duration::from_secs(60);

/// False (and why, naming the test) when this host cannot run rootless containerd.
fn can_run(test: &str, systemd: bool) -> bool {
    let why = if !Path::new(ROOTLESSKIT).exists() {
        "rootlesskit is not installed"
    } else if !Path::new("/usr/bin/newuidmap").exists() {
        "newuidmap is not installed (Debian package uidmap)"
    } else if systemd && !Path::new("/run/systemd/system").is_dir() {
        "systemd is not running (no /run/systemd/system)"
    } else if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "not a pure cgroup v2 host"
    } else {
        return true;
    };
    eprintln!("{test}: SKIPPED: {why}; runs in the systemd guest (make test-systemd-full)");
    false
}

/// The shim and runtime a scenario runs with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shim {
    /// io.containerd.runc.v2 with Debian's runc: the reference.
    Runc,
    /// io.containerd.patina.v2 driving the runtime under test.
    Patina,
}

/// containerd run by `user` in rootlesskit's namespaces, torn down on drop.
struct RootlessContainerd {
    dir: PathBuf,
    kit: Option<Child>,
    /// rootlesskit's child: the holder of the user and mount namespaces ctr enters.
    ns_pid: i32,
    env: Vec<String>,
    systemd: bool,
    /// cgroupfs: the cgroup delegated to the user (chowned), containerd in its `daemon`
    /// leaf, the containers beside it.
    delegated: Option<Delegated>,
    /// Dropped after the daemon (the manager before the user: userdel refuses a user with
    /// processes).
    manager: Option<UserManager>,
    user: TestUser,
}

impl RootlessContainerd {
    /// The daemon of `user`; with `manager`, the runtimes' systemd driver through the
    /// user's own systemd (its bus reached through rootlesskit's copied-up /run); without,
    /// cgroupfs in a cgroup delegated to the user.
    fn start(user: TestUser, manager: Option<UserManager>) -> RootlessContainerd {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        // Not in /dev/shm: logind's RemoveIPC sweep at the user's end would race the teardown.
        let dir = PathBuf::from(format!("/tmp/psr-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["fifo", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let systemd = manager.is_some();
        write_config(&dir, systemd);
        let image = integration::image::busybox();
        std::fs::copy(&image.oci_archive, dir.join("image.tar")).unwrap();
        user.give(&dir);
        let mut env = vec![
            format!("HOME={}", dir.join("home").display()),
            format!(
                "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
                shim_dir().display()
            ),
            // ctr's snapshotter for import and run.
            "CONTAINERD_SNAPSHOTTER=native".to_owned(),
        ];
        if let Some(m) = &manager {
            env.extend(m.env());
        }
        let delegated = (!systemd).then(|| Delegated::make(&user, n));
        // Into the delegated cgroup's leaf first (as root), then the user.
        let mut argv: Vec<String> = match &delegated {
            Some(d) => vec![
                "/bin/sh".into(),
                "-c".into(),
                r#"echo $$ > "$0/cgroup.procs" && exec "$@""#.into(),
                d.dir.join("daemon").display().to_string(),
            ],
            None => Vec::new(),
        };
        argv.extend(user.setpriv());
        argv.extend(env.iter().cloned());
        argv.extend(
            [
                ROOTLESSKIT,
                "--net=host",
                "--copy-up=/etc",
                "--copy-up=/run",
                "--propagation=rslave",
            ]
            .map(String::from),
        );
        argv.push(format!("--state-dir={}", dir.join("rk").display()));
        argv.extend(["containerd".to_owned(), "--config".to_owned()]);
        argv.push(dir.join("config.toml").display().to_string());
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let kit = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rootlesskit");
        let mut d = RootlessContainerd {
            dir,
            kit: Some(kit),
            ns_pid: 0,
            env,
            systemd,
            delegated,
            manager,
            user,
        };
        d.wait_ready();
        let base = integration::image::NAME;
        let base = base.rsplit_once(':').map_or(base, |(b, _)| b);
        let tar = d.dir.join("image.tar").display().to_string();
        d.ctr(&["images", "import", "--base-name", base, &tar])
            .assert_ok();
        d
    }

    /// Until rootlesskit has written its child's pid and containerd answers `ctr version`
    /// (at most 120 s: a busy TCG guest).
    fn wait_ready(&mut self) {
        let child_pid = self.dir.join("rk/child_pid");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if let Some(st) = self.kit.as_mut().unwrap().try_wait().unwrap() {
                panic!("rootlesskit exited ({st}) at start:\n{}", self.log());
            }
            if let Some(pid) = std::fs::read_to_string(&child_pid)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                self.ns_pid = pid;
                if self.dir.join("c.sock").exists() && self.ctr(&["version"]).success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("rootless containerd not ready in 120 s:\n{}", self.log());
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `ctr` as the user in rootlesskit's user and mount namespaces (where containerd's
    /// /run and the shims' sockets are).
    fn ctr(&self, args: &[&str]) -> Output {
        let mut argv = self.user.setpriv();
        argv.extend(self.env.iter().cloned());
        argv.extend(
            [
                "/usr/bin/nsenter",
                "--user",
                "--mount",
                "--preserve-credentials",
            ]
            .map(String::from),
        );
        argv.push(format!("--target={}", self.ns_pid));
        argv.extend(["ctr", "--address"].map(String::from));
        argv.push(self.dir.join("c.sock").display().to_string());
        argv.extend(["-n", NS].map(String::from));
        argv.extend(args.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        try_exec(&mut cmd, &self.dir, TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", self.log()))
    }

    /// `ctr run` options for `shim`: the runtime, ctr's fifos in our dir, and with the
    /// systemd driver the scope `ctr-<id>.scope` in the user's `user.slice`.
    fn run_opts(&self, shim: Shim, id: &str) -> Vec<String> {
        let mut v: Vec<String> = match shim {
            Shim::Runc => vec![
                "--runtime".into(),
                "io.containerd.runc.v2".into(),
                "--runc-binary".into(),
                RUNC.into(),
            ],
            Shim::Patina => vec![
                "--runtime".into(),
                RUNTIME.into(),
                "--runtime-config-path".into(),
                self.dir.join("runtime.toml").display().to_string(),
            ],
        };
        if self.systemd {
            if shim == Shim::Runc {
                v.push("--runc-systemd-cgroup".into());
            }
            v.extend(["--cgroup".into(), format!("user.slice:ctr:{id}")]);
        } else if let Some(d) = &self.delegated {
            v.extend(["--cgroup".into(), format!("{}/{id}", d.rel)]);
        }
        v.extend([
            "--fifo-dir".into(),
            self.dir.join("fifo").display().to_string(),
        ]);
        v
    }

    /// `ctr run <opts> <extra> IMAGE id cmd...`.
    fn run(&self, shim: Shim, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let opts = self.run_opts(shim, id);
        let mut args: Vec<&str> = vec!["run"];
        args.extend(opts.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.push(integration::image::NAME);
        args.push(id);
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    /// The host pid of task `id` (`ctr task ls`; rootlesskit makes no pid namespace).
    fn task_pid(&self, id: &str) -> Option<i32> {
        let out = self.ctr(&["task", "ls"]);
        out.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0] == id).then(|| f[1].parse().ok())?
        })
    }

    /// Processes of the user outside its systemd's slice: the daemon's, the shims', the
    /// containers'.
    fn user_processes(&self) -> Vec<i32> {
        let slice = format!("/user.slice/user-{}.slice/", self.user.uid);
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            if uid == Some(self.user.uid) && !cgroup.contains(&slice) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// A cgroup v2 directory beneath this test's own, made by the test with the memory and
/// pids controllers enabled for its children and a `daemon` leaf (the no-internal-process
/// rule), then chowned to the user: what a delegation gives a user on a host without
/// systemd.
struct Delegated {
    dir: PathBuf,
    /// Its path from the cgroup root (the containers' `--cgroup <rel>/<id>`).
    rel: String,
}

impl Delegated {
    fn make(user: &TestUser, n: u64) -> Delegated {
        let rel = format!(
            "{}/psr-{}-{n}",
            integration::engines::own_cgroup_path(),
            std::process::id()
        );
        let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let d = Delegated { dir, rel };
        std::fs::write(d.dir.join("cgroup.subtree_control"), "+memory +pids")
            .unwrap_or_else(|e| panic!("{}: +memory +pids: {e}", d.dir.display()));
        std::fs::create_dir(d.dir.join("daemon")).unwrap();
        user.give(&d.dir);
        d
    }

    /// Removes the leaf and the dir; a container's cgroup still there is a leak.
    fn remove(self) -> Vec<String> {
        let mut leaks = Vec::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && e.file_name() != "daemon" {
                leaks.push(format!("cgroup left: {}", e.path().display()));
                let _ = std::fs::remove_dir(e.path());
            }
        }
        for dir in [self.dir.join("daemon"), self.dir.clone()] {
            if let Err(e) = std::fs::remove_dir(&dir) {
                leaks.push(format!("rmdir {}: {e}", dir.display()));
            }
        }
        leaks
    }
}

/// containerd's config (the user's root, state and sockets in `dir`, no CRI, no
/// snapshotters that need other filesystems) and the patina shim's options.
fn write_config(dir: &Path, systemd: bool) {
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
        d = dir.display()
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    std::fs::write(
        dir.join("runtime.toml"),
        format!(
            "BinaryName = {:?}\nSystemdCgroup = {systemd}\n",
            shim_runtime()
        ),
    )
    .unwrap();
}

impl Drop for RootlessContainerd {
    fn drop(&mut self) {
        let mut leaks = Vec::new();
        if self.ns_pid != 0 {
            let ls = self.ctr(&["containers", "ls", "-q"]);
            for id in ls.stdout.split_whitespace() {
                leaks.push(format!("container left: {id}"));
                let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
                let _ = self.ctr(&["task", "delete", "-f", id]);
                let _ = self.ctr(&["containers", "rm", id]);
            }
        }
        if let Some(mut kit) = self.kit.take() {
            // rootlesskit passes SIGTERM on to containerd and exits with it.
            if let Some(note) =
                integration::engines::stop_daemon("rootlesskit", &mut kit, Duration::from_secs(20))
            {
                leaks.push(note);
            }
        }
        // Shims outlive containerd by design; with every task deleted they have exited.
        let left = wait_for(Duration::from_secs(10), || {
            let p = self.user_processes();
            p.is_empty().then_some(())
        });
        if left.is_none() {
            for pid in self.user_processes() {
                let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ");
                leaks.push(format!("process of the user left: {pid} {cmd}"));
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Some(d) = self.delegated.take() {
            leaks.extend(d.remove());
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            leaks.push(format!("remove {}: {e}", self.dir.display()));
        }
        drop(self.manager.take());
        if leaks.is_empty() {
            return;
        }
        let msg = format!("rootless containerd teardown: {}", leaks.join("; "));
        if std::thread::panicking() {
            eprintln!("{msg}");
        } else {
            panic!("{msg}");
        }
    }
}

/// The steps of one shim: a foreground run's output and exit code, then a detached
/// container seen from the host (its root is the user), an exec, kill, delete; returns
/// what the container showed, for comparison with runc's.
fn scenario(d: &RootlessContainerd, shim: Shim, tag: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let id = format!("{tag}-run-{shim:?}").to_lowercase();
    let out = d.run(
        shim,
        &["--rm"],
        &id,
        &["sh", "-c", "echo hi; id -u; exit 3"],
    );
    assert_eq!(
        out.code,
        Some(3),
        "{shim:?}: ctr run --rm: {out:?}\n{}",
        d.log()
    );
    seen.push(format!("run: {}", out.stdout.trim().replace('\n', " ")));

    let id = format!("{tag}-d-{shim:?}").to_lowercase();
    d.run(
        shim,
        &["-d", "--memory-limit", "67108864"],
        &id,
        &["sleep", "300"],
    )
    .assert_ok();
    let pid = d.task_pid(&id).expect("task pid");
    // From the host: the container's root is the user, its other ids the user's range.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uid = d.user.uid.to_string();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(uid.as_str()),
        "{shim:?}: {uid_line}"
    );
    seen.push("init's host uid: the user".to_owned());
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let (want, name) = match &d.delegated {
        None => (
            format!("/user.slice/user-{uid}.slice/user@{uid}.service/user.slice/ctr-{id}.scope"),
            "scope ctr-<id>.scope",
        ),
        Some(dg) => (format!("{}/{id}", dg.rel), "delegated <cgroup>/<id>"),
    };
    assert_eq!(cgroup.trim(), format!("0::{want}"), "{shim:?}");
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup{want}/memory.max")).unwrap();
    seen.push(format!("{name}, memory.max {}", max.trim()));
    let exec = d.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "--fifo-dir",
        &d.dir.join("fifo").display().to_string(),
        &id,
        "sh",
        "-c",
        "echo in; exit 5",
    ]);
    assert_eq!(exec.code, Some(5), "{shim:?}: exec: {exec:?}");
    seen.push(format!("exec: {}", exec.stdout.trim()));
    d.ctr(&["task", "kill", "-s", "SIGKILL", &id]).assert_ok();
    let stopped = wait_for(Duration::from_secs(20), || {
        let out = d.ctr(&["task", "ls"]);
        out.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("STOPPED"))
            .then_some(())
    });
    assert!(
        stopped.is_some(),
        "{shim:?}: task not stopped after SIGKILL"
    );
    d.ctr(&["task", "delete", &id]).assert_ok();
    d.ctr(&["containers", "rm", &id]).assert_ok();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{shim:?}: init {pid} still there"
    );
    seen
}

/// Both shims, runc first; the same transcript expected of each.
fn both(d: &RootlessContainerd, tag: &str, expected: &[String]) {
    for shim in [Shim::Runc, Shim::Patina] {
        let t0 = Instant::now();
        let seen = scenario(d, shim, tag);
        eprintln!("{tag} {shim:?}: {:.1} s", t0.elapsed().as_secs_f64());
        assert_eq!(seen, expected, "{shim:?}");
    }
}

#[test]
fn shim_rootless_containerd_cgroupfs_in_a_delegated_cgroup() {
    if !can_run(
        "shim_rootless_containerd_cgroupfs_in_a_delegated_cgroup",
        false,
    ) {
        return;
    }
    // ctr always sets a cgroupsPath, and runc 1.1.5 rootless then needs it writable
    // (without one: `mkdir /sys/fs/cgroup/patina-test: permission denied`), so the user is
    // given a cgroup and containerd runs in it, as a delegation does.
    let t0 = Instant::now();
    let d = RootlessContainerd::start(TestUser::create(), None);
    eprintln!(
        "rootless containerd up in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let expected = [
        "run: hi 0".to_owned(),
        "init's host uid: the user".to_owned(),
        "delegated <cgroup>/<id>, memory.max 67108864".to_owned(),
        "exec: in".to_owned(),
    ];
    both(&d, "fs", &expected);
}

#[test]
fn shim_rootless_containerd_systemd_scope_of_the_users_manager() {
    if !can_run(
        "shim_rootless_containerd_systemd_scope_of_the_users_manager",
        true,
    ) {
        return;
    }
    let user = TestUser::create();
    let manager = UserManager::start(&user);
    let t0 = Instant::now();
    let d = RootlessContainerd::start(user, Some(manager));
    eprintln!(
        "rootless containerd up in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let expected = [
        "run: hi 0".to_owned(),
        "init's host uid: the user".to_owned(),
        "scope ctr-<id>.scope, memory.max 67108864".to_owned(),
        "exec: in".to_owned(),
    ];
    both(&d, "sd", &expected);
}
