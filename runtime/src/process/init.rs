//! The container's init, from the clone until it execs the user program. It runs in the
//! new namespaces, talks to the runtime over the init channel, and reports any failure
//! with the step that failed, so `create` can print it.
//!
//! Order matters (runtime.md "Lifecycle", config.md "Hooks"): namespaces, mounts,
//! createRuntime hooks (runtime side), createContainer hooks, pivot_root, terminal,
//! read-only/masked paths, rlimits, credentials; then "ready", and the wait for `start`
//! on the exec fifo; then startContainer hooks and exec.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::unshare;
use nix::sys::stat::Mode;
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{Hook, Process};

use super::channel::{Channel, Message};
use crate::capabilities::CapSets;
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::seccomp::{Seccomp, When};
use crate::spec::Bundle;
use crate::{hooks, lsm, personality, rlimits, rootfs, scheduler, sysctl, terminal};

/// Everything init needs; it lives in memory init inherits from the runtime at clone.
pub struct InitContext<'a> {
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    /// The exec fifo, O_PATH: not a directory, so no path leads anywhere through it;
    /// reopened for writing through /proc/self/fd once setup is done, as runc does.
    pub exec_fifo: &'a OwnedFd,
    pub console_socket: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub caps: Option<&'a CapSets>,
    /// Join a new session keyring of this name (runc's default; `--no-new-keyring` off).
    pub new_keyring: Option<&'a str>,
    /// linux.seccomp, compiled by the runtime.
    pub seccomp: Option<&'a Seccomp>,
    /// The container's cgroup (init is already in it): what `type: cgroup` mounts show.
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// Idmapped mount trees the runtime made, by `mounts[]` index.
    pub idmapped: &'a [Option<OwnedFd>],
    /// An unprivileged runtime writes the maps (rootless.rs): init stays dumpable, so
    /// that its /proc files are the caller's, until the runtime says Go.
    pub dumpable_until_go: bool,
    /// The runtime is an unprivileged user: init waits for `start` dumpable (below).
    pub dumpable_while_waiting: bool,
    /// The runtime runs in a user namespace that does not map every id (rootless podman):
    /// init is in a user namespace even without one of its own.
    pub caller_in_user_ns: bool,
}

/// Entry point in the cloned child; never returns.
pub fn run(ctx: &InitContext<'_>, channel: &Channel) -> ! {
    let setup = keep_only_needed(ctx, channel, true)
        .and_then(|()| match ctx.dumpable_until_go {
            true => Ok(()),
            false => crate::exe_protect::protect(),
        })
        .and_then(|()| setup(ctx, channel));
    let code = match setup {
        Ok(ready) => {
            // Setup is done and reported: from here on, errors go to the program's stderr.
            let err = wait_and_exec(ctx, ready);
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("patina: {err}\n").as_bytes(),
            );
            127
        }
        Err(err) => {
            let _ = channel.send(&Message::failed(&err));
            1
        }
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to the runtime.
    unsafe { libc::_exit(code) }
}

/// Close every descriptor init inherited from the runtime but the ones it uses, before
/// it resolves any path the container controls (fds.rs). Until the mounts are made
/// (`setting_up`), that includes the namespaces to join (nsfs files, no way to a path)
/// and the idmapped trees (detached mounts of the container's own volumes); afterwards
/// no descriptor but the channel, the fifo and the console socket (none a directory).
fn keep_only_needed(ctx: &InitContext<'_>, channel: &Channel, setting_up: bool) -> Result<()> {
    let mut keep = vec![channel.as_raw_fd(), ctx.exec_fifo.as_raw_fd()];
    keep.extend(ctx.console_socket.map(|fd| fd.as_raw_fd()));
    if setting_up {
        keep.extend(ctx.idmapped.iter().flatten().map(|fd| fd.as_raw_fd()));
        keep.extend(ctx.plan.join_in_init.iter().map(|ns| ns.fd.as_raw_fd()));
    }
    crate::fds::close_all_except(ctx.preserve_fds, &keep)
        .context("close the runtime's descriptors in init")
}

