//! Rootless containers (docs/rootless.md): the runtime started by an unprivileged user, or
//! as uid 0 of a user namespace that does not map every id (rootless podman's case).
//!
//! Everything that differs is decided here once, before the clone, from who the caller
//! is and what config.json asks: how the id maps reach the kernel (written directly for
//! the caller's own ids, through the setuid `newuidmap`/`newgidmap` for /etc/subuid and
//! /etc/subgid ranges), whether the container gets a cgroup (only a writable, delegated
//! one), and what is refused up front (no user namespace, limits without a cgroup, an
//! `oomScoreAdj` below the caller's, `uid=`/`gid=` options naming unmapped ids). The
//! fallbacks inside init (device binds, a bind of /sys, locked mount flags kept) follow
//! from being in a user namespace and live with the mounts (rootfs/).

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec};

use crate::bail;
use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Kind, Result};

/// `--rootless`: runc's `auto` (the default), `true` and `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Auto,
    On,
    Off,
}

impl Mode {
    pub fn parse(value: Option<&str>) -> Result<Mode> {
        match value {
            None | Some("auto") => Ok(Mode::Auto),
            Some("true") => Ok(Mode::On),
            Some("false") => Ok(Mode::Off),
            Some(other) => bail!(
                InvalidConfig,
                "--rootless {other:?}: expected true, false or auto"
            ),
        }
    }
}

/// Who the runtime runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub euid: u32,
    pub egid: u32,
    /// The caller's user namespace maps every uid (the initial namespace, or one that
    /// looks like it): uid 0 there is really root over the host's cgroups and devices.
    pub full_id_range: bool,
}

impl Caller {
    pub fn detect() -> Caller {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        Caller {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            full_id_range: maps_full_range(&map),
        }
    }

    /// The uid the rest of the host knows the caller by (a D-Bus daemon's SO_PEERCRED,
    /// the owner of /run/user/<uid>): the euid read through /proc/self/uid_map. A
    /// namespace nested in another maps to its parent's ids only; systemd's user bus is
    /// reached from one level down (rootless podman's), as with runc.
    pub fn host_uid(&self) -> u32 {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        outer_id(&map, self.euid).unwrap_or(self.euid)
    }

    /// Not uid 0: the kernel lets it write only its own ids into a new namespace's maps.
    pub fn unprivileged(&self) -> bool {
        self.euid != 0
    }

    /// The rootless behaviour (cgroups only if delegated, no lowering of oomScoreAdj).
    pub fn rootless(&self, mode: Mode) -> bool {
        match mode {
            Mode::On => true,
            Mode::Off => false,
            Mode::Auto => self.unprivileged() || !self.full_id_range,
        }
    }
}

/// `0 0 4294967295`: the one line of the initial user namespace's uid_map.
pub fn maps_full_range(uid_map: &str) -> bool {
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [l] if l.as_slice() == ["0", "0", "4294967295"])
}

/// `id` of the namespace whose uid_map (or gid_map) is `map`, as its parent sees it.
pub fn outer_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let id = u64::from(id);
        (id >= inside && id - inside < count)
            .then(|| u32::try_from(outside + id - inside).ok())
            .flatten()
    })
}

/// The default `--root`: runc's `/run/runc` becomes `$XDG_RUNTIME_DIR/runc` for a user
/// who is not root, and for uid 0 of a partial user namespace whose $XDG_RUNTIME_DIR it
/// owns (rootless podman runs the runtime so, without `--root`); patina's the same with
/// `patina`. `xdg_owner` is the owner of $XDG_RUNTIME_DIR as this namespace sees it.
pub fn default_state_root(
    caller: &Caller,
    xdg_runtime_dir: Option<&str>,
    xdg_owner: Option<u32>,
) -> PathBuf {
    let xdg = xdg_runtime_dir.filter(|d| !d.is_empty());
    if !caller.unprivileged() {
        return match xdg {
            Some(dir) if !caller.full_id_range && xdg_owner == Some(caller.euid) => {
                Path::new(dir).join("patina")
            }
            _ => PathBuf::from("/run/patina"),
        };
    }
    match xdg {
        Some(dir) => Path::new(dir).join("patina"),
        None => PathBuf::from(format!("/run/user/{}/patina", caller.euid)),
    }
}

