//! `list`: every container under `--root`, as runc prints them.

use std::path::Path;

use crate::error::Result;
use crate::state::{list_ids, StateDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Quiet,
}

pub fn list(root: &Path, format: ListFormat) -> Result<String> {
    let mut rows = Vec::new();
    for id in list_ids(root)? {
        let dir = StateDir::new(root, &id)?;
        match dir.load() {
            Ok(record) => {
                let status = dir.observed_status(&record);
                rows.push(
                    serde_json::to_value(record.oci_state(status)).expect("state serialises"),
                );
            }
            // Made, but state.json not written yet: being created, or its create was
            // killed before anything but the dir existed (`delete --force` clears it).
            Err(_) if !dir.exists() && dir.path.exists() => rows.push(bare_row(
                &id,
                if dir.is_locked() {
                    "creating"
                } else {
                    "stopped"
                },
            )),
            // A container deleted while we list is simply gone.
            Err(_) if !dir.exists() => {}
            // Unreadable state is shown, not hidden: `delete --force` clears it.
            Err(e) => {
                crate::logging::warn(&format!("load container {id}: {e}"));
                rows.push(unknown_row(&id));
            }
        }
    }
    Ok(match format {
        ListFormat::Json => serde_json::Value::Array(rows).to_string() + "\n",
        ListFormat::Quiet => rows
            .iter()
            .map(|r| format!("{}\n", r["id"].as_str().unwrap_or_default()))
            .collect(),
        ListFormat::Table => table(&rows),
    })
}

fn unknown_row(id: &str) -> serde_json::Value {
    bare_row(id, "unknown")
}

/// A row for a container with no readable state: only its id and a status.
fn bare_row(id: &str, status: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "", "id": id, "status": status, "pid": 0,
        "bundle": "", "rootfs": "", "created": "", "owner": "",
    })
}

fn table(rows: &[serde_json::Value]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|r| {
            ["id", "pid", "status", "bundle", "created", "owner"]
                .iter()
                .map(|k| match &r[*k] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        }))
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| cells.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}
