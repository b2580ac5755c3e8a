//! `exec`: start another process in a running container (runc's `exec`): it joins every
//! namespace of the container through init's pidfd, takes the container's process
//! settings unless overridden, and (unless detached) the runtime waits for it and exits
//! with its code.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::SigmaskHow;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::run::{forwardable_signals, wait_forwarding};
use crate::bail;
use crate::capabilities::CapSets;
use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::namespaces::clone_flag;
use crate::process::channel::{self, Message};
use crate::process::exec::{self as exec_child, ExecContext};
use crate::process::{clone_in_cgroup, kill_and_reap};
use crate::seccomp::notify;
use crate::state::{Record, StateDir, Status};
use crate::terminal;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    /// Exec into a paused container too (runc's `--ignore-paused`).
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLER:]PATH`: existing sub-cgroups of the container's to run in.
    pub sub_cgroups: Vec<String>,
}

/// The container's cgroup with `--cgroup` applied: each `[controller:]path` moves the
/// process into that existing sub-cgroup, in every hierarchy or in the one holding
/// `controller` (as runc's exec; on cgroup v2 the controller names the unified one).
fn exec_cgroup(cgroup: &Cgroup, specs: &[String]) -> Result<Cgroup> {
    let mut out = cgroup.clone();
    for spec in specs {
        let (controllers, path) = match spec.split_once(':') {
            Some((c, p)) => (Some(c.split(',').collect::<Vec<_>>()), p),
            None => (None, spec.as_str()),
        };
        // "/" is the container's own cgroup; anything else lies below it.
        let sub = Path::new(path.trim_start_matches('/'));
        let plain = sub
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            bail!(
                InvalidConfig,
                "--cgroup {spec:?}: {path} is not a sub cgroup path (relative to the container's cgroup, without \"..\")"
            );
        }
        let wanted = |name: &str| {
            controllers
                .as_ref()
                .is_none_or(|cs| name.split(',').any(|n| cs.contains(&n)))
        };
        let mut hit = false;
        for (name, dir) in out.v1.iter_mut() {
            if wanted(name) {
                *dir = cgroup.v1[name].join(sub);
                hit = true;
            }
        }
        // Pure v2: the one hierarchy, whatever the controller. Hybrid: the unified
        // hierarchy follows a controller-less --cgroup where the sub-cgroup exists there.
        if let (Some(dir), Some(base)) = (out.unified.as_mut(), cgroup.unified.as_ref()) {
            let below = base.join(sub);
            // On v2 a named controller must be one the container's cgroup has.
            let available =
                std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
            let known = controllers.as_ref().is_none_or(|cs| {
                cs.iter()
                    .all(|c| available.split_whitespace().any(|a| a == *c))
            });
            if (cgroup.v1.is_empty() && known) || (controllers.is_none() && below.is_dir()) {
                *dir = below;
                hit = true;
            }
        }
        if !hit {
            bail!(
                InvalidConfig,
                "--cgroup {spec:?}: unknown controller (the container has no cgroup with it)"
            );
        }
    }
    for dir in out.v1.values().chain(out.unified.iter()) {
        if !dir.is_dir() {
            // runc's words for it ("adding pid ... cgroup.procs: no such file"), which
            // tools match; patina checks before it moves anything.
            bail!(
                NotFound,
                "--cgroup: adding pid to {}/cgroup.procs: no such file or directory (exec joins an existing sub-cgroup)",
                dir.display()
            );
        }
    }
    Ok(out)
}

/// The container's state and its process defaults, for building the exec'd process.
pub fn load(root: &Path, id: &str) -> Result<(StateDir, Record)> {
    let dir = StateDir::new(root, id)?;
    let record = dir.load()?;
    Ok((dir, record))
}

pub fn exec(dir: &StateDir, record: &Record, process: &Process, opts: &ExecOptions) -> Result<i32> {
    match dir.status(record) {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => bail!(
            WrongState,
            "cannot exec in a paused container {:?} (resume it, or pass --ignore-paused)",
            dir.id
        ),
        other => bail!(
            WrongState,
            "cannot exec in container {:?}: it is {other}",
            dir.id
        ),
    }
    let Some(init) = super::pidfd_of(record.pid, record.pid_start)? else {
        bail!(
            WrongState,
            "cannot exec in container {:?}: it is stopped",
            dir.id
        );
    };
    if process.args().as_deref().is_none_or(|a| a.is_empty()) {
        bail!(
            InvalidConfig,
            "process.args: must name the program to run (it is empty)"
        );
    }
    crate::spec::check_env(process.env().as_deref().unwrap_or_default(), "process.env")?;
    let caps = process
        .capabilities()
        .as_ref()
        .map(CapSets::from_spec)
        .transpose()?;
    crate::lsm::validate_process(process)?;
    let compiled;
    let seccomp = match (&record.seccomp_filter, &record.seccomp) {
        (Some(filter), _) => Some(filter),
        (None, Some(profile)) => {
            compiled = crate::seccomp::compile(profile)?;
            Some(&compiled)
        }
        (None, None) => None,
    };
    let wants_tty = process.terminal().unwrap_or(false);
    let (relay_end, console) = console_for(wants_tty, opts)?;
    // Relayed by us: the pty starts with our terminal's size, before the program runs.
    let sized = relay_end.is_some().then(|| {
        let mut p = process.clone();
        terminal::inherit_size(&mut p);
        p
    });
    let process = sized.as_ref().unwrap_or(process);

    let (mut for_children, mut join) = split_namespaces(&record.namespaces);
    // Entering a pid namespace takes CAP_SYS_ADMIN in the caller's own user namespace too:
    // an unprivileged (rootless) runtime enters the container's user namespace with it,
    // in the same setns, and the exec'd process is born there.
    if !for_children.is_empty()
        && join.contains(CloneFlags::CLONE_NEWUSER)
        && !nix::unistd::geteuid().is_root()
    {
        for_children |= CloneFlags::CLONE_NEWUSER;
        join.remove(CloneFlags::CLONE_NEWUSER);
    }
    if !for_children.is_empty() {
        setns(&init, for_children)
            .context("enter the container's pid/time namespace for the exec'd process")?;
    }
    let (parent, child) = channel::pair()?;
    let ctx = ExecContext {
        init: &init,
        join,
        // beyond runc: runc 1.1.5's exec'd process keeps the host's root.
        root_of: record.host_mounts.is_some().then_some(record.pid),
        process,
        caps: caps.as_ref(),
        seccomp,
        console_socket: console.as_ref(),
        preserve_fds: opts.preserve_fds,
        session_keyring: (!record.no_new_keyring).then_some(record.id.as_str()),
    };
    // The exec'd process belongs to the container's cgroup from its first instruction.
    let cgroup = match (&record.cgroup, opts.sub_cgroups.is_empty()) {
        (Some(cg), false) => Some(exec_cgroup(cg, &opts.sub_cgroups)?),
        (None, false) => bail!(
            InvalidConfig,
            "--cgroup: container {:?} has no cgroup of its own",
            record.id
        ),
        (cg, true) => cg.clone(),
    };
    let body = |joined: Result<()>| {
        parent.close_copy_in_child();
        if let Err(e) = joined {
            let _ = child.send(&Message::failed(&e));
            return 1;
        }
        exec_child::run(&ctx, &child)
    };
    let pid = match clone_in_cgroup(CloneFlags::empty(), cgroup.as_ref(), body) {
        // A rootless scope (the user's systemd's) takes a process only from a cgroup
        // the user may write to up to their common ancestor: from a login session's
        // (root's) it cannot. As runc's rootless exec, the process then stays where the
        // caller is; under rootless podman (itself in a user scope) it joins.
        Err(e) if e.errno() == Some(nix::errno::Errno::EACCES) && user_scope(record) => {
            clone_in_cgroup(CloneFlags::empty(), None, body)?
        }
        other => other?,
    };
    drop(child);
    drop(console);
    let listener = seccomp.and_then(|s| s.listener.as_ref());
    let started = start_child(&parent, pid, relay_end.as_ref(), opts, |fd| {
        let Some((path, metadata)) = listener else {
            bail!("exec: the process sent a seccomp listener fd nobody asked for");
        };
        hand_to_listener(record, pid, path, metadata, fd)
    });
    let master = match started {
        Ok(master) => master,
        Err(e) => {
            kill_and_reap(pid);
            return Err(e);
        }
    };
    if opts.detach {
        return Ok(0);
    }
    let _raw = master.as_ref().map(|_| terminal::RawMode::enter());
    wait_forwarding(pid, &forwardable_signals(), master.as_ref())
}

/// The container's cgroup is a scope of a user's own systemd (rootless).
fn user_scope(record: &Record) -> bool {
    record
        .cgroup
        .as_ref()
        .and_then(|c| c.systemd.as_ref())
        .is_some_and(|u| u.user.is_some())
}

/// pid and time namespaces apply to children: the runtime enters those itself before
/// the clone; the exec'd process joins the rest.
fn split_namespaces(types: &[LinuxNamespaceType]) -> (CloneFlags, CloneFlags) {
    let mut for_children = CloneFlags::empty();
    let mut join = CloneFlags::empty();
    for &typ in types {
        match typ {
            LinuxNamespaceType::Pid | LinuxNamespaceType::Time => for_children |= clone_flag(typ),
            _ => join |= clone_flag(typ),
        }
    }
    (for_children, join)
}

/// (our end to receive a pty master on, the end the exec'd process sends it on).
fn console_for(wants_tty: bool, opts: &ExecOptions) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (&opts.console_socket, wants_tty) {
        (Some(path), true) => {
            let stream = UnixStream::connect(path)
                .with_context(|| format!("connect to --console-socket {:?}", path.display()))?;
            Ok((None, Some(OwnedFd::from(stream))))
        }
        (None, true) if opts.detach => {
            bail!(InvalidConfig, "process.terminal: cannot allocate a tty for a detached exec without --console-socket")
        }
        (None, true) => {
            terminal::require_controlling_terminal("--tty")?;
            let (ours, theirs) = terminal::relay_pair()?;
            Ok((Some(ours), Some(theirs)))
        }
        (_, false) => Ok((None, None)),
    }
}

/// SCMP_ACT_NOTIFY: the exec'd process's listener fd goes to listenerPath with the
/// container's state and the exec'd process's pid (runtime.md "containerProcessState").
fn hand_to_listener(
    record: &Record,
    pid: Pid,
    path: &Path,
    metadata: &str,
    fd: OwnedFd,
) -> Result<()> {
    let state = serde_json::to_string(&record.oci_state(Status::Running))
        .map_err(|e| Error::msg(format!("container state: {e}")))?;
    let document = notify::process_state(&record.oci_version, pid.as_raw(), metadata, &state);
    notify::send_to_listener(path, &document, &fd)
}

/// Let the child go, learn whether it exec'd, write the pid file; returns the pty master
/// when patina relays the terminal itself. A seccomp listener fd the child sends before
/// its execve goes to `on_listener_fd`.
fn start_child(
    parent: &channel::Channel,
    pid: Pid,
    relay_end: Option<&OwnedFd>,
    opts: &ExecOptions,
    on_listener_fd: impl FnOnce(OwnedFd) -> Result<()>,
) -> Result<Option<OwnedFd>> {
    if !opts.detach {
        // Blocked before the program starts, so no signal or exit is missed.
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwardable_signals()), None)
            .context("block signals")?;
    }
    parent.send(&Message::Go(String::new()))?;
    let master = match relay_end {
        // If the process failed before making its pty, say why rather than "no master".
        Some(socket) => Some(terminal::receive_master(socket).map_err(
            |e| match parent.recv() {
                Ok(Some(Message::Failed(kind, why))) => Error::new(kind, why),
                _ => e,
            },
        )?),
        None => None,
    };
    if let Some(master) = &master {
        terminal::clear_onlcr(master)?;
    }
    let mut message = parent.recv_with_fd()?;
    if let Some((Message::SeccompFd, Some(fd))) = message {
        on_listener_fd(fd)?;
        message = parent.recv_with_fd()?;
    }
    match message.map(|(m, _)| m) {
        None => {}
        Some(Message::Failed(kind, why)) => return Err(Error::new(kind, why)),
        Some(other) => {
            return Err(Error::msg(format!(
                "exec: unexpected {other:?} from the process"
            )))
        }
    }
    super::announce(
        pid.as_raw(),
        opts.pid_file.as_deref(),
        opts.pidfd_socket.as_deref(),
    )?;
    Ok(master)
}

/// runc's `exec` flags on top of the container's own process (config.json's).
#[derive(Debug, Clone, Default)]
pub struct ProcessOverrides {
    pub args: Vec<String>,
    pub tty: bool,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    /// `--apparmor`, `--process-label`: the exec'd process's LSM labels.
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

pub fn process_from_flags(base: Option<&Process>, o: &ProcessOverrides) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    if o.args.is_empty() {
        bail!(
            InvalidConfig,
            "exec: no command given (pass the command after the container id, or --process)"
        );
    }
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    crate::spec::check_env(&o.env, "--env")?;
    for entry in &o.env {
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &o.user {
        let mut u = p.user().clone();
        let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
        u.set_uid(uid.parse().map_err(|_| {
            Error::new(
                crate::Kind::InvalidConfig,
                format!("--user {user:?}: uid must be a number"),
            )
        })?);
        u.set_gid(if gid.is_empty() {
            0
        } else {
            gid.parse().map_err(|_| {
                Error::new(
                    crate::Kind::InvalidConfig,
                    format!("--user {user:?}: gid must be a number"),
                )
            })?
        });
        p.set_user(u);
    }
    if !o.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(u);
    }
    if !o.caps.is_empty() {
        p.set_capabilities(Some(add_caps(
            p.capabilities().clone().unwrap_or_default(),
            &o.caps,
        )?));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &o.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// `--cap X` adds X to the bounding, effective and permitted sets, as runc does.
fn add_caps(
    mut caps: oci_spec::runtime::LinuxCapabilities,
    names: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities> {
    use std::str::FromStr;
    for name in names {
        let cap = oci_spec::runtime::Capability::from_str(name.trim_start_matches("CAP_"))
            .map_err(|_| {
                Error::new(
                    crate::Kind::InvalidConfig,
                    format!("--cap {name:?}: unknown capability"),
                )
            })?;
        let add = |set: Option<oci_spec::runtime::Capabilities>| {
            let mut set = set.unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        let (b, e, p) = (
            add(caps.bounding().clone()),
            add(caps.effective().clone()),
            add(caps.permitted().clone()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(p);
    }
    Ok(caps)
}

pub fn read_process_file(path: &Path) -> Result<Process> {
    let raw =
        std::fs::read(path).with_context(|| format!("read --process {:?}", path.display()))?;
    let parse_error = |e: serde_json::Error| {
        Error::new(
            crate::Kind::InvalidConfig,
            format!("parse --process {:?}: {e}", path.display()),
        )
    };
    let mut value: serde_json::Value = serde_json::from_slice(&raw).map_err(parse_error)?;
    // The spec makes `user` required in config.json, but runc (and engines that write
    // a minimal process.json) take a missing one as uid 0, gid 0.
    if let Some(obj) = value.as_object_mut() {
        obj.entry("user")
            .or_insert_with(|| serde_json::json!({ "uid": 0, "gid": 0 }));
    }
    crate::spec::sched_flags_for_oci_spec(&mut value);
    serde_json::from_value(value).map_err(parse_error)
}
