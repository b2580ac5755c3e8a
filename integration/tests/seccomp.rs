//! linux.seccomp, tested from inside the container: every action observed (errno value,
//! SIGSYS, ENOSYS from TRACE without a tracer, the notify listener), argument filters
//! that match exactly, the 32-bit compat ABI (x86 through `int 0x80`, or an AArch32
//! program on arm64), podman's real default profile for this architecture, and the
//! filter going in late enough that the runtime's own syscalls pass.

use integration::security::{
    compat_runs, exit_with_at_syscall, exit_with_compat_syscall, exit_with_syscall,
    install_program, native_arches, podman_profile, COMPAT_NR, NATIVE_ARCH,
};
use integration::{spec, Container};
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

/// 128 + SIGSYS: how the shell reports a child killed by seccomp.
const SIGSYS_EXIT: &str = "rc=159";

fn allow_all_but(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": native_arches(),
            "syscalls": rules })
}

fn with_profile(name: &str, profile: Value) -> Container {
    let mut c = Container::new(name);
    c.config["linux"]["seccomp"] = profile;
    c
}

#[test]
fn errno_action_returns_errno_ret() {
    let mut c = with_profile(
        "scerrno",
        allow_all_but(
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95 }]),
        ),
    );
    let out = c.sh_ok("mkdir /tmp/x 2>&1; echo rc=$?; touch /tmp/y && echo touched");
    assert!(
        out.contains("not supported") && out.contains("rc=1"),
        "{out}"
    );
    assert!(out.contains("touched"), "{out}");
}

#[test]
fn errno_action_defaults_to_eperm() {
    let mut c = with_profile(
        "scerrnodef",
        allow_all_but(json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }])),
    );
    let out = c.sh_ok("mkdir /tmp/x 2>&1; echo rc=$?");
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn kill_and_trap_actions_end_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let mut c = with_profile(
            "sckill",
            allow_all_but(json!([{ "names": ["mkdir", "mkdirat"], "action": action }])),
        );
        // A child shell: busybox runs mkdir inside the shell that calls it (and every
        // busybox process calls uname at start-up, static glibc).
        let out = c.sh_ok("sh -c 'mkdir /tmp/k'; echo rc=$?; echo alive");
        assert!(
            out.contains(SIGSYS_EXIT) && out.contains("alive"),
            "{action}: {out}"
        );
    }
}

#[test]
fn trace_without_tracer_is_enosys_and_log_allows() {
    let mut c = with_profile(
        "sctrace",
        allow_all_but(json!([
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 7 },
            { "names": ["uname"], "action": "SCMP_ACT_LOG" }
        ])),
    );
    let out = c.sh_ok("mkdir /tmp/x 2>&1; echo rc=$?; uname");
    assert!(
        out.contains("Function not implemented") && out.contains("rc=1"),
        "{out}"
    );
    assert!(out.ends_with("Linux\n"), "{out}");
}

#[test]
fn argument_filters_match_exactly() {
    // busybox dd moves its output to fd 1 and writes `bs` bytes per block.
    let mut c = with_profile(
        "scargs",
        allow_all_but(json!([
            // Two arguments: both must hold.
            { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                       { "index": 2, "value": 1000, "op": "SCMP_CMP_EQ" }] },
            { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 2, "value": 5000, "op": "SCMP_CMP_GT" }] },
            // (count & 0xff) == 0x7b
            { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 2, "value": 255, "valueTwo": 123, "op": "SCMP_CMP_MASKED_EQ" }] },
            // The same argument twice: either (as runc).
            { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 2, "value": 2001, "op": "SCMP_CMP_EQ" },
                       { "index": 2, "value": 2002, "op": "SCMP_CMP_EQ" }] }
        ])),
    );
    let script = "for bs in 1000 999 1001 5000 5001 379 380 2001 2002 2003; do \
        if dd if=/dev/zero bs=$bs count=1 2>/dev/null >/dev/null; then echo $bs:ok; else echo $bs:denied; fi; done; \
        dd if=/dev/zero bs=1000 count=1 of=/tmp/f 2>/dev/null; echo fd3:$?";
    let out = c.sh_ok(script);
    // dd with of= writes to fd 1 too (busybox moves it there): 1000 is denied either way.
    assert_eq!(
        out,
        "1000:denied\n999:ok\n1001:ok\n5000:ok\n5001:denied\n379:denied\n380:ok\n2001:denied\n2002:denied\n2003:ok\nfd3:1\n",
    );
    let mut c = with_profile(
        "scargs2",
        allow_all_but(json!([
            { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 0, "value": 2, "op": "SCMP_CMP_EQ" },
                       { "index": 2, "value": 1000, "op": "SCMP_CMP_EQ" }] },
            { "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 2, "value": 100, "op": "SCMP_CMP_LT" }] },
            { "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 2, "value": 4000, "op": "SCMP_CMP_GE" },
                       { "index": 0, "value": 0, "op": "SCMP_CMP_EQ" }] },
            { "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
              "args": [{ "index": 2, "value": 250, "op": "SCMP_CMP_LE" },
                       { "index": 0, "value": 0, "op": "SCMP_CMP_NE" }] }
        ])),
    );
    let out = c.sh_ok(
        "for bs in 1000 99 100 200 3999 4000; do \
         if dd if=/dev/zero bs=$bs count=1 2>/dev/null >/dev/null; then echo $bs:ok; else echo $bs:denied; fi; done",
    );
    // write(1, .., 1000) is not write(2, ..); dd reads from fd 0, so the LE 250 rule
    // (fd != 0) never matches.
    assert_eq!(
        out,
        "1000:ok\n99:denied\n100:ok\n200:ok\n3999:ok\n4000:denied\n"
    );
}

