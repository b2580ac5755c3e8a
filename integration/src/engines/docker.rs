//! Docker 20.10 (Debian `docker.io`): a private dockerd (data-root, exec-root, pidfile, unix
//! socket, `--config-file`), no networking of its own (`bridge: none`, `iptables: false`,
//! no ip-forward/masquerade, no userland proxy), cgroupfs with `cgroup-parent` beneath our
//! cgroup (or, with the systemd driver of [`super::systemd`], docker's default driver and
//! parent: system.slice), and two runtimes: `patina` (the runtime under test) and `ref-runc` (Debian's runc).
//! dockerd starts and stops its own containerd (config, socket and state in the exec-root).
//! The client is Debian's `/usr/bin/docker` (not whatever else is first in PATH).
//!
//! Outside the private dirs docker 20.10 writes `/etc/docker/key.json`, `/run/docker/plugins/`
//! and the shims' `/run/containerd/s/`: removed at teardown when we created them.

use super::{Engine, Private, RootlessUser, Rt};
use crate::rootless::{TestUser, UserManager};
use crate::runtime::Output;
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

pub const CLIENT: &str = "/usr/bin/docker";

pub struct Docker {
    pub p: Private,
    pub socket: String,
    env: Vec<(String, String)>,
    daemon: Mutex<Option<Child>>,
    /// Rootless docker ([`super::docker_rootless`]): the user dockerd runs as.
    rootless: Option<RootlessUser>,
}

/// Debian's script that runs dockerd as uid 0 of a user namespace made by rootlesskit
/// (with slirp4netns), as `dockerd-rootless-setuptool.sh install` sets it up.
pub const ROOTLESS_SCRIPT: &str = "/usr/share/docker.io/contrib/dockerd-rootless.sh";

super::engine_instance!(
    Docker,
    "docker",
    Docker::start,
    "The dockerd instance of this test process."
);

/// The docker runtime name of `rt`.
pub fn runtime_name(rt: &Rt) -> &'static str {
    if rt.reference {
        "ref-runc"
    } else {
        "patina"
    }
}

impl Docker {
    fn start() -> Self {
        Docker::start_as(None)
    }

    /// Rootless dockerd (dockerd-rootless.sh: rootlesskit, slirp4netns) run by a test
    /// user with its own systemd, with docker's systemd cgroup driver through the user's
    /// bus; vfs storage in the private dir (overlay2 needs user xattrs on the private
    /// dir's tmpfs, which the guest's 6.1 kernel lacks).
    pub(super) fn start_rootless() -> Self {
        super::systemd::require("rootless docker");
        let user = TestUser::create();
        let manager = UserManager::start(&user);
        Docker::start_as(Some((manager, user)))
    }

