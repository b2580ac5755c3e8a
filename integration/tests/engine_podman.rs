//! Podman 4.3 (Debian) driving the runtime under test with `--runtime`, compared step by step
//! with Debian's runc (see `integration::engines`).
//!
//! Against patina, every scenario needs (podman always sends them):
//! `linux.resources` — cgroups (issue 3) — and `linux.seccomp` — its default profile (issue 4).
//!
//! ```text
//! PATINA_RUNTIME=/usr/sbin/runc cargo test -p integration --test engine_podman
//! ```

use integration::engines::podman::engine;
use integration::engines::{
    counter_motion, gone, tty_summary, verify, wait_counter, Step, COUNTER, TTY_CHECK,
};
use std::time::{Duration, Instant};

#[test]
fn engine_podman_run_echo_and_exit_code() {
    let e = engine();
    verify(
        e,
        "echo",
        &[
            ("podman run --rm echo hi", "ok"),
            ("stdout", "hi"),
            ("podman run --rm sh -c 'exit 3'", "exit 3"),
            ("containers left by --rm", ""),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3), seccomp (issue 4)
            let out = e.run(rt, &["--rm", "--name", name], &["echo", "hi"]);
            let stdout = t.ok("podman run --rm echo hi", &out)?;
            t.note("stdout", stdout.trim());
            let out = e.run(rt, &["--rm", "--name", name], &["sh", "-c", "exit 3"]);
            t.exit("podman run --rm sh -c 'exit 3'", &out);
            let ps = e.podman(&[
                "ps",
                "-a",
                "--filter",
                &format!("name={name}"),
                "--format",
                "{{.Names}}",
            ]);
            t.note("containers left by --rm", ps.stdout.trim());
            Ok(())
        },
    );
}

#[test]
fn engine_podman_run_tty() {
    let e = engine();
    verify(
        e,
        "tty",
        &[
            ("podman run --rm -it (pty 31x107)", "exit 0"),
            ("tty; stty size", "/dev/pts/*;size=31 107"),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3), seccomp (issue 4); the terminal itself is on main
            let out = e.run_tty(
                rt,
                &["--rm", "-it", "--name", name],
                &["sh", "-c", TTY_CHECK],
                31,
                107,
            );
            t.exit("podman run --rm -it (pty 31x107)", &out);
            t.note("tty; stty size", tty_summary(&out.stdout));
            Ok(())
        },
    );
}

#[test]
fn engine_podman_exec_pause_stop() {
    let e = engine();
    verify(
        e,
        "counter",
        &[
            ("podman run -d counter", "ok"),
            ("counter started", "true"),
            ("podman exec", "ok"),
            ("exec output", "exec-ok pid1=sh"),
            ("podman exec sh -c 'exit 5'", "exit 5"),
            ("podman pause", "ok"), // needs pause (issue 3)
            ("status after pause", "paused"),
            ("counter while paused", "frozen"),
            ("podman unpause", "ok"), // needs resume (issue 3)
            ("counter after unpause", "advancing"),
            ("podman stop -t 1", "ok"),
            ("stopped by SIGTERM within the grace period", "true"),
            ("exit code (trap TERM: exit 7)", "7"),
            ("init gone", "true"),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3), seccomp (issue 4)
            let out = e.run(rt, &["-d", "--name", name], &["sh", "-c", COUNTER]);
            t.ok("podman run -d counter", &out)?;
            let pid: i32 = e
                .inspect(name, "{{.State.Pid}}")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            t.note("counter started", wait_counter(pid).to_string());
            let out = e.podman(&[
                "exec",
                name,
                "sh",
                "-c",
                "echo exec-ok pid1=$(cat /proc/1/comm)",
            ]);
            let stdout = t.ok("podman exec", &out)?;
            t.note("exec output", stdout.trim());
            let out = e.podman(&["exec", name, "sh", "-c", "exit 5"]);
            t.exit("podman exec sh -c 'exit 5'", &out);
            t.ok("podman pause", &e.podman(&["pause", name]))?;
            t.note(
                "status after pause",
                e.inspect(name, "{{.State.Status}}").unwrap_or_default(),
            );
            t.note("counter while paused", counter_motion(pid));
            t.ok("podman unpause", &e.podman(&["unpause", name]))?;
            t.note("counter after unpause", counter_motion(pid));
            let start = Instant::now();
            t.ok("podman stop -t 1", &e.podman(&["stop", "-t", "1", name]))?;
            t.note(
                "stopped by SIGTERM within the grace period",
                (start.elapsed() < Duration::from_millis(900)).to_string(),
            );
            t.note(
                "exit code (trap TERM: exit 7)",
                e.inspect(name, "{{.State.ExitCode}}").unwrap_or_default(),
            );
            t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
            Ok(())
        },
    );
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
