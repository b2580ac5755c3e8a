//! Rootless podman (issue 16) driving the runtime under test with `--runtime`, at its
//! rootless defaults: a test user with its own systemd (user@<uid>.service), podman's
//! systemd cgroup manager through that user's bus, slirp4netns, the runtime run as uid 0
//! of podman's user namespace (storage: vfs). Each scenario runs with Debian's runc first,
//! then with the runtime under test (see `integration::engines`).
//!
//! Needs systemd as PID 1 on cgroup v2: the systemd guest
//! (`integration/systemd-vm/run.sh 'engine_rootless patina'`); elsewhere each test says by
//! name that it is skipped.

use integration::engines::docker_like::{self, ExecScenario};
use integration::engines::podman_rootless::engine;
use integration::engines::systemd::{self, ScopeView};
use integration::engines::{docker_rootless, gone, verify, Step, Stop, Transcript, COUNTER};
use std::path::{Path, PathBuf};
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
    true
}

/// The scope of a rootless container's init `pid` (with `id` and the user's `uid` shown
/// as `<id>` and `<uid>`), its unit as the user's systemd shows it, the limits in its
/// files, and the user namespace init is in. Returns the scope's directory.
fn scope_steps(
    t: &mut Transcript,
    pid: i32,
    id: &str,
    uid: &str,
    user_systemctl: impl Fn(&[&str]) -> Option<String>,
) -> Result<PathBuf, Stop> {
    let Some(scope) = ScopeView::of(pid) else {
        t.note("scope of the init", format!("no cgroup for pid {pid}"));
        return Err(Stop);
    };
    t.note(
        "scope of the init",
        scope.cgroup_named(id).replace(uid, "<uid>"),
    );
    let unit = user_systemctl(&["show", "-p", "Delegate,ActiveState", &scope.unit]);
    t.note("unit", unit.unwrap_or_default());
    t.note("memory.max", scope.file("memory.max"));
    t.note("pids.max", scope.file("pids.max"));
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
    let first = map.lines().next().unwrap_or("");
    let first = first.split_whitespace().collect::<Vec<_>>().join(" ");
    t.note(
        "uid 0 inside is the user outside",
        first.replace(uid, "<uid>"),
    );
    Ok(Path::new("/sys/fs/cgroup").join(scope.cgroup.trim_start_matches('/')))
}

/// True once `dir` is gone (at most 10 s).
fn gone_dir(dir: &Path) -> bool {
    integration::runtime::wait_for(Duration::from_secs(10), || (!dir.exists()).then_some(()))
        .is_some()
}

#[test]
fn engine_rootless_podman_scope_limits_and_cleanup() {
    if !systemd_host("engine_rootless_podman_scope_limits_and_cleanup") {
        return;
    }
    let e = engine();
    let uid = e.user_uid().expect("rootless").to_string();
    let step_run = "podman run -d --memory 64m --pids-limit 50";
    verify(
        e,
        "scope",
        &[
            ("podman info: cgroup manager, rootless", "systemd true"),
            (step_run, "ok"),
            (
                "scope of the init",
                "/user.slice/user-<uid>.slice/user@<uid>.service/user.slice/libpod-<id>.scope",
            ),
            ("unit", "Delegate=yes\nActiveState=active"),
            ("memory.max", "67108864"),
            ("pids.max", "50"),
            ("uid 0 inside is the user outside", "0 <uid> 1"),
            ("podman exec cat /proc/self/cgroup", "ok"),
            // podman runs conmon in a scope of the user's systemd: the runtime's exec
            // may move the process into the container's scope.
            ("exec'd process in the scope", "true"),
            ("podman stop -t 10", "ok"),
            ("exit code (trap TERM: exit 7)", "7"),
            ("init gone", "true"),
            ("podman rm", "ok"),
            ("scope gone", "true"),
        ],
        |rt, name, t| -> Step {
            let info = e.podman(&[
                "info",
                "-f",
                "{{.Host.CgroupManager}} {{.Host.Security.Rootless}}",
            ]);
            t.note(
                "podman info: cgroup manager, rootless",
                systemd::stdout_or_failure(&info),
            );
            let extra = [
                "-d",
                "--name",
                name,
                "--memory",
                "64m",
                "--pids-limit",
                "50",
            ];
            let id = t.ok(step_run, &e.run(rt, &extra, &["sh", "-c", COUNTER]))?;
            let id = id.trim().to_string();
            let pid: i32 = e
                .inspect(name, "{{.State.Pid}}")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let scope = scope_steps(t, pid, &id, &uid, |args| e.user_systemctl(args))?;
            let exec = e.podman(&["exec", name, "cat", "/proc/self/cgroup"]);
            let seen = t.ok("podman exec cat /proc/self/cgroup", &exec)?;
            // The scope is the root of the container's cgroup namespace.
            t.note(
                "exec'd process in the scope",
                (seen.trim() == "0::/").to_string(),
            );
            t.ok("podman stop -t 10", &e.podman(&["stop", "-t", "10", name]))?;
            let code = e.inspect(name, "{{.State.ExitCode}}").unwrap_or_default();
            t.note("exit code (trap TERM: exit 7)", code);
            t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
            t.ok("podman rm", &e.podman(&["rm", name]))?;
            t.note("scope gone", gone_dir(&scope).to_string());
            Ok(())
        },
    );
}

