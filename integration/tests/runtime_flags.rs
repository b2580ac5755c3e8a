//! Runtime flags and plumbing not covered elsewhere: --preserve-fds, runc's global flags
//! that patina refuses rather than ignores, rootfsPropagation, and errors raised inside
//! init reaching the caller of `create` with the step and the errno.

use integration::{is_runc, Container};
use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

/// `run --preserve-fds 1` with fds 3 and 4 open in the caller: 3 reaches the program,
/// 4 does not.
#[test]
fn preserve_fds_passes_exactly_the_given_count() {
    let mut c = Container::new("preservefds");
    let three = c.path("three.txt");
    let four = c.path("four.txt");
    std::fs::write(&three, "preserved\n").unwrap();
    std::fs::write(&four, "leaked\n").unwrap();
    c.set_sh("cat <&3; if [ -e /proc/self/fd/4 ]; then echo fd4-open; else echo fd4-closed; fi");
    c.write_config();
    let f3 = std::fs::File::open(&three).unwrap();
    let f4 = std::fs::File::open(&four).unwrap();
    let (raw3, raw4) = (f3.as_raw_fd(), f4.as_raw_fd());
    let mut cmd = c.command();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    cmd.args(["run", "--preserve-fds", "1", "--bundle", &bundle, &c.id]);
    // SAFETY: fcntl/dup2 on descriptor numbers, in the child before exec. Both are first
    // moved out of the way (the originals may already sit at 3 or 4, close-on-exec).
    unsafe {
        cmd.pre_exec(move || {
            let high3 = libc::fcntl(raw3, libc::F_DUPFD, 100);
            let high4 = libc::fcntl(raw4, libc::F_DUPFD, 100);
            if high3 < 0 || high4 < 0 || libc::dup2(high3, 3) < 0 || libc::dup2(high4, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.exec(&mut cmd);
    out.assert_ok();
    assert_eq!(out.stdout, "preserved\nfd4-closed\n");
}

#[test]
fn rootless_flag_as_root_runs_in_its_cgroup() {
    // As runc: --rootless true for uid 0 of the host's namespace changes nothing that
    // root can do (its cgroup is writable, so it is used); a bad value is refused.
    let mut c = Container::new("rootless");
    integration::spec::remove_namespace(&mut c.config, "cgroup");
    c.config["linux"]["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    // The device rules stay: a node the container makes for /dev/mem cannot be opened.
    c.set_sh(
        "cat /proc/self/cgroup; mknod /tmp/mem c 1 1; \
         head -c 1 /tmp/mem 2>&1 >/dev/null | grep -o 'Operation not permitted'",
    );
    c.write_config();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = c.rt(&["--rootless", "true", "run", "--bundle", &bundle, &c.id]);
    out.assert_ok();
    assert!(out.stdout.contains(&c.id), "not in its own cgroup: {out:?}");
    assert!(
        out.stdout.ends_with("Operation not permitted\n"),
        "device rules dropped: {out:?}"
    );
    let out = c.rt(&["--rootless", "maybe", "run", "--bundle", &bundle, &c.id]);
    out.assert_failed();
    if !is_runc() {
        assert!(out.stderr.contains("--rootless \"maybe\""), "{out:?}");
    }
}

#[test]
fn rootfs_propagation_shared_is_seen_on_root() {
    let mut c = Container::new("rootprop");
    c.config["linux"]["rootfsPropagation"] = json!("shared");
    let out = c.sh_ok("awk '$5 == \"/\"' /proc/self/mountinfo");
    if is_runc() {
        // beyond runc: runc 1.1.5 leaves the container's / private despite "shared".
        assert!(!out.contains(" shared:"), "{out}");
    } else {
        assert!(out.contains(" shared:"), "root mount is not shared: {out}");
    }
}

#[test]
fn rootfs_propagation_private_is_seen_on_root() {
    let mut c = Container::new("rootpriv");
    c.config["linux"]["rootfsPropagation"] = json!("private");
    let out = c.sh_ok("awk '$5 == \"/\"' /proc/self/mountinfo");
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "root mount is not private: {out}"
    );
}

/// runtime-tools' linux_rootfs_propagation: "unbindable" is a valid rootfsPropagation. The
/// container's / ends up unbindable, and a volume whose source is on the host's own /
/// mount (not the fixture's tmpfs, which the runtime makes private for the rootfs) is
/// still bound: nothing may be unbindable while the root is being built.
#[test]
fn rootfs_propagation_unbindable_is_seen_on_root() {
    let mut c = Container::new("rootunbind");
    c.config["linux"]["rootfsPropagation"] = json!("unbindable");
    let vol = std::env::temp_dir().join(format!("patina-it-unbind-{}", std::process::id()));
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "from the host").unwrap();
    let cleanup = vol.clone();
    c.on_teardown(move || {
        let _ = std::fs::remove_dir_all(cleanup);
    });
    let src = vol.to_str().unwrap();
    integration::spec::add_mount(&mut c.config, "/vol", "bind", src, &["rbind"]);
    let out = c.sh("cat /vol/f; echo; awk '$5 == \"/\"' /proc/self/mountinfo");
    if is_runc() {
        // beyond runc: runc 1.1.5 makes the host's / unbindable before it binds the
        // volume from it, which the kernel refuses (EINVAL).
        out.assert_failed();
        assert!(out.stderr.contains("invalid argument"), "{out:#?}");
        return;
    }
    out.assert_ok();
    let text = &out.stdout;
    assert!(text.contains("from the host"), "{text}");
    assert!(
        text.contains(" unbindable "),
        "root mount is not unbindable: {text}"
    );
}

/// A mount that only the kernel can refuse (tmpfs with a malformed size) fails inside
/// init; `create` must report the mount, and the errno, on one line.
#[test]
fn error_inside_init_reaches_create_with_step_and_errno() {
    let mut c = Container::new("initerror");
    c.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["size=notanumber"]}));
    c.set_args(&["true"]);
    let out = c.create();
    c.assert_rejected(&out, &["\"/bad\"", "EINVAL"]);
}

