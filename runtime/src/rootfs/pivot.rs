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
    // Moving onto a shared `/` would put the rootfs over the host's `/` too; and the
    // detaches below must not propagate through a shared `/` to the host's /proc.
    detach_root_from_peers()?;
    hide_full_proc_and_sys(rootfs)?;
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

/// Without pivot_root the host's mounts stay in the container's mount namespace, below
/// the chroot. The kernel lets a user namespace mount a fresh procfs or sysfs when the
/// mount namespace holds a full, uncovered one: the host's would do, and the fresh one
/// would have none of the masks (runc's "no_pivot must not expose bare /proc"). So
/// every full procfs and sysfs outside the rootfs goes first (detached, or covered by
/// a tmpfs where it cannot be), after making them slaves so nothing reaches the host.
fn hide_full_proc_and_sys(rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    // Only those mounted right on `/` (/proc, /sys), now private: detaching one whose
    // parent mount is still a peer of the host's would detach the host's too. A full
    // procfs elsewhere on the host stays (docs/security.md, residual risks).
    let mut points: Vec<_> = full_proc_and_sys_outside(&text, rootfs)
        .into_iter()
        .filter(|p| p.parent() == Some(Path::new("/")))
        .collect();
    // Deepest first: /proc before /, /sys/fs before /sys.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        match mount(None::<&str>, &point, None::<&str>, slave, None::<&str>) {
            // Under a mount already detached.
            Err(nix::errno::Errno::ENOENT) => continue,
            other => other.with_context(|| format!("make {:?} a slave", point.display()))?,
        }
        match umount2(&point, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                &point,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .with_context(|| format!("cover {:?} (--no-pivot)", point.display()))?,
            Err(e) => {
                return Err(crate::error::Error::os(
                    e,
                    format!("detach {:?} (--no-pivot)", point.display()),
                ))
            }
        }
    }
    Ok(())
}

/// Mount points of procfs and sysfs mounts showing their filesystem's root, outside
/// `rootfs` (mountinfo's fields 4 and 5, and the type after " - ").
fn full_proc_and_sys_outside(mountinfo: &str, rootfs: &Path) -> Vec<std::path::PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let fields: Vec<&str> = head.split(' ').collect();
            let fstype = tail.split(' ').next()?;
            let point = std::path::PathBuf::from(fields.get(4)?.replace("\\040", " "));
            let full = fields.get(3) == Some(&"/");
            (full && matches!(fstype, "proc" | "sysfs") && !point.starts_with(rootfs))
                .then_some(point)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_proc_and_sys_outside_the_rootfs() {
        let mi = "\
22 1 0:21 / / rw - ext4 /dev/vda rw
23 22 0:5 / /proc rw,nosuid - proc proc rw
24 22 0:6 / /sys rw - sysfs sysfs rw
25 23 0:7 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt rw
26 22 0:5 /sys /mnt/procsys rw - proc proc rw
30 22 0:40 / /b/rootfs/proc rw - proc proc rw
31 22 0:41 / /b/rootfs/sys rw - sysfs sysfs rw
";
        let found = full_proc_and_sys_outside(mi, Path::new("/b/rootfs"));
        assert_eq!(found, vec![Path::new("/proc"), Path::new("/sys")]);
    }
}
