//! The engines with their systemd cgroup driver (issue 15), as on a Debian 12 / Fedora /
//! Ubuntu host: docker's default driver there, podman's default `cgroup_manager`, and
//! containerd with `--runc-systemd-cgroup` (what Kubernetes' `SystemdCgroup = true` does).
//! Each container must run in a transient scope under the engine's slice, with the limits
//! the engine was given in the scope's cgroup files and in `systemctl show`, `Delegate=yes`,
//! and no unit left after removal. Compared step by step with runc as the other engine
//! tests are (see `integration::engines`).
//!
//! Needs a host that runs systemd on cgroup v2: the systemd guest
//! (`integration/systemd-vm/run.sh 'engine_systemd runc'`). Elsewhere each test says that
//! it is skipped, by name. `PATINA_RUNTIME=/usr/sbin/runc` checks runc alone; with patina
//! each scenario runs on runc first, then on patina's driver (`--systemd-cgroup`).

use integration::engines::systemd::{self, ScopeView};
use integration::engines::{containerd, docker, gone, podman, verify, Step, COUNTER};
use std::time::Duration;

/// False (and the reason on stderr, naming the test) when the host cannot run these tests.
fn systemd_host(test: &str) -> bool {
    if !systemd::host_runs_systemd() {
        eprintln!("{test}: skipped: needs a host that runs systemd (no /run/systemd/system)");
        return false;
    }
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("{test}: skipped: needs a pure cgroup v2 host");
        return false;
    }
    systemd::use_systemd_driver();
    true
}

/// The limits every engine here is given: 64 MiB, half a CPU (and 50 tasks where the
/// engine has the flag).
const MEMORY: &str = "67108864";
const CPU_MAX: &str = "50000 100000";

/// The scope checks shared by the engines: `pid`'s scope, with `id` shown as `<id>`.
fn scope_steps(t: &mut integration::engines::Transcript, pid: i32, id: &str, pids: bool) {
    let Some(scope) = ScopeView::of(pid) else {
        t.note("scope of the init", format!("no cgroup for pid {pid}"));
        return;
    };
    t.note("scope of the init", scope.cgroup_named(id));
    t.note("unit", scope.show(&["ActiveState", "Delegate"]));
    t.note("memory.max", scope.file("memory.max"));
    t.note("cpu.max", scope.file("cpu.max"));
    let mut props = vec!["MemoryMax", "CPUQuotaPerSecUSec"];
    if pids {
        t.note("pids.max", scope.file("pids.max"));
        props.push("TasksMax");
    }
    t.note("systemctl show", scope.show(&props));
}

fn expected_scope(cgroup: &str, pids: bool) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("scope of the init".into(), cgroup.into()),
        ("unit".into(), "ActiveState=active Delegate=yes".into()),
        ("memory.max".into(), MEMORY.into()),
        ("cpu.max".into(), CPU_MAX.into()),
    ];
    if pids {
        v.push(("pids.max".into(), "50".into()));
        v.push((
            "systemctl show".into(),
            format!("MemoryMax={MEMORY} CPUQuotaPerSecUSec=500ms TasksMax=50"),
        ));
    } else {
        v.push((
            "systemctl show".into(),
            format!("MemoryMax={MEMORY} CPUQuotaPerSecUSec=500ms"),
        ));
    }
    v
}

fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn engine_systemd_docker_scope_limits_and_cleanup() {
    if !systemd_host("engine_systemd_docker_scope_limits_and_cleanup") {
        return;
    }
    let e = docker::engine();
    let mut want: Vec<(String, String)> = vec![
        ("docker info: cgroup driver".into(), "systemd".into()),
        (
            "docker run -d --memory --cpus --pids-limit".into(),
            "ok".into(),
        ),
    ];
    want.extend(expected_scope("/system.slice/docker-<id>.scope", true));
    want.extend([
        ("docker rm -f".into(), "ok".into()),
        ("init gone".into(), "true".into()),
        ("scope gone".into(), "true".into()),
    ]);
    verify(e, "scope", &as_refs(&want), |rt, name, t| -> Step {
        let info = e.docker(&["info", "-f", "{{.CgroupDriver}}"]);
        t.note(
            "docker info: cgroup driver",
            systemd::stdout_or_failure(&info),
        );
        let limits = ["-d", "--name", name, "--memory", "64m", "--cpus", "0.5"];
        let mut extra = limits.to_vec();
        extra.extend(["--pids-limit", "50"]);
        let out = e.run(rt, &extra, &["sh", "-c", COUNTER]);
        let id = t.ok("docker run -d --memory --cpus --pids-limit", &out)?;
        let id = id.trim().to_string();
        let pid: i32 = e
            .inspect(name, "{{.State.Pid}}")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let scope = ScopeView::of(pid);
        scope_steps(t, pid, &id, true);
        t.ok("docker rm -f", &e.docker(&["rm", "-f", name]))?;
        t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
        t.note("scope gone", scope.is_some_and(|s| s.gone()).to_string());
        Ok(())
    });
}

