//! `features`: what this build of patina implements, as the runtime-spec's
//! features.md describes it, so engines can decide before they ask. Keep it truthful:
//! each entry here has an integration test behind it.

use serde_json::{json, Value};

use crate::rootfs::mounts::KNOWN_OPTIONS;

pub fn features() -> Value {
    let mut capabilities: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    capabilities.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.opencontainers.runtime.name": "patina",
            "org.opencontainers.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_parse_as_the_spec_type() {
        let parsed: oci_spec::runtime::Features = serde_json::from_value(features()).unwrap();
        assert_eq!(parsed.oci_version_min(), "1.0.0");
        assert!(parsed
            .hooks()
            .as_ref()
            .unwrap()
            .contains(&"createContainer".to_string()));
    }
}
