//! `kill`: runtime.md "kill" — send a signal to the container's process(es).

use std::path::Path;

use crate::bail;
use crate::error::Result;
use crate::signal::parse_signal;
use crate::state::{Record, StateDir, Status};

pub fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    // Signal 0 delivers nothing: it asks whether the container's process is still
    // there (kill(2)'s existence check), as `runc kill ID 0` does.
    let signal = match signal {
        "0" => 0,
        other => parse_signal(other)?,
    };
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    match dir.status(&record) {
        Status::Created | Status::Running | Status::Paused => {
            if all && record.cgroup.is_none() && !record.own_pid_ns {
                // Neither a cgroup nor a pid namespace (rootless): the container's
                // processes cannot be told apart from the caller's.
                return Err(
                    crate::rootless::no_cgroup_error(id, record.no_cgroup.as_deref())
                        .wrap("kill --all"),
                );
            }
            signal_container(&record, signal, all)
        }
        // As runc: `kill --all` of a stopped container signals what is left in its
        // cgroup (nothing, with a pid namespace of its own) and succeeds.
        Status::Stopped if all => signal_leftovers(&record, signal),
        other => bail!(WrongState, "cannot kill container {id:?}: it is {other}"),
    }
}

fn signal_leftovers(record: &Record, signal: i32) -> Result<()> {
    if let Some(cg) = record.cgroup.as_ref().filter(|_| !record.own_pid_ns) {
        for pid in cg.procs()? {
            // SAFETY: kill(2) with a pid and signal number; a vanished pid gives ESRCH.
            unsafe { libc::kill(pid, signal) };
        }
    }
    Ok(())
}

pub fn signal_container(record: &Record, signal: i32, all: bool) -> Result<()> {
    let Some(pidfd) = super::pidfd_of(record.pid, record.pid_start)? else {
        bail!(WrongState, "container {:?} is not running", record.id);
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
