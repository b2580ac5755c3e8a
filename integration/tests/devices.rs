//! /dev inside the container: default devices, links, and `linux.devices`.

use integration::Container;
use serde_json::json;

#[test]
fn default_devices() {
    let mut c = Container::new("defdevices");
    let devs = [
        ("null", "1 3"),
        ("zero", "1 5"),
        ("full", "1 7"),
        ("random", "1 8"),
        ("urandom", "1 9"),
        ("tty", "5 0"),
    ];
    let script: String = devs
        .iter()
        .map(|(d, _)| format!("stat -c '%F %t %T %a' /dev/{d}; "))
        .collect();
    let out = c.sh_ok(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), devs.len(), "{out}");
    for ((d, mm), line) in devs.iter().zip(lines) {
        // %t %T print major/minor in hex; all of these are < 10.
        assert_eq!(line, format!("character special file {mm} 666"), "/dev/{d}");
    }
}

#[test]
fn default_devices_work() {
    let mut c = Container::new("devwork");
    let out = c.sh_ok(
        "echo gone > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; head -c 16 /dev/urandom | wc -c; \
         echo x > /dev/full 2>/dev/null || echo full-enospc",
    );
    assert_eq!(out, "null-ok\n4\n16\nfull-enospc\n");
}

#[test]
fn dev_links() {
    let mut c = Container::new("devlinks");
    let out = c.sh_ok(
        "for l in ptmx fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; \
         stat -c %F /dev/shm /dev/pts /dev/mqueue",
    );
    assert_eq!(
        out,
        "ptmx=pts/ptmx\nfd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\n\
         stderr=/proc/self/fd/2\ndirectory\ndirectory\ndirectory\n"
    );
}

#[test]
fn dev_is_not_the_hosts() {
    // Only the default devices exist: no host disks, no /dev/kmsg, no /dev/mem.
    let mut c = Container::new("devminimal");
    let out = c.sh_ok("ls /dev/mem /dev/kmsg /dev/sda /dev/vda 2>/dev/null | wc -l");
    assert_eq!(out, "0\n");
}

#[test]
fn linux_devices_entry() {
    let mut c = Container::new("linuxdevices");
    // Not root: the capability set has no CAP_DAC_OVERRIDE anyway, so owner and mode decide.
    c.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    c.config["linux"]["devices"] = json!([
        { "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 2001 },
        { "path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o604, "uid": 0, "gid": 0 }
    ]);
    let out = c.sh_ok("stat -c '%F %t %T %a %u %g' /dev/mynull /dev/sub/myzero; echo data > /dev/mynull && head -c 3 /dev/sub/myzero | wc -c");
    assert_eq!(
        out,
        "character special file 1 3 640 1000 2001\ncharacter special file 1 5 604 0 0\n3\n"
    );
}

/// A `linux.devices` entry makes the node, not a permission: under a deny-all device
/// cgroup it cannot be opened until `linux.resources.devices` allows it (as runc; the
/// node is /dev/kmsg, opened write-only and written nothing, so no log line results).
/// Access letters other than r, w, m are ignored, as runc ignores them (configs written
/// for runc carry "rwa"): the rule holds for the letters it has, the container runs.
#[test]
fn device_rule_access_ignores_unknown_letters() {
    let mut c = Container::new("devrwa");
    c.config["linux"]["resources"] = json!({ "devices": [
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 11, "access": "wa" },
    ] });
    c.config["linux"]["devices"] =
        json!([{ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11 }]);
    let out = c.sh_ok("exec 2>&1; true > /dev/kmsg && echo written; true < /dev/kmsg; true");
    assert!(out.contains("written"), "{out}");
    assert!(
        out.contains("Operation not permitted"),
        "read must stay denied: {out}"
    );
}

#[test]
fn linux_devices_entry_is_not_an_allow_rule() {
    for (allow, want) in [(false, "Operation not permitted"), (true, "opened")] {
        let mut c = Container::new("devdeny");
        let mut rules = vec![json!({ "allow": false, "access": "rwm" })];
        if allow {
            rules.push(
                json!({ "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" }),
            );
        }
        c.config["linux"]["resources"] = json!({ "devices": rules });
        c.config["linux"]["devices"] =
            json!([{ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11 }]);
        let out =
            c.sh_ok("exec 2>&1; stat -c '%t %T' /dev/kmsg; true > /dev/kmsg && echo opened; true");
        assert!(out.starts_with("1 b\n"), "allow {allow}: {out}");
        assert!(out.contains(want), "allow {allow}: {out}");
    }
}
