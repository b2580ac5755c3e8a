//! Podman 4.3 (Debian) driving the runtime under test with `--runtime`, compared step by step
//! with Debian's runc (see `integration::engines`).
//!
//! Against patina, every scenario needs (podman always sends them):
//! `linux.resources` — cgroups (issue 3) — and `linux.seccomp` — its default profile (issue 4).
//!
//! ```text
//! PATINA_RUNTIME=/usr/sbin/runc cargo test -p integration --test engine_podman
//! ```

use integration::engines::docker_like::{self, ExecScenario};
use integration::engines::gone;
use integration::engines::podman::engine;
use integration::engines::{counter_resumed, read_counter, verify, Step, COUNTER};
use integration::runtime::wait_for;
use std::time::{Duration, Instant};

#[test]
fn engine_podman_run_echo_and_exit_code() {
    docker_like::run_echo_and_exit_code(engine());
}

#[test]
fn engine_podman_run_tty() {
    docker_like::run_tty(engine());
}

#[test]
fn engine_podman_exec_pause_stop() {
    let scenario = ExecScenario {
        top_and_update: false,
        // Long enough for a slow machine (the TCG guests) to finish the stop within it;
        // honoured at once anyway: the counter traps TERM.
        stop_grace_secs: 10,
    };
    docker_like::exec_pause_stop(engine(), scenario);
}

#[test]
fn engine_podman_stop_timeout_restart_rm_force() {
    let e = engine();
    verify(
        e,
        "sleeper",
        &[
            ("podman run -d sleep", "ok"),
            ("podman stop -t 1 (SIGTERM ignored by pid 1)", "ok"),
            ("waited for the grace period", "true"),
            ("exit code (SIGKILL)", "137"),
            ("podman start", "ok"),
            ("running again", "running"),
            ("podman rm -f -t 0", "ok"),
            ("init gone", "true"),
            ("podman container exists", "exit 1"),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3), seccomp (issue 4)
            let out = e.run(rt, &["-d", "--name", name], &["sleep", "1000"]);
            t.ok("podman run -d sleep", &out)?;
            let start = Instant::now();
            t.ok(
                "podman stop -t 1 (SIGTERM ignored by pid 1)",
                &e.podman(&["stop", "-t", "1", name]),
            )?;
            t.note(
                "waited for the grace period",
                (start.elapsed() >= Duration::from_secs(1)).to_string(),
            );
            t.note(
                "exit code (SIGKILL)",
                e.inspect(name, "{{.State.ExitCode}}").unwrap_or_default(),
            );
            t.ok("podman start", &e.podman(&["start", name]))?;
            t.note(
                "running again",
                e.inspect(name, "{{.State.Status}}").unwrap_or_default(),
            );
            let pid: i32 = e
                .inspect(name, "{{.State.Pid}}")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            t.ok(
                "podman rm -f -t 0",
                &e.podman(&["rm", "-f", "-t", "0", name]),
            )?;
            t.note(
                "init gone",
                (pid > 0 && gone(pid, Duration::from_secs(5))).to_string(),
            );
            t.exit(
                "podman container exists",
                &e.podman(&["container", "exists", name]),
            );
            Ok(())
        },
    );
}

#[test]
fn engine_podman_volumes() {
    docker_like::volumes(engine());
}

