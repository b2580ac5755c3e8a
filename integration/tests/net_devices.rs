//! `linux.netDevices` (runtime-spec 1.2+, config-linux.md "Network Devices"): existing
//! interfaces moved into the container's network namespace, optionally renamed, with
//! their permanent global addresses, and up; left to the namespace's fate at delete.
//!
//! The host's own interfaces are never touched: each test makes a scratch network
//! namespace that stands in for the host (held by a `sleep` it started with
//! `unshare -n`), makes veth/ifb interfaces there, and runs the runtime inside it
//! (`nsenter --net`). Killing the holder at the end takes the namespace and everything
//! left in it.
//!
//! beyond runc: runc 1.1.5 does not know the field and ignores it (support came with
//! runc 1.3): on runc every test asserts that nothing moved and the create went ahead.

use std::process::Command;
use std::time::Duration;

use integration::rootless::{make_rootless, TestUser};
use integration::runtime::wait_for;
use integration::{is_runc, spec, Container, HostProcess};
use serde_json::{json, Value};

/// A network namespace standing in for the host.
struct ScratchNet {
    holder: HostProcess,
    path: String,
}

impl ScratchNet {
    fn new() -> ScratchNet {
        let holder = HostProcess::spawn(&["unshare", "-n", "sleep", "3600"]);
        let pid = holder.pid();
        let path = format!("/proc/{pid}/ns/net");
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        // unshare(2) has happened once unshare exec'd sleep: only then is the holder's
        // namespace not ours (and safe to change).
        let ready = wait_for(Duration::from_secs(10), || {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let ns = std::fs::read_link(&path).ok()?;
            (comm.trim() == "sleep" && ns != ours).then_some(())
        });
        assert!(
            ready.is_some(),
            "the scratch network namespace never appeared"
        );
        ScratchNet { holder, path }
    }

    /// `ip ARGS` inside the scratch namespace: (success, stdout + stderr).
    fn try_ip(&self, args: &[&str]) -> (bool, String) {
        try_ip_in(&self.path, args)
    }

    #[track_caller]
    fn ip(&self, args: &[&str]) -> String {
        let (ok, out) = self.try_ip(args);
        assert!(ok, "ip {args:?} in the scratch namespace: {out}");
        out
    }

    fn has_link(&self, name: &str) -> bool {
        self.try_ip(&["link", "show", "dev", name]).0
    }

    /// The runtime of `c` runs inside this namespace from now on (teardown too).
    fn host(&self, c: &mut Container) {
        c.wrapper = vec!["nsenter".into(), format!("--net={}", self.path)];
    }

    /// The holder's pid, to name the namespace by `path` in a config.
    fn pid(&self) -> i32 {
        self.holder.pid()
    }
}

