//! Rootless: the runtime run by an unprivileged user (`setpriv` to a user each test makes,
//! with its own /etc/subuid and /etc/subgid ranges, removed after), as runc's
//! `--rootless` mode runs (docs/rootless.md).
//!
//! This host is cgroup v1 hybrid without systemd: no cgroup is delegated to a user unless
//! a test delegates one itself (chown of a directory below the test's own cgroup in every
//! hierarchy, the runtime started inside it). Without one the container runs without a
//! cgroup, and limits are refused.

use integration::rootless::{make_rootless, TestUser};
use integration::{is_runc, spec, Container};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// A fixture whose runtime runs as `user`, with a rootless config (maps of the user's own
/// ids, plus its subordinate ranges if `ranges`); the rootfs and `--root` are the user's.
fn rootless_container(name: &str, user: &TestUser, ranges: bool) -> Container {
    let mut c = Container::new(name);
    make_rootless(&mut c.config, user, ranges);
    std::fs::create_dir(&c.root).unwrap();
    user.give(&c.root);
    user.give(&c.rootfs);
    c.wrapper = user.setpriv();
    c
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn single_mapping_runs_busybox_as_root_of_its_namespace() {
    let user = TestUser::create();
    let mut c = rootless_container("rlsingle", &user, false);
    let out = c.sh_ok(
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
         touch /made; stat -c %u:%g /made /bin/busybox",
    );
    assert_eq!(
        lines(&out),
        [
            "0".to_owned(),
            "0".to_owned(),
            format!("0 {} 1", user.uid),
            format!("0 {} 1", user.gid),
            // The kernel takes the user's own gid map only with setgroups denied.
            "deny".to_owned(),
            "0:0".to_owned(),
            "0:0".to_owned(),
        ]
    );
    let made = std::fs::metadata(c.rootfs.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (user.uid, user.gid));
}

#[test]
fn subuid_ranges_map_through_newuidmap() {
    let user = TestUser::create();
    let mut c = rootless_container("rlranges", &user, true);
    // A file of the host's root, outside every map, shows as the overflow id.
    std::fs::write(c.rootfs.join("etc/host-root"), "").unwrap();
    std::os::unix::fs::chown(c.rootfs.join("etc/host-root"), Some(0), Some(0)).unwrap();
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let out = c.sh_ok(
        "id -u; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/by-1000; \
         stat -c %u:%g /tmp/by-1000 /etc/host-root /bin/busybox",
    );
    let (su, sg) = (user.subuid, user.subgid);
    assert_eq!(
        lines(&out),
        [
            "1000".to_owned(),
            format!("0 {} 1", user.uid),
            format!("1 {} {}", su.0, su.1),
            format!("0 {} 1", user.gid),
            format!("1 {} {}", sg.0, sg.1),
            "1000:1000".to_owned(),
            "65534:65534".to_owned(),
            "0:0".to_owned(),
        ]
    );
    // On disk, container uid 1000 is the 1000th id of the range (container id 1 is its first).
    let made = std::fs::metadata(c.rootfs.join("tmp/by-1000")).unwrap();
    assert_eq!((made.uid(), made.gid()), (su.0 + 999, sg.0 + 999));
}

#[test]
fn limits_without_a_delegated_cgroup_are_refused() {
    let user = TestUser::create();
    let mut c = rootless_container("rllimits", &user, false);
    c.config["linux"]["resources"] = json!({ "pids": { "limit": 50 } });
    let out = c.run();
    // runc fails too ("cannot set pids limit: container could not join or create cgroup").
    c.assert_rejected(&out, &["linux.resources.pids", "no delegated cgroup"]);
    // Without limits (runc's rootless spec drops linux.resources) it runs without a cgroup.
    c.config["linux"]["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    c.set_sh("cat /proc/self/cgroup");
    let out = c.run();
    out.assert_ok();
    assert!(!out.stdout.contains(&c.id), "{out:?}");
}

#[test]
fn create_exec_ps_kill_delete_without_a_cgroup() {
    let user = TestUser::create();
    let mut c = rootless_container("rllife", &user, true);
    c.set_args(&["sleep", "100"]);
    let pid = c.create_ok();
    assert_eq!(c.status(), "created");
    c.start().assert_ok();
    assert_eq!(c.status(), "running");
    let exec = c.rt(&["exec", "--user", "1000:1000", &c.id, "id", "-u"]);
    exec.assert_ok();
    assert_eq!(exec.stdout, "1000\n");
    let mine = c.path("user-files");
    std::fs::create_dir(&mine).unwrap();
    user.give(&mine);
    let pid_file = mine.join("exec.pid");
    let p = pid_file.to_str().unwrap().to_owned();
    c.rt(&["exec", "-d", "--pid-file", &p, &c.id, "sleep", "200"])
        .assert_ok();
    let sleeper: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track_pid(sleeper);
    let ps = c.rt(&["ps", "--format", "json", &c.id]);
    // SIGTERM: init (pid 1 of its namespace, no handler) ignores it, the sleeper dies.
    let kill_all = c.rt(&["kill", "--all", &c.id, "TERM"]);
    let pause = c.rt(&["pause", &c.id]);
    pause.assert_failed();
    let stats = c.rt(&["events", "--stats", &c.id]);
    if is_runc() {
        // runc 1.1.5 without a cgroup: ps and kill --all fail; events --stats prints
        // all-zero stats.
        ps.assert_failed();
        kill_all.assert_failed();
        stats.assert_ok();
        assert!(stats.stdout.contains(r#""usage":{"limit":0"#), "{stats:?}");
    } else {
        // beyond runc: the processes of the container's pid namespace.
        ps.assert_ok();
        let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
        assert_eq!(pids, [pid, sleeper], "{ps:?}");
        kill_all.assert_ok();
        assert!(
            integration::container::reap(sleeper, std::time::Duration::from_secs(10)),
            "kill --all missed the exec'd process"
        );
        assert_eq!(c.status(), "running");
        for out in [&pause, &stats] {
            out.assert_failed();
            assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
            assert!(out.stderr.contains("no delegated cgroup"), "{out:?}");
        }
    }
    c.kill("KILL").assert_ok();
    // The exec'd process is ours to reap (we are the subreaper), or init cannot finish.
    integration::container::reap(sleeper, std::time::Duration::from_secs(10));
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    assert!(c.state().is_none());
}

/// A cgroup below the test's own in every hierarchy, given to `user`: what systemd's
/// `Delegate=yes` would give a user session. Removed on drop (after the container).
struct Delegated(Vec<PathBuf>);

impl Delegated {
    fn new(user: &TestUser, name: &str) -> Delegated {
        let mut made = Delegated(Vec::new());
        for own in integration::procfs::own_cgroup_dirs() {
            let dir = own.join(name);
            std::fs::create_dir(&dir).unwrap();
            made.0.push(dir.clone());
            // A v1 cpuset cgroup takes no task before it has cpus and mems.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(own.join(file)) {
                    std::fs::write(dir.join(file), v.trim()).unwrap();
                }
            }
            user.give(&dir);
        }
        made
    }

    /// Runs the rest of the command line (the runtime, as the user) from inside the
    /// delegated cgroup: the runtime places the container below its own cgroup.
    fn wrapper(&self, user: &TestUser) -> Vec<String> {
        let dirs: Vec<String> = self
            .0
            .iter()
            .map(|d| format!("'{}'", d.display()))
            .collect();
        let script = format!(
            "for d in {}; do echo $$ > \"$d/cgroup.procs\"; done; exec \"$@\"",
            dirs.join(" ")
        );
        let mut w = vec!["/bin/sh".into(), "-c".into(), script, "sh".into()];
        w.extend(user.setpriv());
        w
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Deepest first: whatever a failed test left below (the container's cgroup, once
        // its processes are gone) goes too.
        fn remove_tree(dir: &std::path::Path) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path());
                }
            }
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("cannot remove delegated cgroup {}: {e}", dir.display());
            }
        }
        for d in self.0.iter().rev() {
            remove_tree(d);
        }
    }
}

