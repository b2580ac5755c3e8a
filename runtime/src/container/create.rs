//! `create`: runtime.md "create" — set the container up and leave its init blocked
//! before the user program, then return.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{chown, mkfifo, Gid, Pid, Uid};
use oci_spec::runtime::{Hooks, LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::bail;
use crate::capabilities::CapSets;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::process::channel::{self, Channel, Message};
use crate::process::init::{self, InitContext};
use crate::process::{clone_into, kill_and_reap};
use crate::seccomp::{notify, Seccomp};
use crate::spec::Bundle;
use crate::state::{self, Record, StateDir, Status};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
}

/// A container in the `created` state; `pid` is a child of this process.
#[derive(Debug)]
pub struct Created {
    pub dir: StateDir,
    pub record: Record,
    pub pid: Pid,
}

pub fn create(root: &Path, id: &str, opts: &CreateOptions) -> Result<Created> {
    create_with_console(root, id, opts, None)
}

/// `create`, with an already connected console socket (used by `run` to relay a tty).
pub fn create_with_console(
    root: &Path,
    id: &str,
    opts: &CreateOptions,
    console: Option<OwnedFd>,
) -> Result<Created> {
    crate::exe_protect::protect()?;
    let dir = StateDir::new(root, id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let linux = bundle.spec.linux().as_ref();
    let plan = Plan::from_spec(linux)?;
    if !plan.mount_ns() {
        bail!("linux.namespaces: a mount namespace is required (patina will not pivot the host's root)");
    }
    let process = bundle.spec.process().as_ref().expect("validated");
    let caps = process
        .capabilities()
        .as_ref()
        .map(CapSets::from_spec)
        .transpose()?;
    for limit in process.rlimits().iter().flatten() {
        if crate::rlimits::resource(&limit.typ().to_string()).is_none() {
            bail!("process.rlimits: unknown type {}", limit.typ());
        }
    }
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    let terminal = process.terminal().unwrap_or(false);
    let console = match (&opts.console_socket, console) {
        (_, Some(fd)) => Some(fd),
        (Some(path), None) => Some(connect_console(path)?),
        (None, None) if terminal => {
            bail!("process.terminal: cannot allocate a tty without --console-socket (patina would not be there to relay it)")
        }
        (None, None) => None,
    };
    dir.create()?;
    let security = Security {
        caps: caps.as_ref(),
        seccomp: seccomp.as_ref(),
    };
    let spawned = spawn(&dir, &bundle, &plan, &security, console.as_ref(), opts);
    let (record, pid) = match spawned {
        Ok(done) => done,
        Err(e) => {
            let _ = dir.remove();
            return Err(e);
        }
    };
    Ok(Created { dir, record, pid })
}

fn connect_console(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .with_context(|| format!("connect to --console-socket {:?}", path.display()))?;
    Ok(OwnedFd::from(stream))
}

/// From the state dir on: clone init and walk it through setup. On any failure the
/// caller removes the state dir; init (and with it every mount it made, all in its own
/// mount namespace) is killed here.
/// What init applies to the process last: capabilities and the seccomp filter.
struct Security<'a> {
    caps: Option<&'a CapSets>,
    seccomp: Option<&'a Seccomp>,
}

