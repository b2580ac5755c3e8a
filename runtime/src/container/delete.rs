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
    let record = match dir.load() {
        Ok(record) => record,
        // A half-made container (create died hard): --force clears what is left.
        Err(_) if force && !dir.exists() => return dir.remove(),
        Err(e) => return Err(e),
    };
    match dir.status(&record) {
        Status::Stopped => {}
        // runc deletes a created (never started) container without --force.
        Status::Created => kill_and_wait(&record)?,
        _ if force => kill_and_wait(&record)?,
        other => {
            bail!("cannot delete container {id:?}: it is {other} (stop it first, or use --force)")
        }
    }
    destroy(&dir, &record)
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
        cgroup.kill_all()?;
        cgroup.remove()?;
    }
    dir.remove()?;
    if let Some(h) = record.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
        let stopped =
            serde_json::to_vec(&record.oci_state(Status::Stopped)).expect("state serialises");
        hooks::run_all_warn("poststop", h, &stopped);
    }
    Ok(())
}