/// What is left to do once init has said "ready".
struct Ready<'a> {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    start_hooks: Vec<Hook>,
    state_json: String,
    /// The filter, when it goes in just before execve.
    seccomp: Option<&'a Seccomp>,
}

/// The runtime's Go (with the state JSON for init's hooks), and the bind sources it
/// opened for init before it (mount_sources.rs), by `mounts[]` index.
fn wait_for_go(channel: &Channel) -> Result<(String, Vec<Option<OwnedFd>>)> {
    let mut sources = Vec::new();
    loop {
        match channel.recv_with_fd()? {
            Some((Message::Go(state), _)) => return Ok((state, sources)),
            Some((Message::BindSource(i), Some(fd))) => {
                super::mount_sources::place(&mut sources, i, fd)
            }
            other => {
                return Err(Error::msg(format!(
                    "init: expected go from the runtime, got {other:?}"
                )))
            }
        }
    }
}

fn setup<'a>(ctx: &InitContext<'a>, channel: &Channel) -> Result<Ready<'a>> {
    let spec = &ctx.bundle.spec;
    let process = spec.process().as_ref().expect("validated: process present");
    let (state_json, bind_sources) = wait_for_go(channel)?;
    if ctx.dumpable_until_go {
        // Non-dumpable, init's /proc files are global root's: its oom_score_adj could no
        // longer be written by init itself, which is still the caller here.
        set_oom_score_adj(process)?;
        crate::exe_protect::protect()?;
    }
    if ctx.plan.new_user {
        // Become root of the new user namespace, now that the maps exist.
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .context("setgid 0 in user namespace")?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .context("setuid 0 in user namespace")?;
    }
    for ns in &ctx.plan.join_in_init {
        namespaces::join(ns)?;
    }
    if ctx
        .plan
        .clone_flags
        .contains(nix::sched::CloneFlags::CLONE_NEWNET)
    {
        namespaces::bring_up_loopback()?;
    }
    if !ctx.plan.unshare_later.is_empty() {
        unshare(ctx.plan.unshare_later).context("unshare cgroup namespace")?;
    }
    nix::unistd::setsid().context("setsid")?;
    if let Some(name) = ctx.new_keyring {
        join_session_keyring(name)?;
    }
    set_names(spec)?;
    if !ctx.dumpable_until_go {
        set_oom_score_adj(process)?;
    }

    let in_user_ns = ctx.caller_in_user_ns
        || ctx
            .plan
            .has_own(oci_spec::runtime::LinuxNamespaceType::User);
    let own_cgroupns = ctx
        .plan
        .has_own(oci_spec::runtime::LinuxNamespaceType::Cgroup);
    let mounts = rootfs::mounts::MountContext {
        sys: &rootfs::syscalls::Host,
        idmapped: ctx.idmapped,
        bind_sources: &bind_sources,
        bundle: &ctx.bundle.dir,
        own_cgroupns,
        cgroup: ctx.cgroup,
    };
    let mount_ns = ctx.plan.mount_ns();
    rootfs::prepare(spec, &ctx.bundle.rootfs, in_user_ns, mount_ns, &mounts)
        .context("prepare rootfs")?;
    // Bound: the host paths they lead to go before anything else runs.
    drop(bind_sources);

    channel.send(&Message::RunCreateRuntimeHooks)?;
    channel.expect(&Message::HooksDone)?;
    let hooks = spec.hooks().as_ref();
    let create_container = hooks
        .and_then(|h| h.create_container().as_deref())
        .unwrap_or_default();
    // createContainer hooks start in the container's root, as runc's do (they write
    // relative paths into it). Without hooks nothing runs there before pivot_root, which
    // changes directory itself: the chdir would only cost a path walk on the hot path.
    if !create_container.is_empty() {
        nix::unistd::chdir(&ctx.bundle.rootfs).context("chdir to rootfs")?;
        hooks::run_all_with_env(
            "createContainer",
            create_container,
            state_json.as_bytes(),
            Some(&environment(process)),
        )?;
    }

    if !mount_ns {
        rootfs::host_ns::chroot_into(&ctx.bundle.rootfs)?;
    } else if ctx.no_pivot {
        rootfs::pivot::move_root(&ctx.bundle.rootfs)?;
    } else {
        rootfs::pivot::pivot(&ctx.bundle.rootfs)?;
    }
    // Namespaces are joined and idmapped trees attached: their descriptors go too.
    keep_only_needed(ctx, channel, false)?;
    reopen_dev_null()?;
    if process.terminal().unwrap_or(false) {
        let socket = ctx.console_socket.ok_or_else(|| {
            Error::new(
                crate::Kind::InvalidConfig,
                "process.terminal is true but no --console-socket was given",
            )
        })?;
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        terminal::setup(socket, size).context("process.terminal")?;
    }
    sysctl::apply(spec)?;
    rootfs::finalize(&rootfs::syscalls::Host, spec)?;
    let cwd_later = prepare_cwd(process)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    apply_process_attributes(spec, process)?;
    let no_new_privileges = process.no_new_privileges().unwrap_or(false);
    let seccomp_at = ctx.seccomp.map(|s| (s, s.when(no_new_privileges)));
    // Before any filter: a profile need not allow close_range or fcntl.
    crate::fds::prepare_for_exec(ctx.preserve_fds)?;
    if let Some((filter, When::BeforeUserSwitch)) = seccomp_at {
        install_seccomp(filter, channel)?;
    }
    switch_user(process, ctx.caps)?;
    cwd_later.enter_as_user(process)?;
    if no_new_privileges {
        nix::sys::prctl::set_no_new_privs().context("process.noNewPrivileges")?;
    }
    if let Some((filter, When::BeforeReady)) = seccomp_at {
        install_seccomp(filter, channel)?;
    }
    if let Some(mask) = process.user().umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    let env = environment(process);
    let args = process.args().as_deref().unwrap_or_default();
    let program = find_program(&args[0], &env)?;
    // wait_and_exec reopens the fifo through the container's procfs: say so now, at
    // create, if the container has none (as runc, patina needs a proc mount).
    nix::sys::stat::stat(fifo_link(ctx).as_str()).context(
        "the exec fifo is reopened through /proc/self/fd, and the container has no procfs at /proc (mounts)",
    )?;
    channel.send(&Message::Ready)?;
    channel.expect(&Message::Committed)?;
    Ok(Ready {
        program: cstring(program.as_os_str().as_bytes())?,
        argv: args
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .map(|e| cstring(e.as_bytes()))
            .collect::<Result<_>>()?,
        start_hooks: hooks
            .and_then(|h| h.start_container().clone())
            .unwrap_or_default(),
        state_json: with_status(&state_json, "created"),
        seccomp: seccomp_at
            .filter(|(_, when)| *when == When::BeforeExec)
            .map(|(s, _)| s),
    })
}

