//! Which mount a handle is on, and whether a mount sits right on a given handle.
//!
//! A mount made on `/proc/self/fd/N` lands on what N is, whatever its path became; but
//! the calls that follow (the remount that makes a bind read-only, its propagation, the
//! `r*` attributes) need the new mount, which only a fresh lookup of the destination
//! reaches. The image, or a neighbour sharing its volume, can swap the destination for
//! a symlink in between (CVE-2021-30465): the lookup then finds another mount (the
//! rootfs itself, for a symlink to `/`), which would be made read-only in the volume's
//! place. So the mount a lookup found is checked to be the one mounted on N.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;

use super::paths::fd_path;

/// Identity of what a handle refers to: its mount, and its inode.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct Where {
    pub mount: u64,
    pub dev: (u32, u32),
    pub ino: u64,
}

/// statx(2) of the handle itself.
pub fn locate(fd: BorrowedFd<'_>) -> nix::Result<Where> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx writes at most one `struct statx` into the buffer we own; the empty
    // path is NUL-terminated and static.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_INO | libc::STATX_MNT_ID,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    // SAFETY: statx succeeded and filled the buffer (it was zeroed before, too).
    let stx = unsafe { stx.assume_init() };
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        // Linux < 5.8: no mount ids to tell mounts apart.
        return Err(Errno::ENOSYS);
    }
    Ok(Where {
        mount: stx.stx_mnt_id,
        dev: (stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
    })
}

/// Whether `mount` (a handle on a mount's root) is mounted right on `target`: its
/// parent is `target`'s mount, at `target`'s path (mountinfo of this namespace).
pub fn mounted_on(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<bool> {
    let (m, t) = (locate(mount)?, locate(target)?);
    if m.mount == t.mount {
        return Ok(false);
    }
    let target_path = std::fs::read_link(fd_path(&target)).map_err(io_errno)?;
    let table = std::fs::read("/proc/self/mountinfo").map_err(io_errno)?;
    Ok(table.split(|b| *b == b'\n').any(|line| {
        let mut fields = line.split(|b| *b == b' ');
        let (id, parent) = (fields.next(), fields.next());
        let point = fields.nth(2);
        number(id) == Some(m.mount)
            && number(parent) == Some(t.mount)
            && point.map(unescape) == Some(target_path.clone())
    }))
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn number(field: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(field?).ok()?.parse().ok()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(field: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    use std::os::fd::AsFd;

    fn handle(path: &str) -> std::os::fd::OwnedFd {
        open(path, OFlag::O_PATH, Mode::empty()).unwrap()
    }

    #[test]
    fn tells_the_mount_on_a_directory_from_others() {
        // procfs is mounted on the root filesystem's /proc (a handle on the directory
        // below it cannot be had here, but its parent mount's root can).
        let (proc_, root, sys) = (handle("/proc"), handle("/"), handle("/sys"));
        assert!(!mounted_on(root.as_fd(), root.as_fd()).unwrap());
        assert!(!mounted_on(proc_.as_fd(), sys.as_fd()).unwrap());
        assert!(!mounted_on(sys.as_fd(), proc_.as_fd()).unwrap());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(br"/a\040b\134c"), PathBuf::from("/a b\\c"));
        assert_eq!(unescape(br"/plain\04"), PathBuf::from("/plain\\04"));
    }
}
