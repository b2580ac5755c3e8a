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
        Status::Created | Status::Running => {}
        other => bail!("cannot kill container {id:?}: it is {other}"),
    }
    signal_container(&record, signal, all)
}

pub fn signal_container(record: &Record, signal: i32, all: bool) -> Result<()> {
    if all && !record.own_pid_ns {
        for pid in pids_in_same_pid_ns_tree(record)? {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(signal).ok(),
            );
        }
    }
    let Some(pidfd) = super::pidfd_of(record.pid, record.pid_start)? else {
        bail!("container {:?} is not running", record.id);
    };
    if all && record.own_pid_ns && signal != libc::SIGKILL {
        // Every process of the namespace, init last.
        for pid in processes_in_pid_ns(record.pid)? {
            if pid != record.pid {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::try_from(signal).ok(),
                );
            }
        }
    }
    // SIGKILL to the init of a pid namespace kills every process in it.
    super::send_signal(&pidfd, signal)
        .map_err(|e| e.wrap(format!("kill container {:?}", record.id)))
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
fn pids_in_same_pid_ns_tree(record: &Record) -> Result<Vec<i32>> {
    let mut family = vec![record.pid];
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid = after.split(' ').nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
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
    family.retain(|p| *p != record.pid);
    Ok(family)
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
