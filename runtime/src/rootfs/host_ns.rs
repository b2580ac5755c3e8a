//! A container without a mount namespace of its own (config-linux.md: a namespace type
//! not listed is the runtime's). Its mounts are made beneath the rootfs in the runtime's
//! mount namespace (the host's), with the same in-root resolution as always, and init
//! chroots into the rootfs instead of pivot_root. Nothing of the host's propagation
//! changes. Those mounts outlive init, so `create` records which mounts at or beneath
//! the rootfs existed before it ([`HostMounts`]); `delete` and a failed `create` detach
//! every other one there, deepest first, each reached from a handle on the rootfs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag, OpenHow, ResolveFlag};
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use super::identity::{locate, unescape};
use super::paths::{fd_path, openat2_in_root};
use super::syscalls::Syscalls;
use crate::bail;
use crate::error::{Context, Error, Result};

/// What `delete` needs to leave the host's mount table as `create` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMounts {
    /// The rootfs as mountinfo names it (its canonical path at create).
    pub rootfs: PathBuf,
    /// Mount ids at or beneath the rootfs before create (the rootfs's own overlay, a
    /// volume the caller mounted there): not patina's, never detached.
    pub before: Vec<u64>,
}

impl HostMounts {
    /// The mounts at or beneath `rootfs` now, before anything is made.
    #[cold]
    pub fn snapshot(rootfs: &Path) -> Result<HostMounts> {
        let rootfs = std::fs::canonicalize(rootfs)
            .with_context(|| format!("root.path {:?}: resolve", rootfs.display()))?;
        let table = read_mountinfo()?;
        let before = beneath(&table, &rootfs).map(|(id, _)| id).collect();
        Ok(HostMounts { rootfs, before })
    }

    /// [`HostMounts::release`] for `delete`, whose record may be damaged: only when it
    /// names `rootfs` (the record's, resolved now; see [`HostMounts::check`]).
    #[cold]
    pub fn release_beneath(&self, rootfs: &Path) -> Result<()> {
        match self.check(rootfs)? {
            true => self.release(),
            false => Ok(()),
        }
    }

    /// Whether this record is the rootfs's: an error when it names another directory
    /// (or `/`), false when the rootfs is gone (nothing is mounted beneath a path that
    /// no longer exists).
    #[cold]
    pub fn check(&self, rootfs: &Path) -> Result<bool> {
        let real = match std::fs::canonicalize(rootfs) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            other => other.with_context(|| format!("rootfs {:?}: resolve", rootfs.display()))?,
        };
        if real != self.rootfs || real == Path::new("/") {
            bail!(
                Other,
                "state host_mounts.rootfs {:?} is not the container's rootfs {:?} (state.json damaged or rewritten): nothing detached",
                self.rootfs.display(),
                real.display()
            );
        }
        Ok(true)
    }

    /// Detach every mount at or beneath the rootfs that was not there before create:
    /// children before parents, each only if a handle on its path from the rootfs
    /// (no symlink followed) is still on that very mount. A mount hidden beneath another
    /// one (a container with CAP_SYS_ADMIN may mount over its own `/` or /proc) cannot
    /// be reached by its path until the one on top is gone: so passes over a fresh
    /// mountinfo until none is left; one that stays out of reach is an error (the
    /// record stays, for another `delete`), never silently left on the host.
    #[cold]
    pub fn release(&self) -> Result<()> {
        for _ in 0..MAX_PASSES {
            let ours = self.ours()?;
            let Some((id, point)) = ours.first().cloned() else {
                return Ok(());
            };
            let mut detached = false;
            for (id, point) in ours {
                detached |= detach(&self.rootfs, id, &point).with_context(|| {
                    format!(
                        "no mount namespace: detach {:?} (mount {id}) beneath the rootfs",
                        point.display()
                    )
                })?;
            }
            if !detached {
                bail!(
                    Other,
                    "no mount namespace: mount {id} at {:?} beneath the rootfs cannot be reached from it (another mount hides it); left in place",
                    point.display()
                );
            }
        }
        bail!(
            Other,
            "no mount namespace: mounts keep appearing beneath the rootfs {:?} after {MAX_PASSES} passes; left in place",
            self.rootfs.display()
        )
    }

    /// Mounts at or beneath the rootfs not there before create, in the order to try
    /// them: mountinfo lists a mount after the one it is on, so reversed, upper before
    /// lower; then deepest first (stable, so stacked mounts keep that order).
    fn ours(&self) -> Result<Vec<(u64, PathBuf)>> {
        let table = read_mountinfo()?;
        let mut ours: Vec<(u64, PathBuf)> = beneath(&table, &self.rootfs)
            .filter(|(id, _)| !self.before.contains(id))
            .collect();
        ours.reverse();
        ours.sort_by_key(|(_, point)| std::cmp::Reverse(point.components().count()));
        Ok(ours)
    }
}

/// Passes of [`HostMounts::release`]: each detaches at least one mount or it stops, so
/// this only bounds a table that keeps growing while delete runs.
const MAX_PASSES: usize = 64;

fn read_mountinfo() -> Result<Vec<u8>> {
    std::fs::read("/proc/self/mountinfo").context("read /proc/self/mountinfo")
}

/// (mount id, mount point) of every mount at or beneath `rootfs`, in mountinfo order.
fn beneath<'a>(table: &'a [u8], rootfs: &'a Path) -> impl Iterator<Item = (u64, PathBuf)> + 'a {
    table.split(|b| *b == b'\n').filter_map(move |line| {
        let mut fields = line.split(|b| *b == b' ');
        let id = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
        let point = unescape(fields.nth(3)?);
        point.starts_with(rootfs).then_some((id, point))
    })
}

