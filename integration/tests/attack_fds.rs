//! Attacks through descriptors the runtime holds while it sets a process up
//! (CVE-2024-21626 class): a cwd, an `args[0]` or a symlink planted by the container that
//! names `/proc/self/fd/N` of a host directory the runtime still has open, and
//! `--preserve-fds` ranges the caller did not fill. Each escape would read a canary file
//! that exists only on the host; none may.

use integration::security::{install_program, print_text};
use integration::{is_runc, Container};
use serde_json::json;
use std::os::unix::process::CommandExt;

/// Descriptor numbers an attacker would try: the runtime's own land in this range.
const FDS: std::ops::Range<i32> = 3..24;

/// A file only the host has, with a secret the container must never print, and the
/// relative path from any host directory at most 12 levels deep to it.
fn canary(c: &Container) -> (String, String) {
    let secret = format!("host-secret-{}", c.id);
    let path = c.path("canary");
    std::fs::write(&path, &secret).unwrap();
    let up = "../".repeat(12);
    (secret, format!("{up}{}", path.display()))
}

/// A static host program the container does not have, which prints `secret` when it runs.
fn host_program(c: &Container, secret: &str) -> String {
    let path = c.path("hostonly");
    install_program(&path, &print_text(secret), 0o755);
    path.display().to_string()
}

fn running(name: &str) -> Container {
    let mut c = Container::new(name);
    c.config["process"]["cwd"] = json!("/work");
    c.set_args(&["sleep", "1000"]);
    c.create().assert_ok();
    c.start().assert_ok();
    c
}

#[test]
fn exec_cwd_through_a_runtime_descriptor_stays_inside() {
    let c = running("fdexeccwd");
    let (secret, rel) = canary(&c);
    for fd in FDS {
        let cwd = format!("/proc/self/fd/{fd}");
        let out = c.rt(&["exec", "--cwd", &cwd, &c.id, "cat", &rel]);
        assert!(!out.stdout.contains(&secret), "fd {fd}: {out:?}");
    }
}

#[test]
fn exec_args0_through_a_runtime_descriptor_runs_nothing_of_the_host() {
    let c = running("fdexecargs");
    let (secret, _) = canary(&c);
    let program = host_program(&c, &secret);
    let up = "../".repeat(12);
    for fd in FDS {
        let path = format!("/proc/self/fd/{fd}/{up}{program}");
        let out = c.rt(&["exec", &c.id, &path]);
        assert!(!out.stdout.contains(&secret), "fd {fd}: {out:?}");
    }
}

#[test]
fn create_args0_through_a_runtime_descriptor_runs_nothing_of_the_host() {
    let probe = Container::new("fdcreateargs");
    let (secret, _) = canary(&probe);
    let program = host_program(&probe, &secret);
    let up = "../".repeat(12);
    for fd in FDS {
        let mut c = Container::new("fdcreateargs");
        c.set_args(&[&format!("/proc/self/fd/{fd}/{up}{program}")]);
        let out = c.run();
        assert!(!out.stdout.contains(&secret), "fd {fd}: {out:?}");
    }
}

#[test]
fn symlinked_cwd_planted_by_the_container_gives_no_host_access() {
    // The container swaps its working directory for symlinks to /proc/self/fd/N, and a
    // process of its own watches every new process's cwd for a way out; then the
    // operator runs ordinary execs, which start in process.cwd.
    let mut c = running("fdplanted");
    let (secret, rel) = canary(&c);
    let plant = (3..24)
        .map(|fd| format!("ln -s /proc/self/fd/{fd} /w{fd};"))
        .collect::<String>();
    c.rt(&["exec", &c.id, "sh", "-c", &plant]).assert_ok();
    let watch = format!(
        "while :; do for p in /proc/[0-9]*; do cat $p/cwd/{rel} 2>/dev/null; done; done >/hits"
    );
    let pid_file = c.path("watcher.pid").display().to_string();
    c.rt(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_file,
        &c.id,
        "sh",
        "-c",
        &watch,
    ])
    .assert_ok();
    let watcher = std::fs::read_to_string(&pid_file).unwrap();
    c.track_pid(watcher.trim().parse().unwrap());
    for fd in FDS {
        let cwd = format!("/w{fd}");
        let out = c.rt(&[
            "exec",
            "--cwd",
            &cwd,
            &c.id,
            "sh",
            "-c",
            &format!("cat {rel}"),
        ]);
        assert!(!out.stdout.contains(&secret), "/w{fd}: {out:?}");
    }
    let hits = c.rt(&["exec", &c.id, "cat", "/hits"]);
    assert!(!hits.stdout.contains(&secret), "{hits:?}");
}