/// How one of the new user namespace's maps reaches the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapWriter {
    /// A privileged runtime writes /proc/PID/{uid,gid}_map itself.
    Runtime,
    /// An unprivileged runtime maps only its own id, which the kernel allows (for the gid
    /// map only once `setgroups` is denied in the namespace).
    OwnId,
    /// Several ids, from the caller's /etc/subuid or /etc/subgid ranges: the setuid
    /// helper checks them and writes the map.
    Helper(PathBuf),
}

/// Everything rootless about one container, decided before the clone.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rootless: bool,
    /// The caller itself is in a user namespace that does not map every id: init is in
    /// one even when the config asks for none (mknod is refused: devices are bound).
    pub caller_in_user_ns: bool,
    /// The runtime's euid is not 0: init waits for `start` dumpable (process/init.rs).
    pub unprivileged_caller: bool,
    /// Device rules are written to the cgroup: not by a caller without CAP_SYS_ADMIN over
    /// the host (v1 `devices.*` and v2 eBPF programs need it), whatever the mode. Root
    /// with `--rootless true` keeps them: dropping them would let a container with
    /// CAP_MKNOD open any device of the host.
    pub device_rules: bool,
    pub uid_map: MapWriter,
    pub gid_map: MapWriter,
    /// Why the container has no cgroup (a rootless caller without a delegated one).
    pub no_cgroup: Option<String>,
}

impl Plan {
    /// The plan of a container that may or may not get `cgroup`. Fails with the config
    /// field named when the config asks what this caller cannot do.
    pub fn new(caller: &Caller, mode: Mode, spec: &Spec, cgroup: &Cgroup) -> Result<Plan> {
        let rootless = caller.rootless(mode);
        let linux = spec.linux().as_ref();
        let new_user = new_user_namespace(linux);
        if caller.unprivileged() {
            require_user_namespace(caller, linux, new_user)?;
            refuse_idmapped_mounts(spec)?;
        }
        let (uid_map, gid_map) = match linux.filter(|_| caller.unprivileged() && new_user) {
            Some(linux) => map_writers(caller, linux)?,
            None => (MapWriter::Runtime, MapWriter::Runtime),
        };
        if new_user {
            check_mount_ids(spec)?;
        }
        if gid_map == MapWriter::OwnId {
            check_no_additional_gids(spec)?;
        }
        let mut plan = Plan {
            rootless,
            caller_in_user_ns: !caller.full_id_range,
            unprivileged_caller: caller.unprivileged(),
            device_rules: !caller.unprivileged() && caller.full_id_range,
            uid_map,
            gid_map,
            no_cgroup: None,
        };
        if rootless {
            check_oom_score_adj(spec, own_oom_score_adj(), may_lower_oom_score_adj)?;
            // The systemd driver's path is a unit name, always given (its errors are its own).
            let asked_path = linux
                .and_then(|l| l.cgroups_path().as_deref())
                .filter(|_| cgroup.systemd.is_none());
            let resources = linux.and_then(|l| l.resources().as_ref());
            plan.no_cgroup = refusal(first_unwritable(cgroup), resources, asked_path)?;
        }
        Ok(plan)
    }

    /// An unprivileged runtime must be able to open init's /proc files to write its maps
    /// (newuidmap checks that the caller owns the process): init stays dumpable until it
    /// has its maps, as runc's does.
    pub fn init_dumpable_until_mapped(&self) -> bool {
        self.uid_map != MapWriter::Runtime || self.gid_map != MapWriter::Runtime
    }

    /// Write the maps of init's new user namespace.
    pub fn write_id_maps(&self, pid: i32, linux: &Linux) -> Result<()> {
        let uid = linux.uid_mappings().as_deref().unwrap_or_default();
        let gid = linux.gid_mappings().as_deref().unwrap_or_default();
        write_map(pid, "uid_map", "linux.uidMappings", &self.uid_map, uid)?;
        write_map(pid, "gid_map", "linux.gidMappings", &self.gid_map, gid)
    }
}