/// Detach mount `id` at `point` if its path from the rootfs reaches it: whether it did.
fn detach(rootfs: &Path, id: u64, point: &Path) -> Result<bool> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = open(rootfs, flags, Mode::empty()).context("open the rootfs")?;
    let rel = point.strip_prefix(rootfs).expect("filtered by beneath");
    let handle = if rel.as_os_str().is_empty() {
        root
    } else {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2_in_root(root.as_fd(), rel, how) {
            Ok(fd) => fd,
            // Gone with a mount below which it sat, or hidden by one on top.
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::os(e, "open it from the rootfs")),
        }
    };
    match locate(handle.as_fd()) {
        Ok(found) if found.mount == id => {}
        // Another mount is on top, or it went with a parent's detach: not this one to
        // take away through this path (a later pass may reach it).
        Ok(_) => return Ok(false),
        Err(e) => return Err(Error::os(e, "statx")),
    }
    match umount2(&fd_path(&handle), MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        // Not a mount any more: it went while we looked.
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(Error::os(e, "umount2 MNT_DETACH")),
    }
}

/// Whether the rootfs needs a mount of its own in the host's namespace: for a read-only
/// root (its bind is what is made read-only, not the host's filesystem), or when the
/// mount it is on is shared (mounts beneath it would otherwise appear in every peer
/// namespace, another container's among them).
#[cold]
pub fn own_root_needed(rootfs: &Path, readonly: bool) -> Result<bool> {
    if readonly {
        return Ok(true);
    }
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = open(rootfs, flags, Mode::empty())
        .with_context(|| format!("open rootfs {:?}", rootfs.display()))?;
    let mount = locate(dir.as_fd()).context("statx the rootfs")?.mount;
    Ok(is_shared(&read_mountinfo()?, mount))
}

fn is_shared(table: &[u8], mount: u64) -> bool {
    let text = String::from_utf8_lossy(table);
    text.lines().any(|line| {
        let head = line.split(" - ").next().unwrap_or_default();
        let mut fields = head.split(' ');
        fields.next() == Some(&mount.to_string())
            && fields.skip(5).any(|f| f.starts_with("shared:"))
    })
}

/// The rootfs bound onto itself (what pivot_root would need too) and made private, so
/// nothing mounted beneath it reaches another namespace. Returns a fresh handle on it.
#[cold]
pub fn bind_root(sys: &dyn Syscalls, rootfs: &Path) -> Result<OwnedFd> {
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    sys.mount(Some(rootfs), rootfs, None, rbind, None)
        .with_context(|| format!("bind rootfs {:?} onto itself", rootfs.display()))?;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = open(rootfs, flags, Mode::empty())
        .with_context(|| format!("open rootfs {:?}", rootfs.display()))?;
    let private = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
    sys.mount(None, &fd_path(&root), None, private, None)
        .context("make the rootfs's own mount private")?;
    Ok(root)
}

/// A bind of a host directory on a shared mount joins that mount's peer group: in the
/// host's namespace, whatever is mounted beneath it later (the config's next entry,
/// or the container's own) would appear at the source too, outside the rootfs. So a
/// bind without a propagation option of its own is made private (with its submounts)
/// right after it is made. (With a mount namespace the rootfs's propagation sees to it.)
#[cold]
pub fn private_bind(
    sys: &dyn Syscalls,
    root: std::os::fd::BorrowedFd<'_>,
    m: &oci_spec::runtime::Mount,
) -> Result<()> {
    let options = m.options().clone().unwrap_or_default();
    let plan = super::options::MountPlan::from_options(&options)?;
    let bind = plan.bind.is_some() || m.typ().as_deref() == Some("bind");
    if !bind || !plan.propagation.is_empty() {
        return Ok(());
    }
    let rel = match m.destination().strip_prefix("/").unwrap_or(m.destination()) {
        r if r.as_os_str().is_empty() => Path::new("."),
        r => r,
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let target = openat2_in_root(root, rel, how).map_err(|e| {
        Error::os(
            e,
            format!(
                "reopen bind {:?} to make it private",
                m.destination().display()
            ),
        )
    })?;
    let private = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
    sys.mount(None, &fd_path(&target), None, private, None)
        .with_context(|| {
            format!(
                "make bind {:?} private (no mount namespace)",
                m.destination().display()
            )
        })
}

/// chroot instead of pivot_root: there is no namespace of the container's own to pivot.
#[cold]
pub fn chroot_into(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs)
        .with_context(|| format!("chdir to rootfs {:?}", rootfs.display()))?;
    nix::unistd::chroot(".").context("chroot to the rootfs (no mount namespace)")?;
    nix::unistd::chdir("/").context("chdir to new /")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"\
22 1 8:1 / / rw shared:1 - ext4 /dev/vda rw
30 22 0:40 / /b/rootfs rw shared:7 - overlay overlay rw
31 30 0:41 / /b/rootfs/proc rw - proc proc rw
32 30 0:42 / /b/rootfs/dev rw - tmpfs tmpfs rw
33 22 0:43 / /b/rootfs2 rw - tmpfs tmpfs rw
34 32 0:44 / /b/rootfs/dev/my\\040pts rw - devpts devpts rw
";

    #[test]
    fn finds_mounts_at_and_beneath_the_rootfs_only() {
        let found: Vec<_> = beneath(TABLE, Path::new("/b/rootfs")).collect();
        let ids: Vec<u64> = found.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![30, 31, 32, 34]);
        assert_eq!(found[3].1, Path::new("/b/rootfs/dev/my pts"));
    }

    #[test]
    fn tells_a_shared_mount() {
        assert!(is_shared(TABLE, 30));
        assert!(!is_shared(TABLE, 31));
        assert!(!is_shared(TABLE, 3));
    }
}
