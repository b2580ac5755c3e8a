//! Descriptor hygiene: which descriptors a container's processes may hold, and when.
//!
//! init and exec'd processes are clones of the runtime, so they start with every
//! descriptor the runtime holds: the container's host cgroup directory, the state dir,
//! cgroup `tasks` files, the log file, a state lock. Close-on-exec alone is not enough:
//! until the execve these processes resolve paths the container controls (`process.cwd`,
//! `args[0]`, a symlink in the image), and `/proc/self/fd/N/..` through a host directory
//! descriptor leads out of the container (CVE-2024-21626). So the first thing each of
//! them does is [`close_all_except`] what it needs, and none of those is a directory.
//!
//! `--preserve-fds N` hands the caller's descriptors 3..3+N to the program: they must be
//! the caller's, never the runtime's own, so [`check_preserved`] runs before patina
//! opens anything (runc refuses the same way).

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// The first descriptor after stdio.
const FIRST: RawFd = 3;

/// Every descriptor in 3..3+`count` must be open in the caller, before the runtime opens
/// anything of its own: otherwise the runtime's next descriptors would land in that range
/// and be handed to the container as "preserved".
pub fn check_preserved(count: i32, flag: &str) -> Result<()> {
    for fd in FIRST..FIRST.saturating_add(count.max(0)) {
        // SAFETY: F_GETFD only reads the descriptor's flags; a closed one fails with EBADF.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(Error::os(
                Errno::last(),
                format!("{flag} {count}: descriptor {fd} is not open in the caller"),
            ));
        }
    }
    Ok(())
}

/// Close every descriptor from 3 on, except `FIRST..FIRST+preserve` and `keep`.
/// close_range(2) over the gaps; on any failure of it (an old kernel, a seccomp filter
/// of the host), each open descriptor listed in /proc/self/fd instead.
pub fn close_all_except(preserve: i32, keep: &[RawFd]) -> Result<()> {
    let kept = kept_set(preserve, keep);
    match close_gaps(&kept) {
        Ok(()) => Ok(()),
        Err(_) => close_listed(&kept),
    }
}

