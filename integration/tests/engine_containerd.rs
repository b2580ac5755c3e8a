//! containerd 1.6 (Debian) + `ctr run --runc-binary` driving the runtime under test (through
//! containerd-shim-runc-v2), compared step by step with Debian's runc (see
//! `integration::engines`).
//!
//! Against patina, every scenario needs `linux.resources` — cgroups (issue 3): ctr's default
//! spec always has `linux.resources.devices` (ctr sends no seccomp profile unless `--seccomp`).
//!
//! ```text
//! PATINA_RUNTIME=/usr/sbin/runc cargo test -p integration --test engine_containerd
//! ```

use integration::engines::containerd::engine;
use integration::engines::{
    counter_motion, counter_resumed, failure, gone, tty_summary, verify, wait_counter, Step,
    COUNTER, TTY_CHECK,
};
use integration::runtime::wait_for;
use std::time::Duration;

#[test]
fn engine_containerd_run_echo_and_exit_code() {
    let e = engine();
    verify(
        e,
        "echo",
        &[
            ("ctr run --rm echo hi", "ok"),
            ("stdout", "hi"),
            ("ctr run --rm sh -c 'exit 3'", "exit 3"),
            ("containers left by --rm", ""),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3)
            let out = e.run(rt, &["--rm"], name, &["echo", "hi"]);
            let stdout = t.ok("ctr run --rm echo hi", &out)?;
            t.note("stdout", stdout.trim());
            let out = e.run(rt, &["--rm"], name, &["sh", "-c", "exit 3"]);
            t.exit("ctr run --rm sh -c 'exit 3'", &out);
            let ls = e.ctr(&["containers", "ls", "-q"]);
            let left: Vec<&str> = ls
                .stdout
                .split_whitespace()
                .filter(|n| *n == name)
                .collect();
            t.note("containers left by --rm", left.join(" "));
            Ok(())
        },
    );
}

#[test]
fn engine_containerd_run_tty() {
    let e = engine();
    verify(
        e,
        "tty",
        &[
            ("ctr run --rm -t (pty 31x107)", "exit 0"),
            ("tty; stty size", "/dev/pts/*;size=31 107"),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3); the terminal itself is on main
            let out = e.run_tty(rt, &["--rm", "-t"], name, &["sh", "-c", TTY_CHECK], 31, 107);
            t.exit("ctr run --rm -t (pty 31x107)", &out);
            t.note("tty; stty size", tty_summary(&out.stdout));
            Ok(())
        },
    );
}

