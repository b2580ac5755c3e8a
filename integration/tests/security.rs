//! Attacker-style tests: from inside the container, try to get past each protection
//! (capabilities, no_new_privs, rlimits, masked and read-only paths, sysctl, mount
//! destinations, the runtime binary, leaked descriptors, cwd) and assert it fails.

use integration::security::{exit_with_euid, install_program};
use integration::{is_runc, spec, Container};
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

/// Waits (10 s at most) for the attacker in `dir` to create `file`.
fn wait_for_file(dir: &Path, file: &str) {
    integration::runtime::wait_for(Duration::from_secs(10), || {
        dir.join(file).exists().then_some(())
    })
    .unwrap_or_else(|| {
        let r1 = std::fs::read_to_string(dir.join("r1")).unwrap_or_default();
        panic!("attacker never wrote {file} (r1: {r1:?})")
    })
}

/// The attacker's second step, shared by the tests below: with the runtime binary held
/// open on fd 3 and no process running it any more (ETXTBSY gone), reopen it for writing.
const REOPEN_FOR_WRITE: &str = "touch /tmp/ready1; while [ ! -e /tmp/go2 ]; do sleep 0.05; done; \
     { (echo x >> /proc/self/fd/3) 2>/dev/null && echo reopen:ok || echo reopen:denied; } > /tmp/r2; \
     touch /tmp/ready2; sleep 100";

/// Lets attacker A (no process runs the binary any more) reopen what it holds for writing;
/// returns its two reports, A stopped, after checking the binary did not change.
fn final_step(a: &Container, runtime: &Path, before: &[u8]) -> (String, String) {
    let tmp = a.rootfs.join("tmp");
    std::fs::write(tmp.join("go2"), "").unwrap();
    wait_for_file(&tmp, "ready2");
    let r1 = std::fs::read_to_string(tmp.join("r1")).unwrap();
    let r2 = std::fs::read_to_string(tmp.join("r2")).unwrap();
    a.kill("KILL");
    assert!(
        sha(runtime) == before,
        "the runtime binary changed: {r1}{r2}"
    );
    (r1, r2)
}

/// Container A holds a pid namespace that container B's init joins. While B is
/// `created`, its init is still the runtime: A tries /proc/<init>/exe. Returns what A
/// saw on its first step (r1) and on reopening the held binary for writing (r2).
fn attack_created_init_exe(name: &str, attacker_caps: &[&str]) -> (String, String) {
    let mut a = Container::new(name);
    let runtime = a.use_private_runtime();
    let before = sha(&runtime);
    for set in ["bounding", "effective", "permitted"] {
        a.config["process"]["capabilities"][set] = json!(attacker_caps);
    }
    a.set_sh(&format!(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; p=$(cat /tmp/go); \
         {{ readlink /proc/$p/exe >/dev/null 2>&1 && echo readlink:ok || echo readlink:denied; \
           cat /proc/$p/exe >/dev/null 2>&1 && echo read:ok || echo read:denied; \
           (echo x >> /proc/$p/exe) 2>/dev/null && echo write:ok || echo write:denied; }} > /tmp/r1; \
         if (exec 3< /proc/$p/exe) 2>/dev/null; then exec 3< /proc/$p/exe; echo held >> /tmp/r1; fi; \
         {REOPEN_FOR_WRITE}"
    ));
    a.run_with(&["--detach"]).assert_ok();
    let a_pid = a.pid();
    let mut b = Container::new(&format!("{name}victim"));
    b.runtime = runtime.clone();
    spec::set_namespace(&mut b.config, "pid", Some(&format!("/proc/{a_pid}/ns/pid")));
    let b_pid = b.create_ok();
    let tmp = a.rootfs.join("tmp");
    std::fs::write(
        tmp.join("go"),
        integration::procfs::ns_pid(b_pid).to_string(),
    )
    .unwrap();
    wait_for_file(&tmp, "ready1");
    b.start().assert_ok();
    b.wait_status("stopped");
    b.delete(false).assert_ok();
    final_step(&a, &runtime, &before)
}

#[test]
fn runtime_binary_not_reachable_through_init_exe() {
    let (r1, r2) = attack_created_init_exe("exeattacker", integration::spec::DEFAULT_CAPS);
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
}

#[test]
fn runtime_binary_not_writable_with_cap_sys_ptrace() {
    // CAP_SYS_PTRACE overrides non-dumpable: the attacker opens the created init's exe
    // and holds it. What it holds must never become writable.
    let mut caps = integration::spec::DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_PTRACE");
    let (r1, r2) = attack_created_init_exe("exeptrace", &caps);
    assert!(
        r1.contains("held"),
        "the attacker could not even open it: {r1}"
    );
    assert!(
        r1.contains("write:denied") && r2 == "reopen:denied\n",
        "{r1}{r2}"
    );
}