/// How an unprivileged caller's maps of a new user namespace are written.
fn map_writers(caller: &Caller, linux: &Linux) -> Result<(MapWriter, MapWriter)> {
    let uid = map_writer(
        "linux.uidMappings",
        caller.euid,
        linux.uid_mappings(),
        "newuidmap",
    )?;
    let gid = map_writer(
        "linux.gidMappings",
        caller.egid,
        linux.gid_mappings(),
        "newgidmap",
    )?;
    Ok((uid, gid))
}

fn new_user_namespace(linux: Option<&Linux>) -> bool {
    linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none())
}

/// An unprivileged caller can do nothing in its own namespaces: the container needs one
/// it owns (new, or joined by path), and a new one needs maps.
fn require_user_namespace(caller: &Caller, linux: Option<&Linux>, new_user: bool) -> Result<()> {
    let joined = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User);
    if !joined {
        bail!(
            InvalidConfig,
            "linux.namespaces: rootless (euid {}): a user namespace is required (patina spec --rootless writes one)",
            caller.euid
        );
    }
    let empty = |m: Option<&Vec<LinuxIdMapping>>| m.is_none_or(|m| m.is_empty());
    if new_user
        && linux
            .is_some_and(|l| empty(l.uid_mappings().as_ref()) || empty(l.gid_mappings().as_ref()))
    {
        bail!(
            InvalidConfig,
            "linux.uidMappings/gidMappings: rootless (euid {}): a new user namespace needs both maps",
            caller.euid
        );
    }
    Ok(())
}

/// An idmapped mount is cloned from the host's mount table (open_tree), which takes
/// CAP_SYS_ADMIN over the host's mount namespace: no unprivileged caller has it.
fn refuse_idmapped_mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if crate::rootfs::idmap::idmap_option(m).is_some() || m.uid_mappings().is_some() {
            bail!(
                Unsupported,
                "mounts[{i}]: an idmapped mount needs CAP_SYS_ADMIN over the host's mount namespace, which a rootless runtime does not have"
            );
        }
    }
    Ok(())
}

/// The caller's own id alone is written directly; anything else goes through the helper.
fn map_writer(
    field: &str,
    own: u32,
    maps: &Option<Vec<LinuxIdMapping>>,
    helper: &str,
) -> Result<MapWriter> {
    let maps = maps.as_deref().unwrap_or_default();
    if let [m] = maps {
        if m.host_id() == own && m.size() == 1 {
            return Ok(MapWriter::OwnId);
        }
    }
    match find_in_path(helper) {
        Some(path) => Ok(MapWriter::Helper(path)),
        None => bail!(
            Unsupported,
            "{field}: mapping more than the caller's own id {own} needs {helper} (Debian package uidmap), which is not installed"
        ),
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn write_map(
    pid: i32,
    file: &str,
    field: &str,
    writer: &MapWriter,
    maps: &[LinuxIdMapping],
) -> Result<()> {
    let text = crate::namespaces::format_id_map(maps);
    match writer {
        MapWriter::Runtime => std::fs::write(format!("/proc/{pid}/{file}"), text)
            .with_context(|| format!("{field}: write {file}")),
        MapWriter::OwnId => {
            if file == "gid_map" {
                // The kernel takes an unprivileged gid map only once setgroups(2) can no
                // longer drop a group the user was denied access through.
                std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
                    .with_context(|| format!("{field}: write \"deny\" to setgroups"))?;
            }
            std::fs::write(format!("/proc/{pid}/{file}"), text)
                .with_context(|| format!("{field}: write {file} (the caller's own id)"))
        }
        MapWriter::Helper(helper) => run_helper(pid, field, helper, maps),
    }
}

fn run_helper(pid: i32, field: &str, helper: &Path, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("{field}: run {}", helper.display()))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
        bail!(
            InvalidConfig,
            "{field}: {} refused the map ({}): {why} (the ranges must be the caller's in /etc/subuid or /etc/subgid)",
            helper.display(),
            out.status
        );
    }
    Ok(())
}