#[test]
fn engine_rootless_podman_run_echo_and_exit_code() {
    if !systemd_host("engine_rootless_podman_run_echo_and_exit_code") {
        return;
    }
    docker_like::run_echo_and_exit_code(engine());
}

#[test]
fn engine_rootless_podman_exec_pause_stop() {
    if !systemd_host("engine_rootless_podman_exec_pause_stop") {
        return;
    }
    let scenario = ExecScenario {
        top_and_update: false,
        stop_grace_secs: 10,
    };
    docker_like::exec_pause_stop(engine(), scenario);
}

#[test]
fn engine_rootless_docker_scope_limits_and_cleanup() {
    if !systemd_host("engine_rootless_docker_scope_limits_and_cleanup") {
        return;
    }
    let e = docker_rootless::engine();
    let uid = e.user_uid().expect("rootless").to_string();
    let step_run = "docker run -d --memory 64m --pids-limit 50";
    verify(
        e,
        "scope",
        &[
            ("docker info: cgroup driver, rootless", "systemd rootless"),
            (step_run, "ok"),
            (
                "scope of the init",
                "/user.slice/user-<uid>.slice/user@<uid>.service/user.slice/docker-<id>.scope",
            ),
            ("unit", "Delegate=yes\nActiveState=active"),
            ("memory.max", "67108864"),
            ("pids.max", "50"),
            ("uid 0 inside is the user outside", "0 <uid> 1"),
            ("docker exec cat /proc/self/cgroup", "ok"),
            // dockerd-rootless.sh is started from this test's cgroup (root's), not as
            // a unit of the user's systemd (`systemctl --user start docker`): the shim
            // and the runtime's exec are outside the user's subtree and cannot move the
            // process into it (EACCES; runc and patina leave it where it is).
            ("exec'd process in the scope", "false"),
            ("docker stop -t 10", "ok"),
            ("exit code (trap TERM: exit 7)", "7"),
            ("init gone", "true"),
            ("docker rm", "ok"),
            ("scope gone", "true"),
        ],
        |rt, name, t| -> Step {
            let info = e.docker(&["info", "-f", "{{.CgroupDriver}} {{.SecurityOptions}}"]);
            let info = systemd::stdout_or_failure(&info);
            let rootless = if info.contains("name=rootless") {
                "rootless"
            } else {
                "not rootless"
            };
            let driver = info.split_whitespace().next().unwrap_or("").to_string();
            t.note(
                "docker info: cgroup driver, rootless",
                format!("{driver} {rootless}"),
            );
            let extra = [
                "-d",
                "--name",
                name,
                "--memory",
                "64m",
                "--pids-limit",
                "50",
            ];
            let id = t.ok(step_run, &e.run(rt, &extra, &["sh", "-c", COUNTER]))?;
            let id = id.trim().to_string();
            let pid: i32 = e
                .inspect(name, "{{.State.Pid}}")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let scope = scope_steps(t, pid, &id, &uid, |args| e.user_systemctl(args))?;
            let exec = e.docker(&["exec", name, "cat", "/proc/self/cgroup"]);
            let seen = t.ok("docker exec cat /proc/self/cgroup", &exec)?;
            // The scope is the root of the container's cgroup namespace.
            t.note(
                "exec'd process in the scope",
                (seen.trim() == "0::/").to_string(),
            );
            t.ok("docker stop -t 10", &e.docker(&["stop", "-t", "10", name]))?;
            let code = e.inspect(name, "{{.State.ExitCode}}").unwrap_or_default();
            t.note("exit code (trap TERM: exit 7)", code);
            t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
            t.ok("docker rm", &e.docker(&["rm", name]))?;
            t.note("scope gone", gone_dir(&scope).to_string());
            Ok(())
        },
    );
}

#[test]
fn engine_rootless_docker_run_echo_and_exit_code() {
    if !systemd_host("engine_rootless_docker_run_echo_and_exit_code") {
        return;
    }
    docker_like::run_echo_and_exit_code(docker_rootless::engine());
}

#[test]
fn engine_rootless_docker_exec_pause_stop() {
    if !systemd_host("engine_rootless_docker_exec_pause_stop") {
        return;
    }
    let scenario = ExecScenario {
        top_and_update: false,
        stop_grace_secs: 10,
    };
    docker_like::exec_pause_stop(docker_rootless::engine(), scenario);
}
