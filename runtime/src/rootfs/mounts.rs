//! `mounts` of config.md: applying each entry inside the rootfs in the order given
//! (options.rs turns its options into flags, attributes and data).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

/// The shim splits containerd's rootfs mount options with the same parser.
pub use super::options::MountPlan;
use super::paths::{fd_path, mkdir_all_in_root, touch_in_root};
use super::syscalls::Syscalls;
use crate::bail;
use crate::error::{Context, Error, Result};

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
    pub idmapped: &'a [Option<OwnedFd>],
    /// Bind sources the runtime opened in init's mount namespace, by entry index
    /// (process/mount_sources.rs): bound from /proc/self/fd/N, so init need not reach
    /// them by their path as the container's user.
    pub bind_sources: &'a [Option<OwnedFd>],
}

/// Mount one `mounts[]` entry inside the rootfs. Every error names the entry (index,
/// source, type, destination) and the step and OS error that failed.
pub fn apply(root: BorrowedFd<'_>, ctx: &MountContext<'_>, index: usize, m: &Mount) -> Result<()> {
    let plan = MountPlan::for_entry(index, m)?;
    let dest = m.destination();
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
            InvalidConfig,
            "{}: {typ} must be mounted on an ordinary directory, not through a symlink",
            describe()
        );
    }
    mount_entry(root, ctx, index, m, typ, &plan).with_context(describe)
}

fn mount_entry(
    root: BorrowedFd<'_>,
    ctx: &MountContext<'_>,
    index: usize,
    m: &Mount,
    typ: &str,
    plan: &MountPlan,
) -> Result<()> {
    let dest = m.destination();
    let idmapped = ctx.idmapped.get(index).and_then(Option::as_ref);
    let target = if let Some(tree) = idmapped {
        let source = bind_source(ctx.bundle, m)?;
        mount_idmapped(ctx.sys, root, tree, &source, dest, plan)?
    } else if plan.is_bind(m) {
        let source = match ctx.bind_sources.get(index).and_then(Option::as_ref) {
            Some(opened) => fd_path(opened),
            None => bind_source(ctx.bundle, m)?,
        };
        mount_bind(ctx.sys, root, &source, dest, plan)?
    } else if typ == "cgroup" {
        mount_cgroup(root, dest, plan, ctx)?
    } else {
        mount_fs(ctx.sys, root, m, typ, dest, plan)?
    };
    if !plan.recursive.is_empty() {
        let mounted = reopen_mount(ctx.sys, root, dest, &target)?;
        ctx.sys
            .set_recursive_attr(mounted.as_fd(), plan.recursive)
            .context("mount_setattr for the r* options")?;
    }
    Ok(())
}