fn try_ip_in(ns: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .arg("ip")
        .args(args)
        .output()
        .expect("run nsenter ip");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A veth pair `a` <-> `b` in the scratch namespace.
fn veth(net: &ScratchNet, a: &str, b: &str) {
    net.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
}

fn net_devices(c: &mut Container, devices: Value) {
    c.config["linux"]["netDevices"] = devices;
}

fn add_cap(c: &mut Container, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

/// A veth end moved in renamed: the container sees it up, with the permanent global
/// addresses it had (v4, and v6 with its `nodad`), not its link-scope one, and reaches
/// the other end; it is gone from the host while the container runs; at delete it goes
/// with the container's namespace (a virtual device is destroyed, its peer with it).
#[test]
fn moved_in_renamed_with_addresses_and_up() {
    let net = ScratchNet::new();
    veth(&net, "ndc0", "ndh0");
    net.ip(&["addr", "add", "192.0.2.10/24", "dev", "ndc0"]);
    net.ip(&["addr", "add", "2001:db8::10/64", "dev", "ndc0", "nodad"]);
    net.ip(&["addr", "add", "10.9.9.9/8", "scope", "link", "dev", "ndc0"]);
    net.ip(&["link", "set", "ndc0", "up"]);
    net.ip(&["addr", "add", "192.0.2.1/24", "dev", "ndh0"]);
    net.ip(&["link", "set", "ndh0", "up"]);

    let mut c = Container::new("netdev_moved");
    net.host(&mut c);
    net_devices(&mut c, json!({ "ndc0": { "name": "eth0" } }));
    add_cap(&mut c, "CAP_NET_RAW");
    c.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.start().assert_ok();
    let seen = c.rt(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "busybox ip addr show dev eth0 && cat /sys/class/net/eth0/flags && busybox ping -c1 -W5 192.0.2.1",
    ]);
    // The host's view of the container's namespace, for the address flags busybox does
    // not print.
    let (_, flags) = try_ip_in(
        &format!("/proc/{pid}/ns/net"),
        &["-6", "addr", "show", "dev", "eth0"],
    );
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices.
        seen.assert_failed();
        assert!(net.has_link("ndc0"), "runc moved the device?");
        c.kill("KILL").assert_ok();
        c.wait_status("stopped");
        c.delete(false).assert_ok();
        assert!(net.has_link("ndc0"));
        return;
    }
    seen.assert_ok();
    let out = &seen.stdout;
    assert!(out.contains("inet 192.0.2.10/24"), "{out}");
    assert!(out.contains("inet6 2001:db8::10/64"), "{out}");
    assert!(
        !out.contains("10.9.9.9"),
        "a link-scope address followed: {out}"
    );
    let iff = out
        .lines()
        .find(|l| l.starts_with("0x"))
        .expect("flags line");
    let iff = u32::from_str_radix(iff.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(iff & 1, 1, "eth0 is not up: {out}");
    assert!(out.contains("1 packets received"), "{out}");
    assert!(flags.contains("nodad"), "nodad was not kept: {flags}");
    assert!(
        !net.has_link("ndc0") && !net.has_link("eth0"),
        "the device is still on the host: {}",
        net.ip(&["link"])
    );

    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    // The namespace is freed asynchronously by the kernel: the veth (and its peer on
    // the host) go with it. The runtime moved nothing back (spec: it MUST NOT).
    let gone = wait_for(Duration::from_secs(20), || {
        (!net.has_link("ndh0")).then_some(())
    });
    assert!(
        gone.is_some() && !net.has_link("ndc0"),
        "the veth outlived the container's namespace: {}",
        net.ip(&["link"])
    );
}

/// Into a namespace given by `path`: a `%d` template gets the kernel's unique name, a
/// device without `name` keeps its own; the namespace outlives the container, and so
/// do the devices in it (the runtime does not move them out at delete).
#[test]
fn moved_into_namespace_by_path_stay_after_delete() {
    let net = ScratchNet::new();
    let target = ScratchNet::new();
    net.ip(&["link", "add", "ndi0", "type", "ifb"]);
    veth(&net, "ndv0", "ndp0");
    let mut c = Container::new("netdev_path");
    net.host(&mut c);
    spec::set_namespace(
        &mut c.config,
        "network",
        Some(&format!("/proc/{}/ns/net", target.pid())),
    );
    net_devices(&mut c, json!({ "ndi0": { "name": "net%d" }, "ndv0": {} }));
    let out = c.sh_ok("ls /sys/class/net | sort | tr '\\n' ' '");
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices.
        assert_eq!(out, "lo ");
        assert!(net.has_link("ndi0") && net.has_link("ndv0"));
        return;
    }
    assert_eq!(out, "lo ndv0 net0 ");
    assert!(!net.has_link("ndi0") && !net.has_link("ndv0"));
    // `run` deleted the container; the namespace it joined still holds both.
    assert!(
        target.has_link("net0") && target.has_link("ndv0"),
        "{}",
        target.ip(&["link"])
    );
}

/// With a new user namespace the container's network namespace belongs to it: the
/// runtime (root of the host) still moves the device in before the maps are written.
#[test]
fn moved_into_a_user_namespaced_container() {
    let net = ScratchNet::new();
    veth(&net, "ndu0", "ndw0");
    net.ip(&["addr", "add", "198.51.100.7/24", "dev", "ndu0"]);
    let mut c = Container::new("netdev_userns");
    net.host(&mut c);
    spec::set_namespace(&mut c.config, "user", None);
    c.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    net_devices(&mut c, json!({ "ndu0": { "name": "uplink0" } }));
    let out = c.sh_ok("busybox ip -4 addr show dev uplink0 2>&1; true");
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices.
        assert!(!out.contains("198.51.100.7"), "{out}");
        assert!(net.has_link("ndu0"));
        return;
    }
    assert!(out.contains("inet 198.51.100.7/24"), "{out}");
    assert!(!net.has_link("ndu0"));
}

