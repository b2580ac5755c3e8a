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

/// One container as runc's `list --format json` prints it, in its key order.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    oci_version: String,
    id: String,
    pid: i32,
    status: String,
    bundle: String,
    rootfs: String,
    created: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    annotations: std::collections::HashMap<String, String>,
    owner: String,
}

impl Row {
    fn of(record: &crate::state::Record, status: crate::state::Status) -> Row {
        let state = record.oci_state(status);
        Row {
            oci_version: state.oci_version.to_owned(),
            id: state.id.to_owned(),
            pid: state.pid,
            status: status.to_string(),
            bundle: state.bundle.display().to_string(),
            rootfs: state.rootfs.display().to_string(),
            created: state.created.to_owned(),
            annotations: state.annotations.clone(),
            owner: state.owner.to_owned(),
        }
    }

    /// A container with no readable state: only its id and a status.
    fn bare(id: &str, status: &str) -> Row {
        Row {
            oci_version: String::new(),
            id: id.to_owned(),
            pid: 0,
            status: status.to_owned(),
            bundle: String::new(),
            rootfs: String::new(),
            created: String::new(),
            annotations: Default::default(),
            owner: String::new(),
        }
    }
}

pub fn list(root: &Path, format: ListFormat) -> Result<String> {
    let mut rows = Vec::new();
    for id in list_ids(root)? {
        let dir = StateDir::new(root, &id)?;
        match dir.load() {
            Ok(record) => rows.push(Row::of(&record, dir.observed_status(&record))),
            // Made, but state.json not written yet: being created, or its create was
            // killed before anything but the dir existed (`delete --force` clears it).
            Err(_) if !dir.exists() && dir.path.exists() => rows.push(Row::bare(
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
                rows.push(Row::bare(&id, "unknown"));
            }
        }
    }
    Ok(match format {
        ListFormat::Json => serde_json::to_string(&rows).expect("rows serialise") + "\n",
        ListFormat::Quiet => rows.iter().map(|r| format!("{}\n", r.id)).collect(),
        ListFormat::Table => table(&rows),
    })
}

fn table(rows: &[Row]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|r| {
            vec![
                r.id.clone(),
                r.pid.to_string(),
                r.status.clone(),
                r.bundle.clone(),
                r.created.clone(),
                r.owner.clone(),
            ]
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
