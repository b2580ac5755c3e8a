//! Copying files out of the layer cache with all their metadata:
//! reflink (FICLONE) when the filesystem can share extents, otherwise a
//! kernel-side copy (std's File copy uses copy_file_range).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{anyhow, Context, Result};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstat, futimens, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, Gid, Uid};

use crate::xattr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Share extents (btrfs, xfs); fall back to copying where unsupported.
    Auto,
    /// Plain data copy.
    Copy,
    /// Hard link into the cache: fastest, but the bundle shares inodes with
    /// the cache, so a container writing a file in place alters the cache.
    Hardlink,
}

/// Creates `dir/name` as a copy of the open regular file `src`.
pub fn copy_file_at(src: &OwnedFd, dir: &impl AsFd, name: &OsStr, method: Method) -> Result<()> {
    let dst = openat(
        dir.as_fd(),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| anyhow!("create: {}", io::Error::from(e)))?;
    if !(method == Method::Auto && reflink(src, &dst)) {
        let mut from = File::from(src.try_clone()?);
        let mut to = File::from(dst.try_clone()?);
        io::copy(&mut from, &mut to).context("copy")?;
    }
    copy_metadata(src, &dst)
}

fn reflink(src: &OwnedFd, dst: &OwnedFd) -> bool {
    // SAFETY: FICLONE takes the source fd as its integer argument; both fds
    // are open for the duration of the call.
    unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) == 0 }
}

/// Owner, mode, xattrs (minus overlay bookkeeping) and times, in the order
/// that keeps setuid bits and file capabilities intact.
pub fn copy_metadata(src: &impl AsFd, dst: &impl AsFd) -> Result<()> {
    let st = fstat(src.as_fd()).context("stat")?;
    fchown(
        dst.as_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .context("chown")?;
    fchmod(dst.as_fd(), Mode::from_bits_truncate(st.st_mode & 0o7777)).context("chmod")?;
    copy_xattrs(src, dst)?;
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    futimens(dst.as_fd(), &atime, &mtime).context("set times")?;
    Ok(())
}

pub fn copy_xattrs(src: &impl AsFd, dst: &impl AsFd) -> Result<()> {
    for name in xattr::flist(src).context("list xattrs")? {
        if xattr::is_reserved(&name) {
            continue;
        }
        let value = xattr::fget(src, &name)
            .with_context(|| format!("read xattr {}", xattr::display(&name)))?;
        xattr::fset(dst, &name, &value)
            .with_context(|| format!("set xattr {}", xattr::display(&name)))?;
    }
    Ok(())
}