/// Personality, scheduler, I/O priority and memory policy: inherited by the program
/// through execve.
fn apply_process_attributes(spec: &oci_spec::runtime::Spec, process: &Process) -> Result<()> {
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        personality::apply(p)?;
    }
    if let Some(s) = process.scheduler() {
        scheduler::apply(s)?;
    }
    if let Some(p) = process.io_priority() {
        scheduler::apply_io(p)?;
    }
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        crate::mempolicy::apply(p)?;
    }
    Ok(())
}

/// Install the filter; a notify listener fd goes to the runtime (for init, before
/// "ready"; for an exec'd process, before its execve).
pub(crate) fn install_seccomp(filter: &Seccomp, channel: &Channel) -> Result<()> {
    if let Some(fd) = filter.install()? {
        channel.send_fd(&Message::SeccompFd, &fd)?;
    }
    Ok(())
}

/// The same state JSON with another status (startContainer hooks run in `created`).
fn with_status(state_json: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut state) => {
            state["status"] = status.into();
            state.to_string()
        }
        Err(_) => state_json.to_owned(),
    }
}

fn set_names(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(name).with_context(|| format!("hostname: set {name:?}"))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        nix::errno::Errno::result(rc).with_context(|| format!("domainname: set {name:?}"))?;
    }
    Ok(())
}

