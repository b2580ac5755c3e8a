//! The process the container runs: user, cwd, env, umask, args, exit codes,
//! rlimits, capabilities.

use integration::{spec, Container};
use serde_json::json;
use std::collections::BTreeSet;

fn ids(s: &str) -> BTreeSet<u32> {
    s.split_whitespace().map(|x| x.parse().unwrap()).collect()
}

#[test]
fn user_uid_gid_additional_gids() {
    let mut c = Container::new("user");
    c.config["process"]["user"] =
        json!({ "uid": 1000, "gid": 1000, "additionalGids": [2001, 2002] });
    let out = c.sh_ok("id -u; id -g; id -G; id");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    assert_eq!(ids(lines[2]), ids("1000 2001 2002"), "{out}");
    assert!(
        lines[3].starts_with("uid=1000(tester) gid=1000(tester)"),
        "{out}"
    );
}

#[test]
fn root_user_has_no_stray_groups() {
    let mut c = Container::new("rootgroups");
    let out = c.sh_ok("id -u; id -G");
    assert_eq!(out, "0\n0\n");
}

#[test]
fn cwd() {
    let mut c = Container::new("cwd");
    c.config["process"]["cwd"] = json!("/tmp");
    assert_eq!(c.sh_ok("pwd"), "/tmp\n");
}

#[test]
fn cwd_created_when_missing() {
    let mut c = Container::new("cwdmissing");
    c.config["process"]["cwd"] = json!("/does/not/exist/yet");
    assert_eq!(
        c.sh_ok("pwd; stat -c %F ."),
        "/does/not/exist/yet\ndirectory\n"
    );
}

#[test]
fn env() {
    let mut c = Container::new("env");
    spec::add_env(&mut c.config, "FOO=bar baz");
    spec::add_env(&mut c.config, "EMPTY=");
    let out = c.sh_ok("env");
    let vars: BTreeSet<&str> = out.lines().collect();
    for want in [
        "FOO=bar baz",
        "EMPTY=",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=xterm",
    ] {
        assert!(vars.contains(want), "{want:?} missing from {out}");
    }
}

/// A variable given twice keeps its last value (runc); an empty HOME is replaced by the
/// user's home from the container's /etc/passwd, or "/".
#[test]
fn env_duplicates_keep_the_last_and_empty_home_is_set() {
    let mut c = Container::new("envdup");
    spec::add_env(&mut c.config, "DUP=first");
    spec::add_env(&mut c.config, "HOME=");
    spec::add_env(&mut c.config, "DUP=last");
    let out = c.sh_ok("env | grep -c '^DUP='; echo \"$DUP\"; echo \"home=$HOME\"");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["1", "last"], "{out}");
    assert!(
        lines[2] != "home=" && lines[2].starts_with("home=/"),
        "{out}"
    );
}

#[test]
fn umask() {
    let mut c = Container::new("umask");
    c.config["process"]["user"]["umask"] = json!(0o027);
    let out = c.sh_ok("umask; touch /tmp/f; stat -c %a /tmp/f");
    assert_eq!(out, "0027\n640\n");
}

#[test]
fn args_passed_verbatim() {
    let mut c = Container::new("args");
    c.set_args(&[
        "sh",
        "-c",
        "printf '%s|' \"$0\" \"$@\"",
        "zero",
        "a b",
        "c'd",
        "",
        "$HOME",
    ]);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "zero|a b|c'd||$HOME|");
}

#[test]
fn args_resolved_via_path() {
    let mut c = Container::new("argspath");
    c.set_args(&["echo", "via", "path"]);
    assert_eq!(c.run().assert_ok().stdout, "via path\n");
}

#[test]
fn run_exit_codes() {
    for code in [0, 3, 42] {
        let mut c = Container::new("exitcode");
        let out = c.sh(&format!("exit {code}"));
        assert_eq!(out.code, Some(code), "{out:?}");
    }
}

#[test]
fn run_exit_code_of_killed_process() {
    // Without a pid namespace the shell is not an init and can kill itself.
    for (sig, want) in [("9", 137), ("TERM", 143)] {
        let mut c = Container::new("killself");
        spec::remove_namespace(&mut c.config, "pid");
        let out = c.sh(&format!("kill -{sig} $$; sleep 5"));
        assert_eq!(out.code, Some(want), "kill -{sig}: {out:?}");
    }
}

#[test]
fn stdout_and_stderr_are_separate() {
    let mut c = Container::new("stdio");
    let out = c.sh("echo to-out; echo to-err >&2");
    out.assert_ok();
    assert_eq!(out.stdout, "to-out\n");
    assert!(out.stderr.contains("to-err"), "{out:?}");
}

#[test]
fn rlimits() {
    let mut c = Container::new("rlimits");
    c.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 1234, "hard": 4321 },
        { "type": "RLIMIT_CORE", "soft": 0, "hard": 1048576 },
        { "type": "RLIMIT_NPROC", "soft": 3000, "hard": 4000 }
    ]);
    let out = c.sh_ok("cat /proc/self/limits");
    let field = |name: &str| -> Vec<String> {
        let l = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {out}"));
        l[name.len()..]
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(field("Max open files")[..2], ["1234", "4321"], "{out}");
    assert_eq!(field("Max core file size")[..2], ["0", "1048576"], "{out}");
    assert_eq!(field("Max processes")[..2], ["3000", "4000"], "{out}");
}

#[test]
fn capabilities_and_no_new_privs() {
    let mut c = Container::new("caps");
    let out = c.sh_ok("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status");
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29).
    let mask = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(set))
            .unwrap_or_else(|| panic!("{set}: {out}"));
        assert_eq!(
            line.split_whitespace().nth(1),
            Some(mask.as_str()),
            "{set}: {out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn no_new_privileges_false() {
    let mut c = Container::new("nnpfalse");
    c.config["process"]["noNewPrivileges"] = json!(false);
    assert!(c
        .sh_ok("grep NoNewPrivs /proc/self/status")
        .contains("NoNewPrivs:\t0"));
}

#[test]
fn nonroot_user_capabilities() {
    // A non-root user keeps exactly the configured sets (ambient makes them effective).
    let mut c = Container::new("nonrootcaps");
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let caps = json!(["CAP_KILL"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "inheritable": caps, "permitted": caps, "ambient": caps
    });
    let out = c.sh_ok("grep -E '^Cap(Eff|Bnd)' /proc/self/status");
    let mask = format!("{:016x}", 1u64 << 5);
    assert_eq!(out, format!("CapEff:\t{mask}\nCapBnd:\t{mask}\n"));
}

/// An inheritable capability that is not permitted (the config may say so; runc sets
/// it): it ends up in CapInh only, and creating the container does not fail on capset.
#[test]
fn inheritable_capability_outside_permitted() {
    let mut c = Container::new("capinh");
    let bounding = json!(["CAP_KILL", "CAP_NET_RAW"]);
    let kill = json!(["CAP_KILL"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": bounding, "effective": kill, "permitted": kill,
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"]
    });
    let out = c.sh_ok("grep -E '^Cap(Inh|Prm)' /proc/self/status");
    let kill_mask = 1u64 << 5;
    let both = kill_mask | (1 << 13);
    assert_eq!(
        out,
        format!("CapInh:\t{both:016x}\nCapPrm:\t{kill_mask:016x}\n")
    );
}

#[test]
fn missing_executable_fails() {
    let mut c = Container::new("noexe");
    c.set_args(&["/no/such/binary"]);
    let out = c.run();
    out.assert_failed();
}