    fn start_as(rootless: Option<(UserManager, TestUser)>) -> Self {
        let p = Private::new(if rootless.is_some() {
            "docker-rl"
        } else {
            "docker"
        });
        let socket = p.path("d.sock");
        let config = p.dir.join("daemon.json");
        let mut json = serde_json::json!({
            "data-root": p.path("root"),
            "exec-root": p.path("exec"),
            "pidfile": p.path("dockerd.pid"),
            "hosts": [format!("unix://{socket}")],
            "iptables": false,
            "ip6tables": false,
            "ip-forward": false,
            "ip-masq": false,
            "bridge": "none",
            "userland-proxy": false,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": p.cgroup_parent,
            "storage-driver": "overlay2",
            "log-driver": "json-file",
            "features": {"buildkit": false},
            "runtimes": {
                "patina": {"path": p.under_test.path},
                "ref-runc": {"path": p.reference.path},
            },
        });
        if super::systemd::driver() == super::systemd::Driver::Systemd {
            // docker's defaults on a systemd host with cgroup v2: the systemd driver,
            // containers in system.slice (engine_systemd checks that it chose them).
            super::systemd::require("docker");
            let obj = json.as_object_mut().unwrap();
            obj.remove("exec-opts");
            obj.remove("cgroup-parent");
        }
        if rootless.is_some() {
            // Scopes of the user's systemd (docker's rootless docs: cgroup v2 and
            // systemd for limits).
            let obj = json.as_object_mut().unwrap();
            obj.insert(
                "exec-opts".into(),
                serde_json::json!(["native.cgroupdriver=systemd"]),
            );
            obj.remove("cgroup-parent");
            obj.insert("storage-driver".into(), serde_json::json!("vfs"));
        }
        std::fs::write(&config, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        for path in [
            "/etc/docker/key.json",
            "/etc/docker",
            "/run/docker",
            "/run/containerd",
        ] {
            p.watch_outside(path);
        }
        let env = vec![
            ("DOCKER_CONFIG".to_string(), p.path("client")),
            (
                "PATH".to_string(),
                "/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
        ];
        let rootless = rootless.map(|(manager, user)| RootlessUser::new(&p, manager, user));
        let mut argv: Vec<String> = match &rootless {
            Some(r) => [r.prefix(), vec![ROOTLESS_SCRIPT.into()]].concat(),
            None => vec!["dockerd".into()],
        };
        argv.extend([
            "--config-file".into(),
            config.to_string_lossy().into_owned(),
        ]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut child = p.spawn_daemon("dockerd", &argv, &[]);
        let e = Docker {
            socket,
            env,
            daemon: Mutex::new(None),
            p,
            rootless,
        };
        e.p.wait_ready("dockerd", &mut child, || e.docker(&["version"]).success());
        *e.daemon.lock().unwrap() = Some(child);
        let img = crate::image::busybox();
        let out = e.docker(&["load", "-i", &img.docker_archive.to_string_lossy()]);
        assert!(out.success(), "docker load: {out:#?}");
        e
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }

    fn argv<'a>(&'a self, host: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut argv = vec![CLIENT, "-H", host];
        argv.extend_from_slice(args);
        argv
    }

    /// `docker -H unix://<private socket> <args>`.
    pub fn docker(&self, args: &[&str]) -> Output {
        let host = format!("unix://{}", self.socket);
        self.p.run(&self.argv(&host, args), &self.env())
    }

    fn run_args<'a>(rt: &Rt, extra: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["run", "--network", "none", "--runtime", runtime_name(rt)];
        args.extend_from_slice(extra);
        args.push(crate::image::NAME);
        args.extend_from_slice(cmd);
        args
    }

    /// `docker run --network none --runtime <rt> <extra> IMAGE <cmd>`.
    pub fn run(&self, rt: &Rt, extra: &[&str], cmd: &[&str]) -> Output {
        self.docker(&Self::run_args(rt, extra, cmd))
    }

    /// The same `docker run` on a terminal of `rows` x `cols`.
    pub fn run_tty(&self, rt: &Rt, extra: &[&str], cmd: &[&str], rows: u16, cols: u16) -> Output {
        let host = format!("unix://{}", self.socket);
        let args = Self::run_args(rt, extra, cmd);
        super::run_in_pty(
            &self.argv(&host, &args),
            &self.env(),
            rows,
            cols,
            &self.p.dir,
        )
    }

    /// `docker inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> Option<String> {
        let out = self.docker(&["inspect", "-f", format, name]);
        out.success().then(|| out.stdout.trim().to_string())
    }

    /// Rootless: `systemctl --user <args>` of the user's manager (its containers' scopes).
    pub fn user_systemctl(&self, args: &[&str]) -> Option<String> {
        self.rootless.as_ref()?.systemctl(args)
    }

    /// Rootless: the uid dockerd runs as.
    pub fn user_uid(&self) -> Option<u32> {
        self.rootless.as_ref().map(|r| r.uid)
    }

    pub(super) fn teardown(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let ps = self.docker(&["ps", "-aq"]);
        for id in ps.stdout.split_whitespace() {
            leaks.push(format!("docker container left: {id}"));
            let _ = self.docker(&["rm", "-f", id]);
        }
        if let Some(mut child) = self.daemon.lock().unwrap().take() {
            leaks.extend(super::stop_daemon(
                "dockerd",
                &mut child,
                Duration::from_secs(20),
            ));
        }
        if let Some(r) = &self.rootless {
            leaks.extend(r.scopes_left("docker-"));
        }
        leaks.extend(self.p.teardown());
        // The user's systemd goes (with rootlesskit's slirp4netns), then the user.
        if let Some(r) = &self.rootless {
            r.release();
        }
        leaks
    }
}

impl Engine for Docker {
    fn private(&self) -> &Private {
        &self.p
    }
    fn remove(&self, name: &str) {
        let _ = self.docker(&["rm", "-f", name]);
    }
}

impl super::docker_like::DockerLike for Docker {
    fn cli_name(&self) -> &'static str {
        "docker"
    }
    fn cli(&self, args: &[&str]) -> Output {
        self.docker(args)
    }
    fn run(&self, rt: &Rt, extra: &[&str], cmd: &[&str]) -> Output {
        Docker::run(self, rt, extra, cmd)
    }
    fn run_tty(&self, rt: &Rt, extra: &[&str], cmd: &[&str], rows: u16, cols: u16) -> Output {
        Docker::run_tty(self, rt, extra, cmd, rows, cols)
    }
    fn inspect(&self, name: &str, format: &str) -> Option<String> {
        Docker::inspect(self, name, format)
    }
    fn containers_named(&self, name: &str) -> String {
        let filter = format!("name=^{name}$");
        self.docker(&["ps", "-aq", "--filter", &filter])
            .stdout
            .trim()
            .to_string()
    }
}
