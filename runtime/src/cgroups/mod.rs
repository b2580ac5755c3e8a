//! The container's cgroup, written straight to cgroupfs.
//!
//! Three host layouts are handled (docs/cgroups.md):
//! - pure v2: a cgroup2 mount at /sys/fs/cgroup holds every controller;
//! - pure v1: one mount per hierarchy (`cpu`, `memory`, ..., `name=systemd`);
//! - hybrid: v1 hierarchies plus a cgroup2 mount (usually /sys/fs/cgroup/unified) that
//!   holds whatever controllers v1 did not take (hugetlb on some hosts) and the core
//!   files (cgroup.freeze, eBPF device programs).
//!
//! A container gets one directory in every hierarchy (as runc does), resolved once at
//! `create` and stored in state.json, so later operations never re-resolve it from
//! the caller's own cgroup (which may differ).

pub mod devices;
pub mod manager;
pub mod oom;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Context, Error, Result};

/// Where cgroup hierarchies are looked for (mounts elsewhere are ignored).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// v1 controllers patina knows by name (mount options that are not one of these, nor
/// `name=...`, are plain mount options).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// The container's cgroup: its directory in each hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// v1 hierarchies: controller (or `name=...`) -> directory. Co-mounted controllers
    /// (`cpu,cpuacct`) map to the same directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 directory: everything on pure v2, the unified hierarchy on hybrid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    /// The directories patina makes for the container (parents first), and so the only
    /// ones it removes: a cgroup that existed before is joined (when empty) but never
    /// removed. Recorded in state.json before the first mkdir. `None` in the state of a
    /// patina from before this field, which removed every leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Vec<PathBuf>>,
    /// The systemd unit that owns the cgroup (`--systemd-cgroup` at create); absent
    /// for cgroupfs. Later commands go by this, not by their own flags: engines send
    /// the flag to create only (docs/cgroups.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

/// The host's layout as seen from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 mounted at /sys/fs/cgroup.
    V2 { mount: Mount },
    /// v1 hierarchies, plus the cgroup2 mount of a hybrid host.
    V1 {
        hierarchies: Vec<(Vec<String>, Mount)>,
        unified: Option<Mount>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    /// The part of the hierarchy the mount shows (usually "/").
    pub root: String,
}