/// A fresh session keyring, so the container cannot read the host's keys; joined by
/// name, so exec'd processes share init's.
pub(crate) fn join_session_keyring(name: &str) -> Result<()> {
    let name = cstring(name.as_bytes())?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads a NUL-terminated name.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    match nix::errno::Errno::result(rc) {
        // Kernels without keys, or a seccomp-filtered keyctl on the host: nothing to isolate.
        Ok(_) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(Error::os(e, "join a new session keyring")),
    }
}

/// process.cwd is created if the image lacks it (as runc does), then entered.
pub(crate) fn prepare_cwd(process: &Process) -> Result<CwdLater> {
    let cwd = process.cwd();
    std::fs::create_dir_all(cwd)
        .with_context(|| format!("process.cwd: create {:?}", cwd.display()))?;
    enter_cwd(process)
}

/// A cwd the process' user may search but the runtime's may not (EACCES, EPERM: a
/// volume chowned to the container's user, mode 0700; a rootless runtime is only the
/// container's root) is entered after the user switch, as runc does.
#[must_use]
pub(crate) struct CwdLater(bool);

pub(crate) fn enter_cwd(process: &Process) -> Result<CwdLater> {
    let cwd = process.cwd();
    match nix::unistd::chdir(cwd) {
        Ok(()) => check_cwd_inside(cwd).map(|()| CwdLater(false)),
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => Ok(CwdLater(true)),
        Err(e) => Err(Error::os(
            e,
            format!("process.cwd: chdir to {:?}", cwd.display()),
        )),
    }
}

impl CwdLater {
    /// After the user switch: enter the cwd the runtime's user could not.
    pub(crate) fn enter_as_user(self, process: &Process) -> Result<()> {
        if !self.0 {
            return Ok(());
        }
        let cwd = process.cwd();
        nix::unistd::chdir(cwd).with_context(|| {
            format!(
                "process.cwd: chdir to {:?} as uid {}",
                cwd.display(),
                process.user().uid()
            )
        })?;
        check_cwd_inside(cwd)
    }
}

/// A cwd reached through a magic link (/proc/self/fd/N of a descriptor open in this
/// process) can lie outside the root (CVE-2024-21626): the kernel then reports it as
/// unreachable, which glibc's getcwd turns into ENOENT. No such descriptor is left open
/// by now (fds.rs); this checks it all the same, for init and exec'd processes alike.
pub(crate) fn check_cwd_inside(cwd: &Path) -> Result<()> {
    match std::env::current_dir() {
        Ok(dir) if dir.is_absolute() => Ok(()),
        _ => Err(Error::new(
            crate::Kind::InvalidConfig,
            format!(
                "process.cwd {:?}: resolves outside the container's root",
                cwd.display()
            ),
        )),
    }
}

fn set_oom_score_adj(process: &Process) -> Result<()> {
    match process.oom_score_adj() {
        Some(adj) => std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .with_context(|| format!("process.oomScoreAdj: write {adj}")),
        None => Ok(()),
    }
}

