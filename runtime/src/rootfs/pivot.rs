//! Making the rootfs the container's `/`: pivot_root, or MS_MOVE + chroot for `--no-pivot`
//! (for a rootfs on a ramfs, where pivot_root is impossible).

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::error::{Context, Result};

/// pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
/// nothing of the host reachable, with no temporary directory in the image.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open("/", dir, Mode::empty()).context("open old /")?;
    let new_root = open(rootfs, dir, Mode::empty()).context("open rootfs")?;
    detach_root_from_peers()?;
    fchdir(&new_root).context("chdir to rootfs")?;
    pivot_root(".", ".").with_context(|| format!("pivot_root to {:?}", rootfs.display()))?;
    fchdir(&old_root).context("chdir to old root")?;
    // Unmounting must not propagate to the host's mounts.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detach old root")?;
    chdir("/").context("chdir to new /")
}

pub fn move_root(rootfs: &Path) -> Result<()> {
    // Moving onto a shared `/` would put the rootfs over the host's `/` too.
    detach_root_from_peers()?;
    chdir(rootfs).context("chdir to rootfs")?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .context("move rootfs to / (--no-pivot)")?;
    chroot(".").context("chroot to rootfs")?;
    chdir("/").context("chdir to new /")
}

/// The mount at `/` alone (not the mounts below it) private. With rootfsPropagation
/// `rshared` it is still a peer of the host's `/`: pivot_root refuses a shared root
/// (when `/` is the namespace's first mount), and a rootfs moved onto it would
/// propagate onto the host's. The shared volumes below keep their peer groups.
fn detach_root_from_peers() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private before switching root")
}
