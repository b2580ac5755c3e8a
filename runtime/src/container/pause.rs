//! `pause`: freeze every process of the container (v1 freezer, v2 cgroup.freeze).

use std::path::Path;

use crate::bail;
use crate::error::Result;
use crate::state::{Record, StateDir, Status};

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    match dir.status(&record) {
        Status::Created | Status::Running => {}
        other => bail!(WrongState, "cannot pause container {id:?}: it is {other}"),
    }
    cgroup_of(&record)?.freeze(true)
}

pub(crate) fn cgroup_of(record: &Record) -> Result<&crate::cgroups::Cgroup> {
    record
        .cgroup
        .as_ref()
        .ok_or_else(|| crate::rootless::no_cgroup_error(&record.id, record.no_cgroup.as_deref()))
}
