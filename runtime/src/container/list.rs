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
        // A container deleted while we list is simply gone.
        let Ok(record) = dir.load() else { continue };
        let status = dir.status(&record);
        rows.push(serde_json::to_value(record.oci_state(status)).expect("state serialises"));
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
