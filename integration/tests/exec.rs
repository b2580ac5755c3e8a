//! `exec`: a second process in a running container, as engines and `kubectl exec` use it.
//! It must join every namespace of the container, take the container's settings unless
//! overridden, and hand back its exit code.

use integration::console::{collect_until, read_master, receive_master};
use integration::{procfs, Container};
use serde_json::json;
use std::io::Write;
use std::os::unix::net::UnixListener;

/// A running container whose init sleeps; returns its host pid.
fn running(c: &mut Container) -> i32 {
    c.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.start().assert_ok();
    pid
}

fn exec(c: &Container, args: &[&str]) -> integration::Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    c.rt(&all)
}

#[test]
fn exec_joins_every_namespace_of_the_container() {
    let mut c = Container::new("execns");
    let init = running(&mut c);
    let script = "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done; hostname; echo $$";
    let out = exec(&c, &[&c.id, "sh", "-c", script]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (i, ns) in ["pid", "mnt", "uts", "ipc", "net", "cgroup"]
        .iter()
        .enumerate()
    {
        let init_ns = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(
            lines[i],
            init_ns.to_str().unwrap(),
            "{ns} differs from init's: {out:?}"
        );
        assert_ne!(lines[i], procfs::ns_link(ns), "{ns} is the host's");
    }
    assert_eq!(lines[6], c.config["hostname"].as_str().unwrap());
    let pid_inside: i32 = lines[7].parse().unwrap();
    assert!(
        pid_inside > 1 && pid_inside < 100,
        "pid in the container's pid namespace: {pid_inside}"
    );
}

#[test]
fn exec_exit_code_comes_back() {
    let mut c = Container::new("execcode");
    running(&mut c);
    let out = exec(&c, &[&c.id, "sh", "-c", "exit 42"]);
    assert_eq!(out.code, Some(42), "{out:?}");
    let out = exec(&c, &[&c.id, "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.code, Some(143), "{out:?}");
}

#[test]
fn exec_flags_env_cwd_user_groups() {
    let mut c = Container::new("execflags");
    c.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "KEEP=1", "OVER=old"]);
    running(&mut c);
    let out = exec(
        &c,
        &[
            "-e",
            "OVER=new",
            "-e",
            "ADDED=yes",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1000",
            "--additional-gids",
            "2001",
            &c.id,
            "sh",
            "-c",
            "echo $KEEP $OVER $ADDED; pwd; id -u; id -g; id -G",
        ],
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1 new yes", "{out:?}");
    assert_eq!(lines[1], "/tmp");
    assert_eq!(lines[2], "1000");
    assert_eq!(lines[3], "1000");
    assert!(lines[4].split_whitespace().any(|g| g == "2001"), "{out:?}");
}

#[test]
fn exec_process_json_file() {
    let mut c = Container::new("execprocess");
    running(&mut c);
    let process = json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "echo from-json $X; pwd"],
        "env": ["PATH=/bin", "X=42"],
        "cwd": "/etc"
    });
    let file = c.path("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = exec(&c, &["--process", file.to_str().unwrap(), &c.id]);
    out.assert_ok();
    assert_eq!(out.stdout, "from-json 42\n/etc\n");
}