/// `podman container checkpoint` / `restore` (podman decides the runtime supports them when
/// `RUNTIME checkpoint --help` succeeds): the restored counter goes on from where it was.
#[test]
fn engine_podman_checkpoint_restore() {
    let criu = std::process::Command::new("criu")
        .args(["check", "-o", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !criu {
        eprintln!("engine_podman_checkpoint_restore: SKIPPED: `criu check` fails on this host; runs in the systemd guest (integration/systemd-vm)");
        return;
    }
    let e = engine();
    verify(
        e,
        "ckpt",
        &[
            ("podman run -d counter", "ok"),
            ("podman container checkpoint", "ok"),
            ("status after checkpoint", "exited"),
            ("podman container restore", "ok"),
            ("status after restore", "running"),
            ("counter goes on from the checkpoint", "true"),
            ("podman rm -f -t 0", "ok"),
        ],
        |rt, name, t| -> Step {
            let out = e.run(rt, &["-d", "--name", name], &["sh", "-c", COUNTER]);
            t.ok("podman run -d counter", &out)?;
            let pid_of = || -> i32 {
                e.inspect(name, "{{.State.Pid}}")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            let pid = pid_of();
            wait_for(Duration::from_secs(30), || {
                read_counter(pid).filter(|n| *n >= 20)
            });
            let out = e.podman(&["container", "checkpoint", name]);
            t.ok("podman container checkpoint", &out)?;
            t.note(
                "status after checkpoint",
                e.inspect(name, "{{.State.Status}}").unwrap_or_default(),
            );
            t.ok(
                "podman container restore",
                &e.podman(&["container", "restore", name]),
            )?;
            t.note(
                "status after restore",
                e.inspect(name, "{{.State.Status}}").unwrap_or_default(),
            );
            // The shell had counted to 20 or more; a fresh start would count from 1 (and
            // need 2 s to get that far), the restored one goes on from there.
            let pid = pid_of();
            let first = read_counter(pid).unwrap_or(0);
            t.note(
                "counter goes on from the checkpoint",
                (first >= 20 && counter_resumed(pid) == "advancing").to_string(),
            );
            t.ok(
                "podman rm -f -t 0",
                &e.podman(&["rm", "-f", "-t", "0", name]),
            )?;
            Ok(())
        },
    );
}

/// `podman container checkpoint --export` to a tarball, the container removed, then
/// `podman container restore --import` of it: a new container from the tarball, its
/// counter going on from the checkpoint.
#[test]
fn engine_podman_checkpoint_export_import() {
    let criu = std::process::Command::new("criu")
        .args(["check", "-o", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !criu {
        eprintln!("engine_podman_checkpoint_export_import: SKIPPED: `criu check` fails on this host; runs in the systemd guest (integration/systemd-vm)");
        return;
    }
    let e = engine();
    let tarball =
        std::env::temp_dir().join(format!("patina-ckpt-export-{}.tar.gz", std::process::id()));
    verify(
        e,
        "ckptexp",
        &[
            ("podman run -d counter", "ok"),
            ("podman container checkpoint --export", "ok"),
            ("podman rm", "ok"),
            ("podman container restore --import", "ok"),
            ("status after restore", "running"),
            ("counter goes on from the checkpoint", "true"),
            ("podman rm -f -t 0", "ok"),
        ],
        |rt, name, t| -> Step {
            let out = e.run(rt, &["-d", "--name", name], &["sh", "-c", COUNTER]);
            t.ok("podman run -d counter", &out)?;
            let pid_of = || -> i32 {
                e.inspect(name, "{{.State.Pid}}")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            let pid = pid_of();
            wait_for(Duration::from_secs(30), || {
                read_counter(pid).filter(|n| *n >= 20)
            });
            let export = format!("--export={}", tarball.display());
            let out = e.podman(&["container", "checkpoint", &export, name]);
            t.ok("podman container checkpoint --export", &out)?;
            t.ok("podman rm", &e.podman(&["rm", name]))?;
            let import = format!("--import={}", tarball.display());
            let out = e.podman(&["container", "restore", &import]);
            let _ = std::fs::remove_file(&tarball);
            t.ok("podman container restore --import", &out)?;
            t.note(
                "status after restore",
                e.inspect(name, "{{.State.Status}}").unwrap_or_default(),
            );
            let pid = pid_of();
            let first = read_counter(pid).unwrap_or(0);
            t.note(
                "counter goes on from the checkpoint",
                (first >= 20 && counter_resumed(pid) == "advancing").to_string(),
            );
            t.ok(
                "podman rm -f -t 0",
                &e.podman(&["rm", "-f", "-t", "0", name]),
            )?;
            Ok(())
        },
    );
    let _ = std::fs::remove_file(&tarball);
}