#[test]
fn engine_containerd_exec_pause_resume_kill() {
    let e = engine();
    verify(
        e,
        "counter",
        &[
            ("ctr run -d counter", "ok"),
            ("counter started", "true"),
            ("ctr task exec", "ok"),
            ("exec output", "exec-ok pid1=sh"),
            ("ctr task exec sh -c 'exit 5'", "exit 5"),
            ("ctr task pause", "ok"), // needs pause (issue 3)
            ("status after pause", "PAUSED"),
            ("counter while paused", "frozen"),
            ("ctr task resume", "ok"), // needs resume (issue 3)
            ("status after resume", "RUNNING"),
            ("counter after resume", "advancing"),
            ("ctr task kill (SIGTERM)", "ok"),
            ("status after kill", "STOPPED"),
            ("init gone", "true"),
            ("ctr task delete: exit code (trap TERM: exit 7)", "7"),
        ],
        |rt, name, t| -> Step {
            // needs cgroups (issue 3)
            let out = e.run(rt, &["-d"], name, &["sh", "-c", COUNTER]);
            t.ok("ctr run -d counter", &out)?;
            let pid = e.task(name).map(|x| x.0).unwrap_or(0);
            t.note("counter started", wait_counter(pid).to_string());
            let fifo = e.p.path("fifo");
            let exec = |id: &str, script: &str| {
                e.ctr(&[
                    "task",
                    "exec",
                    "--exec-id",
                    id,
                    "--fifo-dir",
                    &fifo,
                    name,
                    "sh",
                    "-c",
                    script,
                ])
            };
            let out = exec("e1", "echo exec-ok pid1=$(cat /proc/1/comm)");
            let stdout = t.ok("ctr task exec", &out)?;
            t.note("exec output", stdout.trim());
            t.exit("ctr task exec sh -c 'exit 5'", &exec("e2", "exit 5"));
            t.ok("ctr task pause", &e.ctr(&["task", "pause", name]))?;
            t.note(
                "status after pause",
                e.task(name).map(|x| x.1).unwrap_or_default(),
            );
            t.note("counter while paused", counter_motion(pid));
            t.ok("ctr task resume", &e.ctr(&["task", "resume", name]))?;
            t.note(
                "status after resume",
                e.task(name).map(|x| x.1).unwrap_or_default(),
            );
            t.note("counter after resume", counter_resumed(pid));
            t.ok("ctr task kill (SIGTERM)", &e.ctr(&["task", "kill", name]))?;
            let status = wait_for(Duration::from_secs(5), || {
                e.task(name).map(|x| x.1).filter(|s| s == "STOPPED")
            });
            t.note(
                "status after kill",
                status.unwrap_or_else(|| format!("{:?}", e.task(name))),
            );
            t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
            // ctr 1.6 reports a non-zero exit status only as a warning of `task delete`.
            let out = e.ctr(&["task", "delete", name]);
            let code = out
                .stderr
                .split("exit code ")
                .nth(1)
                .map(|s| s.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
                .unwrap_or_else(|| {
                    if out.success() {
                        "0".into()
                    } else {
                        failure(&out)
                    }
                });
            t.note("ctr task delete: exit code (trap TERM: exit 7)", code);
            Ok(())
        },
    );
}

/// Whether CRIU works here (`criu check`); says so by name when it does not.
fn criu_works(test: &str) -> bool {
    let ok = std::process::Command::new("criu")
        .args(["check", "-o", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("{test}: SKIPPED: `criu check` fails on this host; runs in the systemd guest (integration/systemd-vm)");
    }
    ok
}

/// `ctr task checkpoint` through containerd's runc shim: with `--image-path` the image
/// goes there and the task keeps running (containerd pauses it around the dump); with
/// `--exit` the task is stopped by the dump.
#[test]
fn engine_containerd_checkpoint() {
    if !criu_works("engine_containerd_checkpoint") {
        return;
    }
    let e = engine();
    verify(
        e,
        "ckpt",
        &[
            ("ctr run -d counter", "ok"),
            ("ctr task checkpoint --image-path", "ok"),
            ("image written", "true"),
            ("status after checkpoint", "RUNNING"),
            ("counter after checkpoint", "advancing"),
            ("ctr task checkpoint --exit --image-path", "ok"),
            ("status after --exit", "STOPPED"),
            ("init gone", "true"),
        ],
        |rt, name, t| -> Step {
            let out = e.run(rt, &["-d"], name, &["sh", "-c", COUNTER]);
            t.ok("ctr run -d counter", &out)?;
            let pid = e.task(name).map(|x| x.0).unwrap_or(0);
            wait_counter(pid);
            let image = e.p.path(&format!("{name}-image"));
            let out = e.ctr(&["task", "checkpoint", "--image-path", &image, name]);
            t.ok("ctr task checkpoint --image-path", &out)?;
            let written = std::path::Path::new(&image).join("inventory.img").exists();
            t.note("image written", written.to_string());
            t.note(
                "status after checkpoint",
                e.task(name).map(|x| x.1).unwrap_or_default(),
            );
            t.note("counter after checkpoint", counter_resumed(pid));
            let last = e.p.path(&format!("{name}-last"));
            let out = e.ctr(&["task", "checkpoint", "--exit", "--image-path", &last, name]);
            t.ok("ctr task checkpoint --exit --image-path", &out)?;
            let status = wait_for(Duration::from_secs(10), || {
                e.task(name).map(|x| x.1).filter(|s| s == "STOPPED")
            });
            t.note(
                "status after --exit",
                status.unwrap_or_else(|| format!("{:?}", e.task(name))),
            );
            t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
            Ok(())
        },
    );
}
