//! `run`: create + start, then (unless detached) stay as the container's parent: forward
//! signals to it, relay its terminal when it has one and no `--console-socket` was
//! given, wait for it, delete it (unless `--keep`), and return its exit code (128+N for
//! signal N).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create_from_bundle, CreateOptions, Created};
use super::{delete, start};
use crate::bail;
use crate::error::{Context, Result};
use crate::spec::Bundle;
use crate::terminal;

/// What `run` does once the container is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Return at once (`--detach`).
    Detach,
    /// Wait for it, then delete it (the default).
    Delete,
    /// Wait for it and leave it stopped (`--keep`).
    Keep,
}

pub fn run(root: &Path, id: &str, opts: &CreateOptions, after: After) -> Result<i32> {
    crate::state::check_id(id)?;
    let detach = after == After::Detach;
    let mut bundle = Bundle::load(&opts.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let relay = terminal && opts.console_socket.is_none();
    if relay && detach {
        bail!(InvalidConfig, "process.terminal: cannot allocate a tty for a detached container without --console-socket");
    }
    if relay {
        terminal::require_controlling_terminal("process.terminal")?;
        if let Some(process) = bundle.spec.process_mut() {
            terminal::inherit_size(process);
        }
    }
    let (ours, theirs) = match relay {
        true => terminal::relay_pair().map(|(a, b)| (Some(a), Some(b)))?,
        false => (None, None),
    };
    let created = create_from_bundle(root, id, bundle, opts, theirs)?;
    let master = match &ours {
        Some(socket) => match terminal::receive_master(socket)
            .and_then(|m| terminal::clear_onlcr(&m).map(|()| m))
        {
            Ok(master) => Some(master),
            Err(e) => {
                created.abandon();
                return Err(e);
            }
        },
        None => None,
    };
    // Block before start so no signal or exit is missed between start and the wait loop.
    let forwarded = forwardable_signals();
    if !detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)
            .context("block signals")?;
    }
    // Still under the lock create took, so nothing sees the container half-started.
    if let Err(e) = start::start_locked(&created.dir, &created.record) {
        // What init wrote on its way out (a failing startContainer hook's stderr and
        // init's own error) is on the pty: the caller sees it, as with runc.
        if let Some(master) = &master {
            drain(master);
        }
        created.abandon();
        return Err(e);
    }
    let Created {
        dir,
        record,
        pid,
        lock,
    } = created;
    drop(lock);
    if detach {
        return Ok(0);
    }
    let code = {
        let _raw = master.as_ref().map(|_| terminal::RawMode::enter());
        wait_forwarding(pid, &forwarded, master.as_ref())?
    };
    if after == After::Delete {
        let _lock = dir.lock()?;
        delete::destroy(&dir, &record)?;
    }
    Ok(code)
}

pub(crate) fn forwardable_signals() -> SigSet {
    let mut set = SigSet::all();
    for sync in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(sync);
    }
    set
}

/// Wait for init, passing on every signal we get (Ctrl-C, SIGTERM from a supervisor),
/// and copying between our stdio and the container's pty if it has one.
pub(crate) fn wait_forwarding(pid: Pid, set: &SigSet, master: Option<&OwnedFd>) -> Result<i32> {
    let signals = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    if let Some(master) = master {
        terminal::copy_size_to(master);
    }
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(master) = master.filter(|_| master_open) {
                drain(master);
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(master) = master {
            if master_open {
                fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context("poll")?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let signal = info.ssi_signo as i32;
                match Signal::try_from(signal) {
                    Ok(Signal::SIGCHLD) => {}
                    Ok(Signal::SIGWINCH) if master.is_some() => {
                        terminal::copy_size_to(master.unwrap())
                    }
                    _ => {
                        // SAFETY: kill(2) on init's pid, which we are the parent of.
                        unsafe { libc::kill(pid.as_raw(), signal) };
                    }
                }
            }
        }
        if let Some(master) = master {
            let mut next = 1;
            if master_open {
                if ready[next] {
                    master_open = copy(master.as_raw_fd(), 1);
                }
                next += 1;
            }
            if stdin_open && ready.get(next).copied().unwrap_or(false) {
                stdin_open = copy(0, master.as_raw_fd());
            }
        }
    }
}

/// Copy one chunk; false once the source is done (EOF, or EIO from a pty whose slave closed).
fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 16 * 1024];
    // SAFETY: read/write on descriptor numbers into a buffer we own.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EAGAIN;
    }
    let mut done = 0;
    while done < n as usize {
        // SAFETY: as above.
        let w =
            unsafe { libc::write(to, buf[done..n as usize].as_ptr().cast(), n as usize - done) };
        if w <= 0 {
            return false;
        }
        done += w as usize;
    }
    true
}

/// Output the program wrote just before exiting is still in the pty: pass it on.
fn drain(master: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while copy(master.as_raw_fd(), 1) {
        let mut probe = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut probe, PollTimeout::ZERO), Ok(n) if n > 0) {
            break;
        }
    }
}

fn reap(pid: Pid) -> Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)).context("wait for container")? {
        WaitStatus::Exited(_, code) => Ok(Some(code)),
        WaitStatus::Signaled(_, signal, _) => Ok(Some(128 + signal as i32)),
        _ => Ok(None),
    }
}