impl Layout {
    pub fn detect() -> Result<Layout> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
        Ok(Layout::from_mountinfo(&text))
    }

    pub fn from_mountinfo(text: &str) -> Layout {
        let mut hierarchies: Vec<(Vec<String>, Mount)> = Vec::new();
        let mut unified = None;
        let mut v2_root = None;
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            if fields.len() < sep + 4 || sep < 5 {
                continue;
            }
            let (root, point, fstype) = (fields[3], unescape(fields[4]), fields[sep + 1]);
            let mount = Mount {
                point: PathBuf::from(&point),
                root: root.to_owned(),
            };
            if point == CGROUP_ROOT {
                // A later mount on /sys/fs/cgroup hides everything below it.
                if fstype == "cgroup2" {
                    v2_root = Some(mount);
                } else {
                    v2_root = None;
                    hierarchies.clear();
                    unified = None;
                }
                continue;
            }
            if !point.starts_with(CGROUP_ROOT) {
                continue;
            }
            match fstype {
                "cgroup2" => unified = Some(mount),
                "cgroup" => {
                    let controllers: Vec<String> = fields[sep + 3]
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    if !controllers.is_empty()
                        && !hierarchies.iter().any(|(c, _)| *c == controllers)
                    {
                        hierarchies.push((controllers, mount));
                    }
                }
                _ => {}
            }
        }
        match v2_root {
            Some(mount) => Layout::V2 { mount },
            None => Layout::V1 {
                hierarchies,
                unified,
            },
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Refuse cgroupsPath values that could leave the hierarchy or name its root.
pub fn check_path(path: &Path) -> Result<()> {
    if path.components().any(|c| c == Component::ParentDir) {
        bail!(
            InvalidConfig,
            "linux.cgroupsPath {:?}: must not contain \"..\"",
            path.display()
        );
    }
    // "/", "." and the like name the hierarchy's root or the caller's own cgroup: the
    // container's limits would be written there, and `delete` would kill every process
    // in it (the host's, or the engine's own).
    if !path.components().any(|c| matches!(c, Component::Normal(_))) {
        bail!(InvalidConfig,
            "linux.cgroupsPath {:?}: names no cgroup of the container's own (the hierarchy's root or the runtime's own cgroup)",
            path.display()
        );
    }
    Ok(())
}

/// Under cgroupfs, refuse the systemd form (an engine configured for systemd talking to
/// a runtime without the flag), rather than make a directory named `a.slice:b:c`.
fn check_not_systemd_form(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if !path.is_absolute() && !text.contains('/') && text.split(':').count() == 3 {
        bail!(InvalidConfig, "linux.cgroupsPath {text:?}: the systemd form slice:prefix:name needs --systemd-cgroup (or give a cgroupfs path)");
    }
    Ok(())
}

impl Cgroup {
    /// Where the container's cgroup goes: an absolute `cgroupsPath` from each
    /// hierarchy's root; a relative one (or the container id when unset) beneath the
    /// calling process's own cgroup, as runc does with cgroupfs.
    pub fn resolve(layout: &Layout, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let inner = match cgroups_path.filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => {
                check_path(p)?;
                check_not_systemd_form(p)?;
                p.to_path_buf()
            }
            None => PathBuf::from(id),
        };
        let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
        Ok(Cgroup::resolve_with(layout, &own, &inner))
    }

    pub fn resolve_with(layout: &Layout, own_cgroups: &str, inner: &Path) -> Cgroup {
        let own: Vec<(Vec<&str>, &str)> = own_cgroups
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _ = parts.next()?;
                let ctrls = parts.next()?;
                let path = parts.next()?;
                let ctrls = if ctrls.is_empty() {
                    Vec::new()
                } else {
                    ctrls.split(',').collect()
                };
                Some((ctrls, path))
            })
            .collect();
        let place = |mount: &Mount, ctrls: &[String]| -> PathBuf {
            let own_path = own
                .iter()
                .find(|(c, _)| {
                    c.len() == ctrls.len() && ctrls.iter().all(|x| c.contains(&x.as_str()))
                })
                .map(|(_, p)| *p)
                .unwrap_or("/");
            join_inner(mount, own_path, inner)
        };
        match layout {
            Layout::V2 { mount } => Cgroup {
                unified: Some(place(mount, &[])),
                ..Default::default()
            },
            Layout::V1 {
                hierarchies,
                unified,
            } => {
                let mut v1 = BTreeMap::new();
                for (ctrls, mount) in hierarchies {
                    let dir = place(mount, ctrls);
                    for c in ctrls {
                        v1.insert(c.clone(), dir.clone());
                    }
                }
                Cgroup {
                    v1,
                    unified: unified.as_ref().map(|m| place(m, &[])),
                    ..Default::default()
                }
            }
        }
    }

    pub fn is_v2(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// Every directory, each once.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = Vec::new();
        for d in self
            .v1
            .values()
            .map(PathBuf::as_path)
            .chain(self.unified.as_deref())
        {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// The v1 directory of `controller`, if the host has that hierarchy.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(PathBuf::as_path)
    }

    /// Before anything is made: the directories that are missing (parents first), which
    /// [`Cgroup::create`] will make and [`Cgroup::remove`] remove. An existing
    /// directory is joined only when nothing runs in it and it is not frozen (as runc
    /// 1.2): its processes would otherwise share the container's limits, be killed with
    /// it, or freeze the container at birth.
    pub fn plan_creation(&mut self) -> Result<()> {
        if self.systemd.is_some() {
            // systemd makes (and removes) the scope's directory.
            self.created = Some(Vec::new());
            return Ok(());
        }
        let mut missing: Vec<PathBuf> = Vec::new();
        for dir in self.dirs() {
            let mut cur = dir;
            let mut chain = Vec::new();
            while !cur.exists() {
                chain.push(cur.to_path_buf());
                match cur.parent() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            if chain.is_empty() {
                check_joinable(dir)?;
            } else {
                // A new cgroup below a frozen one is born frozen.
                check_not_frozen(cur)?;
            }
            for d in chain.into_iter().rev() {
                if !missing.contains(&d) {
                    missing.push(d);
                }
            }
        }
        self.created = Some(missing);
        Ok(())
    }

    /// Make the planned directories. A directory someone else made meanwhile is not
    /// ours: it leaves `created` (returns true when the plan changed, for the caller to
    /// record it). On failure, the directories this call made are removed again.
    pub fn create(&mut self) -> Result<bool> {
        let planned = self.created.clone().unwrap_or_default();
        let mut made: Vec<PathBuf> = Vec::new();
        let mut changed = false;
        let result = planned
            .iter()
            .try_for_each(|d| match std::fs::create_dir(d) {
                Ok(()) => {
                    made.push(d.clone());
                    if self.v1.get("cpuset").is_some_and(|c| c.starts_with(d)) {
                        v1::init_cpuset(d)?;
                    }
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    changed = true;
                    check_joinable(d)
                }
                Err(e) => Err(Error::from(e).wrap(format!("create cgroup {:?}", d.display()))),
            });
        if let Err(e) = result {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
        self.created = Some(made);
        Ok(changed)
    }

    /// What a new process needs to join this cgroup cheaply (see [`Joiner`]).
    pub fn joiner(&self) -> Result<Joiner> {
        let unified = match &self.unified {
            Some(dir) => Some(
                std::fs::File::open(dir)
                    .map(OwnedFd::from)
                    .with_context(|| format!("open cgroup {:?}", dir.display()))?,
            ),
            None => None,
        };
        let mut tasks = Vec::new();
        for dir in self.dirs() {
            if Some(dir) == self.unified.as_deref() {
                continue;
            }
            let path = dir.join("tasks");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .with_context(|| format!("open {:?}", path.display()))?;
            tasks.push((OwnedFd::from(f), dir.to_path_buf()));
        }
        Ok(Joiner { unified, tasks })
    }

    /// Move `pid` into every hierarchy.
    pub fn join(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            write_file(dir, "cgroup.procs", &pid.to_string())
                .with_context(|| format!("join cgroup {:?}", dir.display()))?;
        }
        Ok(())
    }

    /// Apply `resources`; `rules` are the device rules (at create; `update` leaves
    /// devices alone, as runc's does).
    pub fn apply(&self, r: &LinuxResources, rules: Option<&[devices::Rule]>) -> Result<()> {
        if self.is_v2() {
            let dir = self.unified.as_deref().expect("v2 has a dir");
            v2::apply(dir, r)?;
            match rules {
                Some(rules) => devices::apply_v2(dir, rules),
                None => Ok(()),
            }
        } else {
            v1::apply(self, r, rules)
        }
    }

    /// The pids in the cgroup (from the freezer or pids hierarchy, or cgroup2).
    pub fn procs(&self) -> Result<Vec<i32>> {
        let dir = self
            .v1_dir("freezer")
            .or(self.v1_dir("pids"))
            .or(self.unified.as_deref())
            .or_else(|| self.dirs().first().copied());
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        procs_below(dir, &mut pids)?;
        Ok(pids)
    }

    /// Freeze (pause) or thaw (resume) every process, and wait until it is done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if let Some(dir) = self.v1_dir("freezer") {
            v1::freeze(dir, frozen)
        } else if let Some(dir) = self.unified.as_deref() {
            v2::freeze(dir, frozen)
        } else {
            bail!(
                Unsupported,
                "pause/resume: the host has no freezer (neither v1 freezer nor cgroup2)"
            )
        }
    }

    pub fn is_frozen(&self) -> bool {
        if let Some(dir) = self.v1_dir("freezer") {
            std::fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN" || s.trim() == "FREEZING")
        } else if let Some(dir) = self.unified.as_deref() {
            std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        } else {
            false
        }
    }

    /// SIGKILL everything in the cgroup (thawing it so v1 frozen tasks can die), and
    /// wait until it is empty. On v2 (5.14+) one write to cgroup.kill does it: the
    /// kernel kills every process, frozen or not, including those forked meanwhile.
    pub fn kill_all(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(dir) = self.unified.as_deref().filter(|_| self.is_v2()) {
            if dir.join("cgroup.kill").exists() {
                match write_file(dir, "cgroup.kill", "1") {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(()),
                    Err(e) => return Err(e.wrap("kill the container's cgroup")),
                }
            }
        }
        loop {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                // SAFETY: kill(2) with a pid read from the container's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if self.is_frozen() {
                self.freeze(false)?;
            }
            if Instant::now() > deadline {
                bail!("cgroup of the container is not empty 10s after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Remove the directories patina made, leaves first. A leaf's exiting tasks may keep
    /// it busy for a moment: EBUSY is retried briefly. A parent it made may have been
    /// taken up by other cgroups since: it is left when not empty.
    pub fn remove(&self) -> Result<()> {
        let leaves = self.dirs();
        let ours: Vec<&Path> = match &self.created {
            Some(made) => made.iter().rev().map(PathBuf::as_path).collect(),
            None => leaves.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        // Cgroups the container made inside its own (a nested engine, systemd in a
        // container) go first, deepest first: as runc, delete leaves none of them. Only
        // in a cgroup patina made: one it joined may hold someone else's.
        for leaf in leaves.iter().filter(|l| ours.contains(l)) {
            remove_children(leaf, deadline)?;
        }
        for dir in ours {
            let leaf = leaves.contains(&dir);
            loop {
                match std::fs::remove_dir(dir)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
                {
                    Ok(()) | Err(Errno::ENOENT) => break,
                    Err(Errno::EBUSY | Errno::ENOTEMPTY) if !leaf => break,
                    Err(Errno::EBUSY) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => {
                        return Err(Error::os(e, format!("remove cgroup {:?}", dir.display())))
                    }
                }
            }
        }
        Ok(())
    }
}

/// The pids in `dir`'s cgroup.procs and in every cgroup below it (v1's cgroup.procs lists
/// only a cgroup's own members; a container may move its processes into sub-cgroups).
fn procs_below(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        // Removed while we walk (ENOENT), or being removed (ENODEV: systemd stopping the
        // scope takes its sub-cgroups away as `delete --force` lists them): no members.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
        Err(e) => return Err(Error::from(e).wrap(format!("read {:?}/cgroup.procs", dir.display()))),
    }
    for child in sub_cgroups(dir) {
        procs_below(&child, pids)?;
    }
    Ok(())
}

/// The cgroups directly below `dir` (directories; the control files are not).
fn sub_cgroups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Remove every cgroup below `dir`, deepest first (their processes are gone by now; a
/// cgroup whose last task just exited may be busy for a moment, as in `remove`).
fn remove_children(dir: &Path, deadline: Instant) -> Result<()> {
    for child in sub_cgroups(dir) {
        remove_children(&child, deadline)?;
        loop {
            match std::fs::remove_dir(&child)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            {
                Ok(()) | Err(Errno::ENOENT) => break,
                Err(Errno::EBUSY) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => return Err(Error::os(e, format!("remove cgroup {:?}", child.display()))),
            }
        }
    }
    Ok(())
}

/// An existing cgroup the container may join: nothing runs in it, and it is not frozen.
fn check_joinable(dir: &Path) -> Result<()> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let count = procs.lines().filter(|l| !l.trim().is_empty()).count();
    if count > 0 {
        bail!(InvalidConfig,
            "linux.cgroupsPath: cgroup {:?} already has {count} process(es): refusing to share it with the container",
            dir.display()
        );
    }
    check_not_frozen(dir)
}

/// v2: `frozen 1` in cgroup.events is the effective state (a frozen ancestor counts);
/// v1: freezer.state says FROZEN or FREEZING for a frozen parent too.
fn check_not_frozen(dir: &Path) -> Result<()> {
    let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
    let frozen = events.lines().any(|l| l.trim() == "frozen 1")
        || read_trimmed(dir, "cgroup.freeze").as_deref() == Some("1")
        || matches!(
            read_trimmed(dir, "freezer.state").as_deref(),
            Some("FROZEN" | "FREEZING")
        );
    if frozen {
        bail!(
            InvalidConfig,
            "linux.cgroupsPath: cgroup {:?} is frozen: the container would never run",
            dir.display()
        );
    }
    Ok(())
}

/// Joining without paying for a migration: moving a process by pid (cgroup.procs)
/// takes the kernel's global threadgroup lock, whose first writer waits for an RCU
/// grace period (measured 8-15 ms here when cold). Instead the child is born in the
/// cgroup2 directory (clone3 CLONE_INTO_CGROUP with `unified`), and moves its own
/// single thread into each v1 hierarchy by writing "0" to `tasks` (opened by the
/// runtime, whose credentials the kernel checks), which skips that lock.
pub struct Joiner {
    pub unified: Option<OwnedFd>,
    tasks: Vec<(OwnedFd, PathBuf)>,
}

impl Joiner {
    /// In the child, before anything else: join every v1 hierarchy.
    pub fn join_self(&self) -> Result<()> {
        for (fd, dir) in &self.tasks {
            nix::unistd::write(fd, b"0")
                .with_context(|| format!("join cgroup {:?}", dir.display()))?;
        }
        Ok(())
    }
}

fn join_inner(mount: &Mount, own_path: &str, inner: &Path) -> PathBuf {
    let rel = |p: &str| -> PathBuf {
        let p = p.strip_prefix(mount.root.as_str()).unwrap_or(p);
        PathBuf::from(p.trim_start_matches('/'))
    };
    let inner_rel = inner.strip_prefix("/").unwrap_or(inner);
    if inner.is_absolute() {
        mount.point.join(inner_rel)
    } else {
        mount.point.join(rel(own_path)).join(inner_rel)
    }
}

/// Write `value` to an existing cgroup file (never creates it: a missing file means
/// the controller is absent, which the caller names).
pub fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("open {:?}", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("write {value:?} to {:?}", path.display()))
}

/// [`write_file`] for a resource: the error names the config key, and a missing file
/// says that the host lacks what the key needs.
pub fn set(dir: &Path, file: &str, value: &str, key: &str) -> Result<()> {
    write_file(dir, file, value).map_err(|e| {
        let e = if e.errno() == Some(Errno::ENOENT) {
            e.wrap(format!("the host cannot apply it ({file} is absent)"))
        } else {
            e
        };
        e.wrap(format!("linux.resources.{key}"))
    })
}

pub fn read_trimmed(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A missing hierarchy for a key that is set.
pub fn absent(key: &str, controller: &str) -> Error {
    Error::new(
        crate::Kind::Unsupported,
        format!("linux.resources.{key}: the host has no {controller} controller"),
    )
}

/// Static checks of `linux.resources` (nothing touched): ranges and formats.
pub fn validate(r: &LinuxResources) -> Result<()> {
    let min_one = |key: &str, v: Option<i64>| -> Result<()> {
        match v {
            Some(v) if v < -1 => {
                bail!(
                    InvalidConfig,
                    "linux.resources.{key}: {v} is negative (-1 means unlimited)"
                )
            }
            _ => Ok(()),
        }
    };
    if let Some(m) = r.memory() {
        min_one("memory.limit", m.limit())?;
        min_one("memory.reservation", m.reservation())?;
        min_one("memory.swap", m.swap())?;
        #[allow(deprecated)]
        min_one("memory.kernel", m.kernel())?;
        min_one("memory.kernelTCP", m.kernel_tcp())?;
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            bail!(
                InvalidConfig,
                "linux.resources.memory.swappiness: {s} is out of range (0-100)"
            );
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                bail!(InvalidConfig, "linux.resources.memory.swap: {s} is below memory.limit {l} (swap is memory+swap)");
            }
        }
    }
    if let Some(c) = r.cpu() {
        min_one("cpu.quota", c.quota())?;
        min_one("cpu.realtimeRuntime", c.realtime_runtime())?;
        if let Some(q) = c.quota().filter(|q| (1..1000).contains(q)) {
            bail!(
                InvalidConfig,
                "linux.resources.cpu.quota: {q} is below the kernel's minimum of 1000us"
            );
        }
        if let Some(p) = c
            .period()
            .filter(|p| *p != 0 && !(1000..=1_000_000).contains(p))
        {
            bail!(
                InvalidConfig,
                "linux.resources.cpu.period: {p} is out of range (1000-1000000us)"
            );
        }
        if let Some(i) = c.idle().filter(|i| !(0..=1).contains(i)) {
            bail!(
                InvalidConfig,
                "linux.resources.cpu.idle: {i} must be 0 or 1"
            );
        }
        if let Some(s) = c.shares().filter(|s| *s == 1 || *s > 262_144) {
            bail!(
                InvalidConfig,
                "linux.resources.cpu.shares: {s} is out of range (2-262144)"
            );
        }
        for (key, list) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
                parse_list(list).map_err(|e| {
                    Error::new(
                        crate::Kind::InvalidConfig,
                        format!("linux.resources.{key} {list:?}: {e}"),
                    )
                })?;
            }
        }
    }
    if let Some(p) = r.pids() {
        min_one("pids.limit", Some(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        let weight = |key: &str, w: Option<u16>| -> Result<()> {
            match w {
                Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                    bail!(
                        InvalidConfig,
                        "linux.resources.{key}: {w} is out of range (10-1000)"
                    )
                }
                _ => Ok(()),
            }
        };
        weight("blockIO.weight", b.weight())?;
        weight("blockIO.leafWeight", b.leaf_weight())?;
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            check_dev(&format!("blockIO.weightDevice[{i}]"), d.major(), d.minor())?;
            weight(&format!("blockIO.weightDevice[{i}].weight"), d.weight())?;
            weight(
                &format!("blockIO.weightDevice[{i}].leafWeight"),
                d.leaf_weight(),
            )?;
        }
        for (name, list) in v1::throttles(b) {
            for (i, d) in list.iter().enumerate() {
                check_dev(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        page_size_ok(h.page_size()).map_err(|e| {
            Error::new(
                crate::Kind::InvalidConfig,
                format!(
                    "linux.resources.hugepageLimits[{i}].pageSize {:?}: {e}",
                    h.page_size()
                ),
            )
        })?;
        min_one(&format!("hugepageLimits[{i}].limit"), Some(h.limit()))?;
    }
    for (k, v) in r.unified().iter().flatten() {
        check_unified_key(k, v)?;
    }
    for (i, d) in r.devices().iter().flatten().enumerate() {
        devices::Rule::from_spec(d).map_err(|e| e.wrap(format!("linux.resources.devices[{i}]")))?;
    }
    if let Some(n) = r.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            if p.name().is_empty() || p.name().contains([' ', '\n', '/']) {
                bail!(
                    InvalidConfig,
                    "linux.resources.network.priorities[{i}].name {:?}: not an interface name",
                    p.name()
                );
            }
        }
    }
    Ok(())
}