/// A process.json without `user` runs as root, as runc takes it (engines and scripts
/// write such minimal files).
#[test]
fn exec_process_json_without_user_runs_as_root() {
    let mut c = Container::new("execnouser");
    running(&mut c);
    let process = json!({ "args": ["sh", "-c", "id -u; id -g"], "env": ["PATH=/bin"], "cwd": "/" });
    let file = c.path("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = exec(&c, &["--process", file.to_str().unwrap(), &c.id]);
    out.assert_ok();
    assert_eq!(out.stdout, "0\n0\n");
}

#[test]
fn exec_detached_writes_pid_file() {
    let mut c = Container::new("execdetach");
    let init = running(&mut c);
    let pid_file = c.path("exec.pid");
    let out = exec(
        &c,
        &[
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &c.id,
            "sleep",
            "1000",
        ],
    );
    out.assert_ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track_pid(pid);
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(
        ns(pid),
        ns(init),
        "detached exec is not in the container's pid namespace"
    );
}

#[test]
fn exec_keeps_container_capabilities_and_cap_adds() {
    let mut c = Container::new("execcaps");
    running(&mut c);
    let cap_eff = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap()
    };
    let plain = exec(&c, &[&c.id, "cat", "/proc/self/status"]);
    plain.assert_ok();
    let init = c.rt(&["exec", &c.id, "cat", "/proc/1/status"]);
    init.assert_ok();
    assert_eq!(
        cap_eff(&plain.stdout),
        cap_eff(&init.stdout),
        "exec did not get the container's caps"
    );
    const CAP_SYS_TIME: u64 = 1 << 25;
    assert_eq!(cap_eff(&plain.stdout) & CAP_SYS_TIME, 0);
    let added = exec(
        &c,
        &["--cap", "CAP_SYS_TIME", &c.id, "cat", "/proc/self/status"],
    );
    added.assert_ok();
    assert_ne!(
        cap_eff(&added.stdout) & CAP_SYS_TIME,
        0,
        "--cap CAP_SYS_TIME not granted"
    );
}

#[test]
fn exec_with_console_socket_gets_a_tty() {
    let mut c = Container::new("exectty");
    running(&mut c);
    let sock = c.path("exec-console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let master = receive_master(listener);
    let pid_file = c.path("exec-tty.pid");
    let out = exec(
        &c,
        &[
            "--tty",
            "--detach",
            "--console-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &c.id,
            "sh",
            "-c",
            "tty; read x; echo got:$x; echo END",
        ],
    );
    out.assert_ok();
    c.track_pid(
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    );
    let master = std::fs::File::from(master.join().unwrap());
    let rx = read_master(master.try_clone().unwrap());
    let mut text = String::new();
    collect_until(&rx, &mut text, "/dev/pts/");
    (&master).write_all(b"typed\n").unwrap();
    collect_until(&rx, &mut text, "END");
    assert!(text.contains("got:typed"), "{text:?}");
}

#[test]
fn exec_into_stopped_or_missing_container_fails() {
    let mut c = Container::new("execstopped");
    c.set_args(&["true"]);
    c.create_ok();
    c.start().assert_ok();
    c.wait_status("stopped");
    // 255, as runc's exec: a failure of exec itself, not a status of the process.
    let out = exec(&c, &[&c.id, "true"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    let out = exec(&c, &["no-such-container-xyz", "true"]);
    assert_eq!(out.code, Some(255), "{out:?}");
}

#[test]
fn exec_of_missing_program_fails_with_its_name() {
    let mut c = Container::new("execmissing");
    running(&mut c);
    let out = exec(&c, &[&c.id, "no-such-program"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("no-such-program"), "{out:?}");
}

#[test]
fn exec_joins_the_containers_cgroup() {
    let mut c = Container::new("execcgroup");
    let init = running(&mut c);
    let out = exec(&c, &[&c.id, "sh", "-c", "echo $$; sleep 0.2"]);
    out.assert_ok();
    // Outside view: the exec'd process's cgroups equal init's, hierarchy by hierarchy.
    let init_cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let detached = c.path("cg.pid");
    exec(
        &c,
        &[
            "-d",
            "--pid-file",
            detached.to_str().unwrap(),
            &c.id,
            "sleep",
            "1000",
        ],
    )
    .assert_ok();
    let pid: i32 = std::fs::read_to_string(&detached)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track_pid(pid);
    let exec_cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        exec_cgroups, init_cgroups,
        "exec'd process is outside the container's cgroup"
    );
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused() {
    let mut c = Container::new("execpaused");
    running(&mut c);
    c.rt(&["pause", &c.id]).assert_ok();
    let refused = exec(&c, &[&c.id, "true"]);
    assert_eq!(refused.code, Some(255), "{refused:?}");
    // runc's words, which tools and runc's own suite match.
    assert!(
        refused.stderr.contains("cannot exec in a paused container"),
        "{refused:?}"
    );
    // --ignore-paused: the process is created frozen and cannot exec until the
    // container is resumed, so the runtime call only completes after resume.
    let pid_file = c.path("paused.pid");
    let mut cmd = c.command();
    cmd.args([
        "exec",
        "--ignore-paused",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sleep",
        "1000",
    ]);
    let mut pending = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        pending.try_wait().unwrap().is_none(),
        "exec finished while the container was frozen"
    );
    c.rt(&["resume", &c.id]).assert_ok();
    assert!(
        pending.wait().unwrap().success(),
        "exec --ignore-paused failed after resume"
    );
    c.track_pid(
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    );
    assert_eq!(c.status(), "running");
}

#[test]
fn exec_gets_the_containers_seccomp_filter() {
    let mut c = Container::new("execseccomp");
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": integration::security::native_arches(),
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }]
    });
    running(&mut c);
    let out = exec(
        &c,
        &[
            &c.id,
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; mkdir /tmp/blocked 2>&1; echo rc=$?",
        ],
    );
    out.assert_ok();
    assert!(
        out.stdout.contains("Seccomp:\t2"),
        "no filter on the exec'd process: {out:?}"
    );
    assert!(
        out.stdout.contains("Permission denied") && out.stdout.contains("rc=1"),
        "{out:?}"
    );
}

