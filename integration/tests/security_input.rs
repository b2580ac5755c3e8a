//! Bad security input fails `create` with one clear line and leaves nothing behind;
//! and the process attributes (personality, scheduler, I/O priority, LSM labels).

use integration::{is_runc, Container};
use serde_json::json;

fn seccomp_with(rule: serde_json::Value) -> serde_json::Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule] })
}

#[test]
fn seccomp_unknown_action() {
    let mut c = Container::new("badaction");
    c.config["linux"]["seccomp"] =
        seccomp_with(json!({ "names": ["read"], "action": "SCMP_ACT_BOGUS" }));
    let out = c.create();
    c.assert_rejected(&out, &["SCMP_ACT_BOGUS"]);
}

#[test]
fn seccomp_unknown_operator() {
    let mut c = Container::new("badop");
    c.config["linux"]["seccomp"] =
        seccomp_with(json!({ "names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES" }] }));
    let out = c.create();
    c.assert_rejected(&out, &["SCMP_CMP_SOMETIMES"]);
}

#[test]
fn seccomp_more_than_six_args() {
    let mut c = Container::new("sevenargs");
    let args: Vec<_> = (0..7)
        .map(|i| json!({ "index": i % 6, "value": 1, "op": "SCMP_CMP_EQ" }))
        .collect();
    c.config["linux"]["seccomp"] =
        seccomp_with(json!({ "names": ["read"], "action": "SCMP_ACT_ERRNO", "args": args }));
    let out = c.create();
    if is_runc() {
        // runc 1.1.5 takes the seven (same-index conditions become separate rules).
        out.assert_ok();
    } else {
        // beyond runc: a syscall has six arguments; a seventh condition is a mistake.
        c.assert_rejected(&out, &["linux.seccomp.syscalls[0].args", "6"]);
    }
    let mut c = Container::new("argindex6");
    c.config["linux"]["seccomp"] =
        seccomp_with(json!({ "names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }));
    let out = c.create();
    c.assert_rejected(&out, &["linux.seccomp.syscalls[0].args[0].index"]);
}

#[test]
fn invalid_capability_name() {
    let mut c = Container::new("badcap");
    c.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_FLY"]);
    let out = c.create();
    c.assert_rejected(&out, &["CAP_FLY", "line"]);
}

#[test]
fn unknown_rlimit_type() {
    let mut c = Container::new("badrlimit");
    c.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_WISHES", "soft": 3, "hard": 3 }]);
    let out = c.create();
    c.assert_rejected(&out, &["RLIMIT_WISHES"]);
}

#[test]
fn non_namespaced_sysctl() {
    let mut c = Container::new("badsysctl");
    c.config["linux"]["sysctl"] = json!({ "kernel.panic": "1" });
    let out = c.create();
    c.assert_rejected(&out, &["linux.sysctl", "kernel.panic"]);
}

/// kernel.hostname (and domainname) through linux.sysctl, even with a UTS namespace: the
/// config's `hostname`/`domainname` fields set them (runc refuses kernel.hostname).
#[test]
fn hostname_sysctl_is_refused() {
    for key in ["kernel.hostname", "kernel.domainname"] {
        let mut c = Container::new("sysctlhost");
        c.config["linux"]["sysctl"] = json!({ key: "other" });
        if is_runc() && key == "kernel.domainname" {
            // beyond runc: runc 1.1.5 accepts kernel.domainname with a UTS namespace.
            continue;
        }
        let out = c.create();
        c.assert_rejected(&out, &["linux.sysctl", key]);
    }
}

#[test]
fn apparmor_profile_without_apparmor() {
    if std::path::Path::new("/sys/module/apparmor").exists() {
        return; // the host has AppArmor: nothing to refuse
    }
    let mut c = Container::new("apparmor");
    c.config["process"]["apparmorProfile"] = json!("docker-default");
    let out = c.run();
    // A profile that cannot apply is an error, not a silent no-op (runc too).
    c.assert_rejected(
        &out,
        &["process.apparmorProfile", "AppArmor is not enabled"],
    );
}

#[test]
fn selinux_label_without_selinux() {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        return;
    }
    let mut c = Container::new("selinux");
    c.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    let out = c.run();
    c.assert_rejected(&out, &["process.selinuxLabel", "SELinux is not enabled"]);
}

#[test]
fn exec_with_lsm_labels_the_host_lacks() {
    // exec applies the process's labels as create does (engines pass the container's
    // profile on every exec): on a host without that LSM, a clear error, and the
    // container goes on untouched.
    let host_has = |p: &str| std::path::Path::new(p).exists();
    if host_has("/sys/module/apparmor") || host_has("/sys/fs/selinux/enforce") {
        return; // the host has an LSM: nothing to refuse
    }
    let mut c = Container::new("execlsm");
    c.set_args(&["sleep", "100"]);
    c.run_with(&["--detach"]).assert_ok();
    for (flag, value, words) in [
        (
            "--apparmor",
            "docker-default",
            ["apparmorProfile", "AppArmor is not enabled"],
        ),
        (
            "--process-label",
            "system_u:system_r:container_t:s0",
            ["selinuxLabel", "SELinux is not enabled"],
        ),
    ] {
        let out = c.rt(&["exec", flag, value, &c.id, "true"]);
        assert!(out.code.is_some_and(|code| code != 0), "{flag}: {out:?}");
        if !integration::is_runc() {
            assert_eq!(out.stderr.lines().count(), 1, "{flag}: {out:?}");
            assert!(
                words.iter().all(|w| out.stderr.contains(w)),
                "{flag}: {out:?}"
            );
        }
        assert_eq!(c.status(), "running", "{flag}");
    }
    // And the container's own exec still works.
    assert_eq!(c.rt(&["exec", &c.id, "echo", "ok"]).stdout, "ok\n");
}

#[test]
fn personality_linux32() {
    let mut c = Container::new("personality");
    c.config["linux"]["personality"] = json!({ "domain": "LINUX32" });
    // What uname reports natively and under PER_LINUX32 (arm64: COMPAT_UTS_MACHINE).
    let (native, linux32) = if cfg!(target_arch = "aarch64") {
        ("aarch64\n", "armv8l\n")
    } else {
        ("x86_64\n", "i686\n")
    };
    if cfg!(target_arch = "aarch64") && !integration::security::compat_runs() {
        // arm64 refuses PER_LINUX32 on a CPU without AArch32 (EINVAL).
        eprintln!("personality_linux32: this CPU has no AArch32 mode: not run");
        return;
    }
    let machine = c.sh_ok("uname -m");
    if is_runc() {
        // runc 1.1.5 predates linux.personality (1.2): it ignores it.
        assert_eq!(machine, native);
    } else {
        // beyond runc (1.1.5)
        assert_eq!(machine, linux32);
    }
}

#[test]
fn scheduler_and_io_priority() {
    let mut c = Container::new("sched");
    std::os::unix::fs::symlink("busybox", c.rootfs.join("bin/ionice")).unwrap();
    c.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 });
    c.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_IDLE", "priority": 0 });
    // /proc/self/stat fields 19 (nice) and 41 (policy: 3 = SCHED_BATCH).
    let out = c.sh_ok("cut -d' ' -f19,41 /proc/self/stat; ionice");
    if is_runc() {
        // runc 1.1.5 predates process.scheduler and ioPriority (1.2): it ignores them.
        assert!(out.starts_with("0 0\n"), "{out}");
    } else {
        // beyond runc (1.1.5)
        assert_eq!(out, "7 3\nidle\n");
    }
}