/// The compat ABI's getpid (i386 or ARM EABI: 20 on both).
fn compat_getpid() -> Vec<u8> {
    exit_with_compat_syscall(COMPAT_NR.getpid, 0)
}

/// False, saying so by name, when this machine runs no 32-bit programs.
fn compat_or_say(test: &str) -> bool {
    let runs = compat_runs();
    if !runs {
        eprintln!(
            "{test}: this kernel or CPU runs no 32-bit compat programs: the compat part not run"
        );
    }
    runs
}

#[test]
fn compat_abi_follows_the_arch_map() {
    if !compat_or_say("compat_abi_follows_the_arch_map") {
        return;
    }
    let rule = json!([{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }]);
    // With the compat arch (SCMP_ARCH_X86 / SCMP_ARCH_ARM) in the profile, its getpid
    // gets the rule: exit(-42) = 214.
    let mut c = with_profile("sccompat", allow_all_but(rule.clone()));
    install_program(&c.rootfs.join("bin/getpid32"), &compat_getpid(), 0o755);
    assert!(c.sh_ok("/bin/getpid32; echo rc=$?").contains("rc=214"));
    // Without it, the 32-bit ABI is a bad architecture: killed with SIGSYS.
    let mut c = with_profile(
        "sccompatbad",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": [NATIVE_ARCH.0], "syscalls": rule }),
    );
    install_program(&c.rootfs.join("bin/getpid32"), &compat_getpid(), 0o755);
    let out = c.sh_ok("/bin/getpid32; echo rc=$?");
    assert!(out.contains(SIGSYS_EXIT), "{out}");
}

#[test]
fn podman_default_profile() {
    let caps = spec::DEFAULT_CAPS;
    let mut c = with_profile("scpodman", podman_profile(caps));
    let compat = compat_or_say("podman_default_profile");
    install_program(&c.rootfs.join("bin/getpid32"), &compat_getpid(), 0o755);
    // add_key is not in the profile: the default action, ERRNO ENOSYS (exit 218).
    install_program(
        &c.rootfs.join("bin/addkey"),
        &exit_with_syscall(libc::SYS_add_key as u32),
        0o755,
    );
    let out = c.sh_ok(&format!(
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; ls / >/dev/null && echo ls-ok; \
         /bin/addkey; echo add_key=$?; hostname newname 2>&1; {}",
        if compat {
            "/bin/getpid32; echo compat=$?"
        } else {
            ""
        }
    ));
    assert!(
        out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t1"),
        "{out}"
    );
    assert!(
        out.contains("ls-ok") && out.contains("add_key=218"),
        "{out}"
    );
    // sethostname without CAP_SYS_ADMIN: the profile's EPERM rule.
    assert!(
        out.contains("hostname: sethostname: Operation not permitted"),
        "{out}"
    );
    // The compat ABI's getpid is allowed by its rules: the shell's child pid, not an error.
    assert!(
        !out.contains("compat=159") && !out.contains("compat=218"),
        "{out}"
    );
}

/// Every architecture runc's seccomp config names, in one profile.
const EVERY_ARCH: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
];

