//! `run`: create + start, then (unless detached) stay as the container's parent: forward
//! signals to it, wait for it, delete it, and return its exit code (128+N for signal N).

use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateOptions};
use super::{delete, start};
use crate::error::{Context, Result};
use crate::process::kill_and_reap;

pub fn run(root: &Path, id: &str, opts: &CreateOptions, detach: bool) -> Result<i32> {
    let created = create(root, id, opts)?;
    // Block before start so no signal or exit is missed between start and the wait loop.
    let forwarded = forwardable_signals();
    if !detach {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)
            .context("block signals")?;
    }
    let started = {
        let _lock = created.dir.lock()?;
        start::start_locked(&created.dir, &created.record)
    };
    if let Err(e) = started {
        kill_and_reap(created.pid);
        let _ = created.dir.remove();
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding(created.pid, &forwarded)?;
    let _lock = created.dir.lock()?;
    delete::destroy(&created.dir, &created.record)?;
    Ok(code)
}

fn forwardable_signals() -> SigSet {
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

/// Wait for init, passing on every signal we get (Ctrl-C, SIGTERM from a supervisor).
fn wait_forwarding(pid: Pid, set: &SigSet) -> Result<i32> {
    loop {
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        let signal = set.wait().context("wait for signals")?;
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(pid, signal);
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
