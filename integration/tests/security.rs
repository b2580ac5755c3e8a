//! Attacker-style tests: from inside the container, try to get past each protection
//! (capabilities, no_new_privs, rlimits, masked and read-only paths, sysctl, mount
//! destinations, the runtime binary, leaked descriptors, cwd) and assert it fails.

use integration::security::{exit_with_euid, install_program};
use integration::{is_runc, runtime_path, spec, Container};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn ungranted_capabilities_cannot_be_used() {
    let mut c = Container::new("capsdenied");
    std::os::unix::fs::symlink("busybox", c.rootfs.join("bin/adjtimex")).unwrap();
    let out = c.sh_ok(
        "ip link set lo mtu 1280 2>&1 && echo net-admin:used; \
         adjtimex -t $(adjtimex | sed -n 's/.*tick: *//p') >/dev/null 2>&1 && echo sys-time:used; \
         hostname other 2>&1 && echo sys-admin:used; \
         mknod /tmp/sda b 8 0 2>&1 && echo mknod:used; \
         chown 1000 /bin/busybox 2>&1 && echo chown:used; echo end",
    );
    assert!(!out.contains(":used"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    // The same command works once the capability is granted (in the container's netns).
    let mut c = Container::new("capsgranted");
    let caps = json!(["CAP_NET_ADMIN"]);
    c.config["process"]["capabilities"] =
        json!({ "bounding": caps, "effective": caps, "permitted": caps });
    assert_eq!(c.sh_ok("ip link set lo mtu 1280 && echo set"), "set\n");
}

#[test]
fn capabilities_not_in_bounding_cannot_be_regained() {
    // Root with CAP_SETPCAP in effective but CAP_NET_ADMIN outside the bounding set.
    let mut c = Container::new("capsbounding");
    let caps = json!(["CAP_SETPCAP", "CAP_SETUID"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps
    });
    let out = c.sh_ok("setpriv --inh-caps +net_admin --ambient-caps +net_admin ip link set lo up 2>&1; echo rc=$?; grep CapBnd /proc/self/status");
    assert!(
        out.contains(&format!("CapBnd:\t{:016x}", (1u64 << 8) | (1 << 7))),
        "{out}"
    );
    assert!(!out.contains("rc=0"), "{out}");
}

#[test]
fn no_new_privileges_blocks_setuid() {
    // A setuid-root program that exits with its effective uid (1000 -> 232).
    for (nnp, want) in [(true, "232"), (false, "0")] {
        let mut c = Container::new("nnpsetuid");
        install_program(&c.rootfs.join("bin/euid"), &exit_with_euid(), 0o4755);
        c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        c.config["process"]["noNewPrivileges"] = json!(nnp);
        assert_eq!(
            c.sh_ok("/bin/euid; echo $?"),
            format!("{want}\n"),
            "nnp {nnp}"
        );
    }
}

#[test]
fn rlimits_cannot_be_raised() {
    let mut c = Container::new("rlimitraise");
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let out = c.sh_ok("ulimit -Hn; ulimit -n 4096 2>&1 && echo raised; ulimit -n; grep 'Max open files' /proc/self/limits");
    let l = lines(&out);
    assert_eq!(l[0], "1024", "{out}");
    assert!(!out.contains("raised"), "{out}");
    assert!(
        l.last().unwrap().split_whitespace().collect::<Vec<_>>()[3..5] == ["1024", "1024"],
        "{out}"
    );
}

#[test]
fn masked_paths_cannot_be_unmasked() {
    let mut c = Container::new("unmask");
    std::os::unix::fs::symlink("busybox", c.rootfs.join("bin/unshare")).unwrap();
    let out = c.sh_ok(
        "mkdir -p /tmp/p /tmp/s; \
         cat /proc/kcore | wc -c; cat /proc/keys | wc -c; ls /sys/firmware | wc -l; \
         umount /proc/kcore 2>/dev/null && echo umounted-kcore; \
         umount -l /proc/keys 2>/dev/null && echo umounted-keys; \
         umount /sys/firmware 2>/dev/null && echo umounted-firmware; \
         mount -t proc proc /tmp/p 2>/dev/null && echo new-proc; \
         mount -o remount,rw /proc/sys 2>/dev/null && echo remounted; \
         unshare -Urmpf sh -c 'mount -t proc proc /tmp/p' 2>/dev/null && echo userns-proc; \
         unshare -Urmn sh -c 'mount -t sysfs sysfs /tmp/s' 2>/dev/null && echo userns-sysfs; \
         cat /proc/kcore | wc -c; echo end",
    );
    assert_eq!(out, "0\n0\n0\n0\nend\n");
}

#[test]
fn readonly_paths_are_not_writable() {
    let mut c = Container::new("readonly");
    let out = c.sh_ok(
        "echo x > /proc/sysrq-trigger 2>/dev/null && echo wrote-sysrq; \
         echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo wrote-sys; \
         mount -o remount,rw /proc/sys 2>/dev/null && echo remounted; \
         mount -o remount,rw,bind /proc/bus 2>/dev/null && echo remounted-bus; \
         grep -E ' /proc/(sys|sysrq-trigger|bus) ' /proc/self/mountinfo | grep -vc ' ro,'; echo end",
    );
    assert_eq!(out, "0\nend\n");
}

#[test]
fn sysctl_applied_in_the_container_only() {
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let mut c = Container::new("sysctl");
    c.config["linux"]["sysctl"] = json!({
        "kernel.shmmax": "123456789", "net.ipv4.ip_forward": "1", "kernel.msgmax": "4321"
    });
    let out = c
        .sh_ok("cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax");
    assert_eq!(out, "123456789\n1\n4321\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
}

#[test]
fn proc_symlink_in_image_cannot_redirect_mounts() {
    // The image's /proc is a symlink to "/": mounting procfs there would cover the root
    // (and fake /proc files could then be planted); the runtime must refuse.
    let mut c = Container::new("procsymlink");
    std::fs::remove_dir(c.rootfs.join("proc")).unwrap();
    std::os::unix::fs::symlink("/", c.rootfs.join("proc")).unwrap();
    let out = c.sh("ls /bin/busybox");
    out.assert_failed();
    assert!(c.state().is_none());
    if !is_runc() {
        assert!(
            out.stderr
                .contains("must be mounted on an ordinary directory"),
            "{out:?}"
        );
    }
    assert!(Path::new("/bin/busybox").exists());
}

#[test]
fn dotdot_mount_destination_stays_in_rootfs() {
    let mut c = Container::new("dotdotdest");
    let marker = format!("patina-escape-{}", std::process::id());
    let dest = format!("/../../../../etc/{marker}");
    spec::add_mount(&mut c.config, &dest, "tmpfs", "tmpfs", &["size=1k"]);
    let out = c.sh_ok(&format!("grep -c ' /etc/{marker} ' /proc/self/mountinfo"));
    assert_eq!(out, "1\n");
    assert!(!Path::new("/etc").join(&marker).exists());
    assert!(c.rootfs.join("etc").join(&marker).exists());
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn runtime_binary_not_reachable_through_init_exe() {
    // Container A holds a pid namespace that container B's init joins. While B is
    // `created`, its init is still the runtime: A tries /proc/<init>/exe.
    let before = sha(runtime_path());
    let mut a = Container::new("exeattacker");
    a.set_sh(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; p=$(cat /tmp/go); \
         { readlink /proc/$p/exe >/dev/null 2>&1 && echo readlink:ok || echo readlink:denied; \
           cat /proc/$p/exe >/dev/null 2>&1 && echo read:ok || echo read:denied; \
           (echo x >> /proc/$p/exe) 2>/dev/null && echo write:ok || echo write:denied; } > /tmp/r1; \
         if (exec 3< /proc/$p/exe) 2>/dev/null; then exec 3< /proc/$p/exe; echo held >> /tmp/r1; fi; \
         touch /tmp/ready1; \
         while [ ! -e /tmp/go2 ]; do sleep 0.05; done; \
         { (echo x >> /proc/self/fd/3) 2>/dev/null && echo reopen:ok || echo reopen:denied; } > /tmp/r2; \
         touch /tmp/ready2; sleep 100",
    );
    a.run_with(&["--detach"]).assert_ok();
    let a_pid = a.pid();
    let mut b = Container::new("exevictim");
    spec::set_namespace(&mut b.config, "pid", Some(&format!("/proc/{a_pid}/ns/pid")));
    let b_pid = b.create_ok();
    let status = std::fs::read_to_string(format!("/proc/{b_pid}/status")).unwrap();
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    let tmp = a.rootfs.join("tmp");
    std::fs::write(tmp.join("go"), &nspid).unwrap();
    let wait = |f: &str| {
        integration::runtime::wait_for(Duration::from_secs(10), || {
            tmp.join(f).exists().then_some(())
        })
        .unwrap_or_else(|| panic!("attacker never wrote {f}"))
    };
    wait("ready1");
    b.start().assert_ok();
    b.wait_status("stopped");
    b.delete(false).assert_ok();
    std::fs::write(tmp.join("go2"), "").unwrap();
    wait("ready2");
    let r1 = std::fs::read_to_string(tmp.join("r1")).unwrap();
    let r2 = std::fs::read_to_string(tmp.join("r2")).unwrap();
    a.kill("KILL");
    assert!(
        r1.contains("write:denied") && r2.contains("reopen:denied"),
        "{r1}{r2}"
    );
    if is_runc() {
        // runc 1.1.5 runs init from a sealed memfd copy: readable, never writable.
    } else {
        // beyond runc: init is non-dumpable, so the link itself is out of reach.
        assert_eq!(r1, "readlink:denied\nread:denied\nwrite:denied\n", "{r1}");
    }
    assert!(sha(runtime_path()) == before, "the runtime binary changed");
}

#[test]
fn runtime_binary_not_reachable_from_shared_pid_namespace() {
    // Without a pid namespace the container sees `run`, its parent, on the host.
    let before = sha(runtime_path());
    let mut c = Container::new("exeparent");
    spec::remove_namespace(&mut c.config, "pid");
    let out = c.sh_ok(
        "p=$PPID; cat /proc/$p/exe >/dev/null 2>&1 && echo read:ok || echo read:denied; \
         (echo x >> /proc/$p/exe) 2>/dev/null && echo write:ok || echo write:denied",
    );
    assert_eq!(out, "read:denied\nwrite:denied\n");
    assert!(sha(runtime_path()) == before);
}

#[test]
fn no_descriptor_leaks_into_the_container() {
    let mut c = Container::new("fdleak");
    let out = c.sh_ok("ls -l /proc/self/fd | sed -n 's/.* \\([0-9]*\\) -> \\(.*\\)/\\1 \\2/p'");
    // 0-2, and at most the descriptor ls reads /proc/self/fd through.
    for line in out.lines() {
        let (fd, target) = line.split_once(' ').unwrap();
        let fd: u32 = fd.parse().unwrap();
        assert!(
            fd <= 2 || (target.starts_with("/proc/") && target.ends_with("/fd")),
            "{out}"
        );
    }
    assert!(out.lines().count() >= 3, "{out}");
}

#[test]
fn cwd_through_leaked_descriptor_is_refused() {
    // CVE-2024-21626: process.cwd naming /proc/self/fd/N of a descriptor the runtime
    // still has open during setup would leave the program outside its root.
    for fd in 3..12 {
        let mut c = Container::new("cwdleak");
        c.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        let out =
            c.sh("ls ../../../../ 2>&1; cat /proc/self/cwd/../../../../etc/hostname 2>&1; pwd");
        if is_runc() {
            // runc 1.1.5 predates the fix (1.1.12): only record that it ran.
            continue;
        }
        // beyond runc (1.1.5): create fails, or the cwd is inside the root.
        if out.success() {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            assert!(
                host.is_empty() || !out.stdout.contains(host.trim()),
                "fd {fd}: {out:?}"
            );
            assert!(!out.stdout.contains("(unreachable)"), "fd {fd}: {out:?}");
        }
    }
}
