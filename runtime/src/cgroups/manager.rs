//! The seam between the operations and whoever owns the container's cgroup:
//! cgroupfs (patina makes and removes the directories itself) or systemd (a transient
//! unit; see [`super::systemd`]). The operations call these; the rest of what they do
//! (freeze, kill, procs, stats, join for exec) works on the directories, the same for
//! both. Which manager a container has is in its state.json (`cgroup.systemd`).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::devices::Rule;
use super::systemd::{self, properties, Unit};
use super::{Cgroup, Layout, CGROUP_ROOT};
use crate::error::{Context, Result};

pub enum Manager<'a> {
    Cgroupfs,
    Systemd(&'a Unit),
}

impl Cgroup {
    pub fn manager(&self) -> Manager<'_> {
        match &self.systemd {
            Some(unit) => Manager::Systemd(unit),
            None => Manager::Cgroupfs,
        }
    }

    /// `create`: where the container's cgroup goes, for the manager `--systemd-cgroup`
    /// picks. Nothing is made yet. `user`: the host uid of a rootless caller, whose
    /// scopes its own systemd (user@<uid>.service) makes.
    pub fn for_container(
        layout: &Layout,
        cgroups_path: Option<&Path>,
        id: &str,
        systemd: bool,
        user: Option<u32>,
    ) -> Result<Cgroup> {
        if !systemd {
            return Cgroup::resolve(layout, cgroups_path, id);
        }
        systemd::check_host(layout)?;
        let path = cgroups_path.map(|p| p.to_string_lossy().into_owned());
        let unit = Unit::from_cgroups_path(path.as_deref(), id, user)?;
        Ok(Cgroup {
            unified: Some(unit.cgroup_dir(Path::new(CGROUP_ROOT))),
            systemd: Some(unit),
            ..Default::default()
        })
    }

    /// Before init is cloned: cgroupfs makes the directories, so init is born in its
    /// cgroup. systemd cannot make a scope without a process in it: that waits for
    /// [`Cgroup::adopt`]. Returns whether the record changed (see [`Cgroup::create`]).
    pub fn prepare(&mut self) -> Result<bool> {
        match self.systemd {
            Some(_) => Ok(false),
            None => self.create(),
        }
    }

    /// Before init is cloned, cgroupfs writes the resources (systemd: at adopt).
    pub fn apply_before_clone(
        &self,
        resources: &LinuxResources,
        rules: Option<&[Rule]>,
    ) -> Result<()> {
        match self.systemd {
            Some(_) => Ok(()),
            None => self.apply(resources, rules),
        }
    }

    /// The cgroup init is cloned into: ours under cgroupfs; none yet under systemd.
    pub fn clone_target(&self) -> Option<&Cgroup> {
        self.systemd.is_none().then_some(self)
    }

    /// After init is cloned (it waits for Go): systemd makes the scope with init in
    /// it; then the resources go to the scope's files, as under cgroupfs. `rules`: the
    /// device rules, none for a rootless caller (a user's manager cannot attach the
    /// device program either; the devices are the host's nodes the user may open).
    pub fn adopt(
        &mut self,
        pid: i32,
        id: &str,
        resources: &LinuxResources,
        rules: Option<&[Rule]>,
    ) -> Result<()> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let mut props = properties::resources(resources)?;
        if let Some(rules) = rules {
            let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
            props.extend(properties::devices(rules, &proc_devices));
        }
        if let Err(e) = unit.start(pid as u32, &format!("patina container {id}"), props) {
            // No unit of ours exists (a live one of that name is someone else's): forget
            // it, so that the failed create's clean-up stops nothing.
            self.systemd = None;
            self.unified = None;
            return Err(e);
        }
        if unit.name.ends_with(".slice") {
            // A slice takes no PIDs: init joins it through cgroupfs (as runc).
            self.join(pid)?;
        }
        // Trust where systemd put it (a user manager's tree may differ from the guess).
        if let Some(dir) = unified_dir_of(pid)? {
            self.unified = Some(dir);
        }
        self.apply(resources, rules)
    }

    /// `update`: the unit's properties first (so systemd keeps them), then the files.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        if let Manager::Systemd(unit) = self.manager() {
            unit.set(properties::resources(resources)?)?;
        }
        self.apply(resources, None)
    }

    /// `delete` (or a failed create): remove what patina made, or stop the unit.
    pub fn release(&self) -> Result<()> {
        match self.manager() {
            Manager::Cgroupfs => self.remove(),
            Manager::Systemd(unit) => unit.stop(),
        }
    }

    /// Whether everything in the cgroup is the container's (so `delete` may kill it
    /// all): a systemd scope made for it, or directories patina made.
    pub fn is_own(&self) -> bool {
        if self.systemd.is_some() {
            return true;
        }
        let made = self.created.as_deref().unwrap_or_default();
        self.created.is_some() && self.dirs().iter().all(|d| made.iter().any(|m| m == d))
    }
}

/// The cgroup2 directory of `pid`, from its /proc/PID/cgroup (`0::/path`).
fn unified_dir_of(pid: i32) -> Result<Option<std::path::PathBuf>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("read /proc/{pid}/cgroup"))?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| Path::new(CGROUP_ROOT).join(p.trim_start_matches('/'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manager travels in state.json: later commands (sent without the flag by
    /// docker's shim and podman) must find the unit; an older state is cgroupfs.
    #[test]
    fn the_manager_is_recorded_in_the_state() {
        let unit = Unit::from_cgroups_path(Some("system.slice:docker:abc"), "abc", None).unwrap();
        let cg = Cgroup {
            unified: Some(unit.cgroup_dir(Path::new(CGROUP_ROOT))),
            systemd: Some(unit.clone()),
            created: Some(Vec::new()),
            ..Default::default()
        };
        let json = serde_json::to_string(&cg).unwrap();
        assert!(
            json.contains(r#""systemd":{"name":"docker-abc.scope","slice":"system.slice"}"#),
            "{json}"
        );
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert!(matches!(back.manager(), Manager::Systemd(u) if *u == unit));
        assert!(back.is_own() && back.clone_target().is_none());
        let old: Cgroup = serde_json::from_str(r#"{"unified":"/sys/fs/cgroup/x"}"#).unwrap();
        assert!(matches!(old.manager(), Manager::Cgroupfs));
        assert!(old.clone_target().is_some());
    }
}
