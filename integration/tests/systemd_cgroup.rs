//! `--systemd-cgroup`: the container's cgroup as a transient systemd scope.
//!
//! Most of these need systemd as PID 1 on cgroup v2 (the systemd QEMU guest of
//! integration/systemd-vm); elsewhere each says by name that it skips. The refusal on
//! a host without systemd runs where systemd is absent (the dev host, CI's host).
//! Every test runs the same steps on runc (`PATINA_RUNTIME=/usr/sbin/runc`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use integration::rootless::{make_rootless, TestUser, UserManager};
use integration::runtime::wait_for;
use integration::{is_runc, Container, HostProcess};
use serde_json::json;
use std::os::unix::fs::MetadataExt;

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

/// A rootless container whose scope the user's own systemd makes: cgroupsPath
/// `user.slice:pt:<id>` (podman's rootless form), a memory and a pids limit, the runtime
/// run as `user` with its $XDG_RUNTIME_DIR. With `podman_ns` (a [`podman_like_namespace`])
/// the runtime runs as rootless podman runs it: uid 0 of that user namespace, with no user
/// namespace in the config; else as the user itself with the config's own namespace.
fn user_scoped(
    name: &str,
    user: &TestUser,
    manager: &UserManager,
    podman_ns: Option<&HostProcess>,
) -> (Container, PathBuf) {
    let mut c = Container::new(name);
    if podman_ns.is_none() {
        make_rootless(&mut c.config, user, false);
    }
    c.config["linux"]["cgroupsPath"] = json!(format!("user.slice:pt:{}", c.id));
    c.config["linux"]["resources"] = json!({
        "memory": { "limit": 67108864 },
        "pids": { "limit": 32 }
    });
    c.set_args(&["sleep", "300"]);
    std::fs::create_dir(&c.root).unwrap();
    user.give(&c.root);
    user.give(&c.rootfs);
    let mut wrapper = user.setpriv();
    wrapper.extend(manager.env());
    if let Some(ns) = podman_ns {
        // Every command in the same namespace, as podman's pause process keeps it.
        wrapper.extend([
            "/usr/bin/nsenter".to_owned(),
            format!("--target={}", ns.pid()),
            "--user".to_owned(),
        ]);
    }
    c.wrapper = wrapper;
    let scope = manager
        .cgroup()
        .join(format!("user.slice/pt-{}.scope", c.id));
    (c, scope)
}