#[test]
fn delegated_cgroup_takes_limits_update_pause_and_stats() {
    let user = TestUser::create();
    let name = format!("rl-deleg-{}-{}", std::process::id(), user.uid);
    let delegated = Delegated::new(&user, &name);
    let mut c = rootless_container("rldeleg", &user, false);
    c.wrapper = delegated.wrapper(&user);
    c.config["linux"]["resources"] = json!({ "pids": { "limit": 50 } });
    c.set_args(&["sleep", "100"]);
    let pid = c.create_ok();
    c.start().assert_ok();
    let pids_dir = delegated
        .0
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .expect("a pids hierarchy")
        .join(&c.id);
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max")).unwrap(),
        "50\n"
    );
    let procs = std::fs::read_to_string(pids_dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    c.rt(&["update", "--pids-limit", "60", &c.id]).assert_ok();
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max")).unwrap(),
        "60\n"
    );
    c.rt(&["pause", &c.id]).assert_ok();
    assert_eq!(c.status(), "paused");
    c.rt(&["resume", &c.id]).assert_ok();
    assert_eq!(c.status(), "running");
    let ps = c.rt(&["ps", "--format", "json", &c.id]);
    ps.assert_ok();
    assert!(ps.stdout.contains(&pid.to_string()), "{ps:?}");
    let stats = c.rt(&["events", "--stats", &c.id]);
    stats.assert_ok();
    let stats: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    assert_eq!(stats["data"]["pids"]["limit"], 60, "{stats}");
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    assert!(!pids_dir.exists(), "delete left {}", pids_dir.display());
}

