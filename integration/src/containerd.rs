//! A private containerd (Debian's 1.6) for the shim tests: its own config, root, state,
//! sockets and image store under a temp dir, containerd-shim-patina-v2 on its PATH and a
//! busybox image imported offline. The runtime the shim drives is `$PATINA_SHIM_RUNTIME`,
//! else the runtime under test (`$PATINA_RUNTIME`, default patina). Containers' cgroups go beneath this test
//! process's own cgroup; teardown stops containerd, reaps the shims and removes it all.

use crate::container::{init_process, reap};
use crate::procfs;
use crate::runtime::{try_exec, wait_for, Output};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const IMAGE: &str = "docker.io/library/busybox:latest";
pub const RUNTIME: &str = "io.containerd.patina.v2";
pub const NS: &str = "patina-test";
/// The namespace of CRI's containers and images.
pub const CRI_NS: &str = "k8s.io";
/// The CRI sandbox (pause) image: busybox's sh waiting for signals.
pub const PAUSE_IMAGE: &str = "localhost/patina-pause:latest";
const PAUSE_CMD: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done";
const TIMEOUT: Duration = Duration::from_secs(30);

pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The directory of containerd-shim-patina-v2, put first on containerd's PATH:
/// `$PATINA_SHIM_DIR` (the benchmark's release build), else this build's target dir.
pub fn shim_dir() -> PathBuf {
    std::env::var_os("PATINA_SHIM_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(target_dir)
}

pub fn shim_path() -> PathBuf {
    shim_dir().join("containerd-shim-patina-v2")
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shim/scripts")
}

/// The runtime binary the shim is told to drive (runc Options' BinaryName).
pub fn shim_runtime() -> String {
    std::env::var("PATINA_SHIM_RUNTIME")
        .unwrap_or_else(|_| crate::runtime_path().to_string_lossy().into_owned())
}

/// This process's cgroup (the memory controller's on v1, the unified one on v2).
fn own_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            Some((f.next()?, f.next()?, f.next()?))
        })
        .find(|(_, c, _)| {
            if unified {
                c.is_empty()
            } else {
                c.split(',').any(|c| c == "memory")
            }
        })
        .map(|(_, _, p)| p.trim_end_matches('/').to_string())
        .unwrap_or_default()
}

pub struct Containerd {
    pub dir: PathBuf,
    pub child: Option<Child>,
    /// the cgroup parent of this instance's containers
    pub cgroup: String,
    /// the CRI plugin is enabled (socket `c.sock`, runtime handlers `patina` and `runc`)
    pub cri: bool,
    n: AtomicU64,
}

impl Containerd {
    pub fn start(name: &str) -> Containerd {
        Self::start_with(name, false)
    }

    /// containerd with its CRI plugin: handlers `patina` (this shim, driving
    /// [`shim_runtime`]) and `runc` (containerd-shim-runc-v2 with Debian's runc),
    /// cgroupfs driver, `sandbox_image` [`PAUSE_IMAGE`], busybox and the pause image in
    /// the `k8s.io` namespace. Pods go beneath [`Containerd::cgroup`] (their
    /// `cgroup_parent`) and use the host network (no CNI).
    pub fn start_cri(name: &str) -> Containerd {
        Self::start_with(name, true)
    }

    fn start_with(name: &str, cri: bool) -> Containerd {
        init_process();
        assert!(
            shim_path().exists(),
            "build the shim first: cargo build -p containerd-shim-patina"
        );
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/pshim-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cgroup = format!(
            "{}/patina-shim-{}",
            own_cgroup(),
            dir.file_name().unwrap().to_string_lossy()
        );
        let mut c = Containerd {
            dir,
            child: None,
            cgroup,
            cri,
            n: AtomicU64::new(0),
        };
        let image = c.dir.join("busybox.tar");
        let out = c.sh(&[
            scripts().join("busybox-image.sh").to_str().unwrap(),
            image.to_str().unwrap(),
        ]);
        assert!(out.success(), "build the busybox image: {out:#?}");
        std::fs::write(
            c.dir.join("runtime.toml"),
            format!("BinaryName = {:?}\n", shim_runtime()),
        )
        .unwrap();
        if cri {
            let pause = c.dir.join("pause.tar");
            let out = c.sh(&[
                scripts().join("busybox-image.sh").to_str().unwrap(),
                pause.to_str().unwrap(),
                PAUSE_IMAGE,
                "sh",
                "-c",
                PAUSE_CMD,
            ]);
            assert!(out.success(), "build the pause image: {out:#?}");
        }
        c.boot();
        let ns = if cri { CRI_NS } else { NS };
        c.ctr_ns(ns, &["images", "import", image.to_str().unwrap()])
            .assert_ok();
        if cri {
            let pause = c.dir.join("pause.tar");
            c.ctr_ns(ns, &["images", "import", pause.to_str().unwrap()])
                .assert_ok();
        }
        c
    }

