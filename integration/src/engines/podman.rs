//! Podman 4.3 (Debian) with private storage and config: no daemon; each container has a
//! conmon, whose cgroup is `<cgroup parent>/conmon`.
//!
//! Private: `CONTAINERS_CONF` (cgroupfs, file events logger, file locks, tmp/static/volume
//! dirs, `default_ulimits` below this host's hard limits: podman's default nofile/nproc of
//! 1048576 exceed them and runc cannot raise them without CAP_SYS_RESOURCE) and
//! `CONTAINERS_STORAGE_CONF` (overlay, graphroot and runroot under the private dir).
//! Podman runs the runtime without `--root`, so its state goes to the runtime's default
//! root (`/run/runc`, `/run/patina`); `--runtime-flag root=` is not passed on by podman 4.3's
//! cleanup process (`podman container cleanup` then deletes in the default root and leaves
//! the container), so it is not used here.

use super::{Engine, Private, Rt};
use crate::runtime::Output;

pub struct Podman {
    pub p: Private,
    env: Vec<(String, String)>,
}

super::engine_instance!(
    Podman,
    "podman",
    Podman::setup,
    "The podman instance of this test process."
);

impl Podman {
    fn setup() -> Self {
        let p = Private::new("podman");
        let conf = p.dir.join("containers.conf");
        let storage = p.dir.join("storage.conf");
        // podman's default manager on a systemd host is systemd (machine.slice).
        let manager = match super::systemd::driver() {
            super::systemd::Driver::Cgroupfs => "cgroupfs",
            super::systemd::Driver::Systemd => {
                super::systemd::require("podman");
                "systemd"
            }
        };
        std::fs::write(
            &conf,
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"

[network]
network_config_dir = "{net}"

[engine]
cgroup_manager = "{manager}"
events_logger = "file"
events_logfile_path = "{events}"
lock_type = "file"
tmp_dir = "{tmp}"
static_dir = "{stat}"
volume_path = "{vol}"
# Runtimes podman passes `--log-format=json` to (by file name).
runtime_supports_json = ["crun", "runc", "patina"]
"#,
                net = p.path("net"),
                manager = manager,
                events = p.path("events.log"),
                tmp = p.path("tmp"),
                stat = p.path("storage/libpod"),
                vol = p.path("storage/volumes"),
            ),
        )
        .unwrap();
        std::fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                p.path("run"),
                p.path("storage")
            ),
        )
        .unwrap();
        // The default --root of each runtime: podman passes none.
        p.watch_outside("/run/runc");
        p.watch_outside("/run/patina");
        p.watch_outside("/run/containers");
        p.watch_outside("/run/libpod");
        let env = vec![
            (
                "CONTAINERS_CONF".into(),
                conf.to_string_lossy().into_owned(),
            ),
            (
                "CONTAINERS_STORAGE_CONF".into(),
                storage.to_string_lossy().into_owned(),
            ),
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ];
        let e = Podman { p, env };
        let img = crate::image::busybox();
        let out = e.podman(&["load", "-i", &img.docker_archive.to_string_lossy()]);
        assert!(out.success(), "podman load: {out:#?}");
        e
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }

    /// `podman <args>` with the private config.
    pub fn podman(&self, args: &[&str]) -> Output {
        let mut argv = vec!["podman"];
        argv.extend_from_slice(args);
        self.p.run(&argv, &self.env())
    }

    /// Options for `podman run`/`create` with runtime `rt`: private network and cgroup parent
    /// (none with the systemd driver: podman's default slice).
    pub fn run_opts(&self, rt: &Rt) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--runtime".into(),
            rt.path_str(),
            "--network".into(),
            "none".into(),
        ];
        if super::systemd::driver() == super::systemd::Driver::Cgroupfs {
            v.extend(["--cgroup-parent".into(), self.p.cgroup_parent.clone()]);
        }
        v
    }

    /// `podman run <run_opts> <extra> IMAGE <cmd>`.
    pub fn run(&self, rt: &Rt, extra: &[&str], cmd: &[&str]) -> Output {
        let opts = self.run_opts(rt);
        let mut args: Vec<&str> = vec!["run"];
        args.extend(opts.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.push(crate::image::NAME);
        args.extend_from_slice(cmd);
        self.podman(&args)
    }

    /// The same `podman run` on a terminal of `rows` x `cols`.
    pub fn run_tty(&self, rt: &Rt, extra: &[&str], cmd: &[&str], rows: u16, cols: u16) -> Output {
        let opts = self.run_opts(rt);
        let mut argv: Vec<&str> = vec!["podman", "run"];
        argv.extend(opts.iter().map(String::as_str));
        argv.extend_from_slice(extra);
        argv.push(crate::image::NAME);
        argv.extend_from_slice(cmd);
        super::run_in_pty(&argv, &self.env(), rows, cols, &self.p.dir)
    }

    /// `podman inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> Option<String> {
        let out = self.podman(&["inspect", "-f", format, name]);
        out.success().then(|| out.stdout.trim().to_string())
    }

    fn teardown(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let env = self.env();
        if let Some(out) = super::try_run(
            &["podman", "ps", "-a", "--format", "{{.Names}}"],
            &env,
            &self.p.scratch,
        ) {
            for n in out.stdout.split_whitespace() {
                leaks.push(format!("podman container left: {n}"));
            }
        }
        let _ = super::try_run(&["podman", "rm", "-af", "-t", "0"], &env, &self.p.scratch);
        let _ = super::try_run(&["podman", "rmi", "-af"], &env, &self.p.scratch);
        leaks.extend(self.p.teardown());
        leaks
    }
}

impl Engine for Podman {
    fn private(&self) -> &Private {
        &self.p
    }
    fn remove(&self, name: &str) {
        let _ = self.podman(&["rm", "-f", "-t", "0", "--ignore", name]);
    }
}

impl super::docker_like::DockerLike for Podman {
    fn cli_name(&self) -> &'static str {
        "podman"
    }
    fn cli(&self, args: &[&str]) -> Output {
        self.podman(args)
    }
    fn run(&self, rt: &Rt, extra: &[&str], cmd: &[&str]) -> Output {
        Podman::run(self, rt, extra, cmd)
    }
    fn run_tty(&self, rt: &Rt, extra: &[&str], cmd: &[&str], rows: u16, cols: u16) -> Output {
        Podman::run_tty(self, rt, extra, cmd, rows, cols)
    }
    fn inspect(&self, name: &str, format: &str) -> Option<String> {
        Podman::inspect(self, name, format)
    }
    fn containers_named(&self, name: &str) -> String {
        let filter = format!("name={name}");
        let ps = ["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"];
        self.podman(&ps).stdout.trim().to_string()
    }
}
