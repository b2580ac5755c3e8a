//! Namespaces: new ones differ from the host's, joined ones are the same,
//! user namespace mappings, time namespace offsets, hostname/domainname.

use integration::procfs::ns_link;
use integration::{is_runc, spec, Container, HostProcess};
use serde_json::json;
use std::time::Duration;

#[test]
fn hostname_and_domainname() {
    let mut c = Container::new("hostname");
    c.config["hostname"] = json!("box-one");
    c.config["domainname"] = json!("example.test");
    let out = c.sh_ok("hostname; cat /proc/sys/kernel/domainname");
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores `domainname` (support came in runc 1.2).
        assert_eq!(out, "box-one\n(none)\n");
    } else {
        assert_eq!(out, "box-one\nexample.test\n");
    }
    // The host's names are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "box-one"
    );
}

#[test]
fn new_namespaces_differ_from_host() {
    let mut c = Container::new("nsdiffer");
    let kinds = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    let out = c.sh_ok(&script);
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), kinds.len(), "{out}");
    for (k, got) in kinds.iter().zip(&inside) {
        let host = ns_link(k);
        if *k == "user" {
            assert_eq!(*got, host, "no user namespace was requested");
        } else {
            assert!(got.starts_with(&format!("{k}:[")), "{got}");
            assert_ne!(*got, host, "{k} namespace not unshared");
        }
    }
}

#[test]
fn pid_namespace_init_is_pid_1() {
    let mut c = Container::new("pidns");
    // The glob is expanded by the shell itself: the only process is pid 1.
    assert_eq!(c.sh_ok("echo $$; cd /proc && echo [0-9]*"), "1\n1\n");
}

#[test]
fn without_uts_namespace_shares_host() {
    let mut c = Container::new("nouts");
    spec::remove_namespace(&mut c.config, "uts");
    c.config.as_object_mut().unwrap().remove("hostname");
    assert_eq!(
        c.sh_ok("readlink /proc/self/ns/uts"),
        format!("{}\n", ns_link("uts"))
    );
}

#[test]
fn join_network_namespace_by_path() {
    let mut c = Container::new("joinnet");
    let name = c.id.clone();
    let st = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip netns add");
    assert!(st.success());
    let n2 = name.clone();
    c.on_teardown(move || {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &n2])
            .status();
    });
    let path = format!("/run/netns/{name}");
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&path).unwrap().ino();
    // Give the netns a recognisable device: bring lo up from the host side.
    let st = std::process::Command::new("ip")
        .args(["-n", &name, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(st.success());
    spec::set_namespace(&mut c.config, "network", Some(&path));
    let out = c.sh_ok("readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate");
    assert_eq!(out, format!("net:[{ino}]\nunknown\n"));
}

#[test]
fn join_uts_namespace_of_helper_process() {
    let mut c = Container::new("joinuts");
    let helper = HostProcess::spawn(&[
        "unshare",
        "--uts",
        "sh",
        "-c",
        "hostname helper-uts && exec sleep 1000",
    ]);
    let pid = helper.pid();
    let host = ns_link("uts");
    let link = integration::runtime::wait_for(Duration::from_secs(5), || {
        let l = std::fs::read_link(format!("/proc/{pid}/ns/uts"))
            .ok()?
            .to_string_lossy()
            .into_owned();
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        (l != host && cmd.starts_with("sleep")).then_some(l)
    })
    .expect("helper in its own uts namespace");
    spec::set_namespace(&mut c.config, "uts", Some(&format!("/proc/{pid}/ns/uts")));
    // Setting a hostname requires a new UTS namespace: the joined one keeps its name.
    c.config.as_object_mut().unwrap().remove("hostname");
    let out = c.sh_ok("readlink /proc/self/ns/uts; hostname");
    assert_eq!(out, format!("{link}\nhelper-uts\n"));
    drop(helper);
}

#[test]
fn user_namespace_mappings() {
    let mut c = Container::new("userns");
    spec::set_namespace(&mut c.config, "user", None);
    c.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    let pid = c.create_ok();
    // Seen from the host: the container's root is uid 100000.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{status}"
    );
    c.delete(true).assert_ok();

    let mut c = Container::new("userns2");
    spec::set_namespace(&mut c.config, "user", None);
    c.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    let out = c.sh_ok(
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user",
    );
    let l: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(l[0], ["0"], "{out}");
    assert_eq!(l[1], ["0"], "{out}");
    assert_eq!(l[2], ["0", "100000", "65536"], "{out}");
    assert_eq!(l[3], ["0", "200000", "65536"], "{out}");
    assert_ne!(l[4][0], ns_link("user"), "{out}");
}

#[test]
fn time_namespace_offsets() {
    let mut c = Container::new("timens");
    spec::set_namespace(&mut c.config, "time", None);
    let offset: u64 = 10 * 86400;
    c.config["linux"]["timeOffsets"] = json!({
        "monotonic": { "secs": offset, "nanosecs": 0 },
        "boottime": { "secs": offset, "nanosecs": 0 }
    });
    let host_uptime = || -> f64 {
        std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = host_uptime();
    let out = c.sh("cat /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    let after = host_uptime();
    if is_runc() {
        // beyond runc: runc 1.1.5 has no time namespace support; it rejects
        // the config (unknown namespace type) and leaves nothing behind.
        out.assert_failed();
        return;
    }
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let inside: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        inside >= before + offset as f64 && inside <= after + offset as f64 + 1.0,
        "uptime inside {inside}, host {before}..{after}, offset {offset}"
    );
    let off = offset.to_string();
    for clock in ["monotonic", "boottime"] {
        let found = lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [clock, off.as_str(), "0"]);
        assert!(found, "{clock} offset not in {}", out.stdout);
    }
    assert_ne!(lines.last().unwrap().to_string(), ns_link("time"));
}

/// A new network namespace has `lo` up, as with runc: 127.0.0.1 works inside.
#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let mut c = Container::new("loopback");
    let out = c.sh_ok("cat /sys/class/net/lo/flags");
    let flags = u32::from_str_radix(out.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: flags {out}");
}
