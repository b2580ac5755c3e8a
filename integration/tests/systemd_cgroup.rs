//! `--systemd-cgroup`: the container's cgroup as a transient systemd scope.
//!
//! Most of these need systemd as PID 1 on cgroup v2 (the systemd QEMU guest of
//! integration/systemd-vm); elsewhere each says by name that it skips. The refusal on
//! a host without systemd runs where systemd is absent (the dev host, CI's host).
//! Every test runs the same steps on runc (`PATINA_RUNTIME=/usr/sbin/runc`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use integration::runtime::wait_for;
use integration::{is_runc, Container};
use serde_json::json;

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether the test can run here; says so by name when it cannot.
fn needs_systemd(test: &str) -> bool {
    if systemd_running() {
        return true;
    }
    eprintln!("{test}: SKIPPED: systemd is not running on this host (no /run/systemd/system); runs in the systemd guest (make test-systemd)");
    false
}

fn systemctl(args: &[&str]) -> String {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `systemctl show UNIT -p P` as its value.
fn show(unit: &str, prop: &str) -> String {
    systemctl(&["show", unit, "-p", prop, "--value"])
        .trim()
        .to_owned()
}

/// Scope units (any state) whose name contains `needle`.
fn scopes_named(needle: &str) -> Vec<String> {
    systemctl(&[
        "list-units",
        "--type=scope",
        "--all",
        "--no-legend",
        "--plain",
    ])
    .lines()
    .filter(|l| l.contains(needle))
    .map(str::to_owned)
    .collect()
}

fn scope_dir(unit: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/system.slice").join(unit)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_owned()
}

/// A container whose cgroupsPath is `system.slice:pt:<id>` (unit `pt-<id>.scope`).
fn scoped(name: &str) -> (Container, String) {
    let mut c = Container::new(name);
    c.config["linux"]["cgroupsPath"] = json!(format!("system.slice:pt:{}", c.id));
    let unit = format!("pt-{}.scope", c.id);
    (c, unit)
}

fn sd(c: &Container, args: &[&str]) -> integration::Output {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    c.rt(&all)
}

#[test]
fn systemd_cgroup_without_systemd_is_refused_with_a_reason() {
    if systemd_running() {
        eprintln!("systemd_cgroup_without_systemd_is_refused_with_a_reason: SKIPPED: systemd runs on this host (the refusal is for hosts without it)");
        return;
    }
    let (mut c, _) = scoped("sdnosystemd");
    c.set_args(&["true"]);
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = c.rt(&["--systemd-cgroup", "run", "--bundle", &bundle, &c.id]);
    // runc fails too ("systemd not running on this host, cannot use systemd cgroups manager").
    c.assert_rejected(&out, &["--systemd-cgroup", "systemd is not running"]);
}

#[test]
fn lifecycle_in_a_scope_under_its_slice() {
    if !needs_systemd("lifecycle_in_a_scope_under_its_slice") {
        return;
    }
    let (mut c, unit) = scoped("sdlife");
    c.config["linux"]["resources"] = json!({
        "memory": { "limit": 268435456 },
        "cpu": { "quota": 50000, "period": 100000, "shares": 1024 },
        "pids": { "limit": 64 }
    });
    c.set_args(&["sleep", "300"]);
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = sd(&c, &["create", "--bundle", &bundle, &c.id]);
    out.assert_ok();
    let pid = c.pid();
    c.track_pid(pid);

    // The scope exists under system.slice, with init in it, delegated, with the limits
    // in systemd's view and in the files.
    assert_eq!(show(&unit, "Slice"), "system.slice");
    assert_eq!(show(&unit, "Delegate"), "yes");
    assert_eq!(show(&unit, "MemoryMax"), "268435456");
    assert_eq!(show(&unit, "TasksMax"), "64");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");
    let dir = scope_dir(&unit);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(own.trim(), format!("0::/system.slice/{unit}"));
    assert_eq!(read(&dir, "memory.max"), "268435456");
    assert_eq!(read(&dir, "pids.max"), "64");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(read(&dir, "cpu.weight"), "39");

    // Later commands without the flag, as podman sends them.
    c.start().assert_ok();
    c.wait_status("running");
    let ps = c.rt(&["ps", "--format", "json", &c.id]);
    ps.assert_ok();
    assert!(ps.stdout.contains(&pid.to_string()), "{ps:?}");
    let exec = c.rt(&["exec", &c.id, "cat", "/proc/self/cgroup"]);
    exec.assert_ok();
    assert_eq!(
        exec.stdout.trim(),
        "0::/",
        "exec'd process in the scope's namespace"
    );

    c.rt(&["pause", &c.id]).assert_ok();
    assert_eq!(c.status(), "paused");
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    c.rt(&["resume", &c.id]).assert_ok();
    assert_eq!(c.status(), "running");

    c.rt(&[
        "update",
        "--memory",
        "536870912",
        "--pids-limit",
        "128",
        &c.id,
    ])
    .assert_ok();
    assert_eq!(read(&dir, "memory.max"), "536870912");
    assert_eq!(read(&dir, "pids.max"), "128");
    assert_eq!(show(&unit, "MemoryMax"), "536870912");
    assert_eq!(show(&unit, "TasksMax"), "128");

    let stats = c.rt(&["events", "--stats", &c.id]);
    stats.assert_ok();
    let v: serde_json::Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert!(
        v["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );

    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    // docker's shim: `delete --force` without --systemd-cgroup.
    c.delete(true).assert_ok();
    let gone = wait_for(Duration::from_secs(10), || {
        scopes_named(&c.id).is_empty().then_some(())
    });
    assert!(gone.is_some(), "unit left: {:?}", scopes_named(&c.id));
    assert!(!dir.exists(), "{} left", dir.display());
}

#[test]
fn run_exits_with_the_code_and_leaves_no_unit() {
    if !needs_systemd("run_exits_with_the_code_and_leaves_no_unit") {
        return;
    }
    let (mut c, unit) = scoped("sdrun");
    c.set_sh("exit 7");
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = sd(&c, &["run", "--bundle", &bundle, &c.id]);
    assert_eq!(out.code, Some(7), "{out:?}");
    assert!(c.state().is_none(), "run left the container");
    let gone = wait_for(Duration::from_secs(10), || {
        scopes_named(&unit).is_empty().then_some(())
    });
    assert!(gone.is_some(), "unit left: {:?}", scopes_named(&unit));
}

#[test]
fn nested_slice_is_expanded() {
    if !needs_systemd("nested_slice_is_expanded") {
        return;
    }
    let mut c = Container::new("sdnested");
    let slice = format!("pt-{}.slice", c.id.replace('-', "_"));
    c.config["linux"]["cgroupsPath"] = json!(format!("{slice}:pt:{}", c.id));
    c.set_args(&["sleep", "300"]);
    let unit = format!("pt-{}.scope", c.id);
    let out = {
        c.write_config();
        let bundle = c.bundle.to_str().unwrap().to_owned();
        sd(&c, &["create", "--bundle", &bundle, &c.id])
    };
    out.assert_ok();
    let pid = c.pid();
    c.track_pid(pid);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // pt-x.slice is a child of pt.slice, as systemd nests a-b.slice in a.slice.
    assert_eq!(own.trim(), format!("0::/pt.slice/{slice}/{unit}"));
    c.delete(true).assert_ok();
    let _ = systemctl(&["stop", &slice]);
}

#[test]
fn bad_cgroups_paths_are_refused_and_leave_no_unit() {
    if !needs_systemd("bad_cgroups_paths_are_refused_and_leave_no_unit") {
        return;
    }
    for (i, path) in [
        "bad--x.slice:pt:ID",
        "system.slice:pt",
        "/not/systemd/form",
        "system:pt:ID",
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Container::new(&format!("sdbad{i}"));
        c.config["linux"]["cgroupsPath"] = json!(path.replace("ID", &c.id));
        c.write_config();
        let bundle = c.bundle.to_str().unwrap().to_owned();
        let out = sd(&c, &["create", "--bundle", &bundle, &c.id]);
        c.assert_rejected(&out, &["linux.cgroupsPath"]);
        assert!(
            scopes_named(&c.id).is_empty(),
            "{path}: {:?}",
            scopes_named(&c.id)
        );
    }
}

#[test]
fn an_active_unit_of_the_same_name_is_not_taken_over() {
    if !needs_systemd("an_active_unit_of_the_same_name_is_not_taken_over") {
        return;
    }
    let (mut c, unit) = scoped("sdtaken");
    // Someone else's live scope with the container's unit name.
    let mut other = Command::new("systemd-run")
        .args(["--scope", "--quiet", "--unit", &unit, "sleep", "300"])
        .spawn()
        .expect("systemd-run");
    let up = wait_for(Duration::from_secs(20), || {
        (show(&unit, "ActiveState") == "active").then_some(())
    });
    assert!(up.is_some(), "{unit} did not start");
    c.set_args(&["true"]);
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = sd(&c, &["create", "--bundle", &bundle, &c.id]);
    let still = show(&unit, "ActiveState");
    if is_runc() {
        // beyond runc: runc 1.1.5 puts the container in the other scope (it warns that the
        // cgroup is not empty), and its delete then stops that scope with its processes.
        out.assert_ok();
        c.delete(true).assert_ok();
    } else {
        c.assert_rejected(&out, &[unit.as_str(), "UnitExists", "another container"]);
    }
    let _ = other.kill();
    let _ = other.wait();
    let _ = systemctl(&["stop", &unit]);
    assert_eq!(still, "active", "the other scope was stopped by create");
}
