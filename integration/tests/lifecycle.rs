//! create / start / kill / delete / run, and operations in the wrong state.

use integration::Container;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn wait_file(p: &Path) -> bool {
    integration::runtime::wait_for(Duration::from_secs(10), || p.exists().then_some(())).is_some()
}

#[test]
fn create_start_kill_delete() {
    let mut c = Container::new("lifecycle");
    c.set_sh("touch /started; exec sleep 1000");
    let pid = c.create_ok();
    let st = c.state_ok();
    assert_eq!(st["status"], "created", "{st}");
    assert!(pid > 0);
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "container pid {pid} not in /proc"
    );
    // The user program must not have run yet.
    std::thread::sleep(Duration::from_millis(100));
    let marker = c.rootfs.join("started");
    assert!(!marker.exists(), "user program ran before start");

    c.start().assert_ok();
    assert!(wait_file(&marker), "user program did not run after start");
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "pid changed across start");

    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    assert!(!c.root.join(&c.id).exists(), "state dir left after delete");
    c.rt(&["state", &c.id]).assert_failed();
    assert!(
        integration::container::reap(pid, Duration::from_secs(5)),
        "pid {pid} still alive"
    );
}

#[test]
fn kill_by_name_prefixed_name_and_number() {
    for sig in ["KILL", "SIGKILL", "9"] {
        let mut c = Container::new("killsig");
        c.set_args(&["sleep", "1000"]);
        let pid = c.create_ok();
        c.start().assert_ok();
        assert_eq!(c.status(), "running");
        c.kill(sig).assert_ok();
        c.wait_status("stopped");
        assert!(
            integration::container::reap(pid, Duration::from_secs(5)),
            "kill {sig}: pid {pid} alive"
        );
        c.delete(false).assert_ok();
    }
}

/// Signal 0 asks whether the container is alive and delivers nothing (runc: `kill ID 0`,
/// what its kill.bats uses to check a detached container): it succeeds while the process
/// lives, leaves it running, and fails once it has stopped (but with --all, as runc).
#[test]
fn kill_signal_zero_checks_the_container_is_alive() {
    let mut c = Container::new("killzero");
    c.set_sh(
        "trap 'touch /got-signal' HUP INT TERM USR1; touch /ready; while true; do sleep 0.05; done",
    );
    c.create_ok();
    c.start().assert_ok();
    assert!(wait_file(&c.rootfs.join("ready")));
    c.kill("0").assert_ok();
    c.rt(&["kill", "--all", &c.id, "0"]).assert_ok();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.status(), "running");
    assert!(
        !c.rootfs.join("got-signal").exists(),
        "signal 0 was delivered"
    );
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.kill("0").assert_failed();
    // With --all, what is left in the cgroup (nothing here) is signalled: runc succeeds.
    c.rt(&["kill", "--all", &c.id, "0"]).assert_ok();
    c.rt(&["kill", "--all", &c.id, "KILL"]).assert_ok();
    assert_eq!(c.status(), "stopped");
}

#[test]
fn kill_default_signal_is_term() {
    let mut c = Container::new("killterm");
    // pid 1 of a pid namespace ignores signals it has no handler for: trap TERM.
    c.set_sh("trap 'touch /got-term; exit 7' TERM; touch /ready; while true; do sleep 0.05; done");
    c.create_ok();
    c.start().assert_ok();
    assert!(wait_file(&c.rootfs.join("ready")));
    c.rt(&["kill", &c.id]).assert_ok();
    c.wait_status("stopped");
    assert!(
        c.rootfs.join("got-term").exists(),
        "default signal was not SIGTERM"
    );
}

#[test]
fn start_twice_fails() {
    let mut c = Container::new("starttwice");
    c.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start().assert_ok();
    c.start().assert_failed();
    assert_eq!(c.status(), "running");
}

#[test]
fn start_stopped_fails_and_kill_stopped_fails() {
    let mut c = Container::new("startstopped");
    c.set_args(&["true"]);
    c.create_ok();
    c.start().assert_ok();
    c.wait_status("stopped");
    c.start().assert_failed();
    c.kill("KILL").assert_failed();
    assert_eq!(c.status(), "stopped");
    c.delete(false).assert_ok();
}

#[test]
fn delete_running_requires_force() {
    let mut c = Container::new("delrunning");
    c.set_args(&["sleep", "1000"]);
    let out = c.run_with(&["--detach"]);
    out.assert_ok();
    let pid = c.pid();
    assert_eq!(c.status(), "running");
    c.delete(false).assert_failed();
    assert_eq!(c.status(), "running", "failed delete changed the container");
    assert!(integration::procfs::pid_alive(pid));
    c.delete(true).assert_ok();
    assert!(
        c.state().is_none(),
        "state still answers after delete --force"
    );
    assert!(
        integration::container::reap(pid, Duration::from_secs(5)),
        "pid {pid} alive after delete --force"
    );
}

