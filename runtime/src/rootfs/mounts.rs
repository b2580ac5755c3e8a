//! `mounts` of config.md: option strings to mount(2) flags and data, and applying each
//! mount inside the rootfs in the order given.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::paths::{fd_path, mkdir_all_in_root, touch_in_root};
use super::syscalls::Syscalls;
use crate::bail;
use crate::error::{Context, Error, Result};

/// The option names patina gives a meaning to (others go to the filesystem as data);
/// `features` reports them.
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ridmap",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// One entry of `mounts[].options`, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOption {
    /// Sets (true) or clears (false) a mount flag.
    Flag(bool, MsFlags),
    /// A propagation change, applied with its own mount(2) call after the mount.
    Propagation(MsFlags),
    /// `bind` or `rbind`.
    Bind { recursive: bool },
    /// `idmap` or `ridmap` (every mount of an `rbind`): idmapped, with the entry's
    /// mappings or else the container's (idmap.rs).
    Idmap { recursive: bool },
    /// Anything else goes to the filesystem as data (`size=64k`, `mode=755`, `newinstance`).
    Data(String),
}

impl MountOption {
    pub fn parse(option: &str) -> Result<MountOption> {
        use MountOption::*;
        let flag = |set, f| Ok(Flag(set, f));
        match option {
            "" => bail!("empty mount option"),
            "defaults" => flag(false, MsFlags::empty()),
            "ro" => flag(true, MsFlags::MS_RDONLY),
            "rw" => flag(false, MsFlags::MS_RDONLY),
            "nosuid" => flag(true, MsFlags::MS_NOSUID),
            "suid" => flag(false, MsFlags::MS_NOSUID),
            "nodev" => flag(true, MsFlags::MS_NODEV),
            "dev" => flag(false, MsFlags::MS_NODEV),
            "noexec" => flag(true, MsFlags::MS_NOEXEC),
            "exec" => flag(false, MsFlags::MS_NOEXEC),
            "sync" => flag(true, MsFlags::MS_SYNCHRONOUS),
            "async" => flag(false, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => flag(true, MsFlags::MS_DIRSYNC),
            "mand" => flag(true, MsFlags::MS_MANDLOCK),
            "nomand" => flag(false, MsFlags::MS_MANDLOCK),
            "noatime" => flag(true, MsFlags::MS_NOATIME),
            "atime" => flag(false, MsFlags::MS_NOATIME),
            "nodiratime" => flag(true, MsFlags::MS_NODIRATIME),
            "diratime" => flag(false, MsFlags::MS_NODIRATIME),
            "relatime" => flag(true, MsFlags::MS_RELATIME),
            "norelatime" => flag(false, MsFlags::MS_RELATIME),
            "strictatime" => flag(true, MsFlags::MS_STRICTATIME),
            "nostrictatime" => flag(false, MsFlags::MS_STRICTATIME),
            "silent" => flag(true, MsFlags::MS_SILENT),
            "loud" => flag(false, MsFlags::MS_SILENT),
            "remount" => flag(true, MsFlags::MS_REMOUNT),
            "bind" => Ok(Bind { recursive: false }),
            "rbind" => Ok(Bind { recursive: true }),
            "private" => Ok(Propagation(MsFlags::MS_PRIVATE)),
            "rprivate" => Ok(Propagation(MsFlags::MS_PRIVATE | MsFlags::MS_REC)),
            "shared" => Ok(Propagation(MsFlags::MS_SHARED)),
            "rshared" => Ok(Propagation(MsFlags::MS_SHARED | MsFlags::MS_REC)),
            "slave" => Ok(Propagation(MsFlags::MS_SLAVE)),
            "rslave" => Ok(Propagation(MsFlags::MS_SLAVE | MsFlags::MS_REC)),
            "unbindable" => Ok(Propagation(MsFlags::MS_UNBINDABLE)),
            "runbindable" => Ok(Propagation(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)),
            "idmap" => Ok(Idmap { recursive: false }),
            "ridmap" => Ok(Idmap { recursive: true }),
            "tmpcopyup" => bail!("mount option \"tmpcopyup\": not supported by patina yet"),
            other => Ok(Data(other.to_owned())),
        }
    }
}

/// Everything mount(2) needs for one config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: String,
    pub bind: Option<bool>,
}

