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

use super::{Engine, Private, RootlessUser, Rt};
use crate::rootless::{TestUser, UserManager};
use crate::runtime::Output;

pub struct Podman {
    pub p: Private,
    env: Vec<(String, String)>,
    /// Rootless podman ([`super::podman_rootless`]): the user it runs as.
    rootless: Option<RootlessUser>,
}

super::engine_instance!(
    Podman,
    "podman",
    Podman::setup,
    "The podman instance of this test process."
);

impl Podman {
    fn setup() -> Self {
        Podman::setup_as(None)
    }

    /// Rootless podman at its defaults (systemd cgroup manager through the user's bus,
    /// slirp4netns), run by a test user with its own systemd; vfs storage in the private
    /// dir (overlay needs user xattrs on the private dir's tmpfs, which the guest's 6.1
    /// kernel lacks).
    pub(super) fn setup_rootless() -> Self {
        super::systemd::require("rootless podman");
        let user = TestUser::create();
        let manager = UserManager::start(&user);
        Podman::setup_as(Some((manager, user)))
    }

    fn setup_as(rootless: Option<(UserManager, TestUser)>) -> Self {
        let tag = if rootless.is_some() {
            "podman-rl"
        } else {
            "podman"
        };
        let p = Private::new(tag);
        let conf = p.dir.join("containers.conf");
        let storage = p.dir.join("storage.conf");
        // podman's default manager on a systemd host is systemd (machine.slice).
        let manager = match (super::systemd::driver(), &rootless) {
            (_, Some(_)) => "systemd",
            (super::systemd::Driver::Cgroupfs, None) => "cgroupfs",
            (super::systemd::Driver::Systemd, None) => {
                super::systemd::require("podman");
                "systemd"
            }
        };
        // Rootless: its default network (slirp4netns), else none.
        let netns = if rootless.is_some() {
            ""
        } else {
            "netns = \"none\"\n"
        };
        let driver = if rootless.is_some() { "vfs" } else { "overlay" };
        std::fs::write(
            &conf,
            format!(
                r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
{netns}

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
                "[storage]\ndriver = \"{driver}\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
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
        let rootless = rootless.map(|(manager, user)| RootlessUser::new(&p, manager, user));
        let e = Podman { p, env, rootless };
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

    /// `podman <args>` with the private config (as the test user when rootless).
    pub fn podman(&self, args: &[&str]) -> Output {
        let argv = self.argv(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.p.run(&argv, &self.env())
    }

    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = match &self.rootless {
            Some(r) => r.prefix(),
            None => Vec::new(),
        };
        argv.push("podman".into());
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    /// Rootless: `systemctl --user <args>` of the user's manager (its containers' scopes).
    pub fn user_systemctl(&self, args: &[&str]) -> Option<String> {
        self.rootless.as_ref()?.systemctl(args)
    }

    /// Rootless: the uid podman runs as.
    pub fn user_uid(&self) -> Option<u32> {
        self.rootless.as_ref().map(|r| r.uid)
    }

    /// Options for `podman run`/`create` with runtime `rt`: private network and cgroup parent
    /// (none with the systemd driver: podman's default slice).
    pub fn run_opts(&self, rt: &Rt) -> Vec<String> {
        let mut v: Vec<String> = vec!["--runtime".into(), rt.path_str()];
        if self.rootless.is_some() {
            // Its defaults: slirp4netns, the user's systemd.
            return v;
        }
        v.extend(["--network".into(), "none".into()]);
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
        let mut args: Vec<&str> = vec!["run"];
        args.extend(opts.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.push(crate::image::NAME);
        args.extend_from_slice(cmd);
        let argv = self.argv(&args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        super::run_in_pty(&argv, &self.env(), rows, cols, &self.p.dir)
    }

    /// `podman inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> Option<String> {
        let out = self.podman(&["inspect", "-f", format, name]);
        out.success().then(|| out.stdout.trim().to_string())
    }

    pub(super) fn teardown(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let env = self.env();
        let run = |args: &[&str]| {
            let argv = self.argv(args);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            super::try_run(&argv, &env, &self.p.scratch)
        };
        if let Some(out) = run(&["ps", "-a", "--format", "{{.Names}}"]) {
            for n in out.stdout.split_whitespace() {
                leaks.push(format!("podman container left: {n}"));
            }
        }
        let _ = run(&["rm", "-af", "-t", "0"]);
        let _ = run(&["rmi", "-af"]);
        if let Some(r) = &self.rootless {
            leaks.extend(r.scopes_left("libpod-"));
        }
        leaks.extend(self.p.teardown());
        // The user's systemd goes (with podman's pause process and slirp4netns), then
        // the user.
        if let Some(r) = &self.rootless {
            r.release();
        }
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