/// CVE-2019-5736 as published: the image turns a program into a script whose interpreter
/// is `/proc/self/exe`, so the runtime's own execve of that program starts the runtime
/// binary again, now as a dumpable container process. The attacker in container A opens
/// its `/proc/<pid>/exe`, lets it finish, and reopens the binary for writing. The victim
/// program blocks on opening its `--log` fifo, so nothing depends on winning a race.
/// `via_exec`: the script is run by `exec` into A; otherwise it is the init of a
/// container B that joins A's pid namespace. Returns A's report: `notfound` when the
/// runtime never started as the victim (the execve failed), else what A could do.
fn attack_through_shebang(name: &str, via_exec: bool) -> String {
    let mut a = Container::new(name);
    let runtime = a.use_private_runtime();
    let before = sha(&runtime);
    // The victim's command line is `/proc/self/exe --root /bin/evil --log /tmp/fifo ...`;
    // the pattern is written so that it does not match this script's own command line.
    a.set_sh(&format!(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; p=; \
         while [ -z \"$p\" ] && [ ! -e /tmp/gone ]; do \
           for d in /proc/[0-9]*; do \
             tr '\\0' ' ' < $d/cmdline 2>/dev/null | grep -q 'self/ex[e] --root' && p=${{d#/proc/}}; \
           done; [ -z \"$p\" ] && sleep 0.05; \
         done; \
         if [ -n \"$p\" ]; then \
           {{ echo found; (echo x >> /proc/$p/exe) 2>/dev/null && echo write:ok || echo write:denied; }} > /tmp/r1; \
           if (exec 3< /proc/$p/exe) 2>/dev/null; then exec 3< /proc/$p/exe; echo held >> /tmp/r1; fi; \
           cat /proc/$p/root/tmp/fifo > /dev/null; \
           while [ -e /proc/$p/exe ]; do sleep 0.05; done; \
         else echo notfound > /tmp/r1; fi; \
         {REOPEN_FOR_WRITE}"
    ));
    a.run_with(&["--detach"]).assert_ok();
    let evil = ["/bin/evil", "--log", "/tmp/fifo", "state", "x"];
    let plant = |rootfs: &Path| {
        install_program(
            &rootfs.join("bin/evil"),
            b"#!/proc/self/exe --root\n",
            0o755,
        );
        nix::unistd::mkfifo(
            &rootfs.join("tmp/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    };
    let tmp = a.rootfs.join("tmp");
    // Until A has reported, tell it when the victim is gone without having shown up.
    let wait_for_report = |gone: &mut dyn FnMut() -> bool| {
        let reported = integration::runtime::wait_for(Duration::from_secs(10), || {
            if tmp.join("ready1").exists() {
                return Some(());
            }
            if !tmp.join("gone").exists() && gone() {
                std::fs::write(tmp.join("gone"), "").unwrap();
            }
            None
        });
        assert!(reported.is_some(), "attacker never reported");
    };
    let mut b = Container::new(&format!("{name}victim"));
    if via_exec {
        plant(&a.rootfs);
        let mut exec = a.command();
        exec.args(["exec", &a.id]).args(evil);
        exec.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = exec.spawn().expect("spawn exec");
        std::fs::write(tmp.join("go"), "").unwrap();
        wait_for_report(&mut || child.try_wait().unwrap().is_some());
        // The foreground `exec` runs the binary too: wait until it is gone.
        child.wait().unwrap();
    } else {
        plant(&b.rootfs);
        b.runtime = runtime.clone();
        b.set_args(&evil);
        spec::set_namespace(
            &mut b.config,
            "pid",
            Some(&format!("/proc/{}/ns/pid", a.pid())),
        );
        b.create_ok();
        b.start().assert_ok();
        std::fs::write(tmp.join("go"), "").unwrap();
        wait_for_report(&mut || b.status() == "stopped");
        b.wait_status("stopped");
        b.delete(false).assert_ok();
    }
    drop(b);
    let (r1, r2) = final_step(&a, &runtime, &before);
    assert!(r2 == "reopen:denied\n", "{r1}{r2}");
    r1
}

fn assert_shebang_attack_contained(r1: &str) {
    if is_runc() && r1 == "notfound\n" {
        // runc 1.1.5 on this kernel: the execve of the script fails (ENOENT for the
        // interpreter /proc/self/exe, its sealed memfd copy), so the attack stops earlier.
        return;
    }
    // patina starts itself as the script's interpreter from its read-only image: the
    // attacker can hold it, never write it.
    assert_eq!(r1, "found\nwrite:denied\nheld\n");
}

#[test]
fn runtime_binary_not_writable_through_shebang_in_init() {
    let r1 = attack_through_shebang("exeshebang", false);
    assert_shebang_attack_contained(&r1);
}

#[test]
fn runtime_binary_not_writable_through_shebang_in_exec() {
    let r1 = attack_through_shebang("exeshebangexec", true);
    assert_shebang_attack_contained(&r1);
}

/// Where init's `exe` link leads while the container is `created`, and the errno of
/// reopening that image for writing once no process runs it (seen from the host).
fn created_init_image(c: &mut Container) -> (String, Option<i32>) {
    let pid = c.create_ok();
    let exe = format!("/proc/{pid}/exe");
    let link = std::fs::read_link(&exe)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    if !is_runc() {
        // The re-exec keeps the process name `ps` shows (older kernels would name a program
        // exec'd from a descriptor after its number).
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        let name = c
            .runtime
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(comm.trim_end(), &name[..name.len().min(15)]);
    }
    let held = std::fs::File::open(&exe).unwrap();
    c.start().assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    let reopened = std::fs::OpenOptions::new().append(true).open(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&held)
    ));
    (link, reopened.err().and_then(|e| e.raw_os_error()))
}

#[test]
fn init_runs_from_a_read_only_image() {
    // Installed normally: the runtime re-execs from a detached read-only mount of itself.
    let mut c = Container::new("exeimage");
    c.use_private_runtime();
    let (link, write) = created_init_image(&mut c);
    if is_runc() {
        // runc 1.1.5 runs init from a sealed memfd copy (reopening works, writes fail).
        assert!(link.starts_with("/memfd:"), "{link}");
    } else {
        // beyond runc: no copy; a mount of the file alone, read-only.
        assert_eq!(link, "/");
        assert_eq!(write, Some(libc::EROFS));
    }
    // Installed on a read-only mount (the cheap setup docs/security.md suggests): no
    // re-exec is needed, and the link is the binary's own path.
    let mut c = Container::new("exeimagero");
    let runtime = c.use_private_runtime();
    let flags = nix::mount::MsFlags::MS_BIND;
    nix::mount::mount(Some(&runtime), &runtime, None::<&str>, flags, None::<&str>).unwrap();
    c.track_host_mount(&runtime);
    let ro = flags | nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_RDONLY;
    nix::mount::mount(None::<&str>, &runtime, None::<&str>, ro, None::<&str>).unwrap();
    let (link, write) = created_init_image(&mut c);
    if is_runc() {
        assert!(link.starts_with("/memfd:"), "{link}");
    } else {
        assert_eq!(Path::new(&link), runtime);
        assert_eq!(write, Some(libc::EROFS));
    }
}

#[test]
fn runtime_falls_back_to_a_sealed_copy() {
    // Without CAP_SYS_ADMIN over its mount namespace (here: a new user namespace) the
    // read-only view cannot be made; patina re-execs from a sealed memfd copy instead and
    // carries on (here to the error for an unknown container, from the second image).
    let c = Container::new("exesealed");
    let mut cmd = std::process::Command::new("unshare");
    cmd.arg("-U")
        .arg(&c.runtime)
        .arg("--debug")
        .arg("--root")
        .arg(&c.root);
    let out = c.exec(cmd.args(["exec", "no-such-container", "true"]));
    assert!(out.code.is_some_and(|c| c != 0), "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    assert!(
        !out.stderr.contains("protect the runtime binary"),
        "{out:?}"
    );
    if !is_runc() {
        // beyond runc: runc 1.1.5 copies the binary for `runc init` only.
        assert!(
            out.stderr.contains("EPERM") && out.stderr.contains("sealed copy"),
            "{out:?}"
        );
    }
}

#[test]
fn runtime_binary_not_reachable_from_shared_pid_namespace() {
    // Without a pid namespace the container sees `run`, its parent, on the host.
    let mut c = Container::new("exeparent");
    let runtime = c.use_private_runtime();
    let before = sha(&runtime);
    spec::remove_namespace(&mut c.config, "pid");
    let out = c.sh_ok(
        "p=$PPID; cat /proc/$p/exe >/dev/null 2>&1 && echo read:ok || echo read:denied; \
         (echo x >> /proc/$p/exe) 2>/dev/null && echo write:ok || echo write:denied",
    );
    assert_eq!(out, "read:denied\nwrite:denied\n");
    assert!(sha(&runtime) == before);
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