/// With only the caller's gid mapped, setgroups(2) is denied in the namespace for good:
/// the container keeps an empty group list.
fn check_no_additional_gids(spec: &Spec) -> Result<()> {
    let gids = spec
        .process()
        .as_ref()
        .and_then(|p| p.user().additional_gids().clone())
        .unwrap_or_default();
    if !gids.is_empty() {
        bail!(
            InvalidConfig,
            "process.user.additionalGids {gids:?}: rootless with only the caller's own gid mapped, setgroups is denied in the container's user namespace (map a range from /etc/subgid)"
        );
    }
    Ok(())
}

/// `uid=`/`gid=` mount options are read in the container's user namespace: an id it does
/// not map makes the kernel refuse the mount with a bare EINVAL.
fn check_mount_ids(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uids = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gids = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for option in m.options().iter().flatten() {
            let (kind, maps, field) = match option.split_once('=') {
                Some(("uid", v)) => (v, uids, "linux.uidMappings"),
                Some(("gid", v)) => (v, gids, "linux.gidMappings"),
                _ => continue,
            };
            let Ok(id) = kind.parse::<u32>() else {
                continue;
            };
            if !maps
                .iter()
                .any(|m| id >= m.container_id() && id - m.container_id() < m.size())
            {
                bail!(
                    InvalidConfig,
                    "mounts[{i}].options {option:?}: id {id} is not mapped in the container's user namespace ({field})"
                );
            }
        }
    }
    Ok(())
}

