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

use super::{Engine, Private, Rt};
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
}

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
        let p = Private::new("docker");
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
        let mut child = p.spawn_daemon(
            "dockerd",
            &["dockerd", "--config-file", &config.to_string_lossy()],
            &[],
        );
        let e = Docker {
            socket,
            env,
            daemon: Mutex::new(None),
            p,
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

    fn teardown(&self) -> Vec<String> {
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
        leaks.extend(self.p.teardown());
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