/// A create that fails after a device moved puts it back: name, addresses, up.
#[test]
fn failed_create_moves_devices_back() {
    let net = ScratchNet::new();
    veth(&net, "nda0", "ndq0");
    net.ip(&["addr", "add", "192.0.2.20/24", "dev", "nda0"]);
    net.ip(&["addr", "add", "10.9.9.20/8", "scope", "link", "dev", "nda0"]);
    net.ip(&["link", "set", "nda0", "up"]);
    veth(&net, "ndb0", "ndr0");
    let mut c = Container::new("netdev_undo");
    net.host(&mut c);
    // nda0 moves first (name order); ndb0 cannot be "lo" there: EEXIST.
    net_devices(
        &mut c,
        json!({ "nda0": { "name": "eth0" }, "ndb0": { "name": "lo" } }),
    );
    let out = c.create();
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices.
        out.assert_ok();
        assert!(net.has_link("nda0") && net.has_link("ndb0"));
        return;
    }
    c.assert_rejected(&out, &["linux.netDevices[ndb0]", "\"lo\"", "EEXIST"]);
    let back = net.ip(&["addr", "show", "dev", "nda0"]);
    assert!(back.contains("inet 192.0.2.20/24"), "{back}");
    // Its link-scope address did not follow it in, but comes back with it.
    assert!(back.contains("inet 10.9.9.20/8 scope link"), "{back}");
    assert!(back.contains(",UP"), "{back}");
    assert!(net.has_link("ndb0"));
}

/// A create that fails later (a createRuntime hook, which runs once the devices are
/// in) puts them back too.
#[test]
fn failed_hook_moves_devices_back() {
    let net = ScratchNet::new();
    veth(&net, "ndh0", "ndk0");
    net.ip(&["addr", "add", "2001:db8::20/64", "dev", "ndh0", "nodad"]);
    net.ip(&["link", "set", "ndh0", "up"]);
    let mut c = Container::new("netdev_hook");
    net.host(&mut c);
    net_devices(&mut c, json!({ "ndh0": { "name": "eth0" } }));
    c.config["hooks"] = json!({ "createRuntime": [{ "path": "/bin/false" }] });
    let out = c.create();
    // runc too refuses the create for its hook (having moved nothing).
    c.assert_rejected(&out, &["createRuntime"]);
    let back = net.ip(&["addr", "show", "dev", "ndh0"]);
    assert!(back.contains("inet6 2001:db8::20/64"), "{back}");
    if !is_runc() {
        // beyond runc: runc 1.1.5 never moved it.
        assert!(back.contains("nodad") && back.contains(",UP"), "{back}");
    }
}