fn own_oom_score_adj() -> Option<i32> {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Whether this process may set its oom_score_adj to `value` (below its current one):
/// tried on itself, then put back (raising is always allowed). The kernel's floor is not
/// the current value but the lowest one a privileged writer set (oom_score_adj_min, not
/// shown in /proc): containerd raises its shims to its own +1 without CAP_SYS_RESOURCE
/// under rootless docker, and docker's configs ask for 0 again.
fn may_lower_oom_score_adj(value: i32, current: i32) -> bool {
    let path = "/proc/self/oom_score_adj";
    if std::fs::write(path, value.to_string()).is_err() {
        return false;
    }
    let _ = std::fs::write(path, current.to_string());
    true
}

/// Lowering oom_score_adj below the kernel's floor needs CAP_SYS_RESOURCE over the host: a
/// rootless container may keep or raise the caller's value, and lower it only as far as
/// the caller itself may (`may_lower`).
fn check_oom_score_adj(
    spec: &Spec,
    current: Option<i32>,
    may_lower: impl Fn(i32, i32) -> bool,
) -> Result<()> {
    let asked = spec.process().as_ref().and_then(|p| p.oom_score_adj());
    if let (Some(asked), Some(current)) = (asked, current) {
        if asked < current && !may_lower(asked, current) {
            bail!(
                InvalidConfig,
                "process.oomScoreAdj {asked}: below the caller's {current} and below what a rootless runtime may set without CAP_SYS_RESOURCE"
            );
        }
    }
    Ok(())
}

/// The `linux.resources` keys that set a limit (device rules are not limits: without a
/// cgroup the host's own permissions on the device nodes decide).
pub fn asked_limits(resources: Option<&LinuxResources>) -> Vec<String> {
    let Some(r) = resources else {
        return Vec::new();
    };
    let value = serde_json::to_value(r).unwrap_or_default();
    let Some(fields) = value.as_object() else {
        return Vec::new();
    };
    fields
        .iter()
        .filter(|(k, v)| k.as_str() != "devices" && !is_empty_value(v))
        .map(|(k, _)| k.clone())
        .collect()
}

fn is_empty_value(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(o) => o.values().all(is_empty_value),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A rootless container uses its cgroup only where the caller may make it and move
/// processes into it (a delegated subtree). Without one it runs without a cgroup unless
/// it asks for limits, which then cannot be applied: `Some(why)` means "no cgroup".
/// Without a cgroup it may write, a rootless container runs in none (the reason is kept for
/// the commands that need one), unless the config asks for limits or names a cgroupsPath:
/// that cgroup "MUST" be where the container goes (config-linux.md), so it is refused, as
/// runc refuses it (it ignores permission errors only on its default path).
fn refusal(
    blocked: Option<PathBuf>,
    resources: Option<&LinuxResources>,
    asked_path: Option<&Path>,
) -> Result<Option<String>> {
    let Some(blocked) = blocked else {
        return Ok(None);
    };
    let why = format!(
        "rootless and {:?} is not writable (no delegated cgroup)",
        blocked.display()
    );
    let limits = asked_limits(resources);
    if !limits.is_empty() {
        // runc's words for it too ("rootless needs no limits + no cgrouppath ...").
        bail!(
            Unsupported,
            "linux.resources.{}: cannot be applied: {why}: rootless needs no limits + no cgrouppath when no permission is granted for cgroups; delegate a cgroup to the user (docs/rootless.md) or drop the limits",
            limits.join(", linux.resources.")
        );
    }
    if let Some(path) = asked_path {
        // runc's words: "unable to apply cgroup configuration: ... permission denied".
        bail!(
            Unsupported,
            "linux.cgroupsPath {:?}: unable to apply cgroup configuration: {why} (permission denied); delegate that cgroup to the user (docs/rootless.md) or leave cgroupsPath out",
            path.display()
        );
    }
    Ok(Some(why))
}

/// The first place the container's cgroup cannot be made or joined by this caller: the
/// nearest existing ancestor of each missing directory (mkdir there), and each existing
/// directory's cgroup.procs (joining it).
pub fn first_unwritable(cgroup: &Cgroup) -> Option<PathBuf> {
    use nix::unistd::{access, AccessFlags};
    first_blocked(cgroup, |p| access(p, AccessFlags::W_OK).is_ok())
}

fn first_blocked(cgroup: &Cgroup, writable: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    for dir in cgroup.dirs() {
        let check = if dir.exists() {
            dir.join("cgroup.procs")
        } else {
            let mut cur = dir;
            while let Some(parent) = cur.parent().filter(|_| !cur.exists()) {
                cur = parent;
            }
            cur.to_path_buf()
        };
        if !writable(&check) {
            return Some(check);
        }
    }
    None
}

/// A missing cgroup, said the same way by every operation that needs one.
pub fn no_cgroup_error(id: &str, why: Option<&str>) -> Error {
    Error::new(
        Kind::Unsupported,
        match why {
            Some(why) => format!("container {id:?} has no cgroup: {why}"),
            None => format!("container {id:?} has no cgroup (created by an older patina)"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const USER: Caller = Caller {
        euid: 1000,
        egid: 1000,
        full_id_range: true,
    };
    const ROOT: Caller = Caller {
        euid: 0,
        egid: 0,
        full_id_range: true,
    };
    const PODMAN_ROOT: Caller = Caller {
        euid: 0,
        egid: 0,
        full_id_range: false,
    };

    #[test]
    fn detection_follows_runc_auto() {
        assert!(maps_full_range("         0          0 4294967295\n"));
        assert!(!maps_full_range("0 1000 1\n1 100000 65536\n"));
        assert!(USER.rootless(Mode::Auto) && !ROOT.rootless(Mode::Auto));
        // uid 0 of a partial namespace (rootless podman) is rootless, yet privileged enough
        // to write its children's maps itself.
        assert!(PODMAN_ROOT.rootless(Mode::Auto) && !PODMAN_ROOT.unprivileged());
        assert!(ROOT.rootless(Mode::On) && !USER.rootless(Mode::Off));
        assert_eq!(Mode::parse(Some("true")).unwrap(), Mode::On);
        assert!(Mode::parse(Some("yes"))
            .unwrap_err()
            .to_string()
            .contains("--rootless"));
    }

    #[test]
    fn state_root_follows_xdg_runtime_dir() {
        assert_eq!(
            default_state_root(&ROOT, Some("/run/user/0"), Some(0)),
            Path::new("/run/patina")
        );
        assert_eq!(
            default_state_root(&USER, Some("/run/user/1000"), Some(1000)),
            Path::new("/run/user/1000/patina")
        );
        assert_eq!(
            default_state_root(&USER, None, None),
            Path::new("/run/user/1000/patina")
        );
        // Rootless podman's runtime: uid 0 of its namespace, which owns the user's dir.
        assert_eq!(
            default_state_root(&PODMAN_ROOT, Some("/run/user/1000"), Some(0)),
            Path::new("/run/user/1000/patina")
        );
        assert_eq!(
            default_state_root(&PODMAN_ROOT, Some("/run/user/1000"), Some(65534)),
            Path::new("/run/patina")
        );
    }

    #[test]
    fn host_uid_through_the_map() {
        let podman = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(outer_id(podman, 0), Some(1000));
        assert_eq!(outer_id(podman, 1), Some(100000));
        assert_eq!(outer_id(podman, 65536), Some(165535));
        assert_eq!(outer_id(podman, 65537), None);
        assert_eq!(outer_id("0 0 4294967295\n", 1000), Some(1000));
    }

    const USERNS_OWN: &str = r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"},{"type":"mount"}],
        "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
        "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}"#;

    #[test]
    fn own_id_is_direct_ranges_need_the_helper() {
        let cg = Cgroup::default();
        let plan = Plan::new(&USER, Mode::Auto, &spec(USERNS_OWN), &cg).unwrap();
        assert_eq!(
            (plan.uid_map, plan.gid_map),
            (MapWriter::OwnId, MapWriter::OwnId)
        );
        let ranges = USERNS_OWN.replace(
            r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#,
            r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        );
        let plan = Plan::new(&USER, Mode::Auto, &spec(&ranges), &cg).unwrap();
        assert!(matches!(plan.uid_map, MapWriter::Helper(ref p) if p.ends_with("newuidmap")));
        assert!(plan.init_dumpable_until_mapped());
        let plan = Plan::new(&ROOT, Mode::Auto, &spec(&ranges), &cg).unwrap();
        assert_eq!(plan.uid_map, MapWriter::Runtime);
        assert!(!plan.init_dumpable_until_mapped() && !plan.rootless);
        // --rootless true as root: rootless behaviour, but the device rules stay.
        let plan = Plan::new(&ROOT, Mode::On, &spec(&ranges), &cg).unwrap();
        assert!(plan.rootless && plan.device_rules);
        let plan = Plan::new(&USER, Mode::Auto, &spec(&ranges), &cg).unwrap();
        assert!(!plan.device_rules);
    }

    #[test]
    fn unprivileged_needs_a_user_namespace_with_maps() {
        let cg = Cgroup::default();
        let none = r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"mount"}]}}"#;
        let err = Plan::new(&USER, Mode::Auto, &spec(none), &cg)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux.namespaces") && err.contains("user namespace"),
            "{err}"
        );
        // Rootless podman's configs have no user namespace of their own: fine for uid 0.
        Plan::new(&PODMAN_ROOT, Mode::Auto, &spec(none), &cg).unwrap();
        let no_maps = r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}]}}"#;
        let err = Plan::new(&USER, Mode::Auto, &spec(no_maps), &cg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.uidMappings"), "{err}");
    }

    #[test]
    fn own_gid_alone_means_no_additional_groups() {
        let with_groups = USERNS_OWN.replace(
            r#""linux""#,
            r#""process":{"cwd":"/","user":{"uid":0,"gid":0,"additionalGids":[5]}},"linux""#,
        );
        let err = Plan::new(&USER, Mode::Auto, &spec(&with_groups), &Cgroup::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.user.additionalGids [5]"), "{err}");
    }

    #[test]
    fn idmapped_mounts_are_refused_to_a_user() {
        let idmapped = USERNS_OWN.replace(
            r#""linux""#,
            r#""mounts":[{"destination":"/x","type":"bind","source":"/tmp","options":["bind","idmap"]}],"linux""#,
        );
        let err = Plan::new(&USER, Mode::Auto, &spec(&idmapped), &Cgroup::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mounts[0]") && err.contains("idmapped"),
            "{err}"
        );
        Plan::new(
            &PODMAN_ROOT,
            Mode::Auto,
            &spec(&idmapped),
            &Cgroup::default(),
        )
        .unwrap();
    }

    #[test]
    fn mount_ids_must_be_mapped() {
        let with_mount = |opt: &str| {
            spec(&USERNS_OWN.replace(
                r#""linux""#,
                &format!(r#""mounts":[{{"destination":"/x","type":"tmpfs","source":"t","options":["{opt}"]}}],"linux""#),
            ))
        };
        check_mount_ids(&with_mount("uid=0")).unwrap();
        let err = check_mount_ids(&with_mount("gid=5"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mounts[0].options \"gid=5\"") && err.contains("gidMappings"),
            "{err}"
        );
    }

    #[test]
    fn oom_score_adj_only_at_or_above_current() {
        let s = |adj: i32| {
            spec(&format!(
                r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","user":{{"uid":0,"gid":0}},"oomScoreAdj":{adj}}}}}"#
            ))
        };
        let never = |_, _| false;
        check_oom_score_adj(&s(100), Some(100), never).unwrap();
        check_oom_score_adj(&s(500), Some(100), never).unwrap();
        // Below the current value but not below the kernel's floor (rootless docker's
        // shim at 1 asking for 0).
        check_oom_score_adj(&s(0), Some(1), |v, c| (v, c) == (0, 1)).unwrap();
        let err = check_oom_score_adj(&s(-998), Some(0), never)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("process.oomScoreAdj -998") && err.contains("below"),
            "{err}"
        );
    }

    #[test]
    fn limits_are_what_is_set_besides_devices() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":1048576},"cpu":{}}"#,
        )
        .unwrap();
        assert_eq!(asked_limits(Some(&r)), vec!["memory".to_owned()]);
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert!(asked_limits(Some(&r)).is_empty());
    }

    #[test]
    fn unwritable_cgroup_refuses_limits_and_drops_otherwise() {
        let blocked = || Some(PathBuf::from("/sys/fs/cgroup/memory/x"));
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":10}}"#).unwrap();
        let err = refusal(blocked(), Some(&r), None).unwrap_err().to_string();
        assert!(
            err.contains("linux.resources.pids") && err.contains("/sys/fs/cgroup/memory/x"),
            "{err}"
        );
        let why = refusal(blocked(), None, None).unwrap().unwrap();
        assert!(why.contains("no delegated cgroup"), "{why}");
        assert_eq!(refusal(None, Some(&r), None).unwrap(), None);
        // A cgroupsPath of the config's own is where the container must go: refused.
        let err = refusal(blocked(), None, Some(Path::new("/pod/c1")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux.cgroupsPath \"/pod/c1\"") && err.contains("permission denied"),
            "{err}"
        );
        assert_eq!(
            refusal(None, None, Some(Path::new("/pod/c1"))).unwrap(),
            None
        );
    }

    #[test]
    fn unwritable_is_the_nearest_existing_ancestor() {
        let cg = Cgroup {
            unified: Some(PathBuf::from("/proc/self/patina-no/such")),
            ..Cgroup::default()
        };
        let seen = std::cell::RefCell::new(Vec::new());
        let blocked = first_blocked(&cg, |p| {
            seen.borrow_mut().push(p.to_path_buf());
            false
        });
        assert_eq!(blocked, Some(PathBuf::from("/proc/self")));
        let cg = Cgroup {
            unified: Some(PathBuf::from("/proc/self")),
            ..Cgroup::default()
        };
        // An existing directory is joined: its cgroup.procs is what must be writable.
        assert_eq!(
            first_blocked(&cg, |_| false),
            Some(PathBuf::from("/proc/self/cgroup.procs"))
        );
        assert_eq!(first_blocked(&cg, |_| true), None);
    }
}