#[test]
fn profile_listing_every_architecture() {
    // A profile written for every machine at once (the native arch is among many): the
    // rules reach this machine's calls with its numbers, and the compat ABI's too.
    let rule = json!([
        { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95 },
        { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }
    ]);
    // beyond runc: runc 1.1.5 refuses riscv64 and loong64 ("not a valid arch"), and its
    // libseccomp any mix of byte orders (EDOM): for runc, the little-endian others.
    let arches: Vec<&str> = EVERY_ARCH
        .iter()
        .copied()
        .filter(|a| {
            !integration::is_runc()
                || !matches!(
                    *a,
                    "SCMP_ARCH_RISCV64"
                        | "SCMP_ARCH_LOONGARCH64"
                        | "SCMP_ARCH_MIPS"
                        | "SCMP_ARCH_MIPS64"
                        | "SCMP_ARCH_MIPS64N32"
                        | "SCMP_ARCH_PPC"
                        | "SCMP_ARCH_PPC64"
                        | "SCMP_ARCH_S390"
                        | "SCMP_ARCH_S390X"
                )
        })
        .collect();
    let mut c = with_profile(
        "sceveryarch",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": arches, "syscalls": rule }),
    );
    let compat = compat_or_say("profile_listing_every_architecture");
    install_program(&c.rootfs.join("bin/getpid32"), &compat_getpid(), 0o755);
    let out = c.sh_ok(&format!(
        "mkdir /tmp/x 2>&1; echo rc=$?; touch /tmp/y && echo touched; {}",
        if compat {
            "/bin/getpid32; echo compat=$?"
        } else {
            ""
        }
    ));
    assert!(
        out.contains("not supported") && out.contains("rc=1"),
        "{out}"
    );
    assert!(out.contains("touched"), "{out}");
    // exit(-42) = 214: the compat getpid met the rule with its own number.
    assert!(!compat || out.contains("compat=214"), "{out}");
}

/// Podman's profile with EPERM (not its ENOSYS) for what it does not list, as older
/// docker profiles and hand-written allow-lists have it.
fn eperm_default_profile() -> Value {
    let mut p = podman_profile(spec::DEFAULT_CAPS);
    p["defaultErrnoRet"] = json!(libc::EPERM);
    p
}

#[test]
fn syscalls_newer_than_the_old_tables_resolve() {
    // fchmodat2 (Linux 6.6, 452) allowed by name: patina's tables used to lack it, so
    // the rule was skipped and the call got the default EPERM, which a libc does not
    // take as "fall back to fchmodat".
    let mut control = Container::new("scnewcallsctl");
    install_program(
        &control.rootfs.join("bin/chmod2"),
        &exit_with_at_syscall(452, "/f", 0o600),
        0o755,
    );
    std::fs::write(control.rootfs.join("f"), "x").unwrap();
    if control.sh_ok("/bin/chmod2; echo rc=$?") == format!("rc={}\n", 256 - libc::ENOSYS) {
        eprintln!(
            "syscalls_newer_than_the_old_tables_resolve: this kernel has no fchmodat2 \
             (Linux < 6.6): not run"
        );
        return;
    }
    let mut p = eperm_default_profile();
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "names": ["fchmodat2", "cachestat", "mseal"], "action": "SCMP_ACT_ALLOW" }));
    let mut c = with_profile("scnewcalls", p);
    install_program(
        &c.rootfs.join("bin/chmod2"),
        &exit_with_at_syscall(452, "/f", 0o600),
        0o755,
    );
    std::fs::write(c.rootfs.join("f"), "x").unwrap();
    let out = c.sh_ok("/bin/chmod2; echo rc=$?; stat -c %a /f");
    // The rule applies and the call goes through (runc: its libseccomp knows the name).
    assert_eq!(out, "rc=0\n600\n");
}