/// The runtime-spec's flag names (`SCHED_FLAG_RESET_ON_FORK`, which oci-spec 0.10
/// spells otherwise) are accepted and applied: the program runs with the policy and
/// the flag, as the host's chrt(1) reads them from its task.
#[test]
fn scheduler_flag_in_the_spec_spelling() {
    let mut c = Container::new("schedflag");
    c.config["process"]["scheduler"] =
        json!({ "policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"] });
    c.set_args(&["sleep", "100"]);
    c.create().assert_ok();
    c.start().assert_ok();
    let pid = c.pid().to_string();
    let chrt = match std::process::Command::new("chrt")
        .args(["-p", &pid])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("scheduler_flag_in_the_spec_spelling: not run, no chrt on this host ({e})");
            return;
        }
    };
    let out = String::from_utf8_lossy(&chrt.stdout);
    if is_runc() {
        // beyond runc: runc 1.1.5 predates process.scheduler (1.2) and ignores it.
        assert!(out.contains("policy: SCHED_OTHER\n"), "{out}");
    } else {
        assert!(
            out.contains("policy: SCHED_BATCH|SCHED_RESET_ON_FORK"),
            "{out}"
        );
    }
}

/// linux.memoryPolicy: the program's memory is placed by the policy asked for, as its
/// own /proc/self/numa_maps shows (the policy of its mappings); node 0 exists on every
/// host.
#[test]
fn memory_policy_is_the_programs() {
    let mut c = Container::new("mempolicy");
    c.config["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_INTERLEAVE", "nodes": "0" });
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        eprintln!("memory_policy_is_the_programs: not run, this kernel has no NUMA (no numa_maps)");
        return;
    }
    let out = c.sh_ok("head -n1 /proc/self/numa_maps | cut -d' ' -f2");
    if is_runc() {
        // beyond runc: runc 1.1.5 predates linux.memoryPolicy (1.3) and ignores it.
        assert_eq!(out, "default\n");
    } else {
        assert_eq!(out, "interleave:0\n");
    }
}