/// The attack on the undo: a process in a network namespace the container joins by
/// `path` (another container of its pod, say) takes the moved device away to a
/// namespace of its own while `create` runs, and puts a veth of its own in its place:
/// same name, same ifindex, same MAC, its peer in the attacker's hands. The create then
/// fails (a createRuntime hook, which here also plays the attacker, for a
/// deterministic window). A runtime that moved back whatever now sits at that index
/// would hand the host's namespace an attacker's veth carrying the host device's name
/// and addresses: a link from the container into the host's network.
#[test]
fn attack_swapped_device_is_not_moved_back() {
    let net = ScratchNet::new();
    let target = ScratchNet::new();
    let away = ScratchNet::new();
    veth(&net, "nds0", "ndt0");
    net.ip(&["addr", "add", "192.0.2.40/24", "dev", "nds0"]);
    let mac = net.ip(&["-o", "link", "show", "dev", "nds0"]);
    let mac = mac
        .split("link/ether ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let mut c = Container::new("netdev_swap");
    net.host(&mut c);
    let log = c.path("attacker.log");
    let target_ns = format!("/proc/{}/ns/net", target.pid());
    spec::set_namespace(&mut c.config, "network", Some(&target_ns));
    net_devices(&mut c, json!({ "nds0": { "name": "eth0" } }));
    let attack = format!(
        "exec >{log} 2>&1; t() {{ nsenter --net={target_ns} \"$@\"; }}; \
         idx=$(t ip -o link show dev eth0 | cut -d: -f1) || exit 1; \
         t ip link set dev eth0 netns {away} && \
         t ip link add eth0 index $idx address {mac} type veth peer name evil0; exit 1",
        away = away.pid(),
        log = log.display()
    );
    c.config["hooks"] =
        json!({ "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", attack] }] });
    let out = c.create();
    // Refused for the hook (runc's message does not name the hook's kind).
    out.assert_failed();
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices; nothing moved, nothing swapped.
        assert!(net
            .ip(&["link", "show", "dev", "nds0"])
            .contains("nds0@ndt0"));
        return;
    }
    // The real device is the attacker's now (as if the create had succeeded), but the
    // host's namespace got nothing of the attacker's back, and the runtime says so.
    let warned = "linux.netDevices[nds0]: not moved back: the device at its index";
    assert!(out.stderr.contains(warned), "{out:?}");
    assert!(out.stderr.contains("createRuntime"), "{out:?}");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(away.has_link("eth0"), "{log}{}", away.ip(&["link"]));
    let (present, shown) = net.try_ip(&["-d", "link", "show", "dev", "nds0"]);
    assert!(!present || shown.contains("nds0@ndt0"), "{shown}");
    assert!(
        !net.ip(&["addr"]).contains("192.0.2.40"),
        "{}",
        net.ip(&["addr"])
    );
    assert!(target.has_link("eth0"), "{log}{}", target.ip(&["link"]));
}

/// The undo against a device renamed in the container's namespace, with a device of the
/// attacker's (an ifb: this kernel has no dummy) made under the name it had there: the
/// device moved in goes back (found by its index, not its name), with its addresses;
/// the lookalike stays where it was made.
#[test]
fn attack_renamed_device_and_lookalike_undo() {
    let net = ScratchNet::new();
    let target = ScratchNet::new();
    veth(&net, "ndm0", "ndn0");
    net.ip(&["addr", "add", "192.0.2.50/24", "dev", "ndm0"]);
    let mut c = Container::new("netdev_rename");
    net.host(&mut c);
    let target_ns = format!("/proc/{}/ns/net", target.pid());
    spec::set_namespace(&mut c.config, "network", Some(&target_ns));
    net_devices(&mut c, json!({ "ndm0": { "name": "eth0" } }));
    let attack = format!(
        "exec >/dev/null 2>&1; t() {{ nsenter --net={target_ns} \"$@\"; }}; \
         t ip link set dev eth0 down; t ip link set dev eth0 name x0 && \
         t ip link add eth0 type ifb; exit 1"
    );
    c.config["hooks"] =
        json!({ "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", attack] }] });
    c.create().assert_failed();
    let back = net.ip(&["-d", "addr", "show", "dev", "ndm0"]);
    assert!(back.contains("ndm0@ndn0"), "{back}");
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices; the hook found no eth0.
        return;
    }
    assert!(back.contains("inet 192.0.2.50/24"), "{back}");
    let there = target.ip(&["-d", "link", "show", "dev", "eth0"]);
    assert!(there.contains("ifb"), "{there}");
    assert!(!target.has_link("x0"), "{}", target.ip(&["link"]));
}