fn check_dev(key: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 {
        bail!(
            InvalidConfig,
            "linux.resources.{key}: negative device number {major}:{minor}"
        );
    }
    Ok(())
}

pub fn check_unified_key(key: &str, value: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            crate::Kind::InvalidConfig,
            format!("linux.resources.unified {key:?}: {why}"),
        ))
    };
    if key.contains('/') || key.starts_with('.') || key.is_empty() {
        return bad("not a cgroup file name");
    }
    let Some((controller, _)) = key.split_once('.') else {
        return bad("not a cgroup file name (expected <controller>.<file>)");
    };
    if controller == "cgroup" {
        return bad("cgroup.* core files are managed by the runtime");
    }
    if value.contains('\n') && !value.trim_end().lines().all(|l| !l.is_empty()) {
        return bad("value has empty lines");
    }
    Ok(())
}

/// `2MB`, `1GB`, `64KB`: the hugetlb file name form.
fn page_size_ok(size: &str) -> std::result::Result<(), &'static str> {
    let split = size
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(size.len());
    let (num, unit) = size.split_at(split);
    if num.is_empty() || !matches!(unit, "KB" | "MB" | "GB") {
        return Err("expected a size like 2MB or 1GB");
    }
    Ok(())
}

/// Above any CPU or memory node id a kernel has (NR_CPUS is at most 8192): a range in
/// config.json is expanded, and `0-4294967295` would be 16 GiB of ids.
const MAX_LIST_ID: u32 = 65_535;

