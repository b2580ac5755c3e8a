//! The container's root filesystem: mounts, /dev, pivot_root, and the read-only and
//! masked paths laid on top (config.md "Root", "Mounts"; config-linux.md).

pub mod devices;
pub mod host_ns;
pub mod identity;
pub mod idmap;
pub mod mounts;
pub mod options;
pub mod paths;
pub mod pivot;
pub mod propagation;
#[cfg(test)]
mod setup_tests;
pub mod syscalls;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::bail;
use crate::error::{Context, Error, Result};
use syscalls::Syscalls;

/// Before pivot_root (or, without a mount namespace, chroot): everything under the rootfs.
/// In init's new mount namespace; with `mount_ns` false in the host's, where nothing but
/// the rootfs's own bind (host_ns.rs, only when needed) changes outside what is mounted.
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    in_user_ns: bool,
    mount_ns: bool,
    mount_ctx: &mounts::MountContext<'_>,
) -> Result<()> {
    let sys = mount_ctx.sys;
    let linux = spec.linux().as_ref();
    let readonly = spec.root().as_ref().and_then(|r| r.readonly()) == Some(true);
    if mount_ns {
        let propagation =
            options::root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?;
        propagation::prepare_root(sys, rootfs, propagation)?;
        // pivot_root needs the new root to be a mount point.
        let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
        sys.mount(Some(rootfs), rootfs, None, rbind, None)
            .with_context(|| format!("bind rootfs {:?} onto itself", rootfs.display()))?;
    } else if host_ns::own_root_needed(rootfs, readonly)? {
        host_ns::bind_root(sys, rootfs)?;
    }
    let open_root = || {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        open(rootfs, flags, Mode::empty())
            .with_context(|| format!("open rootfs {:?}", rootfs.display()))
    };
    let mut root = open_root()?;

    let all = spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in all.iter().enumerate() {
        let rw = writable_dev_first(m);
        let m = rw.as_ref().unwrap_or(m);
        mounts::apply(root.as_fd(), mount_ctx, i, m)?;
        if !mount_ns {
            host_ns::private_bind(sys, root.as_fd(), m).with_context(|| format!("mounts[{i}]"))?;
        }
        if m.destination() == Path::new("/") {
            // A mount on "/" itself (an overlay of image layers): later ones go on top of it.
            root = open_root()?;
        }
    }
    let dev_from_host = all.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    });
    if !dev_from_host {
        populate_dev(sys, &root, spec, in_user_ns)?;
    }
    Ok(())
}

/// A fresh /dev asked read-only (`ro` on a non-bind mount at /dev) is mounted writable
/// first and made read-only in [`finalize`], once its nodes, links, submounts (/dev/pts,
/// /dev/shm) and /dev/console are in place, as runc does; mounted read-only at once,
/// nothing could be made in it.
fn writable_dev_first(m: &oci_spec::runtime::Mount) -> Option<oci_spec::runtime::Mount> {
    let opts = m.options().as_deref().unwrap_or_default();
    let bind = opts.iter().any(|o| o == "bind" || o == "rbind");
    if m.destination() != Path::new("/dev") || bind || !opts.iter().any(|o| o == "ro") {
        return None;
    }
    let mut rw = m.clone();
    rw.set_options(Some(opts.iter().filter(|o| *o != "ro").cloned().collect()));
    Some(rw)
}

fn populate_dev(sys: &dyn Syscalls, root: &OwnedFd, spec: &Spec, in_user_ns: bool) -> Result<()> {
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    let mut nodes = devices::default_devices();
    for (i, dev) in configured.iter().enumerate() {
        let node = devices::DeviceNode::from_spec(i, dev)?;
        // /dev/ptmx is always the devpts instance's (create_links), as in runc: a node or
        // a bind of the host's there would be replaced anyway, and a bind (user namespace)
        // cannot be removed (EBUSY).
        if node.path == std::path::Path::new("/dev/ptmx") {
            continue;
        }
        nodes.retain(|d| d.path != node.path);
        nodes.push(node);
    }
    for node in &nodes {
        devices::create(sys, root.as_fd(), node, in_user_ns)?;
    }
    devices::create_links(root.as_fd())
}

/// After pivot_root: the read-only and masked paths, the read-only root, and a shared
/// root propagation if asked for.
pub fn finalize(sys: &dyn Syscalls, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    if mounts.iter().any(|m| writable_dev_first(m).is_some()) {
        let dev = open(
            Path::new("/dev"),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("open /dev to make it read-only")?;
        mounts::remount_read_only(sys, &paths::fd_path(&dev))
            .context("mounts: remount /dev read-only")?;
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        make_readonly(sys, Path::new(path))
            .with_context(|| format!("linux.readonlyPaths: {path:?}"))?;
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    if !masked.is_empty() {
        let null = null_device().context("linux.maskedPaths")?;
        for path in masked {
            mask(sys, Path::new(path), &null)
                .with_context(|| format!("linux.maskedPaths: {path:?}"))?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::remount_bind(sys, Path::new("/"), MsFlags::MS_RDONLY)
            .context("root.readonly: remount / read-only")?;
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        let flags = options::root_propagation(Some(p))?;
        sys.mount(None, Path::new("/"), None, flags, None)
            .context("linux.rootfsPropagation on /")?;
    }
    Ok(())
}

fn make_readonly(sys: &dyn Syscalls, path: &Path) -> Result<()> {
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    match sys.mount(Some(path), path, None, rbind, None) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.context("bind onto itself")?,
    }
    mounts::remount_bind(sys, path, MsFlags::MS_RDONLY | MsFlags::MS_REC)
}

/// The container's /dev/null, which masks files. It must be the null device itself: an
/// image's own /dev (no /dev mount) could make it a symlink to a masked file, and binding
/// "/dev/null" would then put that file over every other masked path.
fn null_device() -> Result<OwnedFd> {
    use nix::sys::stat::{fstat, makedev, SFlag};
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let null = open("/dev/null", flags, Mode::empty()).context("open /dev/null")?;
    let st = fstat(&null).context("stat /dev/null")?;
    let char_device =
        SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFCHR;
    if !char_device || st.st_rdev != makedev(1, 3) {
        bail!("/dev/null is not the null device (char 1:3): refusing to mask with it");
    }
    Ok(null)
}

/// Directories get an empty read-only tmpfs, files the null device.
fn mask(sys: &dyn Syscalls, path: &Path, null: &OwnedFd) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(Error::from).context("stat")?,
    };
    if meta.is_dir() {
        let tmpfs = Some(Path::new("tmpfs"));
        sys.mount(
            tmpfs,
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
        .context("mount read-only tmpfs over it")
    } else {
        sys.mount(
            Some(&paths::fd_path(null)),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )
        .context("bind /dev/null over it")
    }
}