#[test]
fn init_image_stays_unwritable_to_the_user() {
    // The user owns its runtime binary, and container root is that user on the host: a
    // writable /proc/<init>/exe would be the binary itself. open_tree is refused to an
    // unprivileged user, so patina runs from a sealed memfd copy (runc 1.1 always does).
    let user = TestUser::create();
    let mut c = rootless_container("rlexe", &user, false);
    let copy = c.use_private_runtime();
    user.give(copy.parent().unwrap());
    let before = std::fs::read(&copy).unwrap();
    let pid = c.create_ok();
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(link.to_string_lossy().starts_with("/memfd:"), "{link:?}");
    let held = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    c.start().assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    let reopened = std::fs::OpenOptions::new().append(true).open(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&held)
    ));
    if let Ok(mut f) = reopened {
        use std::io::Write;
        let err = f.write_all(b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "the runtime binary changed"
    );
}

#[test]
fn spec_rootless_maps_the_caller_and_runs() {
    let user = TestUser::create();
    let mut c = rootless_container("rlspec", &user, false);
    user.give(&c.bundle);
    let out = c.exec(
        c.command()
            .args(["spec", "--rootless"])
            .current_dir(&c.bundle),
    );
    out.assert_ok();
    let text = std::fs::read_to_string(c.bundle.join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let linux = &cfg["linux"];
    assert_eq!(linux["uidMappings"][0]["hostID"], user.uid);
    assert_eq!(linux["gidMappings"][0]["hostID"], user.gid);
    assert!(linux.get("resources").is_none(), "{text}");
    let types: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
    assert!(!text.contains("gid=") && !text.contains("uid="), "{text}");
    let sys = cfg["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(sys["source"], "/sys");
    spec::set_args(&mut cfg, &["id", "-u"]);
    cfg["process"]["terminal"] = json!(false);
    c.config = cfg;
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "0\n");
}

#[test]
fn devices_are_bound_from_the_host() {
    let user = TestUser::create();
    let mut c = rootless_container("rldev", &user, false);
    let out = c.sh_ok("echo x > /dev/null && head -c 4 /dev/zero | wc -c; grep ' /dev/null ' /proc/self/mountinfo");
    let out = lines(&out);
    assert_eq!(out[0], "4");
    // A bind of the host's node (mknod is refused in a user namespace): mountinfo's
    // root field names the node in the host's devtmpfs.
    assert!(out[1].contains(" /null /dev/null "), "{out:?}");
}

#[test]
fn fresh_sysfs_refused_becomes_a_bind_of_the_hosts() {
    let user = TestUser::create();
    let mut c = rootless_container("rlsys", &user, false);
    spec::remove_mount(&mut c.config, "/sys");
    spec::add_mount(
        &mut c.config,
        "/sys",
        "sysfs",
        "sysfs",
        &["nosuid", "noexec", "nodev", "ro"],
    );
    let out =
        c.sh("awk '$5 == \"/sys\"' /proc/self/mountinfo; ls /sys/kernel >/dev/null && echo listed");
    if is_runc() {
        // beyond runc: runc 1.1.5 fails (EPERM: the user namespace does not own the
        // host's network namespace), its rootless spec asks for the bind itself.
        out.assert_failed();
        return;
    }
    out.assert_ok();
    let l = lines(&out.stdout);
    assert!(
        l[0].contains(" /sys ro,nosuid,nodev,noexec") && l[0].contains("sysfs"),
        "{l:?}"
    );
    assert_eq!(l[1], "listed");
}

#[test]
fn locked_mount_flags_are_kept_on_remount() {
    let user = TestUser::create();
    let mut c = rootless_container("rllocked", &user, false);
    // A host mount with nosuid,nodev,noexec: a bind of it made in the container's user
    // namespace cannot drop them, so the remount for "ro" must ask for them again.
    let src = c.path("locked");
    std::fs::create_dir(&src).unwrap();
    use nix::mount::{mount, MsFlags};
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &src,
        Some("tmpfs"),
        flags,
        Some("size=64k,mode=755"),
    )
    .unwrap();
    c.track_host_mount(&src);
    spec::add_mount(
        &mut c.config,
        "/locked",
        "bind",
        src.to_str().unwrap(),
        &["bind", "ro"],
    );
    let out = c.sh("grep ' /locked ' /proc/self/mountinfo; touch /locked/x 2>/dev/null || echo ro");
    if is_runc() {
        // beyond runc: runc 1.1.5 remounts with "ro" alone and gets EPERM.
        out.assert_failed();
        return;
    }
    let l = lines(&out.assert_ok().stdout);
    assert!(l[0].contains(" /locked ro,nosuid,nodev,noexec"), "{l:?}");
    assert_eq!(l[1], "ro");
}