/// Bad `linux.netDevices` are refused before anything moves, each by its entry, with
/// nothing left behind.
#[test]
fn bad_net_devices_are_refused_by_name() {
    let net = ScratchNet::new();
    veth(&net, "ndx0", "ndy0");
    let long = "abcdefghijklmnop";
    let cases: Vec<(Value, Option<&str>, Vec<&str>)> = vec![
        // No network namespace of the container's own.
        (
            json!({ "ndx0": {} }),
            Some(""),
            vec!["linux.netDevices", "network namespace"],
        ),
        // The runtime's own namespace, by path.
        (
            json!({ "ndx0": {} }),
            Some("/proc/self/ns/net"),
            vec!["linux.netDevices", "runtime's own"],
        ),
        (
            json!({ "a/b": {} }),
            None,
            vec!["linux.netDevices[\"a/b\"]", "invalid"],
        ),
        (
            json!({ "..": {} }),
            None,
            vec!["linux.netDevices[\"..\"]", "invalid"],
        ),
        (
            json!({ "ndx0": { "name": long } }),
            None,
            vec!["linux.netDevices[ndx0].name", long, "15"],
        ),
        (
            json!({ "ndx0": { "name": "et h0" } }),
            None,
            vec!["linux.netDevices[ndx0].name", "white space"],
        ),
        (
            json!({ "ndx0": { "name": "eth%s" } }),
            None,
            vec!["linux.netDevices[ndx0].name", "%d"],
        ),
        (
            json!({ "ndx0": { "name": "eth0" }, "ndy0": { "name": "eth0" } }),
            None,
            vec!["linux.netDevices[ndy0]", "\"eth0\"", "another device"],
        ),
        (
            json!({ "nosuch0": {} }),
            None,
            vec!["linux.netDevices[nosuch0]", "ENODEV"],
        ),
    ];
    for (devices, netns, keys) in cases {
        let mut c = Container::new("netdev_bad");
        net.host(&mut c);
        match netns {
            Some("") => spec::remove_namespace(&mut c.config, "network"),
            Some(path) => spec::set_namespace(&mut c.config, "network", Some(path)),
            None => {}
        }
        net_devices(&mut c, devices.clone());
        let out = c.create();
        if is_runc() {
            // beyond runc: runc 1.1.5 ignores linux.netDevices.
            out.assert_ok();
        } else {
            c.assert_rejected(&out, &keys);
        }
        assert!(
            net.has_link("ndx0") && net.has_link("ndy0"),
            "{devices}: a device moved"
        );
    }
}

/// A rootless runtime has no CAP_NET_ADMIN over the host's network: refused up front, by
/// name (as runc 1.3), not left to fail half-way.
#[test]
fn rootless_is_refused() {
    let net = ScratchNet::new();
    veth(&net, "ndr0", "ndr1");
    let user = TestUser::create();
    let mut c = Container::new("netdev_rootless");
    make_rootless(&mut c.config, &user, false);
    spec::set_namespace(&mut c.config, "network", None);
    std::fs::create_dir(&c.root).unwrap();
    user.give(&c.root);
    user.give(&c.rootfs);
    net.host(&mut c);
    c.wrapper.extend(user.setpriv());
    net_devices(&mut c, json!({ "ndr0": {} }));
    c.set_args(&["true"]);
    let out = c.run();
    if is_runc() {
        // beyond runc: runc 1.1.5 ignores linux.netDevices.
        out.assert_ok();
    } else {
        c.assert_rejected(&out, &["linux.netDevices", "rootless"]);
    }
    assert!(net.has_link("ndr0"));
}

/// `restore` does not run create's move: a config with devices is refused by name
/// rather than restored without them.
#[test]
fn restore_refuses_net_devices() {
    let net = ScratchNet::new();
    veth(&net, "ndz0", "ndz1");
    let mut c = Container::new("netdev_restore");
    net.host(&mut c);
    net_devices(&mut c, json!({ "ndz0": {} }));
    c.write_config();
    let images = c.path("images");
    std::fs::create_dir(&images).unwrap();
    let bundle = c.bundle.to_str().unwrap().to_owned();
    let out = c.rt(&[
        "restore",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        &bundle,
        "--detach",
        &c.id,
    ]);
    // runc fails too (the image directory is empty): for it this only says nothing moved.
    c.assert_rejected(&out, &["linux.netDevices", "restore"]);
    assert!(net.has_link("ndz0"));
}

#[test]
fn features_list_net_devices() {
    let c = Container::new("netdev_features");
    let out = c.rt(&["features"]);
    out.assert_ok();
    let f: Value = serde_json::from_str(&out.stdout).expect("features is JSON");
    if is_runc() {
        // beyond runc: runc 1.1.5 has no netDevices.
        assert!(f["linux"]["netDevices"].is_null(), "{f}");
    } else {
        assert_eq!(f["linux"]["netDevices"]["enabled"], true, "{f}");
    }
}
