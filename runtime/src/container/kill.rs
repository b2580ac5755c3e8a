//! `kill`: runtime.md "kill" — send a signal to the container's process(es).

use std::path::Path;

use crate::bail;
use crate::error::Result;
use crate::signal::parse_signal;
use crate::state::{Record, StateDir, Status};

pub fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    let signal = parse_signal(signal)?;
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    match dir.status(&record) {
        Status::Created | Status::Running | Status::Paused => {}
        other => bail!("cannot kill container {id:?}: it is {other}"),
    }
    if all && record.cgroup.is_none() && !record.own_pid_ns {
        // Neither a cgroup nor a pid namespace (rootless): the container's processes
        // cannot be told apart from the caller's.
        return Err(
            crate::rootless::no_cgroup_error(id, record.no_cgroup.as_deref()).wrap("kill --all"),
        );
    }
    signal_container(&record, signal, all)
}

pub fn signal_container(record: &Record, signal: i32, all: bool) -> Result<()> {
    let Some(pidfd) = super::pidfd_of(record.pid, record.pid_start)? else {
        bail!("container {:?} is not running", record.id);
    };
    // SIGKILL to the init of a pid namespace kills every process in it: no scan needed.
    // Otherwise every process of the container is in its cgroup (or, rootless without
    // one, in its pid namespace).
    if all && !(record.own_pid_ns && signal == libc::SIGKILL) {
        let members = match &record.cgroup {
            Some(cg) => cg.procs()?,
            None if record.own_pid_ns => super::ps::members(record)?,
            // kill() refused this for --all; delete ends init, as it can.
            None => Vec::new(),
        };
        for pid in members.into_iter().filter(|p| *p != record.pid) {
            // SAFETY: kill(2) with a pid and signal number; a vanished pid gives ESRCH.
            unsafe { libc::kill(pid, signal) };
        }
    }
    super::send_signal(&pidfd, signal)
        .map_err(|e| e.wrap(format!("kill container {:?}", record.id)))?;
    // A v1-frozen task does not die until thawed: a paused container that is killed is
    // let go (runc does the same).
    match &record.cgroup {
        Some(cg) if signal == libc::SIGKILL && cg.is_frozen() => cg.freeze(false),
        _ => Ok(()),
    }
}