/// A cpu/mem list (`0-3,5`) as the set it names.
pub fn parse_list(list: &str) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in list.trim().split(',') {
        let num = |s: &str| match s.trim().parse::<u32>() {
            Ok(n) if n > MAX_LIST_ID => Err(format!("{n} is above the highest id ({MAX_LIST_ID})")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{s:?} is not a number")),
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} is reversed"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 23 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
25 24 0:22 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
26 24 0:23 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
29 24 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct
30 24 0:27 / /sys/fs/cgroup/memory rw shared:15 - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_layout_and_placement_under_own_cgroup() {
        let layout = Layout::from_mountinfo(HYBRID);
        let Layout::V1 {
            hierarchies,
            unified,
        } = &layout
        else {
            panic!("{layout:?}")
        };
        assert_eq!(hierarchies.len(), 3);
        assert_eq!(
            unified.as_ref().unwrap().point,
            Path::new("/sys/fs/cgroup/unified")
        );
        let own = "3:memory:/svc/a\n2:cpu,cpuacct:/svc\n1:name=systemd:/\n0::/svc\n";
        let cg = Cgroup::resolve_with(&layout, own, Path::new("ctr"));
        assert_eq!(
            cg.v1["memory"],
            Path::new("/sys/fs/cgroup/memory/svc/a/ctr")
        );
        assert_eq!(
            cg.v1["cpu"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/svc/ctr")
        );
        assert_eq!(cg.v1["cpuacct"], cg.v1["cpu"]);
        assert_eq!(
            cg.v1["name=systemd"],
            Path::new("/sys/fs/cgroup/systemd/ctr")
        );
        assert_eq!(
            cg.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/svc/ctr"))
        );
        assert_eq!(cg.dirs().len(), 4);
        assert!(!cg.is_v2());
        let abs = Cgroup::resolve_with(&layout, own, Path::new("/abs/x"));
        assert_eq!(abs.v1["memory"], Path::new("/sys/fs/cgroup/memory/abs/x"));
    }

    #[test]
    fn a_cgroup2_mount_on_top_makes_it_pure_v2() {
        let text =
            format!("{HYBRID}40 24 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        let layout = Layout::from_mountinfo(&text);
        assert!(matches!(layout, Layout::V2 { .. }), "{layout:?}");
        let cg = Cgroup::resolve_with(&layout, "0::/user/x\n", Path::new("c"));
        assert!(cg.is_v2());
        assert_eq!(
            cg.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/user/x/c"))
        );
    }

    /// Found by fuzz/fuzz_targets/config_json.rs (its cgroup placement check): these
    /// paths put the container in the hierarchy's root or in the runtime's own cgroup,
    /// whose processes `delete` then kills.
    #[test]
    fn cgroups_path_must_name_a_cgroup_of_its_own() {
        let layout = Layout::from_mountinfo(HYBRID);
        let own = "3:memory:/svc/a\n";
        let memory =
            |p: &str| Cgroup::resolve_with(&layout, own, Path::new(p)).v1["memory"].clone();
        assert_eq!(memory("/"), Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(memory("."), Path::new("/sys/fs/cgroup/memory/svc/a"));
        for p in ["/", ".", "./", "/./", "//", "./."] {
            let err = check_path(Path::new(p)).unwrap_err().to_string();
            assert!(
                err.contains("linux.cgroupsPath") && err.contains("own"),
                "{p}: {err}"
            );
        }
    }

    /// Found by fuzz/fuzz_targets/config_json.rs: `"cpus": "0-4294967295"` made validate
    /// allocate 16 GiB (the target's malloc limit caught it).
    #[test]
    fn cpu_and_mem_lists_are_bounded() {
        assert_eq!(parse_list("65534-65535").unwrap(), vec![65534, 65535]);
        for list in ["0-4294967295", "65536", "1,0-70000"] {
            let err = parse_list(list).unwrap_err();
            assert!(err.contains("above the highest id"), "{list}: {err}");
        }
        let r: LinuxResources = serde_json::from_str(r#"{"cpu":{"mems":"0-4294967295"}}"#).unwrap();
        assert!(validate(&r).unwrap_err().to_string().contains("cpu.mems"));
    }

    #[test]
    fn bad_paths_and_values_are_named() {
        assert!(check_path(Path::new("a/../../b"))
            .unwrap_err()
            .to_string()
            .contains(".."));
        assert!(check_not_systemd_form(Path::new("system.slice:runc:x"))
            .unwrap_err()
            .to_string()
            .contains("--systemd-cgroup"));
        check_path(Path::new("/a/b")).unwrap();
        check_path(Path::new("./a")).unwrap();
        assert_eq!(parse_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_list("2-1").is_err() && parse_list("x").is_err() && parse_list("").is_err());
        for (json, key) in [
            (r#"{"memory":{"limit":-5}}"#, "memory.limit"),
            (r#"{"cpu":{"cpus":"0-a"}}"#, "cpu.cpus"),
            (r#"{"cpu":{"quota":10}}"#, "cpu.quota"),
            (r#"{"pids":{"limit":-2}}"#, "pids.limit"),
            (r#"{"unified":{"../x":"1"}}"#, "unified"),
            (r#"{"unified":{"cgroup.procs":"1"}}"#, "unified"),
            (
                r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#,
                "pageSize",
            ),
            (r#"{"blockIO":{"weight":5}}"#, "blockIO.weight"),
            (
                r#"{"devices":[{"allow":true,"access":"xa"}]}"#,
                "devices[0]",
            ),
        ] {
            let r: LinuxResources = serde_json::from_str(json).unwrap();
            let err = validate(&r).unwrap_err().to_string();
            assert!(err.contains(key), "{json}: {err}");
        }
    }
}
