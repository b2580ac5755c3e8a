//! containerd-shim-patina-v2 under a real containerd (Debian's 1.6): `ctr` drives the
//! whole runtime v2 flow through the shim. See integration/src/containerd.rs for the
//! private containerd and which runtime binary the shim drives.

use integration::containerd::{children_named, mounts_under, Containerd};
use integration::procfs;
use integration::runtime::wait_for;
use std::time::Duration;

/// The tty and its size: ctr sets the size after Start returns, so the size is polled.
const SIZE: &str = "tty; for i in 1 2 3 4 5 6 7 8 9 10; do s=$(stty size 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != '0 0' ] && break; sleep 0.2; done; echo $s";

#[test]
fn shim_runs_a_container_and_returns_output_and_exit_codes() {
    let c = Containerd::start("run");
    let out = c.run(&["--rm"], "echo", &["echo", "hi"]);
    out.assert_ok();
    assert_eq!(out.stdout, "hi\n");
    let out = c.run(&["--rm"], "exit7", &["sh", "-c", "echo err >&2; exit 7"]);
    assert_eq!(out.code, Some(7), "{out:#?}");
    assert_eq!(out.stderr, "err\n");
    // A process that exits at once still reports its output and exit.
    let out = c.run(&["--rm"], "fast", &["sh", "-c", "printf fast; exit 3"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(3), "fast"),
        "{out:#?}"
    );
    // --rm left no task, container, mount or shim behind.
    assert_eq!(c.ctr(&["tasks", "ls", "-q"]).stdout, "");
    assert!(mounts_under(&format!("{}/", c.dir.display())).is_empty());
    assert!(wait_for(Duration::from_secs(5), || c
        .shim_pids()
        .is_empty()
        .then_some(()))
    .is_some());
}

