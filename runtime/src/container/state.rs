//! `state`: runtime.md "state" — the state JSON of one container.

use std::path::Path;

use crate::error::Result;
use crate::state::StateDir;

pub fn state_json(root: &Path, id: &str) -> Result<String> {
    let dir = StateDir::new(root, id)?;
    let record = dir.load()?;
    let status = dir.observed_status(&record);
    Ok(serde_json::to_string_pretty(&record.oci_state(status)).expect("state serialises"))
}
