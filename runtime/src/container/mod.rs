//! Container operations, one file each, as the CLI and the shim call them.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
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

/// Tell the caller about a started process: `--pid-file` (written atomically) and
/// `--pidfd-socket` (a pidfd sent over SCM_RIGHTS, as runc 1.2 does), so an engine can
/// signal it without pid-reuse races.
pub fn announce(
    pid: i32,
    pid_file: Option<&std::path::Path>,
    pidfd_socket: Option<&std::path::Path>,
) -> Result<()> {
    if let Some(path) = pid_file {
        crate::state::write_atomically(path, pid.to_string().as_bytes())
            .with_context(|| format!("write --pid-file {:?}", path.display()))?;
    }
    if let Some(path) = pidfd_socket {
        send_pidfd(pid, path).with_context(|| format!("--pidfd-socket {:?}", path.display()))?;
    }
    Ok(())
}

fn send_pidfd(pid: i32, path: &std::path::Path) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(path).context("connect")?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = nix::errno::Errno::result(fd).context("pidfd_open")? as i32;
    // SAFETY: the kernel just returned this descriptor to us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let fds = [pidfd.as_raw_fd()];
    let name = format!("pidfd:{pid}");
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[std::io::IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .context("send pidfd")
}

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

/// Wait until the process behind `pidfd` has exited, or is irrevocably exiting: the
/// init of a pid namespace stays in exit until every process of the namespace has been
/// reaped, including ones whose parent is outside (an exec'd process of an engine that
/// reaps later), so PF_EXITING is where "dead" is decided.
pub fn wait_exit(pidfd: &OwnedFd, pid: i32, limit: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(10u16)).context("wait for the container to exit")? > 0
            || exiting(pid)
        {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::msg(format!(
                "container did not exit within {}s",
                limit.as_secs()
            )));
        }
    }
}

/// PF_EXITING in /proc/PID/stat's flags (field 9).
fn exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return false;
    };
    after
        .split(' ')
        .nth(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_EXITING != 0)
}
