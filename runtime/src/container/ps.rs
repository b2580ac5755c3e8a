//! `ps`: the container's processes (from its cgroup, or from its pid namespace when it
//! has no cgroup: rootless), as `ps` shows them or as a JSON array of pids, like runc.

use std::path::Path;

use crate::bail;
use crate::error::{Context, Result};
use crate::state::{Record, StateDir};

pub enum PsFormat {
    Table,
    Json,
}

pub fn ps(root: &Path, id: &str, format: PsFormat, ps_args: &[String]) -> Result<String> {
    let dir = StateDir::new(root, id)?;
    let record = dir.load()?;
    let pids = members(&record)?;
    match format {
        PsFormat::Json => Ok(serde_json::to_string(&pids).expect("pids serialise") + "\n"),
        PsFormat::Table => table(&pids, ps_args),
    }
}

/// The container's processes: its cgroup's; without a cgroup (rootless, none delegated)
/// those of init's own pid namespace, which holds every process of the container.
/// beyond runc: runc 1.1.5 fails there ("no cgroup").
pub(crate) fn members(record: &Record) -> Result<Vec<i32>> {
    if let Some(cg) = &record.cgroup {
        return cg.procs();
    }
    if !record.own_pid_ns || record.pid <= 0 {
        return Err(crate::rootless::no_cgroup_error(
            &record.id,
            record.no_cgroup.as_deref(),
        ));
    }
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init_ns = ns_of(&record.pid.to_string())
        .ok_or_else(|| crate::err!(WrongState, "container {:?} is not running", record.id))?;
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .context("read /proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns_of(&pid.to_string()).as_ref() == Some(&init_ns))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Run `ps ARGS` (default -ef) and keep the header and the container's lines.
fn table(pids: &[i32], args: &[String]) -> Result<String> {
    let default = ["-ef".to_string()];
    let args = if args.is_empty() { &default[..] } else { args };
    let out = std::process::Command::new("ps")
        .args(args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {}: no PID column in its output", args.join(" "));
    };
    let mut result = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p: i32| pids.contains(&p)) {
            result += line;
            result.push('\n');
        }
    }
    Ok(result)
}