#[test]
fn calls_above_the_profile_get_enosys_per_architecture() {
    // A newer libc probes a syscall the profile cannot know: ENOSYS makes it fall back,
    // EPERM would not. Below the largest number the profile knows, an unlisted call
    // (add_key) still gets the default errno. Each ABI has its own numbers: the native
    // one, x32 on x86_64 (the same arch with __X32_SYSCALL_BIT) and the compat ABI.
    // On arm64 the compat ABI is ARM EABI, whose private calls (cacheflush, set_tls, in
    // podman's profile) sit at 0xf0000 and above: the profile's largest number there.
    let mut c = with_profile("scenosys", eperm_default_profile());
    let add_key = libc::SYS_add_key as u32;
    let mut programs = vec![
        ("high", exit_with_syscall(1000)),
        ("addkey", exit_with_syscall(add_key)),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        use integration::security::X32_SYSCALL_BIT as X32;
        programs.push(("x32high", exit_with_syscall(X32 | 1000)));
        programs.push(("x32addkey", exit_with_syscall(X32 | add_key)));
    }
    let compat_high = if cfg!(target_arch = "aarch64") {
        0xf_0000 + 1000
    } else {
        1000
    };
    if compat_or_say("calls_above_the_profile_get_enosys_per_architecture") {
        programs.push(("compathigh", exit_with_compat_syscall(compat_high, 0)));
        programs.push((
            "compataddkey",
            exit_with_compat_syscall(COMPAT_NR.add_key, 0),
        ));
    }
    let mut script = String::new();
    let mut want = String::new();
    for (name, program) in &programs {
        install_program(&c.rootfs.join("bin").join(name), program, 0o755);
        script += &format!("/bin/{name}; echo {name}=$?; ");
        // 218: ENOSYS from the stub; 255: the profile's default EPERM.
        want += &format!(
            "{name}={}\n",
            if name.ends_with("high") { 218 } else { 255 }
        );
    }
    assert_eq!(c.sh_ok(&script), want);
}

#[test]
fn socket_rule_covers_socketcall_on_x86() {
    let Some(socketcall) = COMPAT_NR.socketcall else {
        eprintln!(
            "socket_rule_covers_socketcall_on_x86: x86-only (this compat ABI has no socketcall): not run"
        );
        return;
    };
    if !compat_or_say("socket_rule_covers_socketcall_on_x86") {
        return;
    }
    // On i386 a socket call also arrives through socketcall(2) with the call number in
    // the first argument: a rule naming `socket` catches socketcall(SYS_SOCKET, ...)
    // too, and nothing else of socketcall (as libseccomp does).
    let mut c = with_profile(
        "scsocketcall",
        allow_all_but(json!([{ "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }])),
    );
    for (name, program) in [
        ("direct", exit_with_compat_syscall(COMPAT_NR.socket, 2)),
        ("viasocket", exit_with_compat_syscall(socketcall, 1)),
        ("viabind", exit_with_compat_syscall(socketcall, 2)),
    ] {
        install_program(&c.rootfs.join("bin").join(name), &program, 0o755);
    }
    let out = c.sh_ok("for p in direct viasocket viabind; do /bin/$p; echo $p=$?; done");
    // 214: errno 42 from the filter; 242: EFAULT from the kernel (bind's arguments
    // pointer is NULL), so that call got through.
    assert_eq!(out, "direct=214\nviasocket=214\nviabind=242\n");
}

#[test]
fn podman_profile_without_no_new_privileges() {
    // docker's and podman's default: nnp false with seccomp (the filter goes in while
    // init still has CAP_SYS_ADMIN).
    let mut c = with_profile("scnnpfalse", podman_profile(spec::DEFAULT_CAPS));
    c.config["process"]["noNewPrivileges"] = json!(false);
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let out = c.sh_ok("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; id -u");
    assert_eq!(out, "NoNewPrivs:\t0\nSeccomp:\t2\n1000\n");
}

#[test]
fn runtime_syscalls_are_not_filtered() {
    // The filter denies what the runtime itself needs (mounts, pivot_root, hostname,
    // credentials): installed just before execve, the container still starts.
    let mut c = with_profile(
        "sclate",
        allow_all_but(json!([{
            "names": ["mount", "umount2", "pivot_root", "sethostname", "setgroups", "setresuid",
                      "setresgid", "capset", "prctl", "chdir", "openat2", "close_range", "keyctl"],
            "action": "SCMP_ACT_ERRNO", "errnoRet": 1
        }])),
    );
    let out = c.sh_ok("hostname; hostname other 2>&1; grep Seccomp: /proc/self/status");
    assert!(out.starts_with("patina-test\n"), "{out}");
    assert!(
        out.contains("Operation not permitted") && out.contains("Seccomp:\t2"),
        "{out}"
    );
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Accept one listener connection: the state JSON and the seccomp fd.
fn accept_listener(listener: &UnixListener) -> (Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (stream, _) = listener.accept().expect("runtime connects to listenerPath");
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(f) => f.first().copied(),
            _ => None,
        })
        .expect("an fd attached");
    let n = msg.bytes;
    let doc = serde_json::from_slice(&buf[..n]).expect("state JSON");
    // SAFETY: the fd just arrived through SCM_RIGHTS and is ours.
    (doc, unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Answer every notification with EXDEV until the fd goes quiet.
fn answer_with_exdev(fd: &OwnedFd) -> usize {
    let mut answered = 0;
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 10_000) } <= 0 || pfd.revents & libc::POLLIN == 0 {
            return answered;
        }
        let mut notif = [0u8; 80];
        // SAFETY: the buffer has the size of struct seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, notif.as_mut_ptr()) } != 0 {
            return answered;
        }
        let mut resp = [0u8; 24];
        resp[..8].copy_from_slice(&notif[..8]); // id
        resp[16..20].copy_from_slice(&(-libc::EXDEV).to_le_bytes()); // error
                                                                     // SAFETY: the buffer has the size of struct seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, resp.as_ptr()) };
        answered += 1;
    }
}

#[test]
fn notify_sends_fd_and_state_to_listener() {
    let mut c = Container::new("scnotify");
    let sock = c.path("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock, "listenerMetadata": "test-metadata",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
    });
    let agent = std::thread::spawn(move || {
        let (doc, fd) = accept_listener(&listener);
        let answered = answer_with_exdev(&fd);
        (doc, answered)
    });
    let out = c.sh_ok("mkdir /tmp/x 2>&1; echo rc=$?");
    let (doc, answered) = agent.join().unwrap();
    assert!(
        out.contains("Invalid cross-device link") && out.contains("rc=1"),
        "{out}"
    );
    assert!(answered >= 1);
    assert_eq!(doc["fds"], json!(["seccompFd"]), "{doc}");
    assert_eq!(doc["metadata"], "test-metadata", "{doc}");
    assert!(doc["pid"].as_i64().unwrap() > 0, "{doc}");
    assert_eq!(doc["state"]["id"], c.id.as_str(), "{doc}");
}

