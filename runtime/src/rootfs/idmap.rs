//! Idmapped bind mounts (config.md "mounts": `uidMappings`, `gidMappings`): files of the
//! source show their owners through the entry's mappings (host id -> container id), as
//! Kubernetes volumes of user-namespaced pods need. Only the initial user namespace may
//! idmap the host's filesystems, so the runtime makes each such mount before the clone:
//! a detached clone of the source, idmapped through a user namespace that holds exactly
//! the entry's mappings; init then attaches it at the destination inside the rootfs.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::error::{Context, Error, Result};
use crate::mount_api::{clone_tree, set_attr, MountAttr, MOUNT_ATTR_IDMAP};

/// One detached, idmapped tree per `mounts[]` entry with mappings or an `idmap` /
/// `ridmap` option (None for the others).
pub fn prepare_trees(spec: &Spec, bundle: &Path) -> Result<Vec<Option<OwnedFd>>> {
    let linux = spec.linux().as_ref();
    let container_maps = linux.and_then(|l| {
        let uids = l.uid_mappings().as_deref()?;
        Some((uids, l.gid_mappings().as_deref()?))
    });
    let mut trees = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let option = idmap_option(m);
        let own_maps = m.uid_mappings().as_deref().zip(m.gid_mappings().as_deref());
        let maps = own_maps.or(option.and(container_maps));
        let tree = match maps {
            Some((uids, gids)) => {
                let source = source_of(m, bundle);
                let step = || format!("mounts[{i}]: idmapped mount of {:?}", source.display());
                // `ridmap`, or mappings of the entry's own: every mount of an `rbind`.
                let idmap_all = option.unwrap_or(is_rbind(m));
                let tree = idmapped_tree(&source, is_rbind(m), idmap_all, uids, gids);
                Some(tree.with_context(step)?)
            }
            None => None,
        };
        trees.push(tree);
    }
    Ok(trees)
}

/// `idmap` (Some(false)) or `ridmap` (Some(true)) among the entry's options.
pub fn idmap_option(m: &Mount) -> Option<bool> {
    m.options().iter().flatten().find_map(|o| match o.as_str() {
        "idmap" => Some(false),
        "ridmap" => Some(true),
        _ => None,
    })
}

fn source_of(m: &Mount, bundle: &Path) -> std::path::PathBuf {
    let source = m.source().clone().unwrap_or_default();
    if source.is_absolute() {
        source
    } else {
        bundle.join(source)
    }
}

fn is_rbind(m: &Mount) -> bool {
    m.options().iter().flatten().any(|o| o == "rbind")
}

/// A clone of `source` (with the mounts below it for `rbind`), idmapped (all of them
/// with `idmap_all`) through a user namespace holding `uids` and `gids`.
fn idmapped_tree(
    source: &Path,
    rbind: bool,
    idmap_all: bool,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<OwnedFd> {
    let userns = user_namespace_with(uids, gids)?;
    let tree = clone_tree(nix::fcntl::AT_FDCWD, source, rbind).context("open_tree")?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..MountAttr::default()
    };
    set_attr(tree.as_fd(), &attr, rbind && idmap_all).context("mount_setattr(MOUNT_ATTR_IDMAP)")?;
    Ok(tree)
}

fn map_lines(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace holding exactly these mappings: a child process unshares one and
/// waits while the runtime writes its maps and opens it, then exits.
fn user_namespace_with(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: the runtime is single-threaded here (before the clone of init); the child
    // only makes async-signal-safe calls and leaves with _exit.
    let child = match unsafe { nix::unistd::fork() }.context("fork a user namespace holder")? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(done_w);
            // SAFETY: raw syscalls on descriptors this child owns; _exit never returns.
            unsafe {
                let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
                libc::write(ready_w.as_raw_fd(), [u8::from(ok)].as_ptr().cast(), 1);
                let mut byte = 0u8;
                libc::read(done_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                libc::_exit(0)
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(ready_w);
    drop(done_r);
    let result = write_maps_and_open(child, &ready_r, uids, gids);
    drop(done_w);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

fn write_maps_and_open(
    child: Pid,
    ready: &OwnedFd,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<OwnedFd> {
    let mut byte = [0u8];
    match nix::unistd::read(ready, &mut byte) {
        Ok(1) if byte[0] == 1 => {}
        Ok(_) => return Err(Error::msg("unshare(CLONE_NEWUSER) failed in the holder")),
        Err(e) => return Err(Error::os(e, "wait for the user namespace holder")),
    }
    let proc = format!("/proc/{child}");
    std::fs::write(format!("{proc}/uid_map"), map_lines(uids)).context("write uidMappings")?;
    std::fs::write(format!("{proc}/gid_map"), map_lines(gids)).context("write gidMappings")?;
    nix::fcntl::open(
        format!("{proc}/ns/user").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e: Errno| Error::os(e, "open the user namespace"))
}