#[test]
fn memory_policy_mode_and_nodes_must_agree() {
    let mut c = Container::new("mempolicybad");
    c.config["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_DEFAULT", "nodes": "0" });
    let out = c.create();
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.memoryPolicy.
        out.assert_ok();
        return;
    }
    c.assert_rejected(&out, &["linux.memoryPolicy.nodes", "MPOL_DEFAULT"]);
}

#[test]
fn environment_entries_must_be_key_value_without_nul() {
    for bad in ["A\u{0}B=1", "NOEQUALS", "=value"] {
        let mut c = Container::new("envbad");
        c.config["process"]["env"] = json!(["PATH=/bin", bad]);
        let out = c.create();
        if is_runc() && bad == "=value" {
            // beyond runc: runc 1.1.5 passes an empty key on to the program.
            if out.success() {
                c.delete(true).assert_ok();
            }
            continue;
        }
        c.assert_rejected(&out, &["process.env[1]"]);
    }
}

#[test]
fn exec_environment_entries_are_checked_too() {
    let mut c = Container::new("execenvbad");
    c.set_args(&["sleep", "100"]);
    c.create().assert_ok();
    c.start().assert_ok();
    let out = c.rt(&["exec", "-e", "NOEQUALS", &c.id, "true"]);
    out.assert_failed();
    if !is_runc() {
        assert!(out.stderr.contains("--env[0]"), "{out:?}");
    }
    let process = c.path("process.json");
    std::fs::write(
        &process,
        json!({"args": ["true"], "cwd": "/", "env": ["A\u{0}=1"], "user": {"uid": 0, "gid": 0}})
            .to_string(),
    )
    .unwrap();
    let out = c.rt(&["exec", "--process", &process.display().to_string(), &c.id]);
    out.assert_failed();
    if !is_runc() {
        assert!(out.stderr.contains("process.env[0]"), "{out:?}");
    }
}

#[test]
fn a_memory_limit_too_low_for_init_is_named() {
    let mut c = Container::new("memtoolow");
    c.config["linux"]["resources"] = json!({ "memory": { "limit": 4096 } });
    let out = c.run();
    if is_runc() {
        out.assert_failed();
        return;
    }
    c.assert_rejected(&out, &["linux.resources.memory.limit 4096", "OOM"]);
}

#[test]
fn exec_joins_the_containers_session_keyring() {
    use integration::security::{describe_session_keyring, install_program};
    for no_new_keyring in [false, true] {
        let mut c = Container::new("execkeyring");
        install_program(
            &c.rootfs.join("bin/sesskeyring"),
            &describe_session_keyring(),
            0o755,
        );
        c.set_args(&["sleep", "100"]);
        let extra: &[&str] = if no_new_keyring {
            &["--no-new-keyring"]
        } else {
            &[]
        };
        c.create_with(extra).assert_ok();
        c.start().assert_ok();
        let out = c.rt(&["exec", &c.id, "/bin/sesskeyring"]);
        out.assert_ok();
        let name = out
            .stdout
            .trim_end_matches('\0')
            .rsplit(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if no_new_keyring {
            // The caller's own session keyring, whatever it is.
            assert!(!name.contains(&c.id), "{out:?}");
        } else {
            // runc names it _ses.<id>, patina <id>: either way the container's own.
            assert!(name.ends_with(&c.id), "{name:?}: {out:?}");
        }
    }
}

#[test]
fn a_container_without_procfs_fails_at_create() {
    // init holds the exec fifo O_PATH (never the state dir) and reopens it through the
    // container's /proc/self/fd, as runc does: without a procfs, create says so.
    let mut c = Container::new("noprocfs");
    integration::spec::remove_mount(&mut c.config, "/proc");
    c.config["linux"]["maskedPaths"] = json!([]);
    c.config["linux"]["readonlyPaths"] = json!([]);
    let out = c.create();
    c.assert_rejected(&out, &["/proc", "exec fifo"]);
}