#[test]
fn notify_for_exec_sends_fd_and_state_to_listener() {
    // Each process the filter goes into gets its own listener fd: init's at create, then
    // one per exec'd process, with that process's pid and the container's state.
    let mut c = Container::new("scnotifyexec");
    let sock = c.path("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock, "listenerMetadata": "exec-metadata",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
    });
    c.set_args(&["sleep", "100"]);
    let agent = std::thread::spawn(move || {
        let (init_doc, _init_fd) = accept_listener(&listener);
        let (doc, fd) = accept_listener(&listener);
        let answered = answer_with_exdev(&fd);
        (init_doc, doc, answered)
    });
    c.run_with(&["--detach"]).assert_ok();
    let init_pid = c.pid();
    let out = c.rt(&["exec", &c.id, "sh", "-c", "mkdir /tmp/y 2>&1; echo rc=$?"]);
    out.assert_ok();
    let (init_doc, doc, answered) = agent.join().unwrap();
    assert!(
        out.stdout.contains("Invalid cross-device link") && out.stdout.contains("rc=1"),
        "{out:?}"
    );
    assert!(answered >= 1);
    assert_eq!(init_doc["pid"], init_pid, "{init_doc}");
    assert_eq!(doc["fds"], json!(["seccompFd"]), "{doc}");
    assert_eq!(doc["metadata"], "exec-metadata", "{doc}");
    assert_eq!(doc["state"]["id"], c.id.as_str(), "{doc}");
    assert_eq!(doc["state"]["status"], "running", "{doc}");
    let pid = doc["pid"].as_i64().unwrap();
    assert!(pid > 0 && pid != i64::from(init_pid), "{doc}");
    assert!(!c.rootfs.join("tmp/y").exists());
}

/// Kernel log records (/dev/kmsg) that contain every one of `needles`.
fn kernel_log_lines(needles: &[&str]) -> Vec<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg");
    let mut found = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        // One record per read; EAGAIN at the end, EPIPE when the ring overwrote one.
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                if needles.iter().all(|n| line.contains(n)) {
                    found.push(line);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    found
}