#[test]
fn oom_score_adj_only_at_or_above_the_callers() {
    let user = TestUser::create();
    let mut c = rootless_container("rloom", &user, false);
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let higher = (own + 100).min(1000);
    c.config["process"]["oomScoreAdj"] = json!(higher);
    assert_eq!(
        c.sh_ok("cat /proc/self/oom_score_adj"),
        format!("{higher}\n")
    );
    if own > -1000 {
        c.config["process"]["oomScoreAdj"] = json!(-1000);
        let out = c.sh("true");
        // runc fails too, later (from its init, EACCES).
        c.assert_rejected(&out, &["process.oomScoreAdj -1000", "below"]);
    }
}

#[test]
fn mount_ids_outside_the_maps_are_refused() {
    let user = TestUser::create();
    let mut c = rootless_container("rlmntid", &user, false);
    spec::add_mount(&mut c.config, "/t", "tmpfs", "tmpfs", &["uid=1000"]);
    let out = c.sh("true");
    // runc fails too, with the kernel's bare EINVAL.
    c.assert_rejected(&out, &["mounts[", "uid=1000", "not mapped"]);
}

#[test]
fn uid_0_of_a_partial_user_namespace_is_rootless() {
    // Rootless podman's setup: the engine (and the runtime it starts) is uid 0 of a user
    // namespace mapping the user and its subordinate range, and the config has no user
    // namespace of its own. Detected as rootless: no cgroup (none is writable), the rest
    // as root of that namespace.
    let user = TestUser::create();
    let mut c = Container::new("rlpodman");
    std::fs::create_dir(&c.root).unwrap();
    user.give(&c.root);
    user.give(&c.rootfs);
    let mut wrapper = user.setpriv();
    wrapper.extend([
        "/usr/bin/unshare".to_owned(),
        "--user".to_owned(),
        "--map-root-user".to_owned(),
        format!("--map-users={},1,{}", user.subuid.0, user.subuid.1),
        format!("--map-groups={},1,{}", user.subgid.0, user.subgid.1),
    ]);
    c.wrapper = wrapper;
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let script = "id -u; cat /proc/self/uid_map; awk '$5 == \"/dev/null\" {print $4}' /proc/self/mountinfo; \
                  touch /tmp/x; stat -c %u /tmp/x";
    c.set_sh(script);
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        lines(&out.stdout),
        [
            "1000".to_owned(),
            format!("0 {} 1", user.uid),
            format!("1 {} {}", user.subuid.0, user.subuid.1),
            "/null".to_owned(),
            "1000".to_owned(),
        ]
    );
    let made = std::fs::metadata(c.rootfs.join("tmp/x")).unwrap();
    assert_eq!(made.uid(), user.subuid.0 + 999);
    // Told it is not rootless, the runtime tries the host's cgroups it cannot write.
    let b = c.bundle.to_str().unwrap().to_owned();
    let out = c.rt(&["--rootless", "false", "run", "--bundle", &b, &c.id]);
    out.assert_failed();
    if !is_runc() {
        assert!(
            out.stderr.contains("cgroup") && out.stderr.contains("EACCES"),
            "{out:?}"
        );
    }
}