#[test]
fn delete_force_created() {
    let mut c = Container::new("delcreated");
    c.set_sh("touch /started");
    let pid = c.create_ok();
    c.delete(true).assert_ok();
    assert!(c.state().is_none());
    assert!(integration::container::reap(pid, Duration::from_secs(5)));
    assert!(
        !c.rootfs.join("started").exists(),
        "user program ran although never started"
    );
}

#[test]
fn delete_created_without_force() {
    // A created (never started) container may be deleted without --force.
    let mut c = Container::new("delcreated2");
    c.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.delete(false).assert_ok();
    assert!(c.state().is_none());
    assert!(integration::container::reap(pid, Duration::from_secs(5)));
}

#[test]
fn run_foreground_waits_and_removes() {
    let mut c = Container::new("runfg");
    let t = std::time::Instant::now();
    let out = c.sh("sleep 0.3; echo done; exit 5");
    assert_eq!(out.code, Some(5), "{out:?}");
    assert_eq!(out.stdout, "done\n");
    assert!(t.elapsed() >= Duration::from_millis(300));
    // A container run in the foreground is deleted when it exits.
    assert!(c.state().is_none(), "container still exists after run");
}

#[test]
fn run_detach() {
    let mut c = Container::new("rundetach");
    c.set_sh("echo hello-detached; exec sleep 1000");
    let t = std::time::Instant::now();
    c.run_with(&["--detach"]).assert_ok();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "run --detach did not return promptly"
    );
    assert_eq!(c.status(), "running");
    let pid = c.pid();
    assert!(integration::procfs::pid_alive(pid));
}

#[test]
fn pid_file_matches_state() {
    let mut c = Container::new("pidfile");
    c.set_args(&["sleep", "1000"]);
    let pf = c.path("pidfile");
    c.create_with(&["--pid-file", pf.to_str().unwrap()])
        .assert_ok();
    let text = std::fs::read_to_string(&pf).expect("pid file written");
    assert_eq!(
        text.trim().parse::<i32>().expect("pid file is a number"),
        c.pid()
    );

    let mut d = Container::new("pidfile_run");
    d.set_args(&["sleep", "1000"]);
    let pf = d.path("pidfile");
    d.run_with(&["--detach", "--pid-file", pf.to_str().unwrap()])
        .assert_ok();
    let text = std::fs::read_to_string(&pf).expect("pid file written");
    assert_eq!(text.trim().parse::<i32>().unwrap(), d.pid());
}

#[test]
fn kill_all() {
    // Without a pid namespace, killing init does not kill the other processes
    // of the container: `kill --all` must.
    let mut c = Container::new("killall");
    integration::spec::remove_namespace(&mut c.config, "pid");
    c.set_sh("sleep 1000 & echo $! > /child; exec sleep 1000");
    let pid = c.create_ok();
    c.start().assert_ok();
    let child_file = c.rootfs.join("child");
    assert!(wait_file(&child_file));
    let child: i32 = integration::runtime::wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&child_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .expect("child pid");
    c.track_pid(child);
    assert!(integration::procfs::pid_alive(child));
    c.rt(&["kill", "--all", &c.id, "KILL"]).assert_ok();
    c.wait_status("stopped");
    assert!(integration::container::reap(pid, Duration::from_secs(5)));
    assert!(
        integration::container::reap(child, Duration::from_secs(5)),
        "kill --all left child {child}"
    );
}

#[test]
fn state_of_unknown_container_fails() {
    let c = Container::new("stateunknown");
    c.rt(&["state", "no-such-container"]).assert_failed();
    c.rt(&["start", "no-such-container"]).assert_failed();
    c.rt(&["kill", "no-such-container", "KILL"]).assert_failed();
    c.rt(&["delete", "no-such-container"]).assert_failed();
}

/// `run --keep` waits for the process and leaves the container stopped, with its cgroup,
/// for the caller to inspect and delete (runc's `--keep`).
#[test]
fn run_keep_leaves_the_stopped_container_and_its_cgroup() {
    let mut c = Container::new("runkeep");
    // The fixture checks and removes <own cgroup>/<id> (or the systemd driver's scope)
    // at teardown.
    if !integration::systemd_driver() {
        c.config["linux"]["cgroupsPath"] = json!(c.id.clone());
    }
    c.set_sh("echo kept > /out; exit 3");
    let out = c.run_with(&["--keep"]);
    assert_eq!(out.code, Some(3), "{out:#?}");
    assert_eq!(c.status(), "stopped");
    // Under the systemd driver the scope ends with its last process and systemd removes
    // its cgroup (runc's too): only the container is kept.
    let dirs: Vec<_> = if integration::systemd_driver() {
        eprintln!("run_keep_leaves_the_stopped_container_and_its_cgroup: the cgroup part is cgroupfs only");
        vec![]
    } else {
        integration::procfs::own_cgroup_dirs()
            .into_iter()
            .map(|d| d.join(&c.id))
            .collect()
    };
    assert!(!dirs.is_empty() || integration::systemd_driver());
    for d in &dirs {
        assert!(d.is_dir(), "{} is gone after run --keep", d.display());
    }
    c.delete(false).assert_ok();
    assert!(c.state().is_none(), "delete left the container");
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
}
