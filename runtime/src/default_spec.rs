//! `spec`: the default config.json, as `runc spec` writes it, so that users can start
//! from the same file, including runc's deny-all device rule (the default devices are
//! allowed after it, as runc does).

use serde_json::{json, Value};

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub fn default_spec() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": CAPS, "effective": CAPS, "permitted": CAPS, "ambient": CAPS },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "patina",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The default config for this host: as runc's `spec`, a cgroup namespace only where
/// /sys/fs/cgroup is cgroup2 (pure v2). On v1 and hybrid hosts runc leaves it out, and
/// tools that add one to its output (runc's own suite) would list it twice.
pub fn default_spec_for_host() -> Value {
    let mut spec = default_spec();
    let pure_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if !pure_v2 {
        if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
            list.retain(|ns| ns["type"] != "cgroup");
        }
    }
    spec
}

/// `spec --rootless`, as runc's: the caller's uid and gid mapped to root of a new user
/// namespace; no network namespace (an unprivileged user could not connect one) and no
/// cgroup namespace (runc's has none; a user namespace cannot mount cgroup v1); /sys bound
/// read-only from the host (a fresh sysfs needs the network namespace); no `uid=`/`gid=`
/// mount options (ids outside the map); no `linux.resources` (no cgroup to hold them).
pub fn to_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    if let Some(namespaces) = linux["namespaces"].as_array_mut() {
        namespaces.retain(|ns| !matches!(ns["type"].as_str(), Some("network" | "user" | "cgroup")));
        namespaces.push(json!({ "type": "user" }));
    }
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    for mount in spec["mounts"].as_array_mut().into_iter().flatten() {
        if mount["destination"] == "/sys" {
            *mount = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
            continue;
        }
        if let Some(options) = mount["options"].as_array_mut() {
            options.retain(|o| {
                !o.as_str()
                    .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_spec_maps_the_caller_and_passes_our_checks() {
        let mut spec = default_spec();
        to_rootless(&mut spec, 1000, 100);
        let raw = serde_json::to_vec(&spec).unwrap();
        let parsed = crate::spec::parse_config(&raw).unwrap();
        crate::spec::validate(&parsed).unwrap();
        let linux = parsed.linux().as_ref().unwrap();
        let types: Vec<String> = linux
            .namespaces()
            .iter()
            .flatten()
            .map(|n| n.typ().to_string())
            .collect();
        assert_eq!(types, ["pid", "ipc", "uts", "mnt", "user"]);
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1000, 1)
        );
        assert_eq!(linux.gid_mappings().as_ref().unwrap()[0].host_id(), 100);
        assert!(linux.resources().is_none());
        let text = String::from_utf8(raw).unwrap();
        assert!(
            !text.contains("gid=5") && text.contains(r#""source":"/sys""#),
            "{text}"
        );
    }

    #[test]
    fn default_spec_passes_our_own_checks() {
        let raw = serde_json::to_vec(&default_spec()).unwrap();
        let spec = crate::spec::parse_config(&raw).unwrap();
        crate::spec::validate(&spec).unwrap();
    }
}