/// Groups, then gid, then uid with capabilities kept across, then the exact cap sets.
pub(crate) fn switch_user(process: &Process, caps: Option<&CapSets>) -> Result<()> {
    let user = process.user();
    if process.terminal().unwrap_or(false) {
        give_terminal_to(user.uid())?;
    }
    if let Some(caps) = caps {
        caps.drop_bounding()
            .context("process.capabilities.bounding")?;
    }
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        // Denied in a user namespace whose gid map an unprivileged runtime wrote
        // (rootless.rs): the list can never change, so there is nothing to drop. (Root of
        // the namespace, this process has CAP_SETGID: EPERM can only mean that.)
        Err(nix::errno::Errno::EPERM) if groups.is_empty() => {}
        other => other.context("process.user.additionalGids: setgroups")?,
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).with_context(|| format!("process.user.gid: setgid {gid}"))?;
    nix::sys::prctl::set_keepcaps(true).context("keep capabilities across setuid")?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).with_context(|| format!("process.user.uid: setuid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).context("reset keepcaps")?;
    match caps {
        Some(caps) => caps.apply().context("process.capabilities"),
        None => Ok(()),
    }
}

/// Stdio that is the host's /dev/null (an engine's stdin, say) becomes the container's
/// own /dev/null, as runc does: a descriptor of a file on no mount of the container is
/// one CRIU cannot checkpoint. Nothing changes where the container has no null device.
fn reopen_dev_null() -> Result<()> {
    use nix::sys::stat::{fstat, makedev, SFlag};
    use std::os::fd::{AsRawFd, BorrowedFd};
    let is_null = |st: &nix::sys::stat::FileStat| {
        SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFCHR
            && st.st_rdev == makedev(1, 3)
    };
    // Stdio first: usually pipes or a pty, and then /dev/null is not opened at all (this
    // runs on every container start).
    let nulls: Vec<i32> = (0..3)
        .filter(|&fd| {
            // SAFETY: 0-2 stay open for the whole of init; the borrow ends here.
            let stdio = unsafe { BorrowedFd::borrow_raw(fd) };
            fstat(stdio).is_ok_and(|st| is_null(&st))
        })
        .collect();
    if nulls.is_empty() {
        return Ok(());
    }
    let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(null) = nix::fcntl::open("/dev/null", flags, nix::sys::stat::Mode::empty()) else {
        return Ok(());
    };
    match fstat(&null) {
        Ok(st) if is_null(&st) => {}
        _ => return Ok(()),
    }
    for fd in nulls {
        crate::terminal::dup_onto(null.as_raw_fd(), fd)
            .map_err(|e| e.wrap(format!("reopen /dev/null as stdio {fd}")))?;
    }
    Ok(())
}

/// Hand the process its terminal (the user must be able to use and chmod their
/// console), as runc does: the owner becomes the process' uid, the group stays (the
/// devpts `gid=5` of the default config). runc does this to every stdio descriptor;
/// patina only to the pty it made for `process.terminal`, so the caller's own terminal,
/// a host file or a pipe it redirected stays the caller's (a container user owning the
/// operator's tty could write to it and, on kernels with TIOCSTI, type into it).
/// Descriptors already owned are left alone; EINVAL (group not mapped), EPERM (owner
/// not mapped) and EROFS (read-only /dev) leave it as it is rather than fail.
fn give_terminal_to(uid: u32) -> Result<()> {
    use nix::sys::stat::fstat;
    use std::os::fd::{AsRawFd, BorrowedFd};
    for fd in 0..3 {
        // SAFETY: 0-2 stay open for the whole of init; the borrow ends in this iteration.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if !nix::unistd::isatty(fd).unwrap_or(false) {
            continue;
        }
        let st = match fstat(fd) {
            Ok(st) => st,
            Err(nix::errno::Errno::EBADF) => continue,
            Err(e) => return Err(Error::os(e, format!("fstat stdio {}", fd.as_raw_fd()))),
        };
        if st.st_uid == uid {
            continue;
        }
        let owner = Some(Uid::from_raw(uid));
        match nix::unistd::fchown(fd, owner, Some(Gid::from_raw(st.st_gid))) {
            Ok(()) => {}
            Err(
                nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM | nix::errno::Errno::EROFS,
            ) => {}
            Err(e) => {
                return Err(Error::os(
                    e,
                    format!("chown stdio {} to uid {uid}", fd.as_raw_fd()),
                ))
            }
        }
    }
    Ok(())
}

/// process.env, plus HOME when absent (as runc does, from /etc/passwd or "/").
/// A variable given twice keeps its last value (as execve's callers expect, and runc
/// does), in the place of its last occurrence; an empty HOME counts as none.
pub(crate) fn environment(process: &Process) -> Vec<String> {
    let given: Vec<String> = process.env().clone().unwrap_or_default();
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut seen = std::collections::HashSet::new();
    let mut env: Vec<String> = Vec::with_capacity(given.len() + 1);
    for e in given.iter().rev() {
        if seen.insert(key(e)) {
            env.push(e.clone());
        }
    }
    env.reverse();
    env.retain(|e| e != "HOME=");
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    env
}

fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_owned())
        .unwrap_or_else(|| "/".to_owned())
}

/// Resolve args[0] as execvp would, with the container's PATH, so that a missing
/// program fails `create` rather than a started container.
pub fn find_program(name: &str, env: &[String]) -> Result<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file())
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return if executable(&path) {
            Ok(path)
        } else {
            Err(Error::msg(format!(
                "exec: {name:?}: not found or not executable"
            )))
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| executable(p))
        .ok_or_else(|| {
            Error::msg(format!(
                "exec: {name:?}: executable file not found in $PATH"
            ))
        })
}

pub(crate) fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::msg("argument or environment entry contains a NUL byte"))
}

fn fifo_link(ctx: &InitContext<'_>) -> String {
    format!("/proc/self/fd/{}", ctx.exec_fifo.as_raw_fd())
}

/// Block until `start` opens the exec fifo, then hooks and exec. Returns only on failure.
fn wait_and_exec(ctx: &InitContext<'_>, ready: Ready<'_>) -> Error {
    // `exec` before `start` enters init's namespaces through its pidfd, which the kernel
    // allows on a non-dumpable process only to a caller with CAP_SYS_PTRACE over init's
    // memory's user namespace (the host's: init was cloned, not exec'd): never an
    // unprivileged runtime. By now init is what the program will be (its user,
    // capabilities, no_new_privs; its exe a sealed copy, exe_protect.rs) and holds only the
    // exec fifo and the spent channel, so it waits dumpable, as runc's init does.
    if ctx.dumpable_while_waiting {
        if let Err(e) = nix::sys::prctl::set_dumpable(true) {
            return Error::os(
                e,
                "make init dumpable for exec before start (PR_SET_DUMPABLE)",
            );
        }
    }
    let fifo = nix::fcntl::open(
        fifo_link(ctx).as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let fifo = match fifo {
        Ok(fd) => fd,
        Err(e) => {
            return Error::os(
                e,
                "open the exec fifo (through the container's /proc/self/fd) to wait for start",
            )
        }
    };
    // startContainer hooks run in the container, so under its filter, as runc's do: a
    // profile then binds everything that runs there. Without such hooks the filter
    // waits until just before execve (fewer of patina's own calls need its leave).
    let filter_hooks = !ready.start_hooks.is_empty();
    if let Some(filter) = ready.seccomp.filter(|_| filter_hooks) {
        if let Err(e) = filter.install() {
            return e;
        }
    }
    let env = ctx.bundle.spec.process().as_ref().map(environment);
    if let Err(e) = hooks::run_all_with_env(
        "startContainer",
        &ready.start_hooks,
        ready.state_json.as_bytes(),
        env.as_deref(),
    ) {
        return e;
    }
    // The byte says "started"; the fifo stays open (close-on-exec) so that `start` sees
    // EOF exactly when the program has been exec'd, and runs poststart only then.
    if let Err(e) = nix::unistd::write(&fifo, b"0") {
        return Error::os(e, "signal start through the exec fifo");
    }
    std::mem::forget(fifo);
    reset_signals();
    if let Some(process) = ctx.bundle.spec.process() {
        if let Err(e) = lsm::apply_exec_labels(process) {
            return e;
        }
    }
    // Last: from here on the profile filters every syscall, the exec included.
    if let Some(filter) = ready.seccomp.filter(|_| !filter_hooks) {
        if let Err(e) = filter.install() {
            return e;
        }
    }
    match nix::unistd::execve(&ready.program, &ready.argv, &ready.envp) {
        Err(e) => Error::os(e, format!("exec {:?}", ready.program)),
        Ok(never) => match never {},
    }
}

/// Rust ignores SIGPIPE at start-up and the runtime may block signals: the program must
/// start with the default dispositions and an empty mask.
pub(crate) fn reset_signals() {
    use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
    // SAFETY: restoring default dispositions installs no Rust handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}
