//! containerd 1.6 (Debian) as the tests' harness runs it ([`crate::containerd::Containerd`]:
//! private config, root, state and socket, the busybox image), driven by `ctr` (namespace
//! `patina-test`). The runtime is chosen per container with `ctr run --runc-binary`, its
//! state goes to `--runc-root` under the private dir, the cgroup to `--cgroup
//! <parent>/<name>`, and ctr's fifos to `--fifo-dir`. The CRI plugin and the snapshotters
//! that need other filesystems are disabled; overlayfs is used.

use super::{Engine, Private, Rt};
use crate::runtime::Output;

pub const NAMESPACE: &str = crate::containerd::NS;

pub struct Containerd {
    pub p: Private,
    pub socket: String,
    pub daemon: crate::containerd::Containerd,
}

super::engine_instance!(
    Containerd,
    "containerd",
    Containerd::start,
    "The containerd instance of this test process."
);

impl Containerd {
    fn start() -> Self {
        let p = Private::new("ctd");
        let daemon = crate::containerd::Containerd::start_in(
            p.dir.join("d"),
            p.cgroup_parent.clone(),
            false,
        );
        Containerd {
            socket: daemon.address().to_string_lossy().into_owned(),
            daemon,
            p,
        }
    }

    fn ctr_argv<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut argv = vec!["ctr", "--address", &self.socket, "-n", NAMESPACE];
        argv.extend_from_slice(args);
        argv
    }

    /// `ctr --address <private socket> -n patina-test <args>`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.p.run(&self.ctr_argv(args), &[])
    }

    /// Options of `ctr run` for container `name` with runtime `rt`. With the systemd driver,
    /// `--runc-systemd-cgroup` and the cgroup `system.slice:ctr:<name>` (the scope
    /// `ctr-<name>.scope` in system.slice), as Kubernetes' `SystemdCgroup = true` does.
    pub fn run_opts(&self, rt: &Rt, name: &str) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--runc-binary".into(),
            rt.path_str(),
            "--runc-root".into(),
            self.p.path("runc-root"),
        ];
        match super::systemd::driver() {
            super::systemd::Driver::Cgroupfs => v.extend([
                "--cgroup".into(),
                format!("{}/{name}", self.p.cgroup_parent),
            ]),
            super::systemd::Driver::Systemd => v.extend([
                "--runc-systemd-cgroup".into(),
                "--cgroup".into(),
                format!("system.slice:ctr:{name}"),
            ]),
        }
        v.extend(["--fifo-dir".into(), self.p.path("fifo")]);
        v
    }

    fn run_argv<'a>(
        &'a self,
        opts: &'a [String],
        extra: &[&'a str],
        name: &'a str,
        cmd: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args: Vec<&str> = vec!["run"];
        args.extend(opts.iter().map(String::as_str));
        args.extend_from_slice(extra);
        args.push(crate::image::NAME);
        args.push(name);
        args.extend_from_slice(cmd);
        self.ctr_argv(&args)
    }

    /// `ctr run <run_opts> <extra> IMAGE name <cmd>`.
    pub fn run(&self, rt: &Rt, extra: &[&str], name: &str, cmd: &[&str]) -> Output {
        let opts = self.run_opts(rt, name);
        self.p.run(&self.run_argv(&opts, extra, name, cmd), &[])
    }

    /// The same `ctr run` on a terminal of `rows` x `cols`.
    pub fn run_tty(
        &self,
        rt: &Rt,
        extra: &[&str],
        name: &str,
        cmd: &[&str],
        rows: u16,
        cols: u16,
    ) -> Output {
        let opts = self.run_opts(rt, name);
        let argv = self.run_argv(&opts, extra, name, cmd);
        super::run_in_pty(&argv, &[], rows, cols, &self.p.dir)
    }

    /// (pid, status) of task `name` from `ctr task ls`.
    pub fn task(&self, name: &str) -> Option<(i32, String)> {
        let out = self.ctr(&["task", "ls"]);
        out.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0] == name).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    fn teardown(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let ls = self.ctr(&["containers", "ls", "-q"]);
        for n in ls.stdout.split_whitespace() {
            leaks.push(format!("containerd container left: {n}"));
            self.remove(n);
        }
        let _ = self.ctr(&["images", "rm", crate::image::NAME]);
        leaks.extend(self.daemon.teardown());
        leaks.extend(self.p.teardown());
        leaks
    }
}

impl Engine for Containerd {
    fn private(&self) -> &Private {
        &self.p
    }
    fn remove(&self, name: &str) {
        if self.task(name).is_some() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", name]);
            let _ = self.ctr(&["task", "delete", "-f", name]);
        }
        let _ = self.ctr(&["containers", "rm", name]);
    }
}
