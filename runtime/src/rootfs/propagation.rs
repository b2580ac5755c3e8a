//! The mount namespace's propagation before the rootfs is built (config-linux.md
//! "rootfsPropagation").
//!
//! init's new mount namespace starts as a copy of the host's, every shared mount still a
//! peer of the host's. `/` takes the rootfsPropagation recursively (rslave by default):
//! with `rshared` the copies stay in the host's peer groups, so that a volume bound with
//! `rbind` + `rshared` joins its source's peer group and mounts propagate both ways
//! (Kubernetes Bidirectional); made slaves first, a later `rshared` would only make a new
//! peer group below the host's. What keeps the runtime's own mounts in: the mount the
//! rootfs is on is made private before the rootfs is bound onto itself, so nothing
//! mounted at or under the rootfs reaches another namespace (and pivot_root, which
//! refuses a shared parent, works); only a shared volume's own subtree propagates.
//! `runbindable` waits until the root is built: nothing under an unbindable `/` could be
//! bound, not the rootfs onto itself nor a volume's source, so the build runs under
//! `rprivate` (what unbindable also is) and the new `/` is made unbindable at the end.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, openat, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use super::identity::locate;
use super::paths::fd_path;
use super::syscalls::Syscalls;
use crate::error::{Context, Result};

/// `/` as rootfsPropagation says, then the mount holding `rootfs` private.
pub fn prepare_root(sys: &dyn Syscalls, rootfs: &Path, propagation: MsFlags) -> Result<()> {
    let propagation = while_building(propagation);
    sys.mount(None, Path::new("/"), None, propagation, None)
        .with_context(|| format!("linux.rootfsPropagation: set {propagation:?} on /"))?;
    let dir = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open rootfs {:?}", rootfs.display()))?;
    let mount_root = mount_root_of(dir).context("find the mount the rootfs is on")?;
    sys.mount(None, &fd_path(&mount_root), None, MsFlags::MS_PRIVATE, None)
        .context("make the mount the rootfs is on private")
}

/// The propagation `/` takes while the root is built: rootfsPropagation, except that
/// unbindable becomes private until the end (binds from an unbindable tree fail EINVAL).
fn while_building(propagation: MsFlags) -> MsFlags {
    if propagation.contains(MsFlags::MS_UNBINDABLE) {
        (propagation - MsFlags::MS_UNBINDABLE) | MsFlags::MS_PRIVATE
    } else {
        propagation
    }
}

/// The root directory of the mount `dir` is on: up through `..` until the next step
/// would leave that mount (or `dir` is the process's root). A handle, not a path, so a
/// mount stacked on the same path later cannot take its place.
pub fn mount_root_of(dir: OwnedFd) -> Result<OwnedFd> {
    let mut current = dir;
    let mut here = locate(current.as_fd()).context("statx")?;
    loop {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let parent = openat(&current, "..", flags, Mode::empty()).context("open ..")?;
        let up = locate(parent.as_fd()).context("statx")?;
        if up.mount != here.mount || up == here {
            return Ok(current);
        }
        (current, here) = (parent, up);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(path: &str) -> OwnedFd {
        open(path, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    fn mount_point_of(dir: &str) -> std::path::PathBuf {
        std::fs::read_link(fd_path(&mount_root_of(handle(dir)).unwrap())).unwrap()
    }

    /// The mount point mountinfo gives for the mount `dir` is on.
    fn from_mountinfo(dir: &str) -> String {
        let id = locate(handle(dir).as_fd()).unwrap().mount.to_string();
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = table
            .lines()
            .find(|l| l.split(' ').next() == Some(id.as_str()))
            .expect("mount id in mountinfo");
        line.split(' ').nth(4).unwrap().to_owned()
    }

    #[test]
    fn unbindable_is_private_while_the_root_is_built() {
        let rec = MsFlags::MS_REC;
        assert_eq!(
            while_building(MsFlags::MS_UNBINDABLE | rec),
            MsFlags::MS_PRIVATE | rec
        );
        for kept in [MsFlags::MS_SHARED, MsFlags::MS_SLAVE, MsFlags::MS_PRIVATE] {
            assert_eq!(while_building(kept | rec), kept | rec);
        }
    }

    #[test]
    fn finds_the_root_of_the_mount_a_directory_is_on() {
        // /proc/self/fdinfo is deep inside procfs; /proc itself is procfs's root; / is
        // the root's own mount (its `..` is itself).
        for dir in ["/proc/self/fdinfo", "/proc", "/", "/sys/kernel"] {
            assert_eq!(
                mount_point_of(dir).to_str().unwrap(),
                from_mountinfo(dir),
                "{dir}"
            );
        }
    }
}