#[test]
fn shim_relays_stdin_and_large_output() {
    let c = Containerd::start("stdio");
    let out = c.ctr_stdin(
        &c.run_argv(&["--rm"], "cat", &["cat"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        b"data\n",
    );
    out.assert_ok();
    assert_eq!(out.stdout, "data\n");
    let out = c.run(
        &["--rm"],
        "big",
        &["sh", "-c", "head -c 10000000 /dev/zero | tr '\\0' x"],
    );
    out.assert_ok();
    assert_eq!(out.stdout.len(), 10_000_000);
    assert!(out.stdout.bytes().all(|b| b == b'x'));
}

#[test]
fn shim_gives_a_terminal_with_its_size() {
    let c = Containerd::start("tty");
    let argv = c.run_argv(&["--rm", "-t"], "tty", &["sh", "-c", SIZE]);
    // script(1) gives ctr a terminal of 40x100, which ctr copies to the container's pty.
    let line = format!("stty rows 40 cols 100; {}", c.ctr_line(&argv));
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    let out = integration::runtime::exec(&mut cmd, &c.dir, Duration::from_secs(30));
    out.assert_ok();
    assert!(out.stdout.contains("/dev/pts/0"), "{out:#?}");
    assert!(out.stdout.contains("40 100"), "{out:#?}");
}

/// A detached `sleep` container, its init pid.
fn detached(c: &Containerd, id: &str) -> i32 {
    c.run(&["-d"], id, &["sleep", "1000"]).assert_ok();
    let out = c.ctr(&["tasks", "ls"]);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(line.contains("RUNNING"), "{line}");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn status(c: &Containerd, id: &str) -> String {
    let out = c.ctr(&["tasks", "ls"]);
    out.stdout
        .lines()
        .find(|l| l.starts_with(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

#[test]
fn shim_exec_pause_resume_ps_metrics_update_kill_delete() {
    let c = Containerd::start("task");
    let pid = detached(&c, "t1");

    let out = c.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        "t1",
        "sh",
        "-c",
        "echo in; exit 4",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(4), "in\n"),
        "{out:#?}"
    );
    let out = c.ctr_stdin(
        &["tasks", "exec", "--exec-id", "e2", "t1", "cat"],
        b"piped\n",
    );
    assert_eq!(out.stdout, "piped\n", "{out:#?}");
    let line = format!(
        "stty rows 30 cols 90; {}",
        c.ctr_line(&[
            "tasks".into(),
            "exec".into(),
            "-t".into(),
            "--exec-id".into(),
            "e3".into(),
            "t1".into(),
            "sh".into(),
            "-c".into(),
            SIZE.into()
        ])
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    let out = integration::runtime::exec(&mut cmd, &c.dir, Duration::from_secs(30));
    assert!(
        out.stdout.contains("/dev/pts/") && out.stdout.contains("30 90"),
        "{out:#?}"
    );

    c.ctr(&["tasks", "pause", "t1"]).assert_ok();
    assert_eq!(status(&c, "t1"), "PAUSED");
    c.ctr(&["tasks", "resume", "t1"]).assert_ok();
    assert_eq!(status(&c, "t1"), "RUNNING");

    let out = c.ctr(&["tasks", "ps", "t1"]);
    out.assert_ok();
    assert!(out.stdout.contains(&pid.to_string()), "{out:#?}");

    let out = c.ctr(&["tasks", "metrics", "--format", "json", "t1"]);
    out.assert_ok();
    let m: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"));
    let text = m.to_string();
    assert!(text.contains("memory") || text.contains("Memory"), "{text}");
    assert!(text.contains("pids") || text.contains("Pids"), "{text}");

    // ctr 1.6 has no `tasks update`: Update is checked through the Task API directly
    // (shim_v3_client_lifecycle).

    c.ctr(&["tasks", "kill", "-s", "SIGKILL", "t1"]).assert_ok();
    assert!(
        wait_for(Duration::from_secs(10), || (status(&c, "t1") == "STOPPED")
            .then_some(()))
        .is_some()
    );
    c.ctr(&["tasks", "delete", "t1"]).assert_ok();
    c.ctr(&["containers", "delete", "t1"]).assert_ok();
    assert!(!procfs::pid_alive(pid));
    assert!(wait_for(Duration::from_secs(5), || c
        .shim_pids()
        .is_empty()
        .then_some(()))
    .is_some());
}

#[test]
fn shim_events_arrive_in_order() {
    let c = Containerd::start("events");
    let mut events = c.ctr_command();
    events.arg("events");
    let log = c.dir.join("events.txt");
    let mut child = events
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    detached(&c, "ev");
    c.ctr(&["tasks", "exec", "--exec-id", "x1", "ev", "true"])
        .assert_ok();
    c.ctr(&["tasks", "pause", "ev"]).assert_ok();
    c.ctr(&["tasks", "resume", "ev"]).assert_ok();
    c.ctr(&["tasks", "kill", "-s", "SIGKILL", "ev"]).assert_ok();
    assert!(
        wait_for(Duration::from_secs(10), || (status(&c, "ev") == "STOPPED")
            .then_some(()))
        .is_some()
    );
    c.ctr(&["tasks", "delete", "ev"]).assert_ok();
    c.ctr(&["containers", "delete", "ev"]).assert_ok();
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let topics: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|t| t.starts_with("/tasks/"))
        .collect();
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/paused",
            "/tasks/resumed",
            "/tasks/exit",
            "/tasks/delete"
        ],
        "{text}"
    );
}

#[test]
fn shim_keeps_containers_across_a_containerd_restart() {
    let mut c = Containerd::start("restart");
    let pid = detached(&c, "r1");
    let shims = c.shim_pids();
    c.stop();
    assert!(procfs::pid_alive(pid), "the container died with containerd");
    c.boot();
    assert_eq!(status(&c, "r1"), "RUNNING");
    assert_eq!(c.shim_pids(), shims);
    let out = c.ctr(&["tasks", "exec", "--exec-id", "after", "r1", "echo", "still"]);
    assert_eq!(out.stdout, "still\n", "{out:#?}");
    c.ctr(&["tasks", "kill", "-s", "SIGKILL", "r1"]).assert_ok();
    assert!(
        wait_for(Duration::from_secs(10), || (status(&c, "r1") == "STOPPED")
            .then_some(()))
        .is_some()
    );
    c.ctr(&["tasks", "delete", "r1"]).assert_ok();
    c.ctr(&["containers", "delete", "r1"]).assert_ok();
}

#[test]
fn shim_killed_leaves_nothing_after_containerd_cleans_up() {
    let c = Containerd::start("kill9");
    let pid = detached(&c, "k1");
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1, "one shim per container");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shims[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    integration::container::reap(shims[0], Duration::from_secs(5));
    // containerd notices the lost shim and runs `shim delete`: the container is killed.
    assert!(
        wait_for(Duration::from_secs(20), || (!procfs::pid_alive(pid))
            .then_some(()))
        .is_some(),
        "the container outlived its shim: {}",
        c.tail()
    );
    integration::container::reap(pid, Duration::from_secs(5));
    assert!(
        wait_for(Duration::from_secs(10), || (status(&c, "k1") != "RUNNING")
            .then_some(()))
        .is_some()
    );
    let _ = c.ctr(&["tasks", "delete", "k1"]);
    c.ctr(&["containers", "delete", "k1"]).assert_ok();
    let bundle = c.task_dir().join("k1");
    assert!(
        wait_for(Duration::from_secs(10), || (!bundle.exists()).then_some(())).is_some(),
        "{}",
        bundle.display()
    );
    assert!(mounts_under(&format!("{}/", c.dir.display()))
        .iter()
        .all(|m| !m.contains("/k1")));
    let runtime_state = c
        .dir
        .join("state/patina")
        .join(integration::containerd::NS)
        .join("k1");
    assert!(!runtime_state.exists());
    assert!(children_named("sleep").is_empty());
}

#[test]
fn shim_serves_a_group_of_containers_from_one_process() {
    let c = Containerd::start("group");
    let group = "io.containerd.runc.v2.group=pod1";
    c.run(&["-d", "--annotation", group], "g1", &["sleep", "1000"])
        .assert_ok();
    c.run(&["-d", "--annotation", group], "g2", &["sleep", "1000"])
        .assert_ok();
    c.run(&["-d"], "solo", &["sleep", "1000"]).assert_ok();
    assert_eq!(
        c.shim_pids().len(),
        2,
        "one shim for the group, one for solo"
    );
    for id in ["g1", "g2", "solo"] {
        assert_eq!(status(&c, id), "RUNNING");
        c.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).assert_ok();
        assert!(
            wait_for(Duration::from_secs(10), || (status(&c, id) == "STOPPED")
                .then_some(()))
            .is_some()
        );
        c.ctr(&["tasks", "delete", id]).assert_ok();
        c.ctr(&["containers", "delete", id]).assert_ok();
        if id == "g1" {
            // The group's shim stays for g2.
            assert_eq!(c.shim_pids().len(), 2);
        }
    }
    assert!(wait_for(Duration::from_secs(5), || c
        .shim_pids()
        .is_empty()
        .then_some(()))
    .is_some());
}

/// TaskOOM: a container killed by its memory limit is reported to containerd.
#[test]
fn shim_reports_oom_kills() {
    let c = Containerd::start("oom");
    let log = c.dir.join("oom-events.txt");
    let mut events = c.ctr_command();
    let mut child = events
        .arg("events")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = c.run(
        &["--rm", "--memory-limit", "16777216"],
        "oomer",
        &["sh", "-c", "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done"],
    );
    assert_eq!(out.code, Some(137), "not OOM-killed: {out:?}");
    let seen = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("/tasks/oom"))
    });
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.unwrap_or_else(|| std::fs::read_to_string(&log).unwrap_or_default());
    assert!(text.contains("/tasks/oom"), "no TaskOOM event: {text}");
}
