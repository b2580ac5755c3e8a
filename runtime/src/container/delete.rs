//! `delete`: runtime.md "delete" — remove a stopped container; with `--force` (or a
//! container that was created but never started, as runc does) kill it first.

use std::path::Path;
use std::time::Duration;

use crate::bail;
use crate::error::Result;
use crate::hooks;
use crate::state::{Record, StateDir, Status};

/// How long a SIGKILLed container may take to die before delete gives up.
const KILL_GRACE: Duration = Duration::from_secs(10);

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = StateDir::new(root, id)?;
    if force && !dir.path.exists() {
        return Ok(());
    }
    let _lock = dir.lock()?;
    let mut record = match dir.load() {
        Ok(record) => record,
        // A half-made container (create died hard): --force clears what is left.
        Err(_) if force && !dir.exists() => return dir.remove(),
        Err(e) if force => return salvage(&dir, &e),
        Err(e) => return Err(e),
    };
    match dir.status(&record) {
        Status::Stopped => {}
        // runc deletes a created (never started) container without --force.
        Status::Created => kill_and_wait(&record)?,
        _ if force => kill_and_wait(&record)?,
        other => {
            bail!(
                WrongState,
                "cannot delete container {id:?}: it is {other} (stop it first, or use --force)"
            )
        }
    }
    if force {
        keep_mounts_if_not_the_rootfs(&mut record);
    }
    destroy(&dir, &record)
}

/// `--force` with a `host_mounts` that names another directory than the rootfs: the
/// record goes, nothing is detached (else that record could never be deleted).
fn keep_mounts_if_not_the_rootfs(record: &mut Record) {
    if let Some(Err(e)) = record.host_mounts.as_ref().map(|m| m.check(&record.rootfs)) {
        crate::logging::warn(&format!("{e}; --force: the record goes, the mounts stay"));
        record.host_mounts = None;
    }
}

fn kill_and_wait(record: &Record) -> Result<()> {
    let Some(pidfd) = super::pidfd_of(record.pid, record.pid_start)? else {
        return Ok(());
    };
    super::kill::signal_container(record, libc::SIGKILL, true)?;
    super::wait_exit(&pidfd, record.pid, KILL_GRACE)
}

/// Remove what the container left and run poststop hooks (failures only warned, as the spec says).
pub fn destroy(dir: &StateDir, record: &Record) -> Result<()> {
    if let Some(cgroup) = &record.cgroup {
        // Without a pid namespace of its own, processes may outlive init: end them first.
        // With one, they ended with init, and whatever else is in the cgroup now was put
        // there by someone else: not ours to kill (as runc). A half-made container (no
        // init on record) has only its own processes in a cgroup that was empty or new.
        if !record.own_pid_ns || record.pid == 0 {
            cgroup.kill_all()?;
        }
        match cgroup.release() {
            Err(e) if record.own_pid_ns && cgroup.procs().is_ok_and(|p| !p.is_empty()) => {
                crate::logging::warn(&format!(
                    "{e}: left in place, it holds processes the container did not start"
                ))
            }
            other => other?,
        }
    }
    // Before the state goes: a failure leaves the record for another `delete`.
    if let Some(mounts) = &record.host_mounts {
        mounts.release_beneath(&record.rootfs)?;
    }
    dir.remove()?;
    if let Some(h) = record.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        let stopped =
            serde_json::to_vec(&record.oci_state(Status::Stopped)).expect("state serialises");
        hooks::run_all_warn("poststop", h, &stopped);
    }
    Ok(())
}

/// `delete --force` of a container whose state.json cannot be read as a whole: end what
/// its readable fields still name (init, checked by its start time; cgroups patina made,
/// which only ever held the container's processes), then remove the state.
fn salvage(dir: &StateDir, why: &crate::error::Error) -> Result<()> {
    let raw = std::fs::read(dir.path.join(crate::state::STATE_FILE)).unwrap_or_default();
    let raw = String::from_utf8_lossy(&raw);
    let mut found = Vec::new();
    let pid = field(&raw, "pid")
        .and_then(|v| v.as_i64())
        .and_then(|p| i32::try_from(p).ok());
    if let (Some(pid), Some(start)) = (pid, field(&raw, "pid_start").and_then(|v| v.as_u64())) {
        if let Ok(Some(pidfd)) = super::pidfd_of(pid, start) {
            super::send_signal(&pidfd, libc::SIGKILL)?;
            super::wait_exit(&pidfd, pid, KILL_GRACE)?;
            found.push(format!("init {pid}"));
        }
    }
    let cgroup: Option<crate::cgroups::Cgroup> =
        field(&raw, "cgroup").and_then(|v| serde_json::from_value(v).ok());
    if let Some(cgroup) = cgroup.filter(|c| c.created.is_some()) {
        if cgroup.is_own() {
            cgroup.kill_all()?;
        }
        cgroup.release()?;
        found.push(format!("cgroup {:?}", cgroup.dirs()));
    }
    let mounts: Option<crate::rootfs::host_ns::HostMounts> =
        field(&raw, "host_mounts").and_then(|v| serde_json::from_value(v).ok());
    if let Some(mounts) = mounts {
        // The rootfs it must name comes after it: cut before that, nothing is detached.
        let rootfs: Option<std::path::PathBuf> =
            field(&raw, "rootfs").and_then(|v| serde_json::from_value(v).ok());
        let checked = match &rootfs {
            Some(rootfs) => mounts.check(rootfs),
            None => Err(crate::err!(
                Other,
                "state has no rootfs to check host_mounts.rootfs {:?} against: nothing detached",
                mounts.rootfs
            )),
        };
        match checked {
            Ok(true) => {
                mounts.release()?;
                found.push(format!("the mounts beneath {:?}", mounts.rootfs));
            }
            Ok(false) => {}
            Err(e) => {
                crate::logging::warn(&format!("{e}; --force: the record goes, the mounts stay"))
            }
        }
    }
    dir.remove()?;
    crate::logging::warn(&format!(
        "container {:?}: {why}; removed it{}",
        dir.id,
        if found.is_empty() {
            " (no process or cgroup could be identified from it)".to_owned()
        } else {
            format!(" and ended {}", found.join(", "))
        }
    ));
    Ok(())
}

/// The value of the first `"key":` in a state file that may be cut short or damaged
/// after it: parsed from there on, whatever follows the value. The record's first keys
/// (pid, pid_start, cgroup) are unique in it.
fn field(raw: &str, key: &str) -> Option<serde_json::Value> {
    let at = raw.find(&format!("\"{key}\":"))? + key.len() + 3;
    serde_json::Deserializer::from_str(&raw[at..])
        .into_iter::<serde_json::Value>()
        .next()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_read_from_a_cut_state_file() {
        let raw = r#"{"oci_version":"1","id":"x","pid":42,"pid_start":7,"cgroup":{"unified":"/a"},"bundle":"/b","process":{"us"#;
        assert_eq!(field(raw, "pid").unwrap(), 42);
        assert_eq!(field(raw, "pid_start").unwrap(), 7);
        assert_eq!(field(raw, "cgroup").unwrap()["unified"], "/a");
        assert!(field(raw, "process").is_none());
        assert!(field("{{{", "pid").is_none());
    }
}
