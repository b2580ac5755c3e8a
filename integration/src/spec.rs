//! The base `config.json` (what `runc spec` produces, without `linux.resources`
//! and seccomp) and helpers to mutate it.
//!
//! It repeats runtime/src/default_spec.rs on purpose: the suite runs against any
//! runc-compatible runtime and checks patina's `spec` from the outside, so it must not
//! take its configs from the code under test (a wrong default would then pass).

use serde_json::{json, Value};

/// Capabilities of `runc spec`'s default config.
pub const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Base config running `args`.
pub fn base_config(args: &[&str], hostname: &str) -> Value {
    let caps = json!(DEFAULT_CAPS);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "inheritable": caps,
                "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": hostname,
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

/// Replaces `process.args`.
pub fn set_args(cfg: &mut Value, args: &[&str]) {
    cfg["process"]["args"] = json!(args);
}

/// Appends a mount.
pub fn add_mount(cfg: &mut Value, destination: &str, typ: &str, source: &str, options: &[&str]) {
    cfg["mounts"].as_array_mut().expect("mounts array").push(
        json!({ "destination": destination, "type": typ, "source": source, "options": options }),
    );
}

/// Removes the mount at `destination` (panics if there is none).
pub fn remove_mount(cfg: &mut Value, destination: &str) {
    let m = cfg["mounts"].as_array_mut().expect("mounts array");
    let before = m.len();
    m.retain(|x| x["destination"] != destination);
    assert!(m.len() < before, "no mount at {destination}");
}

/// Removes the namespace of type `typ` (panics if there is none).
pub fn remove_namespace(cfg: &mut Value, typ: &str) {
    let ns = cfg["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces");
    let before = ns.len();
    ns.retain(|x| x["type"] != typ);
    assert!(ns.len() < before, "no {typ} namespace");
}

/// Adds the namespace `typ` (optionally joining `path`), replacing any entry of that type.
pub fn set_namespace(cfg: &mut Value, typ: &str, path: Option<&str>) {
    let ns = cfg["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces");
    ns.retain(|x| x["type"] != typ);
    let mut entry = json!({ "type": typ });
    if let Some(p) = path {
        entry["path"] = json!(p);
    }
    ns.push(entry);
}

/// Appends an environment variable `K=V`.
pub fn add_env(cfg: &mut Value, kv: &str) {
    cfg["process"]["env"]
        .as_array_mut()
        .expect("env")
        .push(json!(kv));
}