/// Runs `uname` under `profile` from a busybox copy named for this call, `tries` times
/// at most, until the kernel has an audit record (type=1326) of it with `code`; returns
/// whether it found one. printk rate limits may drop a record while other tests log.
fn uname_audited(name: &str, profile: Value, code: &str, tries: usize) -> bool {
    let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
    let tag = format!("busybox-{:07x}", (nanos ^ std::process::id()) & 0xfff_ffff);
    let exe = format!("exe=\"/bin/{tag}\"");
    let code = format!("code={code}");
    let syscall = format!("syscall={} ", libc::SYS_uname);
    let needles = [exe.as_str(), "type=1326", &syscall, code.as_str()];
    assert!(
        kernel_log_lines(&needles).is_empty(),
        "{tag} was used before"
    );
    for attempt in 0..tries {
        let mut c = with_profile(name, profile.clone());
        std::fs::copy(
            c.rootfs.join("bin/busybox"),
            c.rootfs.join("bin").join(&tag),
        )
        .unwrap();
        c.set_args(&[&format!("/bin/{tag}"), "uname"]);
        c.run();
        // The kernel's printk budget is 10 records per 5 s: later tries wait past it.
        std::thread::sleep(std::time::Duration::from_millis(250 * attempt as u64));
        if !kernel_log_lines(&needles).is_empty() {
            return true;
        }
    }
    false
}

#[test]
fn log_action_is_logged_by_the_kernel() {
    // SCMP_ACT_LOG lets the call through and the kernel writes an audit record.
    let profile = allow_all_but(json!([{ "names": ["uname"], "action": "SCMP_ACT_LOG" }]));
    let mut c = with_profile("sclogallows", profile.clone());
    assert_eq!(c.sh_ok("uname"), "Linux\n", "the call is allowed");
    assert!(uname_audited("sclog", profile, "0x7ffc0000", 8));
}

#[test]
fn log_flag_makes_the_kernel_log_errno_actions() {
    // SECCOMP_FILTER_FLAG_LOG: actions the kernel does not log by default (ERRNO here,
    // the record carries the action, 0x50000) are logged too; without the flag they are not.
    let rule = json!([{ "names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }]);
    let mut flagged = allow_all_but(rule.clone());
    flagged["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG"]);
    let logged = uname_audited("sclogflag", flagged, "0x50000", 8);
    // beyond runc: runc 1.1.5 accepts the flag but its filter is not logged.
    assert!(logged || integration::is_runc());
    assert!(!uname_audited(
        "sclognoflag",
        allow_all_but(rule),
        "0x50000",
        1
    ));
}

/// A startContainer hook runs in the container, under its filter (as runc): a hook
/// that makes a directory the profile forbids fails, and so does the start; the same
/// hook without the rule makes it.
#[test]
fn start_container_hook_runs_under_the_filter() {
    for (forbid, want_dir) in [(true, false), (false, true)] {
        let rules = match forbid {
            true => json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]),
            false => json!([{ "names": ["reboot"], "action": "SCMP_ACT_ERRNO" }]),
        };
        let mut c = with_profile("schook", allow_all_but(rules));
        c.config["hooks"] = json!({ "startContainer": [
            { "path": "/bin/sh", "args": ["sh", "-c", "mkdir /made-by-hook"] }
        ]});
        c.set_args(&["true"]);
        let out = c.run();
        assert_eq!(out.success(), want_dir, "forbid {forbid}: {out:?}");
        assert_eq!(
            c.rootfs.join("made-by-hook").is_dir(),
            want_dir,
            "forbid {forbid}"
        );
    }
}

/// SCMP_ACT_NOTIFY on `write` is refused at create, in runc's words: the runtime's own
/// writes under the filter would wait on the agent.
#[test]
fn notify_on_write_is_refused() {
    let mut c = Container::new("scnotifywrite");
    let sock = c.path("listener.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{ "names": ["write"], "action": "SCMP_ACT_NOTIFY" }]
    });
    c.set_args(&["true"]);
    let out = c.create();
    c.assert_rejected(
        &out,
        &["SCMP_ACT_NOTIFY cannot be used for the write syscall"],
    );
    assert!(
        out.stderr
            .contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{out:?}"
    );
}

/// No agent at listenerPath: create fails, saying so in runc's words.
#[test]
fn notify_without_an_agent_fails_create() {
    let mut c = Container::new("scnotifynone");
    let sock = c.path("nobody-listens.sock");
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    });
    c.set_args(&["true"]);
    let out = c.create();
    c.assert_rejected(&out, &["failed to connect with seccomp agent"]);
    assert!(
        out.stderr.contains("failed to connect with seccomp agent"),
        "{out:?}"
    );
}
