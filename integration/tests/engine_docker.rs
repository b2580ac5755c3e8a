//! Docker 20.10 (Debian `docker.io`) with `runtimes.patina` driving the runtime under test
//! (through containerd and containerd-shim-runc-v2), compared step by step with Debian's runc
//! configured as runtime `ref-runc` (see `integration::engines`).
//!
//! Against patina, every scenario needs (docker always sends them):
//! `linux.resources` — cgroups (issue 3) — and `linux.seccomp` — docker's default profile
//! (issue 4); docker also sends `linux.sysctl` only when asked (not here).
//!
//! ```text
//! PATINA_RUNTIME=/usr/sbin/runc cargo test -p integration --test engine_docker
//! ```

use integration::engines::docker::engine;
use integration::engines::{
    counter_motion, gone, tty_summary, verify, wait_counter, Step, COUNTER, TTY_CHECK,
};
use std::time::{Duration, Instant};

#[test]
fn engine_docker_run_echo_and_exit_code() {
    let e = engine();
    verify(
        e,
        "echo",
        &[
            ("docker run --rm echo hi", "ok"),
            ("stdout", "hi"),
            ("docker run --rm sh -c 'exit 3'", "exit 3"),
            ("containers left by --rm", ""),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3), seccomp (issue 4)
            let out = e.run(rt, &["--rm", "--name", name], &["echo", "hi"]);
            let stdout = t.ok("docker run --rm echo hi", &out)?;
            t.note("stdout", stdout.trim());
            let out = e.run(rt, &["--rm", "--name", name], &["sh", "-c", "exit 3"]);
            t.exit("docker run --rm sh -c 'exit 3'", &out);
            let ps = e.docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")]);
            t.note("containers left by --rm", ps.stdout.trim());
            Ok(())
        },
    );
}

#[test]
fn engine_docker_run_tty() {
    let e = engine();
    verify(
        e,
        "tty",
        &[
            ("docker run --rm -it (pty 31x107)", "exit 0"),
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
            t.exit("docker run --rm -it (pty 31x107)", &out);
            t.note("tty; stty size", tty_summary(&out.stdout));
            Ok(())
        },
    );
}

/// The memory limit as the container sees it (cgroup v1, else v2).
const MEMORY_LIMIT: &str =
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";

#[test]
fn engine_docker_exec_top_update_pause_stop() {
    let e = engine();
    verify(
        e,
        "counter",
        &[
            ("docker run -d counter", "ok"),
            ("counter started", "true"),
            ("docker exec", "ok"),
            ("exec output", "exec-ok pid1=sh"),
            ("docker exec sh -c 'exit 5'", "exit 5"),
            ("docker top", "ok"), // needs ps (issue 3)
            ("docker top lists the init", "true"),
            ("docker update --memory 64m", "ok"), // needs update (issue 3)
            ("memory limit seen inside", "67108864"),
            ("docker pause", "ok"), // needs pause (issue 3)
            ("status after pause", "paused"),
            ("counter while paused", "frozen"),
            ("docker unpause", "ok"), // needs resume (issue 3)
            ("counter after unpause", "advancing"),
            ("docker stop -t 2", "ok"),
            ("stopped by SIGTERM within the grace period", "true"),
            ("exit code (trap TERM: exit 7)", "7"),
            ("init gone", "true"),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3), seccomp (issue 4)
            let out = e.run(rt, &["-d", "--name", name], &["sh", "-c", COUNTER]);
            t.ok("docker run -d counter", &out)?;
            let pid: i32 = e
                .inspect(name, "{{.State.Pid}}")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            t.note("counter started", wait_counter(pid).to_string());
            let out = e.docker(&[
                "exec",
                name,
                "sh",
                "-c",
                "echo exec-ok pid1=$(cat /proc/1/comm)",
            ]);
            let stdout = t.ok("docker exec", &out)?;
            t.note("exec output", stdout.trim());
            let out = e.docker(&["exec", name, "sh", "-c", "exit 5"]);
            t.exit("docker exec sh -c 'exit 5'", &out);
            let out = e.docker(&["top", name, "-o", "pid,args"]);
            let top = t.ok("docker top", &out)?;
            let listed = top.lines().skip(1).any(|l| {
                l.split_whitespace().next() == Some(pid.to_string().as_str())
                    && l.contains("sh -c trap")
            });
            t.note("docker top lists the init", listed.to_string());
            let out = e.docker(&["update", "--memory", "64m", "--memory-swap", "128m", name]);
            t.ok("docker update --memory 64m", &out)?;
            let out = e.docker(&["exec", name, "sh", "-c", MEMORY_LIMIT]);
            t.note("memory limit seen inside", out.stdout.trim());
            t.ok("docker pause", &e.docker(&["pause", name]))?;
            t.note(
                "status after pause",
                e.inspect(name, "{{.State.Status}}").unwrap_or_default(),
            );
            t.note("counter while paused", counter_motion(pid));
            t.ok("docker unpause", &e.docker(&["unpause", name]))?;
            t.note("counter after unpause", counter_motion(pid));
            let start = Instant::now();
            t.ok("docker stop -t 2", &e.docker(&["stop", "-t", "2", name]))?;
            t.note(
                "stopped by SIGTERM within the grace period",
                (start.elapsed() < Duration::from_millis(1800)).to_string(),
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
