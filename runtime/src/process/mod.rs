//! Processes the runtime makes: init (cloned straight into its new namespaces) and the
//! channel it talks over during `create`.

pub mod channel;
pub mod exec;
pub mod init;
pub mod mount_sources;

use std::os::fd::{AsRawFd, BorrowedFd};

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

/// [`clone_into`], with the child born in the cgroup2 directory `cgroup` (clone3's
/// CLONE_INTO_CGROUP): no migration afterwards, so no wait for the RCU grace period a
/// cgroup.procs write costs. Falls back to plain clone (returning false) on kernels
/// without clone3 or CLONE_INTO_CGROUP (< 5.7), for the caller to migrate the child.
pub fn clone_into_cgroup(
    flags: CloneFlags,
    cgroup: BorrowedFd<'_>,
    child: impl FnOnce() -> i32,
) -> Result<(Pid, bool)> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: clone3 without a stack behaves like fork (the child continues on a copy of
    // ours, no CLONE_VM); args is a complete clone_args (VER2) that outlives the call;
    // patina runs single-threaded, as for clone_into.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => match nix::errno::Errno::last() {
            nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG => {
                clone_into(flags, child).map(|pid| (pid, false))
            }
            e => Err(e).context("clone init into its namespaces and cgroup"),
        },
        0 => {
            let code = child();
            // SAFETY: leave without running the runtime's exit handlers in the child.
            unsafe { libc::_exit(code) }
        }
        pid => Ok((Pid::from_raw(pid as i32), true)),
    }
}

/// Kill and reap a child that must not outlive a failed operation.
pub fn kill_and_reap(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Clone a child that starts its life inside `cgroup` (every hierarchy, see
/// [`crate::cgroups::Joiner`]): born in the cgroup2 directory when the kernel can, joining
/// the v1 hierarchies itself first thing. `child` gets the outcome of that join, to
/// report a failure its own way. Without a cgroup it is a plain [`clone_into`].
pub fn clone_in_cgroup(
    flags: CloneFlags,
    cgroup: Option<&crate::cgroups::Cgroup>,
    child: impl FnOnce(Result<()>) -> i32,
) -> Result<Pid> {
    let Some(cgroup) = cgroup else {
        return clone_into(flags, || child(Ok(())));
    };
    let joiner = cgroup.joiner()?;
    let child_main = || child(joiner.join_self());
    let (pid, joined) = match &joiner.unified {
        Some(fd) => clone_into_cgroup(flags, std::os::fd::AsFd::as_fd(fd), child_main)?,
        None => (clone_into(flags, child_main)?, true),
    };
    drop(joiner);
    if !joined {
        if let Err(e) = cgroup.join(pid.as_raw()) {
            kill_and_reap(pid);
            return Err(e);
        }
    }
    Ok(pid)
}
