//! Container operations, one file each, as the CLI and the shim call them.

pub mod create;
pub mod delete;
pub mod events;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod start;
pub mod state;
pub mod update;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Context, Error, Result};

/// A pidfd for `pid`, checked to still be the process started at `start`, so that a
/// signal never reaches a process that reused the pid.
pub fn pidfd_of(pid: i32, start: u64) -> Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return match nix::errno::Errno::last() {
            nix::errno::Errno::ESRCH => Ok(None),
            e => Err(Error::os(e, format!("pidfd_open {pid}"))),
        };
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    Ok(crate::state::process_is(pid, start).then_some(fd))
}

pub fn send_signal(pidfd: &OwnedFd, signal: i32) -> Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo behaves like kill(2).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    nix::errno::Errno::result(rc)
        .map(drop)
        .with_context(|| format!("send signal {signal}"))
}

/// Wait until the process behind `pidfd` has exited (a pidfd polls readable then).
pub fn wait_exit(pidfd: &OwnedFd, limit: Duration) -> Result<()> {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(limit.as_millis().min(i32::MAX as u128) as i32)
        .unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, ms).context("wait for the container to exit")? {
        0 => Err(Error::msg(format!(
            "container did not exit within {}s",
            limit.as_secs()
        ))),
        _ => Ok(()),
    }
}