#[test]
fn maps_the_user_does_not_own_are_refused() {
    let user = TestUser::create();
    let mut c = rootless_container("rlnotmine", &user, true);
    // One id past the user's subordinate range.
    c.config["linux"]["uidMappings"][1]["hostID"] = json!(user.subuid.0 + 1);
    let out = c.sh("true");
    // runc fails too, with newuidmap's message.
    c.assert_rejected(&out, &["linux.uidMappings", "newuidmap", "/etc/subuid"]);
}

#[test]
fn a_user_without_a_user_namespace_is_refused() {
    let user = TestUser::create();
    let mut c = rootless_container("rlnouserns", &user, false);
    spec::remove_namespace(&mut c.config, "user");
    let linux = c.config["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    let out = c.sh("true");
    // runc fails too ("rootless container requires user namespaces").
    c.assert_rejected(&out, &["linux.namespaces", "user namespace"]);
}

#[test]
fn state_dir_defaults_to_xdg_runtime_dir() {
    let user = TestUser::create();
    let c = rootless_container("rlxdg", &user, false);
    c.write_config();
    let xdg = c.path("xdg");
    std::fs::create_dir(&xdg).unwrap();
    user.give(&xdg);
    let name = if is_runc() { "runc" } else { "patina" };
    // No --root: as the user, with its own XDG_RUNTIME_DIR.
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new("/usr/bin/setpriv");
        cmd.args([
            format!("--reuid={}", user.uid),
            format!("--regid={}", user.gid),
            "--clear-groups".to_owned(),
            "/usr/bin/env".to_owned(),
            format!("XDG_RUNTIME_DIR={}", xdg.display()),
        ])
        .arg(&c.runtime)
        .args(args)
        .current_dir(&c.bundle);
        c.exec(&mut cmd)
    };
    run(&["create", &c.id]).assert_ok();
    assert!(
        xdg.join(name).join(&c.id).is_dir(),
        "no state under {}",
        xdg.display()
    );
    let state = run(&["state", &c.id]);
    state.assert_ok();
    assert!(state.stdout.contains("\"created\""), "{state:?}");
    run(&["delete", "--force", &c.id]).assert_ok();
    assert!(!xdg.join(name).join(&c.id).exists());
}