/// Rootless podman's user namespace: the user as 0 and its subordinate range from 1, held
/// by a process of the user.
fn podman_like_namespace(user: &TestUser) -> HostProcess {
    let mut argv = user.setpriv();
    argv.extend([
        "/usr/bin/unshare".to_owned(),
        "--user".to_owned(),
        "--map-root-user".to_owned(),
        format!("--map-users={},1,{}", user.subuid.0, user.subuid.1),
        format!("--map-groups={},1,{}", user.subgid.0, user.subgid.1),
        "sleep".to_owned(),
        "600".to_owned(),
    ]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let holder = HostProcess::spawn(&argv);
    let mapped = wait_for(Duration::from_secs(20), || {
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", holder.pid())).ok()?;
        (map.lines().count() == 2).then_some(())
    });
    assert!(mapped.is_some(), "unshare did not map the namespace");
    holder
}

/// How long a runtime command that talks to the user's manager may take. A user manager
/// just started under TCG on a busy host answers slowly: runc 1.1.5 waits up to 30 s for
/// its StartTransientUnit job signal before going on (seen: create killed at the
/// harness's 30 s).
const USER_BUS_TIMEOUT: Duration = Duration::from_secs(120);

/// The runtime with `args` (`--systemd-cgroup` first), allowed [`USER_BUS_TIMEOUT`].
fn sd_user(c: &Container, args: &[&str]) -> integration::Output {
    let mut cmd = c.command();
    cmd.arg("--systemd-cgroup").args(args);
    integration::runtime::exec(&mut cmd, &c.dir, USER_BUS_TIMEOUT)
}

/// The steps both rootless cases share: create in a scope of the user's manager with the
/// limits in its (delegated) files, start, exec, kill, delete, and the scope gone.
fn rootless_scope_lifecycle(c: &mut Container, manager: &UserManager, scope: &Path) {
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let id = c.id.clone();
    let out = sd_user(c, &["create", "--bundle", &bundle, &id]);
    out.assert_ok();
    let pid = c.pid();
    c.track_pid(pid);
    let unit = format!("pt-{}.scope", c.id);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = scope.strip_prefix("/sys/fs/cgroup").unwrap();
    assert_eq!(own.trim(), format!("0::/{}", rel.display()));
    assert_eq!(read(scope, "memory.max"), "67108864");
    assert_eq!(read(scope, "pids.max"), "32");
    // The user's manager made it, delegated: the user owns the scope's files.
    let meta = std::fs::metadata(scope.join("cgroup.procs")).unwrap();
    assert_eq!(meta.uid(), manager.uid, "owner of {}", scope.display());
    assert_eq!(
        manager.systemctl(&[
            "show",
            &unit,
            "-p",
            "ActiveState,Delegate,MemoryMax,TasksMax"
        ]),
        // systemctl shows them in its own order.
        "Delegate=yes\nMemoryMax=67108864\nTasksMax=32\nActiveState=active"
    );
    sd_user(c, &["start", &id]).assert_ok();
    c.wait_status("running");
    // The caller (this test's cgroup, root's) cannot move a process into the user's
    // subtree (the common ancestor's cgroup.procs is root's): the exec'd process stays
    // in the caller's cgroup, on runc as on patina. In the container's cgroup namespace
    // (the podman-like config has one) that is a path above its root, `/` being the scope.
    let exec = sd_user(c, &["exec", &id, "cat", "/proc/self/cgroup"]);
    exec.assert_ok();
    let seen = exec.stdout.trim();
    let cgroupns = c.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup");
    if cgroupns {
        assert!(seen.starts_with("0::/.."), "{exec:?}");
    } else {
        let caller = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        assert_eq!(seen, caller.trim(), "exec'd process's cgroup");
    }
    sd_user(c, &["kill", &id, "KILL"]).assert_ok();
    c.wait_status("stopped");
    sd_user(c, &["delete", &id]).assert_ok();
    let gone = wait_for(Duration::from_secs(60), || (!scope.exists()).then_some(()));
    assert!(gone.is_some(), "{} left", scope.display());
    assert_eq!(
        manager.systemctl(&["show", &unit, "-p", "LoadState", "--value"]),
        "not-found",
        "unit left"
    );
}

#[test]
fn rootless_user_gets_a_scope_of_its_own_systemd() {
    if !needs_systemd("rootless_user_gets_a_scope_of_its_own_systemd") {
        return;
    }
    let user = TestUser::create();
    let manager = UserManager::start(&user);
    let (mut c, scope) = user_scoped("sduser", &user, &manager, None);
    rootless_scope_lifecycle(&mut c, &manager, &scope);
}

#[test]
fn rootless_podmans_uid_0_reaches_the_users_bus_as_the_user() {
    if !needs_systemd("rootless_podmans_uid_0_reaches_the_users_bus_as_the_user") {
        return;
    }
    // The runtime is uid 0 of a user namespace: the user's bus sees the host uid on the
    // socket and refuses a client claiming 0 (EXTERNAL authentication).
    let user = TestUser::create();
    let manager = UserManager::start(&user);
    let ns = podman_like_namespace(&user);
    let (mut c, scope) = user_scoped("sdpodmanns", &user, &manager, Some(&ns));
    rootless_scope_lifecycle(&mut c, &manager, &scope);
}

#[test]
fn rootless_without_a_user_manager_is_refused_by_name() {
    if !needs_systemd("rootless_without_a_user_manager_is_refused_by_name") {
        return;
    }
    // No login and no lingering: no user@<uid>.service, nothing delegated to the user.
    let user = TestUser::create();
    let mut c = Container::new("sdnomanager");
    make_rootless(&mut c.config, &user, false);
    c.config["linux"]["cgroupsPath"] = json!(format!("user.slice:pt:{}", c.id));
    std::fs::create_dir(&c.root).unwrap();
    user.give(&c.root);
    user.give(&c.rootfs);
    c.wrapper = user.setpriv();
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = sd(&c, &["create", "--bundle", &bundle, &c.id]);
    // runc fails too: it finds no session bus address.
    c.assert_rejected(
        &out,
        &[
            "--systemd-cgroup",
            "not writable",
            &format!("user@{}.service", user.uid),
        ],
    );
    let slice = format!("/sys/fs/cgroup/user.slice/user-{}.slice", user.uid);
    assert!(!Path::new(&slice).exists(), "{slice} made");
}
