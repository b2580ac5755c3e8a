//! `resume`: thaw a paused container.

use std::path::Path;

use crate::bail;
use crate::error::Result;
use crate::state::{StateDir, Status};

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    match dir.status(&record) {
        Status::Paused => {}
        other => bail!(
            WrongState,
            "cannot resume container {id:?}: it is {other}, not paused"
        ),
    }
    super::pause::cgroup_of(&record)?.freeze(false)
}