#[test]
fn terminal_over_a_console_socket() {
    // podman run -t, rootless: the pty comes from the container's own devpts instance
    // (no gid=5 there: the rootless config drops it, gid 5 is not mapped).
    let user = TestUser::create();
    let mut c = rootless_container("rltty", &user, false);
    c.config["process"]["terminal"] = json!(true);
    c.set_sh("tty; stat -c %u /dev/pts/0; echo END");
    let sock = c.path("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // The user must be able to connect to it.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let master = integration::console::receive_master(listener);
    c.run_with(&["--detach", "--console-socket", sock.to_str().unwrap()])
        .assert_ok();
    let master = std::fs::File::from(master.join().expect("console fd"));
    let rx = integration::console::read_master(master);
    let mut out = String::new();
    integration::console::collect_until(&rx, &mut out, "END");
    let l: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(l[..2], ["/dev/pts/0", "0"], "{out:?}");
    c.wait_status("stopped");
}

#[test]
fn kill_all_without_a_cgroup_or_pid_namespace_says_why() {
    let user = TestUser::create();
    let mut c = rootless_container("rlkillall", &user, false);
    // No pid namespace: a user namespace cannot mount a procfs then (the host's pid
    // namespace is not its own), so /proc is the host's, bound.
    spec::remove_namespace(&mut c.config, "pid");
    spec::remove_mount(&mut c.config, "/proc");
    spec::add_mount(&mut c.config, "/proc", "bind", "/proc", &["rbind"]);
    let linux = c.config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    c.set_args(&["sleep", "100"]);
    c.create_ok();
    c.start().assert_ok();
    let out = c.rt(&["kill", "--all", &c.id, "TERM"]);
    // runc fails too (no cgroup to list the processes of).
    out.assert_failed();
    if !is_runc() {
        assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
        assert!(out.stderr.contains("no delegated cgroup"), "{out:?}");
    }
    assert_eq!(c.status(), "running");
}

/// runc's create.bats "runc create exec", rootless: `exec` between `create` and `start`.
/// The exec'd process enters init's namespaces through its pidfd, which the kernel allows
/// on a non-dumpable init only to a caller with CAP_SYS_PTRACE over the host's user
/// namespace: an unprivileged patina failed with EPERM. Init now waits for `start`
/// dumpable when the runtime is unprivileged (as runc's does); what a container process
/// could reach through it is checked from inside: no directory descriptor (a way out) and
/// no writable runtime image.
#[test]
fn exec_before_start_as_an_unprivileged_runtime() {
    for ranges in [false, true] {
        let user = TestUser::create();
        let mut c = rootless_container("rlexecfirst", &user, ranges);
        c.set_args(&["sleep", "100"]);
        let pid = c.create_ok();
        assert_eq!(c.status(), "created");
        // pid 1 of the container's pid namespace is init, still waiting for start.
        let probe = "echo me=$(id -u) pid1=$(cat /proc/1/comm); \
                     for f in /proc/1/fd/*; do [ -d \"$f\" ] && echo dir-fd $f $(readlink $f); done; \
                     (echo x >> /proc/1/exe) 2>/dev/null && echo exe-writable; true";
        let exec = c.rt(&["exec", &c.id, "sh", "-c", probe]);
        exec.assert_ok();
        // Init is not yet the program (runc's is "runc:[2:INIT]").
        let seen = lines(&exec.stdout);
        assert_eq!(seen.len(), 1, "ranges {ranges}: {exec:?}");
        assert!(seen[0].starts_with("me=0 pid1="), "{exec:?}");
        assert!(
            !seen[0].ends_with("pid1=") && !seen[0].ends_with("=sleep"),
            "{exec:?}"
        );
        c.start().assert_ok();
        assert_eq!(c.status(), "running");
        // The program is what init became: it runs as the same pid.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "sleep");
        c.kill("KILL").assert_ok();
        c.wait_status("stopped");
        c.delete(false).assert_ok();
    }
}

/// runc's dev.bats "runc run [redundant default /dev/ptmx]", rootless: /dev/ptmx listed in
/// linux.devices. A user namespace cannot mknod, so the host's node was bound there, and
/// the /dev/ptmx -> pts/ptmx link that must replace it could not (EBUSY, a mount point).
/// /dev/ptmx is always the devpts instance's, as runc lays it.
#[test]
fn dev_ptmx_in_linux_devices_stays_the_devpts_one() {
    let user = TestUser::create();
    let mut c = rootless_container("rlptmx", &user, false);
    c.config["linux"]["devices"] = json!([{
        "path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2,
        "fileMode": 438, "uid": 0, "gid": 0
    }]);
    let out = c.sh_ok("readlink /dev/ptmx; grep -c ' /dev/ptmx ' /proc/self/mountinfo || true");
    assert_eq!(lines(&out), ["pts/ptmx", "0"], "{out}");
}

/// runc's cgroups.bats "rootless + no limits + cgrouppath + no permission": a cgroupsPath
/// the user may not create is where the container "MUST" go (config-linux.md), so create
/// fails, as runc's does ("unable to apply cgroup configuration: ... permission denied");
/// patina ran the container in no cgroup, as it does without a cgroupsPath. Relative, so
/// the path is beneath the test's own cgroup on every hierarchy whatever happens.
#[test]
fn cgroups_path_the_user_cannot_write_is_refused() {
    let user = TestUser::create();
    let mut c = rootless_container("rlcgpath", &user, false);
    let rel = format!("rl-cgpath-{}-{}", std::process::id(), user.uid);
    c.config["linux"]["cgroupsPath"] = json!(format!("{rel}/{}", c.id));
    c.set_args(&["true"]);
    let out = c.run();
    c.assert_rejected(&out, &["linux.cgroupsPath", "permission denied", &rel]);
    assert!(out.stderr.contains("permission denied"), "{out:?}");
    for own in integration::procfs::own_cgroup_dirs() {
        assert!(
            !own.join(&rel).exists(),
            "{} made",
            own.join(&rel).display()
        );
    }
}

/// runc's cwd.bats "runc create sets up user before chdir to cwd if needed", rootless with
/// subuid ranges: a cwd only the container's user may enter (mode 0700, owned by container
/// uid 1000, its group the host's root group, which the namespace does not map: container
/// root's capabilities do not reach such a file). Init entered the cwd before the user
/// switch and failed with EACCES; now it enters it as the user after, as runc does.
#[test]
fn cwd_only_the_container_user_may_enter() {
    let user = TestUser::create();
    let mut c = rootless_container("rlcwd", &user, true);
    let dir = c.rootfs.join("home-1000");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(user.subuid.0 + 999), Some(0)).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    c.config["process"]["cwd"] = json!("/home-1000");
    c.set_args(&["sh", "-c", "pwd; id -u; echo hi > f && cat f"]);
    let out = c.run();
    out.assert_ok();
    assert_eq!(lines(&out.stdout), ["/home-1000", "1000", "hi"], "{out:?}");
    // And an exec'd process the same way.
    c.set_args(&["sleep", "100"]);
    c.create_ok();
    c.start().assert_ok();
    let exec = c.rt(&[
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/home-1000",
        &c.id,
        "sh",
        "-c",
        "pwd; cat f",
    ]);
    exec.assert_ok();
    assert_eq!(lines(&exec.stdout), ["/home-1000", "hi"], "{exec:?}");
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
}