/// `exec -t` in the foreground without --console-socket relays the caller's terminal.
#[test]
fn exec_tty_in_the_foreground_relays_the_terminal() {
    let mut c = Container::new("exectyrelay");
    running(&mut c);
    let runtime = integration::runtime_path().to_string_lossy().into_owned();
    let root = c.root.to_string_lossy().into_owned();
    let out = integration::engines::run_in_pty(
        &[
            &runtime,
            "--root",
            &root,
            "exec",
            "-t",
            &c.id,
            "sh",
            "-c",
            "tty; stty size; exit 4",
        ],
        &[],
        27,
        99,
        &c.dir,
    );
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stdout.contains("/dev/pts/"), "{out:?}");
    if integration::is_runc() {
        // beyond runc: runc 1.1.5 sizes the pty only after the program has started, so
        // an immediate `stty size` may see 0x0; patina sizes it before the program runs.
        return;
    }
    assert!(out.stdout.contains("27 99"), "{out:?}");
}

/// `exec --cgroup [CONTROLLER:]PATH` runs the process in an existing sub-cgroup of the
/// container's (runc 1.1's flag): "/" is the container's own, ".." and a missing or
/// unknown one are refused.
#[test]
fn exec_into_a_sub_cgroup() {
    let mut c = Container::new("execsubcg");
    c.config["linux"]["cgroupsPath"] = json!(c.id.clone());
    running(&mut c);
    let dirs: Vec<std::path::PathBuf> = procfs::own_cgroup_dirs()
        .into_iter()
        .map(|d| d.join(&c.id))
        .filter(|d| d.is_dir())
        .collect();
    for d in &dirs {
        let sub = d.join("sub");
        std::fs::create_dir(&sub).unwrap();
        // A new v1 cpuset starts empty, and a task cannot join it (ENOSPC).
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if d.join("cpuset.cpus").exists() && !d.join("cgroup.controllers").exists() {
                std::fs::write(sub.join(f), std::fs::read(d.join(f)).unwrap()).unwrap();
            }
        }
    }
    let cat = |flags: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&c.id, "cat", "/proc/self/cgroup"]);
        c.rt(&args)
    };
    let out = cat(&["--cgroup", "sub"]);
    out.assert_ok();
    for line in out.stdout.lines() {
        assert!(
            line.ends_with("/sub"),
            "{line:?} not in the sub-cgroup: {}",
            out.stdout
        );
    }
    let out = cat(&["--cgroup", "/"]);
    out.assert_ok();
    assert!(!out.stdout.contains("/sub"), "{}", out.stdout);
    for bad in ["..", "nonexistent", "whaaat:/"] {
        let out = cat(&["--cgroup", bad]);
        assert_eq!(out.code, Some(255), "--cgroup {bad}: {out:?}");
        // runc's words for each (tools and runc's suite match them).
        let words = match bad {
            ".." => " .. is not a sub cgroup path",
            "nonexistent" => "/nonexistent/cgroup.procs: no such file ",
            _ => "unknown controller ",
        };
        assert!(out.stderr.contains(words), "--cgroup {bad}: {out:?}");
    }
}
