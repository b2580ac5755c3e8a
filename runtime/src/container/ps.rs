//! `ps`: the container's processes (from its cgroup), as `ps` shows them or as a JSON
//! array of pids, like runc.

use std::path::Path;

use crate::bail;
use crate::error::{Context, Result};
use crate::state::StateDir;

pub enum PsFormat {
    Table,
    Json,
}

pub fn ps(root: &Path, id: &str, format: PsFormat, ps_args: &[String]) -> Result<String> {
    let dir = StateDir::new(root, id)?;
    let record = dir.load()?;
    let pids = super::pause::cgroup_of(&record)?.procs()?;
    match format {
        PsFormat::Json => Ok(serde_json::to_string(&pids).expect("pids serialise") + "\n"),
        PsFormat::Table => table(&pids, ps_args),
    }
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
