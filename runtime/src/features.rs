//! `features`: what this build of patina implements, as the runtime-spec's
//! features.md describes it, so engines can decide before they ask. Keep it truthful:
//! each entry here has an integration test behind it.

use serde_json::{json, Value};

use crate::rootfs::options::KNOWN_OPTIONS;

/// The newest runtime-spec version patina implements.
pub const OCI_VERSION_MAX: &str = "1.3.0";

pub fn features() -> Value {
    let mut capabilities: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    capabilities.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": archs(),
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ]
            },
            // Applied when the host runs the LSM; refused with an error otherwise (as runc).
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "netDevices": { "enabled": true },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": {
            "org.opencontainers.runtime.name": "patina",
            "org.opencontainers.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// Every architecture a profile can name: those with a syscall table compiled in.
fn archs() -> Vec<&'static str> {
    let mut names: Vec<&str> = crate::seccomp::arch::ARCHES
        .iter()
        .map(|a| a.name)
        .collect();
    names.sort_unstable();
    names
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

    #[test]
    fn seccomp_archs_are_those_compiled_in() {
        let f = features();
        let archs: Vec<&str> = f["linux"]["seccomp"]["archs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(archs.len(), crate::seccomp::arch::ARCHES.len());
        for def in &crate::seccomp::arch::ARCHES {
            assert!(archs.contains(&def.name), "{}", def.name);
            // Each name is one the spec's type parses to the same architecture.
            let parsed: oci_spec::runtime::Arch =
                serde_json::from_value(serde_json::json!(def.name)).unwrap();
            assert_eq!(parsed, def.arch);
        }
    }
}