impl MountPlan {
    pub fn from_options(options: &[String]) -> Result<MountPlan> {
        let mut plan = MountPlan {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: None,
        };
        for option in options {
            match MountOption::parse(option)? {
                MountOption::Flag(true, f) => plan.flags |= f,
                MountOption::Flag(false, f) => plan.flags &= !f,
                MountOption::Propagation(p) => plan.propagation.push(p),
                MountOption::Bind { recursive } => {
                    plan.bind = Some(recursive || plan.bind == Some(true))
                }
                // Made by the runtime before the clone (idmap.rs), not by mount(2).
                MountOption::Idmap { .. } => {}
                MountOption::Data(d) => {
                    if !plan.data.is_empty() {
                        plan.data.push(',');
                    }
                    plan.data.push_str(&d);
                }
            }
        }
        Ok(plan)
    }

    /// MS_BIND, and MS_REC for `rbind`.
    fn bind_flags(&self) -> MsFlags {
        match self.bind {
            Some(true) => MsFlags::MS_BIND | MsFlags::MS_REC,
            _ => MsFlags::MS_BIND,
        }
    }

    /// Flags a bind mount can only take in a second, remounting call.
    fn bind_remount_flags(&self) -> MsFlags {
        self.flags
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME)
    }
}

/// What mounts need to know about the container beyond the entry itself.
#[derive(Clone, Copy)]
pub struct MountContext<'a> {
    /// The mount table's system calls (the kernel, or a test's fake).
    pub sys: &'a dyn Syscalls,
    /// Relative bind sources are relative to the bundle.
    pub bundle: &'a Path,
    /// Whether init is in a cgroup namespace of its own (decides how `cgroup` mounts).
    pub own_cgroupns: bool,
    /// The container's cgroup, bind-mounted for `cgroup` mounts without a cgroup namespace.
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// Idmapped trees the runtime made, by entry index (idmap.rs).
    pub idmapped: &'a [Option<std::os::fd::OwnedFd>],
}

/// Mount one `mounts[]` entry inside the rootfs.
pub fn apply(root: BorrowedFd<'_>, ctx: &MountContext<'_>, index: usize, m: &Mount) -> Result<()> {
    let bundle = ctx.bundle;
    let dest = m.destination();
    let options = m.options().as_deref().unwrap_or_default();
    let plan = MountPlan::from_options(options)?;
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if plan.bind.is_some() { "bind" } else { "" });
    let describe = || {
        let source = m
            .source()
            .as_deref()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        format!(
            "mounts[{index}]: mount {source:?} ({typ}) on {:?}",
            dest.display()
        )
    };
    if matches!(typ, "proc" | "sysfs") && super::paths::through_symlink(root, dest) {
        // As runc: procfs and sysfs only on an ordinary directory, never where an image
        // symlink (`/proc -> /`) would put them (over the root, or a fake /proc).
        bail!(
            "{}: {typ} must be mounted on an ordinary directory, not through a symlink",
            describe()
        );
    }
    let idmapped = ctx.idmapped.get(index).and_then(Option::as_ref);
    let result = if let Some(tree) = idmapped {
        let source = bind_source(bundle, m)?;
        mount_idmapped(ctx.sys, root, tree, &source, dest, &plan)
    } else if plan.bind.is_some() || typ == "bind" {
        let source = bind_source(bundle, m)?;
        mount_bind(ctx.sys, root, &source, dest, &plan)
    } else if typ == "cgroup" {
        mount_cgroup(root, dest, &plan, ctx)
    } else {
        mount_fs(ctx.sys, root, m, typ, dest, &plan)
    };
    result.with_context(describe)
}

/// Relative bind sources are relative to the bundle (config.md "source").
fn bind_source(bundle: &Path, m: &Mount) -> Result<PathBuf> {
    let Some(source) = m.source() else {
        bail!(
            "bind mount onto {:?} has no source",
            m.destination().display()
        );
    };
    Ok(if source.is_absolute() {
        source.clone()
    } else {
        bundle.join(source)
    })
}

fn mount_bind(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    source: &Path,
    dest: &Path,
    plan: &MountPlan,
) -> Result<()> {
    let target = bind_target(root, source, dest)?;
    sys.mount(
        Some(source),
        &fd_path(&target),
        None,
        plan.bind_flags(),
        None,
    )
    .context("bind")?;
    finish_bind(sys, root, dest, plan)
}