#[test]
fn engine_systemd_podman_scope_limits_and_cleanup() {
    if !systemd_host("engine_systemd_podman_scope_limits_and_cleanup") {
        return;
    }
    let e = podman::engine();
    let mut want: Vec<(String, String)> = vec![
        ("podman info: cgroup manager".into(), "systemd".into()),
        (
            "podman run -d --memory --cpus --pids-limit".into(),
            "ok".into(),
        ),
    ];
    want.extend(expected_scope("/machine.slice/libpod-<id>.scope", true));
    want.extend([
        ("podman rm -f -t 0".into(), "ok".into()),
        ("init gone".into(), "true".into()),
        ("scope gone".into(), "true".into()),
    ]);
    verify(e, "scope", &as_refs(&want), |rt, name, t| -> Step {
        let info = e.podman(&["info", "-f", "{{.Host.CgroupManager}}"]);
        t.note(
            "podman info: cgroup manager",
            systemd::stdout_or_failure(&info),
        );
        let extra = [
            "-d",
            "--name",
            name,
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
        ];
        let out = e.run(rt, &extra, &["sh", "-c", COUNTER]);
        let id = t.ok("podman run -d --memory --cpus --pids-limit", &out)?;
        let id = id.trim().to_string();
        let pid: i32 = e
            .inspect(name, "{{.State.Pid}}")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let scope = ScopeView::of(pid);
        scope_steps(t, pid, &id, true);
        t.ok(
            "podman rm -f -t 0",
            &e.podman(&["rm", "-f", "-t", "0", name]),
        )?;
        t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
        t.note("scope gone", scope.is_some_and(|s| s.gone()).to_string());
        Ok(())
    });
}

#[test]
fn engine_systemd_containerd_scope_limits_and_cleanup() {
    if !systemd_host("engine_systemd_containerd_scope_limits_and_cleanup") {
        return;
    }
    let e = containerd::engine();
    // ctr has no flag for a pids limit.
    let mut want: Vec<(String, String)> = vec![(
        "ctr run -d --runc-systemd-cgroup --memory-limit --cpus".into(),
        "ok".into(),
    )];
    want.extend(expected_scope("/system.slice/ctr-<id>.scope", false));
    want.extend([
        ("ctr task kill -s SIGKILL; task delete".into(), "ok".into()),
        ("init gone".into(), "true".into()),
        ("scope gone".into(), "true".into()),
    ]);
    verify(e, "scope", &as_refs(&want), |rt, name, t| -> Step {
        let extra = ["-d", "--memory-limit", MEMORY, "--cpus", "0.5"];
        let out = e.run(rt, &extra, name, &["sh", "-c", COUNTER]);
        t.ok(
            "ctr run -d --runc-systemd-cgroup --memory-limit --cpus",
            &out,
        )?;
        let pid = e.task(name).map(|x| x.0).unwrap_or(0);
        let scope = ScopeView::of(pid);
        scope_steps(t, pid, name, false);
        let _ = e.ctr(&["task", "kill", "-s", "SIGKILL", name]);
        let stopped = integration::runtime::wait_for(Duration::from_secs(10), || {
            e.task(name).filter(|x| x.1 == "STOPPED").map(|_| ())
        });
        let del = e.ctr(&["task", "delete", name]);
        let ok = stopped.is_some() && del.success();
        t.note(
            "ctr task kill -s SIGKILL; task delete",
            if ok {
                "ok".to_string()
            } else {
                integration::engines::failure(&del)
            },
        );
        t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
        t.note("scope gone", scope.is_some_and(|s| s.gone()).to_string());
        Ok(())
    });
}
