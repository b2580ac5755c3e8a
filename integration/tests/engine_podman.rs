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
use integration::engines::{verify, Step};
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
