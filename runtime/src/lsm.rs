//! process.apparmorProfile, process.selinuxLabel and linux.mountLabel: applied when the
//! host runs that LSM, to init and to exec'd processes (engines pass the container's
//! profile on every exec); otherwise setting them is an error (a profile that silently
//! does not apply is a broken promise), except mountLabel without SELinux, which runc
//! ignores. SELinux mount labels on an SELinux host are refused as not implemented yet.

use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::bail;
use crate::error::{Context, Result};

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim_start().starts_with('Y'))
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
        || std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\tselinuxfs"))
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Before anything is created.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(process) = spec.process() {
        validate_process(process)?;
    }
    validate_mount_label(spec)
}

/// The process's labels can apply on this host (for init, and for each exec).
pub fn validate_process(process: &Process) -> Result<()> {
    if let Some(profile) = non_empty(process.apparmor_profile()) {
        if !apparmor_enabled() {
            bail!(
                Unsupported,
                "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
            );
        }
    }
    if let Some(label) = non_empty(process.selinux_label()) {
        if !selinux_enabled() {
            bail!(
                Unsupported,
                "process.selinuxLabel {label:?}: SELinux is not enabled on this host"
            );
        }
    }
    Ok(())
}

fn validate_mount_label(spec: &Spec) -> Result<()> {
    if let Some(label) = spec
        .linux()
        .as_ref()
        .and_then(|l| non_empty(l.mount_label()))
    {
        if selinux_enabled() {
            bail!(Unsupported, "linux.mountLabel {label:?}: SELinux mount labels are not implemented by patina yet");
        }
        // runc ignores the mount label on a host without SELinux: so do we.
        crate::logging::debug(&format!(
            "linux.mountLabel {label:?} ignored: SELinux is not enabled"
        ));
    }
    Ok(())
}

/// Last thing before the exec (init's, or an exec'd process's): the labels the kernel
/// applies at execve.
pub fn apply_exec_labels(process: &Process) -> Result<()> {
    if let Some(profile) = non_empty(process.apparmor_profile()) {
        let path = if Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        };
        std::fs::write(path, format!("exec {profile}"))
            .with_context(|| format!("process.apparmorProfile: change to {profile:?} on exec"))?;
    }
    if let Some(label) = non_empty(process.selinux_label()) {
        std::fs::write("/proc/thread-self/attr/exec", label)
            .with_context(|| format!("process.selinuxLabel: set {label:?} for exec"))?;
    }
    Ok(())
}