/// `sh -c 'exec 3</dev/null ...; exec runtime ARGS'`: the runtime started with
/// descriptors 3..3+`open` open on /dev/null.
fn with_open_fds(c: &Container, open: i32, args: &[&str]) -> integration::Output {
    let mut cmd = c.command();
    // SAFETY: the closure runs in the forked child before exec and only makes syscalls
    // (open, dup2, close), which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for fd in 3..3 + open {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if null < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if null != fd {
                    libc::dup2(null, fd);
                    libc::close(null);
                }
            }
            Ok(())
        });
    }
    c.exec(cmd.args(args))
}

#[test]
fn preserve_fds_the_caller_did_not_open_are_refused() {
    let c = Container::new("fdpreserve");
    c.write_config();
    let b = c.bundle.display().to_string();
    let out = with_open_fds(
        &c,
        2,
        &["run", "--bundle", &b, "--preserve-fds", "8", &c.id],
    );
    out.assert_failed();
    if !is_runc() {
        assert!(
            out.stderr.contains("--preserve-fds") && out.stderr.contains("descriptor 5"),
            "{out:?}"
        );
    }
    assert!(c.state().is_none(), "{out:?}");
}

#[test]
fn preserved_fds_are_exactly_the_callers() {
    let mut c = Container::new("fdpreserved");
    let list = "ls -l /proc/self/fd | sed -n 's/.* \\([0-9]*\\) -> \\(.*\\)/\\1 \\2/p'";
    c.set_sh(list);
    c.write_config();
    let b = c.bundle.display().to_string();
    let out = with_open_fds(
        &c,
        4,
        &["run", "--bundle", &b, "--preserve-fds", "4", &c.id],
    );
    out.assert_ok();
    let mut seen = Vec::new();
    for line in out.stdout.lines() {
        let (fd, target) = line.split_once(' ').unwrap();
        let fd: i32 = fd.parse().unwrap();
        if (3..7).contains(&fd) {
            assert_eq!(target, "/dev/null", "{}", out.stdout);
            seen.push(fd);
        } else {
            assert!(
                fd <= 2 || (target.starts_with("/proc/") && target.ends_with("/fd")),
                "{}",
                out.stdout
            );
        }
    }
    assert_eq!(seen, vec![3, 4, 5, 6], "{}", out.stdout);
}

#[test]
fn exec_preserve_fds_the_caller_did_not_open_are_refused() {
    let c = running("fdexecpreserve");
    let out = with_open_fds(
        &c,
        1,
        &[
            "exec",
            "--preserve-fds",
            "6",
            &c.id,
            "ls",
            "-l",
            "/proc/self/fd/",
        ],
    );
    out.assert_failed();
    assert!(!out.stdout.contains(" 4 -> "), "{out:?}");
    let out = with_open_fds(
        &c,
        2,
        &[
            "exec",
            "--preserve-fds",
            "2",
            &c.id,
            "ls",
            "-l",
            "/proc/self/fd/",
        ],
    );
    out.assert_ok();
    for fd in 3..5 {
        assert!(
            out.stdout.contains(&format!(" {fd} -> /dev/null")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn a_profile_denying_close_range_still_starts_clean() {
    // The descriptor sweep runs before the container's filter: a profile that denies
    // close_range (or returns ENOSYS for it, as older profiles do for unknown calls)
    // neither stops the container nor leaves it descriptors.
    for (nnp, errno) in [(false, 1), (true, 1), (false, 38)] {
        let mut c = Container::new("fdseccomp");
        c.config["process"]["noNewPrivileges"] = json!(nnp);
        c.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [integration::security::NATIVE_ARCH.0],
            "syscalls": [{ "names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno }],
        });
        let out =
            c.sh("ls -l /proc/self/fd | sed -n 's/.* \\([0-9]*\\) -> .*/\\1/p' | tr '\\n' ' '");
        out.assert_ok();
        let fds: Vec<i32> = out
            .stdout
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        // 0-2, and the descriptor ls lists /proc/self/fd through.
        assert!(
            fds.iter().filter(|&&fd| fd > 2).count() <= 1,
            "nnp {nnp}: {out:?}"
        );
    }
}