#[test]
fn listen_fds_reach_the_program() {
    let mut c = Container::new("listenfds");
    let data = c.path("activation.txt");
    std::fs::write(&data, "activated\n").unwrap();
    c.set_sh("echo $LISTEN_FDS $LISTEN_PID; cat <&3");
    c.write_config();
    let script = format!(
        "exec 3<'{}'; LISTEN_PID=$$ LISTEN_FDS=1 exec '{}' --root '{}' run --bundle '{}' '{}'",
        data.display(),
        integration::runtime_path().display(),
        c.root.display(),
        c.bundle.display(),
        c.id
    );
    let out = c.exec(std::process::Command::new("/bin/sh").args(["-c", &script]));
    out.assert_ok();
    assert_eq!(out.stdout, "1 1\nactivated\n");
}

#[test]
fn features_describe_what_is_implemented() {
    let c = Container::new("features");
    let out = c.rt(&["features"]);
    out.assert_ok();
    let f: serde_json::Value = serde_json::from_str(&out.stdout).expect("features is JSON");
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };
    let hooks = list(&f["hooks"]);
    for hook in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&hook.to_owned()), "{hook} missing: {f}");
    }
    let namespaces = list(&f["linux"]["namespaces"]);
    assert!(namespaces.contains(&"pid".to_owned()) && namespaces.contains(&"user".to_owned()));
    assert!(list(&f["mountOptions"]).contains(&"rbind".to_owned()));
    assert!(list(&f["linux"]["capabilities"]).contains(&"CAP_SYS_ADMIN".to_owned()));
    if !is_runc() {
        // beyond runc: runc 1.1.5 has no time namespace.
        assert!(namespaces.contains(&"time".to_owned()));
        assert_eq!(f["ociVersionMax"], "1.3.0");
    }
}

/// `--pidfd-socket` (runc 1.2): the caller gets a pidfd of init and can signal it with
/// no pid-reuse race.
#[test]
fn pidfd_socket_hands_over_a_pidfd_of_init() {
    use std::os::fd::AsRawFd;
    let mut c = Container::new("pidfdsock");
    c.set_args(&["sleep", "1000"]);
    let sock = c.path("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let received = integration::console::receive_master(listener);
    let out = c.create_with(&["--pidfd-socket", sock.to_str().unwrap()]);
    if is_runc() {
        // beyond runc: runc 1.1.5 has no --pidfd-socket (it came with runc 1.2).
        out.assert_failed();
        drop(std::os::unix::net::UnixStream::connect(&sock));
        let _ = received.join();
        return;
    }
    out.assert_ok();
    let pidfd = received.join().unwrap();
    c.start().assert_ok();
    // SAFETY: pidfd_send_signal with a null siginfo, on a pidfd we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<u8>(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
    c.wait_status("stopped");
}