/// The fallback of [`close_all_except`]: each descriptor /proc/self/fd lists.
fn close_listed(kept: &[RawFd]) -> Result<()> {
    for fd in open_descriptors()? {
        if fd >= FIRST && !kept.contains(&fd) {
            // SAFETY: closing a descriptor number this process holds; the caller gives up
            // every descriptor outside `keep` and the preserved range by contract.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// Just before execve: the preserved descriptors lose close-on-exec, every other one
/// from 3 on gets it (close_range CLOEXEC, or fcntl on each listed in /proc/self/fd).
/// Done before a seccomp filter is installed, which may not allow these calls.
pub fn prepare_for_exec(preserve: i32) -> Result<()> {
    let first_marked = FIRST.saturating_add(preserve.max(0));
    for fd in FIRST..first_marked {
        set_cloexec(fd, false)
            .map_err(|e| Error::os(e, format!("--preserve-fds: keep descriptor {fd} open")))?;
    }
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags; no memory is touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_marked as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    mark_listed(first_marked)
}

/// The fallback of [`prepare_for_exec`]: fcntl on each descriptor /proc/self/fd lists.
fn mark_listed(first_marked: RawFd) -> Result<()> {
    for fd in open_descriptors()? {
        if fd >= first_marked {
            set_cloexec(fd, true).map_err(|e| {
                Error::os(e, format!("mark inherited descriptor {fd} close-on-exec"))
            })?;
        }
    }
    Ok(())
}

fn kept_set(preserve: i32, keep: &[RawFd]) -> Vec<RawFd> {
    let mut kept: Vec<RawFd> = (FIRST..FIRST.saturating_add(preserve.max(0)))
        .chain(keep.iter().copied().filter(|&fd| fd >= FIRST))
        .collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}

/// close_range over each gap between the kept descriptors (sorted), and past the last.
fn close_gaps(kept: &[RawFd]) -> std::result::Result<(), Errno> {
    let mut from = FIRST;
    for &fd in kept.iter().chain(std::iter::once(&RawFd::MAX)) {
        if fd > from {
            let last = if fd == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (fd - 1) as libc::c_uint
            };
            // SAFETY: close_range closes descriptor numbers; the caller gave up all of these.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, last, 0) };
            Errno::result(rc)?;
        }
        from = fd.saturating_add(1);
    }
    Ok(())
}

/// The descriptors this process holds, from /proc/self/fd (the directory's own
/// descriptor excluded).
fn open_descriptors() -> Result<Vec<RawFd>> {
    let dir = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Error::from(e).wrap("list open descriptors in /proc/self/fd"))?;
    let listed: Vec<RawFd> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    // read_dir's own descriptor is closed by now: it no longer answers F_GETFD.
    // SAFETY: F_GETFD only reads flags.
    Ok(listed
        .into_iter()
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .collect())
}

fn set_cloexec(fd: RawFd, on: bool) -> std::result::Result<(), Errno> {
    // SAFETY: F_GETFD/F_SETFD read and write the descriptor's flags only.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let wanted = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    if wanted != flags {
        // SAFETY: as above.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, wanted) })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    /// Runs `f` in a forked child (descriptor tables are per process) and returns its
    /// exit code: the tests close descriptors the test harness may own.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes syscalls and _exits; the test process is not
        // affected by what it closes.
        match unsafe { libc::fork() } {
            0 => {
                let code = f();
                // SAFETY: leave without running the harness's exit handlers.
                unsafe { libc::_exit(code) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                libc::WEXITSTATUS(status)
            }
        }
    }

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    fn open_null() -> RawFd {
        std::fs::File::open("/dev/null").unwrap().into_raw_fd()
    }

    #[test]
    fn gaps_are_computed_around_kept_descriptors() {
        assert_eq!(kept_set(2, &[9, 1, 4, 7]), vec![3, 4, 7, 9]);
        assert_eq!(kept_set(0, &[]), Vec::<RawFd>::new());
    }

    #[test]
    fn closes_everything_but_kept_and_preserved() {
        let code = in_child(|| {
            let fds: Vec<RawFd> = (0..12).map(|_| open_null()).collect();
            let keep = [fds[8]];
            if close_all_except(2, &keep).is_err() {
                return 10;
            }
            let open: Vec<RawFd> = (3..64).filter(|&fd| is_open(fd)).collect();
            let mut want = vec![3, 4, fds[8]];
            want.sort_unstable();
            want.dedup();
            if open == want {
                0
            } else {
                11
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn the_proc_fallbacks_do_the_same() {
        let code = in_child(|| {
            let _ = close_all_except(0, &[]);
            let fds: Vec<RawFd> = (0..6).map(|_| open_null()).collect(); // 3..=8
            set_cloexec(fds[1], false).unwrap();
            if close_listed(&kept_set(2, &[fds[4]])).is_err() {
                return 10;
            }
            let open: Vec<RawFd> = (3..64).filter(|&fd| is_open(fd)).collect();
            if open != vec![3, 4, 7] {
                return 11;
            }
            if mark_listed(4).is_err() {
                return 12;
            }
            // SAFETY: F_GETFD only reads flags.
            let cloexec = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
            if cloexec(4) && cloexec(7) {
                0
            } else {
                13
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn preserved_descriptors_must_be_open() {
        let code = in_child(|| {
            let _ = close_all_except(0, &[]);
            let a = open_null();
            if a != 3 || check_preserved(1, "--preserve-fds").is_err() {
                return 10;
            }
            match check_preserved(2, "--preserve-fds") {
                Err(e) if e.to_string().contains("descriptor 4 is not open") => 0,
                _ => 11,
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn exec_preparation_marks_all_but_preserved() {
        let code = in_child(|| {
            let _ = close_all_except(0, &[]);
            let file = std::fs::File::open("/dev/null").unwrap(); // 3, close-on-exec
            let plain = open_null();
            set_cloexec(plain, false).unwrap(); // 4, inherited
            let _ = file.as_raw_fd();
            if prepare_for_exec(1).is_err() {
                return 10;
            }
            // SAFETY: F_GETFD only reads flags.
            let flags = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) };
            if flags(3) & libc::FD_CLOEXEC == 0 && flags(4) & libc::FD_CLOEXEC != 0 {
                0
            } else {
                11
            }
        });
        assert_eq!(code, 0);
    }
}
