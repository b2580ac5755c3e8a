//! linux.sysctl: only sysctls that belong to a namespace the container has of its own
//! (runc's rules): the ipc ones with an ipc namespace, `net.*` with a network namespace.
//! kernel.hostname/domainname are refused (the config's `hostname`/`domainname` set
//! them). Anything else would change the host.

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bail;
use crate::error::{Context, Result};

const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace `key` belongs to, if any.
fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else {
        None
    }
}

/// Check every key before anything is created.
pub fn validate(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    // A namespace of its own: new, or joined by path (not the host's, as runc assumes).
    let own = |typ| namespaces.iter().any(|ns| ns.typ() == typ);
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        if key.is_empty() || key.split(['.', '/']).any(|p| p.is_empty() || p == "..") {
            bail!(
                InvalidConfig,
                "linux.sysctl: {key:?} is not a valid sysctl name"
            );
        }
        if key == "kernel.hostname" || key == "kernel.domainname" {
            // As runc for kernel.hostname (and, beyond runc 1.1.5, domainname): the
            // config has fields of its own for both, and two sources would race.
            let field = key.trim_start_matches("kernel.");
            bail!(InvalidConfig,
                "linux.sysctl: {key:?} conflicts with the config's {field:?} field: set that instead"
            );
        }
        match namespace_of(key) {
            Some(typ) if own(typ) => {}
            Some(typ) => bail!(InvalidConfig,
                "linux.sysctl: {key:?} needs a {typ} namespace of the container's own, which the config does not have"
            ),
            None => bail!(InvalidConfig,
                "linux.sysctl: {key:?} is not namespaced: setting it would change the host"
            ),
        }
    }
    Ok(())
}

/// In init, after pivot_root (the container's /proc), before read-only paths.
pub fn apply(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes())
            .with_context(|| format!("linux.sysctl: set {key} = {value:?} ({path})"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sysctl: &str, namespaces: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{{"sysctl":{sysctl},"namespaces":{namespaces}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn only_namespaced_keys_are_allowed() {
        let ns = r#"[{"type":"ipc"},{"type":"network"}]"#;
        validate(&spec(
            r#"{"kernel.shmmax":"1","net.ipv4.ip_forward":"1","fs.mqueue.msg_max":"9"}"#,
            ns,
        ))
        .unwrap();
        let e = validate(&spec(r#"{"kernel.panic":"1"}"#, ns))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kernel.panic") && e.contains("not namespaced"),
            "{e}"
        );
        let e = validate(&spec(
            r#"{"net.ipv4.ip_forward":"1"}"#,
            r#"[{"type":"ipc"}]"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("net namespace"), "{e}");
        assert!(validate(&spec(r#"{"net.../x":"1"}"#, ns)).is_err());
    }

    #[test]
    fn hostname_and_domainname_sysctls_are_refused_even_with_uts() {
        for key in ["kernel.hostname", "kernel.domainname"] {
            let e = validate(&spec(&format!(r#"{{"{key}":"x"}}"#), r#"[{"type":"uts"}]"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("field"), "{e}");
        }
    }
}