fn spawn(
    dir: &StateDir,
    bundle: &Bundle,
    plan: &Plan,
    security: &Security<'_>,
    console: Option<&OwnedFd>,
    opts: &CreateOptions,
) -> Result<(Record, Pid)> {
    let spec = &bundle.spec;
    let fifo = dir.fifo_path();
    mkfifo(&fifo, Mode::from_bits_truncate(0o622)).context("create exec fifo")?;
    let (uid, gid) = host_ids_of_user(spec);
    chown(&fifo, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).context("chown exec fifo")?;
    let state_dir = open(
        &dir.path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open state dir")?;
    let (parent, child) = channel::pair()?;
    enter_namespaces_for_children(plan, spec)?;

    let ctx = InitContext {
        bundle,
        plan,
        state_dir: &state_dir,
        console_socket: console,
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        caps: security.caps,
        new_keyring: (!opts.no_new_keyring).then_some(dir.id.as_str()),
        seccomp: security.seccomp,
    };
    let pid = clone_into(plan.clone_flags, || {
        parent.close_copy_in_child();
        init::run(&ctx, &child)
    })?;
    drop(child);
    let result = drive_init(dir, bundle, plan, &parent, pid, security.seccomp);
    if result.is_err() {
        kill_and_reap(pid);
    }
    let record = result?;
    if let Some(pid_file) = &opts.pid_file {
        state::write_atomically(pid_file, pid.as_raw().to_string().as_bytes())
            .with_context(|| format!("write --pid-file {:?}", pid_file.display()))
            .inspect_err(|_| kill_and_reap(pid))?;
    }
    Ok((record, pid))
}

fn enter_namespaces_for_children(plan: &Plan, spec: &Spec) -> Result<()> {
    for ns in &plan.join_before_clone {
        namespaces::join(ns)?;
    }
    if plan.new_time {
        namespaces::unshare_time(spec.linux().as_ref())?;
    }
    Ok(())
}

fn drive_init(
    dir: &StateDir,
    bundle: &Bundle,
    plan: &Plan,
    parent: &Channel,
    pid: Pid,
    seccomp: Option<&Seccomp>,
) -> Result<Record> {
    let spec = &bundle.spec;
    if plan.new_user {
        namespaces::write_id_maps(
            pid.as_raw(),
            spec.linux().as_ref().expect("user ns implies linux"),
        )?;
    }
    let (pid_start, _) = state::proc_stat(pid.as_raw())
        .ok_or_else(|| Error::msg("container init exited during create"))?;
    let record = Record {
        oci_version: spec.version().clone(),
        id: dir.id.clone(),
        pid: pid.as_raw(),
        pid_start,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        hooks: spec.hooks().as_ref().map(later_hooks),
        own_pid_ns: plan.has_own(LinuxNamespaceType::Pid),
    };
    let creating =
        serde_json::to_string(&record.oci_state(Status::Creating)).expect("state serialises");
    parent.send(&Message::Go(creating.clone()))?;
    parent
        .expect(&Message::RunCreateRuntimeHooks)
        .map_err(|e| e.wrap("container init"))?;
    if let Some(h) = spec.hooks() {
        hooks::run_all(
            "prestart",
            h.prestart().as_deref().unwrap_or_default(),
            creating.as_bytes(),
        )?;
        hooks::run_all(
            "createRuntime",
            h.create_runtime().as_deref().unwrap_or_default(),
            creating.as_bytes(),
        )?;
    }
    parent.send(&Message::HooksDone)?;
    if let Some((path, metadata)) = seccomp.and_then(|s| s.listener.as_ref()) {
        let fd = parent
            .expect_fd(&Message::SeccompFd)
            .map_err(|e| e.wrap("container init"))?;
        let document = notify::process_state(spec.version(), pid.as_raw(), metadata, &creating);
        notify::send_to_listener(path, &document, &fd)?;
    }
    parent
        .expect(&Message::Ready)
        .map_err(|e| e.wrap("container init"))?;
    dir.save(&record)?;
    Ok(record)
}

/// Only poststart and poststop are needed after `create` returns.
fn later_hooks(h: &Hooks) -> Hooks {
    let mut kept = Hooks::default();
    kept.set_poststart(h.poststart().clone());
    kept.set_poststop(h.poststop().clone());
    kept
}

/// The host uid/gid of process.user, through the user namespace maps if any, so the
/// exec fifo is writable by init after it drops privileges.
fn host_ids_of_user(spec: &Spec) -> (u32, u32) {
    let user = spec
        .process()
        .as_ref()
        .map(|p| p.user().clone())
        .unwrap_or_default();
    let linux = spec.linux().as_ref();
    let map = |id: u32, maps: Option<&Vec<LinuxIdMapping>>| match maps {
        Some(maps) => maps
            .iter()
            .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
            .map(|m| m.host_id() + (id - m.container_id()))
            .unwrap_or(id),
        None => id,
    };
    (
        map(user.uid(), linux.and_then(|l| l.uid_mappings().as_ref())),
        map(user.gid(), linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}