    /// `ctr -a SOCK -n NS ARGS...` in another namespace.
    pub fn ctr_ns(&self, ns: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("ctr");
        cmd.args(["-a", self.address().to_str().unwrap(), "-n", ns]);
        cmd.args(args);
        try_exec(&mut cmd, &self.dir, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", self.tail()))
    }

    /// The CRI part of the config: both handlers, cgroupfs, no CNI (host-network pods).
    /// `restrict_oom_score_adj`: the sandbox asks for -998, which root without
    /// CAP_SYS_RESOURCE cannot set.
    fn cri_config(&self) -> String {
        format!(
            r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{d}/runc-root"
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.patina]
      runtime_type = "io.containerd.patina.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.patina.options]
        ConfigPath = "{d}/runtime.toml"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/net.d"
"#,
            d = self.dir.display()
        )
    }

    fn sh(&self, argv: &[&str]) -> Output {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]);
        try_exec(&mut cmd, &self.dir, Duration::from_secs(60)).unwrap()
    }

    /// Start containerd (again) on the same dirs.
    pub fn boot(&mut self) {
        let cri = if self.cri {
            ""
        } else {
            r#""io.containerd.grpc.v1.cri", "#
        };
        let mut config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [{cri}"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/c.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
            d = self.dir.display()
        );
        if self.cri {
            config.push_str(&self.cri_config());
        }
        std::fs::write(self.dir.join("config.toml"), config).unwrap();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let path = format!(
            "{}:{}",
            shim_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("containerd")
            .args([
                "--config",
                self.dir.join("config.toml").to_str().unwrap(),
                "--log-level",
                "debug",
            ])
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd (apt-get install containerd)");
        self.child = Some(child);
        let up = wait_for(Duration::from_secs(20), || {
            (self.dir.join("c.sock").exists()
                && self
                    .ctr_raw(&["version"], None)
                    .map(|o| o.success())
                    .unwrap_or(false))
            .then_some(())
        });
        assert!(up.is_some(), "containerd did not come up: {}", self.log());
    }

    /// Stop containerd (SIGTERM), leaving shims and containers running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn address(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    pub fn ctr_command(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.args(["-a", self.address().to_str().unwrap(), "-n", NS]);
        cmd
    }

    /// `tasks exec` gets `--fifo-dir` in our dir (ctr's default is /run/containerd/fifo).
    fn with_fifo_dir(&self, args: &[String]) -> Vec<String> {
        let mut out: Vec<String> = args.to_vec();
        if args.len() >= 2
            && (args[0] == "tasks" || args[0] == "task" || args[0] == "t")
            && args[1] == "exec"
        {
            out.insert(2, "--fifo-dir".into());
            out.insert(3, self.dir.join("fifo").to_string_lossy().into_owned());
        }
        out
    }

    fn ctr_raw(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, String> {
        let mut cmd = self.ctr_command();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cmd.args(self.with_fifo_dir(&args));
        match stdin {
            None => try_exec(&mut cmd, &self.dir, TIMEOUT),
            Some(data) => {
                let n = self.n.fetch_add(1, Ordering::Relaxed);
                let path = self.dir.join(format!("stdin-{n}"));
                std::fs::write(&path, data).unwrap();
                exec_with_stdin(&mut cmd, &self.dir, &path)
            }
        }
    }

    /// `ctr -a SOCK -n NS ARGS...`
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_raw(args, None)
            .unwrap_or_else(|e| panic!("{e}\ncontainerd log:\n{}", self.tail()))
    }

    pub fn ctr_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.ctr_raw(args, Some(stdin))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The options of `ctr run` for this runtime: the shim, its runtime binary, the
    /// container's cgroup beneath ours.
    pub fn run_flags(&self, id: &str) -> Vec<String> {
        vec![
            "--runtime".into(),
            RUNTIME.into(),
            "--runtime-config-path".into(),
            self.dir.join("runtime.toml").to_string_lossy().into_owned(),
            "--cgroup".into(),
            format!("{}/{id}", self.cgroup),
            "--fifo-dir".into(),
            self.dir.join("fifo").to_string_lossy().into_owned(),
        ]
    }

    /// `ctr run [extra] --runtime ... IMAGE ID ARGS...`
    pub fn run(&self, extra: &[&str], id: &str, args: &[&str]) -> Output {
        let argv = self.run_argv(extra, id, args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.ctr(&argv)
    }

    pub fn run_argv(&self, extra: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = vec!["run".into()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv.extend(self.run_flags(id));
        argv.push(IMAGE.into());
        argv.push(id.into());
        argv.extend(args.iter().map(|s| s.to_string()));
        argv
    }

    /// A shell command line for ctr (for `script`, which gives it a terminal).
    pub fn ctr_line(&self, argv: &[String]) -> String {
        let mut line = format!("ctr -a {} -n {NS}", self.address().display());
        for a in &self.with_fifo_dir(argv) {
            line.push_str(&format!(" '{}'", a.replace('\'', r"'\''")));
        }
        line
    }

    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The shim processes that are this process's children (re-parented to it, the
    /// subreaper, when `start` exits).
    /// Exited ones (zombies) are reaped, so only live shims are returned.
    pub fn shim_pids(&self) -> Vec<i32> {
        let address = self.address().to_string_lossy().into_owned();
        children_named("containerd-shim")
            .into_iter()
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains(&address)
            })
            .filter(|pid| {
                let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| {
                        s.rsplit_once(") ")
                            .map(|(_, r)| r.starts_with('Z'))
                            .unwrap_or(true)
                    })
                    .unwrap_or(true);
                if zombie {
                    let _ = nix::sys::wait::waitpid(
                        nix::unistd::Pid::from_raw(*pid),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                    );
                }
                !zombie
            })
            .collect()
    }

    pub fn task_dir(&self) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(NS)
    }
}

