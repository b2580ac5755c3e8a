//! The private containerd (Debian's 1.6) of the shim, CRI and engine tests: its own config,
//! root, state, sockets and image store in one dir, containerd-shim-patina-v2 on its PATH
//! and the busybox test image ([`crate::image`]) imported offline. The runtime the patina
//! shim drives is `$PATINA_SHIM_RUNTIME`, else the runtime under test (`$PATINA_RUNTIME`,
//! default patina). Containers' cgroups go beneath [`Containerd::cgroup`], beneath this test
//! process's own cgroup.
//!
//! [`Containerd::teardown`] (also on drop) deletes the tasks and containers left, stops
//! containerd by its pid, reaps the shims, unmounts, removes the cgroups and dirs it
//! created, and returns what it found left behind. Outside its dir,
//! containerd-shim-runc-v2 always puts its socket in `/run/containerd/s/` (a constant in
//! containerd 1.6): pruned at teardown when this instance created it.

use crate::container::{init_process, reap};
use crate::engines::{
    own_cgroup_path, processes_mentioning, prune_empty_dirs, stop_daemon, unmount_under,
    wait_daemon_ready, CgroupParent,
};
use crate::procfs;
use crate::runtime::{try_exec, Output};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The busybox test image, as every test knows it.
pub const IMAGE: &str = crate::image::NAME;
pub const RUNTIME: &str = "io.containerd.patina.v2";
pub const NS: &str = "patina-test";
/// The namespace of CRI's containers and images.
pub const CRI_NS: &str = "k8s.io";
/// The CRI sandbox (pause) image: busybox's sh waiting for signals.
pub const PAUSE_IMAGE: &str = crate::image::PAUSE_NAME;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Outside the private dir: containerd-shim-runc-v2's socket dir.
const SHIM_SOCKETS: &str = "/run/containerd";

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

/// The runtime binary the shim is told to drive (runc Options' BinaryName).
pub fn shim_runtime() -> String {
    std::env::var("PATINA_SHIM_RUNTIME")
        .unwrap_or_else(|_| crate::runtime_path().to_string_lossy().into_owned())
}

pub struct Containerd {
    pub dir: PathBuf,
    child: Mutex<Option<Child>>,
    /// the cgroup parent of this instance's containers
    pub cgroup: String,
    cgroup_parent: CgroupParent,
    /// the CRI plugin is enabled (socket `c.sock`, runtime handlers `patina` and `runc`)
    pub cri: bool,
    /// both CRI handlers have `SystemdCgroup = true` (Kubernetes' setting on systemd hosts)
    pub systemd_cgroup: bool,
    /// `/run/containerd` existed before this instance started
    shim_sockets_existed: bool,
    torn_down: AtomicBool,
    n: AtomicU64,
}

impl Containerd {
    /// containerd in `/tmp/pshim-<pid>-<n>-<name>` with the image in namespace [`NS`].
    pub fn start(name: &str) -> Containerd {
        Self::start_named(name, false)
    }

    /// containerd with its CRI plugin: handlers `patina` (this shim, driving
    /// [`shim_runtime`]) and `runc` (containerd-shim-runc-v2 with Debian's runc),
    /// cgroupfs driver, `sandbox_image` [`PAUSE_IMAGE`], busybox and the pause image in
    /// the `k8s.io` namespace. Pods go beneath [`Containerd::cgroup`] (their
    /// `cgroup_parent`) and use the host network (no CNI).
    pub fn start_cri(name: &str) -> Containerd {
        Self::start_named(name, true)
    }

    /// As [`Containerd::start_cri`], with `SystemdCgroup = true` in both handlers' options,
    /// as Kubernetes' setup guides have it on systemd hosts: pods then name a slice as
    /// their `cgroup_parent` and each container gets a `cri-containerd-<id>.scope`.
    pub fn start_cri_systemd(name: &str) -> Containerd {
        Self::start_named_with(name, true, true)
    }

    fn start_named(name: &str, cri: bool) -> Containerd {
        Self::start_named_with(name, cri, false)
    }

    fn start_named_with(name: &str, cri: bool, systemd_cgroup: bool) -> Containerd {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/pshim-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let cgroup = format!(
            "{}/patina-shim-{}",
            own_cgroup_path(),
            dir.file_name().unwrap().to_string_lossy()
        );
        Self::start_with(dir, cgroup, cri, systemd_cgroup)
    }

    /// containerd with everything in `dir` (created; removed at teardown), its containers'
    /// cgroups beneath `cgroup`, the busybox image imported into [`NS`] (CRI: [`CRI_NS`],
    /// with the pause image).
    pub fn start_in(dir: PathBuf, cgroup: String, cri: bool) -> Containerd {
        Self::start_with(dir, cgroup, cri, false)
    }