/// Relative bind sources are relative to the bundle (config.md "source").
fn bind_source(bundle: &Path, m: &Mount) -> Result<PathBuf> {
    let Some(source) = m.source() else {
        bail!(
            InvalidConfig,
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
) -> Result<OwnedFd> {
    let target = bind_target(root, source, dest)?;
    sys.mount(
        Some(source),
        &fd_path(&target),
        None,
        plan.bind_flags(),
        None,
    )
    .context("bind")?;
    finish_bind(sys, root, dest, &target, plan)?;
    Ok(target)
}

/// An idmapped bind: the runtime made the tree; it goes where a bind would.
fn mount_idmapped(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    tree: &OwnedFd,
    source: &Path,
    dest: &Path,
    plan: &MountPlan,
) -> Result<OwnedFd> {
    let target = bind_target(root, source, dest)?;
    sys.attach_tree(tree.as_fd(), target.as_fd())
        .context("attach the idmapped mount (move_mount)")?;
    finish_bind(sys, root, dest, &target, plan)?;
    Ok(target)
}

/// The directory, or empty file, a bind of `source` goes onto.
fn bind_target(root: BorrowedFd<'_>, source: &Path, dest: &Path) -> Result<OwnedFd> {
    let meta =
        std::fs::metadata(source).with_context(|| format!("stat source {:?}", source.display()))?;
    let target = if meta.is_dir() {
        mkdir_all_in_root(root, dest, 0o755)?
    } else {
        touch_in_root(root, dest)?
    };
    check_target(root, &target, "bind", dest)?;
    Ok(target)
}

/// Kernel filesystems that cannot be a root filesystem: on `/` one would replace the
/// whole rootfs, and /dev, the program and every later mount would then fail on it,
/// far from the cause.
const KERNEL_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "binfmt_misc",
];

/// The files of /proc that lxcfs emulates: the only places inside procfs a mount may
/// cover (runc's list). Covering anything else there hides what the kernel says (a
/// fake /proc/self/attr would swallow the LSM label written at exec, CVE-2019-16884).
const LXCFS_PROC_FILES: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// What the mount may not go onto, checked on the handle it will be mounted on: the
/// rootfs itself for a kernel filesystem, and anything inside a procfs (wherever the
/// destination's symlinks led) but the lxcfs files and, for `proc`, /proc itself.
fn check_target(root: BorrowedFd<'_>, target: &OwnedFd, typ: &str, dest: &Path) -> Result<()> {
    use nix::sys::stat::fstat;
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
    if KERNEL_FILESYSTEMS.contains(&typ) {
        let (r, t) = (
            fstat(root).context("fstat")?,
            fstat(target).context("fstat")?,
        );
        if (r.st_dev, r.st_ino) == (t.st_dev, t.st_ino) {
            bail!(
                InvalidConfig,
                "{typ} on the rootfs itself would replace the whole of it"
            );
        }
    }
    let on_procfs = fstatfs(target).context("fstatfs")?.filesystem_type() == PROC_SUPER_MAGIC;
    let lexical = lexical_path(dest);
    let allowed = LXCFS_PROC_FILES.iter().any(|f| Path::new(f) == lexical)
        || (typ == "proc" && lexical == Path::new("/proc"));
    if on_procfs && !allowed {
        bail!(InvalidConfig, "the destination is inside /proc, where only the files lxcfs emulates may be mounted over");
    }
    Ok(())
}

/// `dest` with `.` and `..` folded away, without looking at the filesystem.
fn lexical_path(dest: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in dest.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The flags a bind can only take in a second call, then the propagation.
fn finish_bind(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    dest: &Path,
    target: &OwnedFd,
    plan: &MountPlan,
) -> Result<()> {
    let extra = plan.bind_remount_flags();
    if extra.is_empty() && plan.propagation.is_empty() {
        return Ok(());
    }
    let mounted = reopen_mount(sys, root, dest, target)?;
    let target_path = fd_path(&mounted);
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

/// Make the mount at `target` read-only, keeping its other flags (nosuid, noexec...).
pub fn remount_read_only(sys: &dyn Syscalls, target: &Path) -> Result<()> {
    let flags = locked_flags(sys, target)? | MsFlags::MS_RDONLY;
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    sys.mount(None, target, None, remount | flags, None)
        .context("remount read-only")
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
) -> Result<OwnedFd> {
    if typ.is_empty() {
        bail!(InvalidConfig, "no type given (and not a bind mount)");
    }
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    check_target(root, &target, typ, dest)?;
    let source = m
        .source()
        .as_deref()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(typ));
    let data = (!plan.data.is_empty()).then_some(plan.data.as_str());
    let mounted = sys.mount(
        Some(&source),
        &fd_path(&target),
        Some(typ),
        plan.flags,
        data,
    );
    if mounted == Err(nix::errno::Errno::EPERM) && typ == "sysfs" {
        bind_host_sysfs(sys, root, dest, &target, plan)?;
        return Ok(target);
    }
    mounted.with_context(|| match data {
        Some(data) => format!("mount with data {data:?}"),
        None => "mount".to_owned(),
    })?;
    if !plan.propagation.is_empty() {
        let mounted = reopen_mount(sys, root, dest, &target)?;
        apply_propagation(sys, &fd_path(&mounted), &plan.propagation)?;
    }
    Ok(target)
}

/// A fresh sysfs needs CAP_SYS_ADMIN over the network namespace: a rootless container
/// without one of its own (its user namespace does not own the host's) is refused, and
/// gets the host's /sys, bound recursively with the entry's flags (runc's rootless spec
/// asks for that bind itself).
fn bind_host_sysfs(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    dest: &Path,
    target: &OwnedFd,
    plan: &MountPlan,
) -> Result<()> {
    let host = Path::new("/sys");
    let step = "fresh sysfs refused (EPERM): bind the host's /sys instead";
    sys.mount(
        Some(host),
        &fd_path(target),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .context(step)?;
    let as_bind = MountPlan {
        bind: Some(true),
        ..plan.clone()
    };
    finish_bind(sys, root, dest, target, &as_bind).context(step)
}

/// The mount just made on `target`, found again through `dest` (a handle on `target`
/// reaches what is below the mount, not the mount), and refused if that lookup found
/// another mount: the destination was swapped in between (identity.rs).
fn reopen_mount(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    dest: &Path,
    target: &OwnedFd,
) -> Result<OwnedFd> {
    let found = super::paths::open_in_root(root, dest, nix::fcntl::OFlag::empty())
        .map_err(|e| Error::os(e, format!("reopen {:?}", dest.display())))?;
    match sys.mounted_on(found.as_fd(), target.as_fd()) {
        Ok(true) => Ok(found),
        Ok(false) => bail!(
            "{:?} changed while it was being mounted on (swapped for a symlink?): refused",
            dest.display()
        ),
        Err(e) => Err(Error::os(e, "check the new mount is the one made")),
    }
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
) -> Result<OwnedFd> {
    let sys = ctx.sys;
    let hierarchies = own_hierarchies()?;
    let target = mkdir_all_in_root(root, dest, 0o755)?;
    check_target(root, &target, "cgroup", dest)?;
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
        let own_dir = ctx
            .cgroup
            .and_then(|cg| match controllers.split(',').next() {
                Some("") | None => cg.unified.as_deref(),
                Some(first) => cg.v1_dir(first),
            });
        let bind_own = |dir: &Path| -> Result<()> {
            sys.mount(Some(dir), &fd_path(&target), None, MsFlags::MS_BIND, None)
                .with_context(|| format!("bind the container's cgroup {:?}", dir.display()))?;
            let mounted = reopen_mount(sys, root, &sub, &target)?;
            remount_bind(sys, &fd_path(&mounted), flags)
        };
        match own_dir {
            // Without a cgroup namespace a fresh mount would show the host's whole tree.
            Some(dir) if !ctx.own_cgroupns => bind_own(dir)?,
            _ => {
                let data = (!data.is_empty()).then_some(data.as_str());
                let source = Some(Path::new("cgroup"));
                match (
                    sys.mount(source, &fd_path(&target), Some(fstype), flags, data),
                    own_dir,
                ) {
                    // A user namespace may not mount a cgroup v1 hierarchy (nor cgroup2
                    // without owning its cgroup namespace): bind the directory instead.
                    (Err(nix::errno::Errno::EPERM), Some(dir)) => bind_own(dir)?,
                    (mounted, _) => {
                        mounted.with_context(|| format!("mount cgroup hierarchy {name:?}"))?
                    }
                }
            }
        }
    }
    if !pure_v2 && plan.flags.contains(MsFlags::MS_RDONLY) {
        let mounted = reopen_mount(sys, root, dest, &target)?;
        remount_bind(sys, &fd_path(&mounted), MsFlags::MS_RDONLY)?;
    }
    Ok(target)
}

/// Controllers of each hierarchy in /proc/self/cgroup, "" standing for the unified
/// (cgroup2) one; on a hybrid host it is listed only when mounted at .../unified.
/// When /sys/fs/cgroup itself is a cgroup2 mount (a pure v2 host, or a mount namespace
/// that shows only cgroup2 there), the container gets that one hierarchy, as runc
/// decides by the same statfs: the v1 hierarchies a process still belongs to are not
/// the layout its caller sees.
fn own_hierarchies() -> Result<Vec<String>> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    if statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
        return Ok(vec![String::new()]);
    }
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
