//! The process `patina exec` starts: a clone of the runtime that joins the namespaces of
//! the container's init (one setns(2) on init's pidfd), takes the process settings,
//! and execs. Failures before execve go back over the channel; success is the channel
//! closing (its fd is close-on-exec).

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chroot, fchdir};
use oci_spec::runtime::Process;

use super::channel::{Channel, Message};
use super::init::{
    cstring, enter_cwd, environment, find_program, install_seccomp, join_session_keyring,
    reset_signals, switch_user,
};
use crate::capabilities::CapSets;
use crate::error::{Context, Error, Result};
use crate::seccomp::{Seccomp, When};
use crate::{rlimits, terminal};

pub struct ExecContext<'a> {
    /// pidfd of the container's init: the namespaces are joined through it.
    pub init: &'a OwnedFd,
    /// Namespaces to join here (pid and time were entered by the runtime for its children).
    pub join: CloneFlags,
    /// init's pid, when the container has no mount namespace to join: the process takes
    /// init's root (its chroot) instead.
    pub root_of: Option<i32>,
    pub process: &'a Process,
    pub caps: Option<&'a CapSets>,
    /// The container's seccomp filter, which exec'd processes get too.
    pub seccomp: Option<&'a Seccomp>,
    pub console_socket: Option<&'a OwnedFd>,
    pub preserve_fds: i32,
    /// The container's session keyring (named after it), unless created with
    /// `--no-new-keyring`: the exec'd process must not keep the caller's (as runc).
    pub session_keyring: Option<&'a str>,
}

pub fn run(ctx: &ExecContext<'_>, channel: &Channel) -> ! {
    let ready = keep_only_needed(ctx, channel)
        .and_then(|()| crate::exe_protect::protect())
        .and_then(|()| channel.recv());
    let err = match ready {
        Ok(Some(Message::Go(_))) => become_program(ctx, channel),
        other => Error::msg(format!("exec: expected go from the runtime, got {other:?}")),
    };
    let _ = channel.send(&Message::failed(&err));
    // SAFETY: leave without running the runtime's exit handlers in the child.
    unsafe { libc::_exit(1) }
}

/// Close every descriptor inherited from the runtime (the container's host cgroup
/// directory among them) but the channel, init's pidfd and the console socket, before
/// any path the container controls is resolved (fds.rs).
fn keep_only_needed(ctx: &ExecContext<'_>, channel: &Channel) -> Result<()> {
    use std::os::fd::AsRawFd;
    let mut keep = vec![channel.as_raw_fd(), ctx.init.as_raw_fd()];
    keep.extend(ctx.console_socket.map(|fd| fd.as_raw_fd()));
    crate::fds::close_all_except(ctx.preserve_fds, &keep)
        .context("close the runtime's descriptors in the exec'd process")
}

/// Returns only on failure.
fn become_program(ctx: &ExecContext<'_>, channel: &Channel) -> Error {
    match prepare(ctx, channel) {
        Ok((program, argv, envp)) => {
            reset_signals();
            if let Err(e) = crate::lsm::apply_exec_labels(ctx.process) {
                return e;
            }
            // Last: from here on the profile filters every syscall, the exec included. A
            // notify listener fd goes to the runtime first, which hands it to listenerPath.
            let nnp = ctx.process.no_new_privileges().unwrap_or(false);
            let last = |f: &&Seccomp| matches!(f.when(nnp), When::BeforeExec | When::BeforeReady);
            if let Some(filter) = ctx.seccomp.filter(last) {
                if let Err(e) = install_seccomp(filter, channel) {
                    return e;
                }
            }
            match nix::unistd::execve(&program, &argv, &envp) {
                Err(e) => Error::os(e, format!("exec {program:?}")),
                Ok(never) => match never {},
            }
        }
        Err(e) => e,
    }
}

/// Take the root of init (`pid`, whose pidfd is `init`): opened through
/// /proc/<pid>/root, then checked to be init's still (the pidfd outlives a reused pid),
/// then chrooted into through the handle, which is closed at once.
#[cold]
fn enter_root_of(init: &OwnedFd, pid: i32) -> Result<()> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = open(format!("/proc/{pid}/root").as_str(), flags, Mode::empty())
        .context("open the root of the container's init (no mount namespace)")?;
    crate::container::send_signal(init, 0).map_err(|e| e.wrap("the container's init exited"))?;
    fchdir(&root).context("chdir to the container's root")?;
    drop(root);
    chroot(".").context("chroot to the container's root (no mount namespace)")?;
    nix::unistd::chdir("/").context("chdir to new /")
}

type Argv = (
    std::ffi::CString,
    Vec<std::ffi::CString>,
    Vec<std::ffi::CString>,
);

fn prepare(ctx: &ExecContext<'_>, channel: &Channel) -> Result<Argv> {
    let process = ctx.process;
    if let Some(pid) = ctx.root_of {
        // Before setns: chroot needs CAP_SYS_CHROOT, still whole here.
        enter_root_of(ctx.init, pid)?;
    }
    if !ctx.join.is_empty() {
        setns(ctx.init.as_fd(), ctx.join).context("join the container's namespaces")?;
    }
    nix::unistd::setsid().context("setsid")?;
    if let Some(name) = ctx.session_keyring {
        join_session_keyring(name)?;
    }
    if process.terminal().unwrap_or(false) {
        let socket = ctx.console_socket.ok_or_else(|| {
            Error::msg("process.terminal is true but no console socket was given")
        })?;
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        terminal::setup_without_console(socket, size).context("process.terminal")?;
    }
    let cwd_later = enter_cwd(process)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Before any filter: a profile need not allow close_range or fcntl.
    crate::fds::prepare_for_exec(ctx.preserve_fds)?;
    if let Some(filter) = ctx
        .seccomp
        .filter(|f| f.when(nnp) == When::BeforeUserSwitch)
    {
        // Without no_new_privs the kernel wants CAP_SYS_ADMIN: install while privileged.
        install_seccomp(filter, channel)?;
    }
    switch_user(process, ctx.caps)?;
    cwd_later.enter_as_user(process)?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("process.noNewPrivileges")?;
    }
    if let Some(mask) = process.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let env = environment(process);
    let args = process.args().as_deref().unwrap_or_default();
    let Some(first) = args.first() else {
        return Err(Error::msg(
            "process.args: must name the program to run (it is empty)",
        ));
    };
    let program = find_program(first, &env)?;
    use std::os::unix::ffi::OsStrExt;
    let argv = args
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<_>>()?;
    let envp = env
        .iter()
        .map(|e| cstring(e.as_bytes()))
        .collect::<Result<_>>()?;
    Ok((cstring(program.as_os_str().as_bytes())?, argv, envp))
}