/// An idmapped bind: the runtime made the tree; it goes where a bind would.
fn mount_idmapped(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    tree: &std::os::fd::OwnedFd,
    source: &Path,
    dest: &Path,
    plan: &MountPlan,
) -> Result<()> {
    use std::os::fd::AsFd;
    let target = bind_target(root, source, dest)?;
    sys.attach_tree(tree.as_fd(), target.as_fd())
        .context("attach the idmapped mount (move_mount)")?;
    finish_bind(sys, root, dest, plan)
}

/// The directory, or empty file, a bind of `source` goes onto.
fn bind_target(root: BorrowedFd<'_>, source: &Path, dest: &Path) -> Result<std::os::fd::OwnedFd> {
    let meta =
        std::fs::metadata(source).with_context(|| format!("stat source {:?}", source.display()))?;
    if meta.is_dir() {
        mkdir_all_in_root(root, dest, 0o755)
    } else {
        touch_in_root(root, dest)
    }
}

/// The flags a bind can only take in a second call, then the propagation.
fn finish_bind(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    dest: &Path,
    plan: &MountPlan,
) -> Result<()> {
    // The new mount sits on top of the O_PATH handle: reopen to reach it.
    let target = reopen(root, dest)?;
    let target_path = fd_path(&target);
    let extra = plan.bind_remount_flags();
    if !extra.is_empty() {
        let recursive = plan.bind_flags() & MsFlags::MS_REC;
        remount_bind(sys, &target_path, extra | recursive)?;
    }
    apply_propagation(sys, &target_path, &plan.propagation)
}

/// Remount a bind mount with new flags, keeping the flags the kernel locks in place
/// (a mount made in a less privileged user namespace cannot drop nosuid/nodev/noexec).
pub fn remount_bind(sys: &dyn Syscalls, target: &Path, flags: MsFlags) -> Result<()> {
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match sys.mount(None, target, None, remount | flags, None) {
        Err(nix::errno::Errno::EPERM) => {
            let locked = locked_flags(sys, target)?;
            sys.mount(None, target, None, remount | flags | locked, None)
                .context("remount bind with locked flags")
        }
        other => other.context("remount bind"),
    }
}

fn locked_flags(sys: &dyn Syscalls, target: &Path) -> Result<MsFlags> {
    use nix::sys::statvfs::FsFlags;
    let st_flags = sys.statvfs_flags(target).context("statvfs")?;
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st_flag, _)| st_flags.contains(*st_flag))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

fn mount_fs(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    m: &Mount,
    typ: &str,
    dest: &Path,
    plan: &MountPlan,
) -> Result<()> {
    if typ.is_empty() {
        bail!("no type given (and not a bind mount)");
    }
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    let source = m
        .source()
        .as_deref()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(typ));
    let data = (!plan.data.is_empty()).then_some(plan.data.as_str());
    sys.mount(
        Some(&source),
        &fd_path(&target),
        Some(typ),
        plan.flags,
        data,
    )
    .context("mount")?;
    if !plan.propagation.is_empty() {
        let target = reopen(root, dest)?;
        apply_propagation(sys, &fd_path(&target), &plan.propagation)?;
    }
    Ok(())
}

fn reopen(root: BorrowedFd<'_>, dest: &Path) -> Result<std::os::fd::OwnedFd> {
    super::paths::open_in_root(root, dest, nix::fcntl::OFlag::empty())
        .map_err(|e| Error::os(e, format!("reopen {:?}", dest.display())))
}

pub fn apply_propagation(sys: &dyn Syscalls, target: &Path, propagation: &[MsFlags]) -> Result<()> {
    for &flags in propagation {
        sys.mount(None, target, None, flags, None)
            .with_context(|| format!("set propagation {flags:?}"))?;
    }
    Ok(())
}

