//! `kill`: runtime.md "kill" — send a signal to the container's process(es).

use std::path::Path;

use crate::bail;
use crate::error::{Error, Result};
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
    signal_container(&record, signal, all)
}

pub fn signal_container(record: &Record, signal: i32, all: bool) -> Result<()> {
    let Some(pidfd) = super::pidfd_of(record.pid, record.pid_start)? else {
        bail!("container {:?} is not running", record.id);
    };
    // SIGKILL to the init of a pid namespace kills every process in it: no scan needed.
    let cgroup_procs = match &record.cgroup {
        Some(cg) if all => Some(cg.procs()?),
        _ => None,
    };
    if all && !(record.own_pid_ns && signal == libc::SIGKILL) {
        let others = if let Some(procs) = cgroup_procs {
            procs
        } else if record.own_pid_ns {
            processes_in_pid_ns(record.pid)?
        } else {
            descendants_of(record.pid)
        };
        for pid in others.into_iter().filter(|p| *p != record.pid) {
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

/// Processes whose pid namespace is the one of `init`.
pub fn processes_in_pid_ns(init: i32) -> Result<Vec<i32>> {
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid"))
        .map_err(|e| Error::from(e).wrap("read pid namespace of init"))?;
    Ok(all_pids()
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns))
        .collect())
}

/// Without a pid namespace of its own, the container's processes are init's descendants.
/// (Used only for containers without a cgroup record, i.e. created before cgroups.)
fn descendants_of(init: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid = after.split(' ').nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut family = vec![init];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    family
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
