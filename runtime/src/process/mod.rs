//! Processes the runtime makes: init (cloned straight into its new namespaces) and the
//! channel it talks over during `create`.

pub mod channel;
pub mod exec;
pub mod init;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::{Context, Result};

/// clone(2) into new namespaces, fork-style (no new stack: the child continues on a
/// copy of ours). One syscall creates init inside every new namespace at once, pid 1
/// of a new pid namespace included, which unshare cannot do for the caller itself.
pub fn clone_into(flags: CloneFlags, child: impl FnOnce() -> i32) -> Result<Pid> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: without CLONE_VM the child gets its own copy of the address space, as with
    // fork; patina runs single-threaded, so no lock can be held by another thread.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(nix::errno::Errno::last()).context("clone init into its namespaces"),
        0 => {
            let code = child();
            // SAFETY: leave without running the runtime's exit handlers in the child.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// Kill and reap a child that must not outlive a failed operation.
pub fn kill_and_reap(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}