/// `type: cgroup`: a tmpfs with one mount per hierarchy the process belongs to, as
/// runc lays it out, or a single mount on a pure v2 host. In a cgroup namespace of its
/// own, fresh cgroup mounts show the container's cgroup as their root. Without one, a
/// fresh mount would show the host's whole tree (and the root's limits, not the
/// container's): there each hierarchy is the container's own cgroup directory,
/// bind-mounted, as runc does.
fn mount_cgroup(
    root: BorrowedFd<'_>,
    dest: &Path,
    plan: &MountPlan,
    ctx: &MountContext<'_>,
) -> Result<()> {
    let sys = ctx.sys;
    let hierarchies = own_hierarchies()?;
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    let flags = plan.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let pure_v2 = hierarchies.iter().all(|h| h.is_empty());
    if !pure_v2 {
        sys.mount(
            Some(Path::new("tmpfs")),
            &fd_path(&target),
            Some("tmpfs"),
            (flags & !MsFlags::MS_RDONLY) | MsFlags::MS_RELATIME,
            Some("mode=755"),
        )
        .context("mount tmpfs for cgroup hierarchies")?;
    }
    // Without a cgroup namespace a fresh mount would show the host's whole tree.
    let own_dirs = ctx.cgroup.filter(|_| !ctx.own_cgroupns);
    for controllers in &hierarchies {
        let (name, fstype, data) = if controllers.is_empty() {
            ("unified".to_owned(), "cgroup2", String::new())
        } else if let Some(name) = controllers.strip_prefix("name=") {
            (name.to_owned(), "cgroup", format!("none,name={name}"))
        } else {
            (controllers.clone(), "cgroup", controllers.clone())
        };
        let sub = if pure_v2 {
            dest.to_path_buf()
        } else {
            dest.join(&name)
        };
        let target = mkdir_all_in_root(root, &sub, 0o755)?;
        // The container's directory in this hierarchy: co-mounted controllers share one.
        let own_dir = own_dirs.and_then(|cg| match controllers.split(',').next() {
            Some("") | None => cg.unified.as_deref(),
            Some(first) => cg.v1_dir(first),
        });
        match own_dir {
            Some(dir) => {
                sys.mount(Some(dir), &fd_path(&target), None, MsFlags::MS_BIND, None)
                    .with_context(|| format!("bind the container's cgroup {:?}", dir.display()))?;
                let target = reopen(root, &sub)?;
                remount_bind(sys, &fd_path(&target), flags)?;
            }
            None => {
                let data = (!data.is_empty()).then_some(data.as_str());
                let source = Some(Path::new("cgroup"));
                sys.mount(source, &fd_path(&target), Some(fstype), flags, data)
                    .with_context(|| format!("mount cgroup hierarchy {name:?}"))?;
            }
        }
    }
    if !pure_v2 && plan.flags.contains(MsFlags::MS_RDONLY) {
        let target = reopen(root, dest)?;
        remount_bind(sys, &fd_path(&target), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

/// Controllers of each hierarchy in /proc/self/cgroup, "" standing for the unified
/// (cgroup2) one; on a hybrid host it is listed only when mounted at .../unified.
fn own_hierarchies() -> Result<Vec<String>> {
    let raw = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let mut v1: Vec<String> = raw
        .lines()
        .filter_map(|line| line.split(':').nth(1))
        .filter(|controllers| !controllers.is_empty())
        .map(str::to_owned)
        .collect();
    if v1.is_empty() {
        return Ok(vec![String::new()]);
    }
    if Path::new("/sys/fs/cgroup/unified").exists() {
        v1.push(String::new());
    }
    Ok(v1)
}

/// The flags to make a mount point's propagation as `rootfsPropagation` says.
pub fn root_propagation(value: Option<&str>) -> Result<MsFlags> {
    Ok(match value {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => match MountOption::parse(p)? {
            MountOption::Propagation(flags) => flags | MsFlags::MS_REC,
            _ => bail!("linux.rootfsPropagation {p:?}: not a propagation mode"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(options: &[&str]) -> MountPlan {
        MountPlan::from_options(&options.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let p = plan(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(p.bind, None);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let p = plan(&["ro", "rw", "noexec"]);
        assert_eq!(p.flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn rbind_is_recursive_bind() {
        assert_eq!(plan(&["rbind", "ro"]).bind, Some(true));
        assert_eq!(plan(&["bind"]).bind, Some(false));
        assert_eq!(
            plan(&["bind", "ro", "nodev"]).bind_remount_flags(),
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV
        );
    }

    #[test]
    fn devpts_options_reach_the_filesystem() {
        let p = plan(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(p.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn every_known_option_has_a_meaning() {
        for option in KNOWN_OPTIONS {
            let parsed = MountOption::parse(option).unwrap();
            assert!(
                !matches!(parsed, MountOption::Data(_)),
                "{option} falls through to data"
            );
        }
    }

    #[test]
    fn root_propagation_defaults_to_rslave() {
        assert_eq!(
            root_propagation(None).unwrap(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        );
        assert_eq!(
            root_propagation(Some("shared")).unwrap(),
            MsFlags::MS_SHARED | MsFlags::MS_REC
        );
        assert!(root_propagation(Some("ro")).is_err());
    }
}