/// Our children (all threads' `children` lists) whose comm starts with `prefix`.
pub fn children_named(prefix: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.starts_with(prefix) && !out.contains(&pid) {
                out.push(pid);
            }
        }
    }
    out
}

fn exec_with_stdin(cmd: &mut Command, scratch: &Path, stdin: &Path) -> Result<Output, String> {
    // try_exec sets stdin to /dev/null: run through sh with a redirect instead.
    let mut line = String::new();
    line.push_str(&shell_quote(cmd.get_program().to_str().unwrap()));
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(a.to_str().unwrap()));
    }
    line.push_str(&format!(" < {}", shell_quote(stdin.to_str().unwrap())));
    let mut sh = Command::new("sh");
    sh.args(["-c", &line]);
    try_exec(&mut sh, scratch, TIMEOUT)
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed test left running.
        if self.child.is_some() {
            for ns in [NS, CRI_NS] {
                let ctr = |args: &[&str]| {
                    let mut cmd = Command::new("ctr");
                    cmd.args(["-a", self.address().to_str().unwrap(), "-n", ns]);
                    cmd.args(args);
                    try_exec(&mut cmd, &self.dir, TIMEOUT)
                };
                if let Ok(out) = ctr(&["tasks", "ls", "-q"]) {
                    for id in out.stdout.split_whitespace() {
                        let _ = ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
                        let _ = ctr(&["tasks", "delete", "-f", id]);
                    }
                }
                if let Ok(out) = ctr(&["containers", "ls", "-q"]) {
                    for id in out.stdout.split_whitespace() {
                        let _ = ctr(&["containers", "delete", id]);
                    }
                }
            }
        }
        self.stop();
        for pid in self.shim_pids() {
            if !reap(pid, Duration::from_secs(5)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                reap(pid, Duration::from_secs(5));
            }
        }
        let prefix = format!("{}/", self.dir.display());
        let mut mounts = mounts_under(&prefix);
        mounts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        remove_cgroups(&self.cgroup);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Mount points beneath `prefix` (our mount namespace).
pub fn mounts_under(prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    procfs::parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(prefix))
        .collect()
}

/// rmdir `path` (and what is beneath it) in every hierarchy.
pub fn remove_cgroups(path: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
    roots.extend(
        hierarchies
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    for root in roots {
        let dir = root.join(path.trim_start_matches('/'));
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = std::fs::remove_dir(c.path());
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}