    fn start_with(dir: PathBuf, cgroup: String, cri: bool, systemd_cgroup: bool) -> Containerd {
        init_process();
        assert!(
            shim_path().exists(),
            "build the shim first: cargo build -p containerd-shim-patina"
        );
        let image = crate::image::busybox();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("fifo")).unwrap();
        let mut c = Containerd {
            dir,
            child: Mutex::new(None),
            cgroup_parent: CgroupParent::new(cgroup.clone()),
            cgroup,
            cri,
            systemd_cgroup,
            shim_sockets_existed: Path::new(SHIM_SOCKETS).exists(),
            torn_down: AtomicBool::new(false),
            n: AtomicU64::new(0),
        };
        std::fs::write(
            c.dir.join("runtime.toml"),
            format!(
                "BinaryName = {:?}\nSystemdCgroup = {}\n",
                shim_runtime(),
                c.systemd_cgroup
            ),
        )
        .unwrap();
        c.boot();
        let ns = if cri { CRI_NS } else { NS };
        let mut imports = vec![(&image.oci_archive, crate::image::NAME)];
        if cri {
            imports.push((&image.pause_oci_archive, PAUSE_IMAGE));
        }
        for (archive, name) in imports {
            let base = name.rsplit_once(':').map_or(name, |(b, _)| b);
            c.ctr_ns(
                ns,
                &[
                    "images",
                    "import",
                    "--base-name",
                    base,
                    archive.to_str().unwrap(),
                ],
            )
            .assert_ok();
        }
        c
    }

    /// containerd's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.lock().unwrap().as_ref().map(|c| c.id() as i32)
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
        SystemdCgroup = {systemd}
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.patina]
      runtime_type = "io.containerd.patina.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.patina.options]
        ConfigPath = "{d}/runtime.toml"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/net.d"
"#,
            d = self.dir.display(),
            systemd = self.systemd_cgroup
        )
    }

    /// Start containerd (again) on the same dirs; returns once `ctr version` answers.
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
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
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
            .open(self.log_path())
            .unwrap();
        let path = format!(
            "{}:{}",
            shim_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("containerd")
            .args([
                "--config",
                self.dir.join("config.toml").to_str().unwrap(),
                "--log-level",
                "debug",
            ])
            .current_dir(&self.dir)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd (apt-get install containerd)");
        wait_daemon_ready("containerd", &mut child, &self.log_path(), || {
            self.address().exists()
                && self
                    .ctr_raw(&["version"], None)
                    .map(|o| o.success())
                    .unwrap_or(false)
        });
        *self.child.get_mut().unwrap() = Some(child);
    }

    /// Stop containerd (SIGTERM by pid, SIGKILL after 15 s), leaving shims and containers
    /// running. Returns a note if it had to be killed.
    pub fn stop(&mut self) -> Option<String> {
        self.stop_daemon()
    }

    fn stop_daemon(&self) -> Option<String> {
        let mut child = self.child.lock().unwrap().take()?;
        stop_daemon("containerd", &mut child, Duration::from_secs(15))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
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
        crate::engines::log_tail(&self.log_path(), 40)
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

impl Containerd {
    /// Deletes the tasks and containers left (in [`NS`] and [`CRI_NS`]), stops containerd
    /// by pid, reaps the shims (killed if they linger), unmounts what is below the dir,
    /// removes the cgroups and dirs this instance created. Returns what was left behind
    /// (a container, a shim that did not exit, a container mount, a process in a cgroup).
    /// Runs once; later calls return nothing.
    pub fn teardown(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return leaks;
        }
        if self.pid().is_some() {
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
        leaks.extend(self.stop_daemon());
        // Shims (our children: this process is a subreaper) exit once their tasks are gone.
        let dir = self.dir.to_string_lossy().into_owned();
        let me = std::process::id() as i32;
        for (pid, cmd) in processes_mentioning(&dir) {
            if pid != me && !reap(pid, Duration::from_secs(5)) {
                leaks.push(format!("process {pid} left: {cmd}"));
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                reap(pid, Duration::from_secs(5));
            }
        }
        // Shims that exited earlier are zombies (no cmdline to tell whose they are).
        for pid in children_named("containerd-shim") {
            if !procfs::pid_alive(pid) {
                reap(pid, Duration::ZERO);
            }
        }
        unmount_under(&dir, &mut leaks);
        self.cgroup_parent.remove(&mut leaks);
        if !self.shim_sockets_existed {
            prune_empty_dirs(Path::new(SHIM_SOCKETS));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            leaks.push(format!("cannot remove {dir}: {e}"));
        }
        leaks
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let leaks = self.teardown();
        if !leaks.is_empty() {
            let msg = format!("containerd teardown found leaks:\n  {}", leaks.join("\n  "));
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
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
