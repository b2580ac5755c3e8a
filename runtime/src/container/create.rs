//! `create`: runtime.md "create" — set the container up and leave its init blocked
//! before the user program, then return.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, Flock, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{chown, mkfifo, Gid, Pid, Uid};
use oci_spec::runtime::{Hooks, LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec};

use crate::bail;
use crate::capabilities::CapSets;
use crate::cgroups::{devices, Cgroup, Layout};
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::process::channel::{self, Channel, Message};
use crate::process::init::{self, InitContext};
use crate::process::mount_sources;
use crate::process::{clone_in_cgroup, kill_and_reap};
use crate::rootless;
use crate::seccomp::{notify, Seccomp};
use crate::spec::Bundle;
use crate::state::{self, Record, StateDir, Status};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// `--systemd-cgroup`: the cgroup is a systemd unit (recorded for later commands).
    pub systemd_cgroup: bool,
    /// `--rootless`: decides, with who the caller is, the rootless behaviour (rootless.rs).
    pub rootless: crate::rootless::Mode,
}

/// A container in the `created` state; `pid` is a child of this process. `lock` is the
/// state dir's flock, held since the dir was made: `run` starts the container under it,
/// and `delete` of a container still being created waits for it.
pub struct Created {
    pub dir: StateDir,
    pub record: Record,
    pub pid: Pid,
    pub lock: Flock<File>,
}

impl Created {
    /// Undo a create whose follow-up failed: kill init, remove its cgroup and state.
    pub fn abandon(&self) {
        kill_and_reap(self.pid);
        if let Some(mounts) = &self.record.host_mounts {
            let _ = mounts.release();
        }
        if let Some(cg) = &self.record.cgroup {
            let _ = cg.kill_all();
            let _ = cg.release();
        }
        let _ = self.dir.remove();
    }
}

pub fn create(root: &Path, id: &str, opts: &CreateOptions) -> Result<Created> {
    state::check_id(id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    create_from_bundle(root, id, bundle, opts, None)
}

/// `create` of an already loaded bundle, with an optional already connected console
/// socket (`run` uses both to relay a tty without reading config.json twice).
pub fn create_from_bundle(
    root: &Path,
    id: &str,
    mut bundle: Bundle,
    opts: &CreateOptions,
    console: Option<OwnedFd>,
) -> Result<Created> {
    crate::exe_protect::protect()?;
    let dir = StateDir::new(root, id)?;
    // A taken id says so before its cgroup does ("already has 1 process"): engines
    // rely on the AlreadyExists kind. dir.create() below stays what makes ids unique.
    if dir.path.exists() {
        bail!(AlreadyExists, "container {id:?} already exists");
    }
    let listen_fds = pass_socket_activation(&mut bundle);
    let linux = bundle.spec.linux().as_ref();
    let plan = Plan::from_spec(linux)?;
    let host_mounts = without_mount_ns(&bundle, &plan)?;
    if let Some(mounts) = &host_mounts {
        refuse_shared_rootfs(root, mounts)?;
    }
    let process = bundle.spec.process().as_ref().expect("validated");
    let caps = process
        .capabilities()
        .as_ref()
        .map(CapSets::from_spec)
        .transpose()?;
    for limit in process.rlimits().iter().flatten() {
        if crate::rlimits::resource(&limit.typ().to_string()).is_none() {
            bail!(
                InvalidConfig,
                "process.rlimits: unknown type {}",
                limit.typ()
            );
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
            bail!(InvalidConfig, "process.terminal: cannot allocate a tty without --console-socket (patina would not be there to relay it)")
        }
        (None, None) => None,
    };
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_deref());
    let layout = Layout::detect()?;
    let caller = rootless::Caller::detect();
    // A rootless caller's scope is its user manager's (root's host uid keeps the
    // system's, as with `--rootless true` run by root).
    let user = caller
        .rootless(opts.rootless)
        .then(|| caller.host_uid())
        .filter(|&uid| uid != 0);
    let cgroup = Cgroup::for_container(&layout, cgroups_path, id, opts.systemd_cgroup, user)?;
    let rootless = rootless::Plan::new(&caller, opts.rootless, &bundle.spec, &cgroup)?;
    if let (Some(unit), Some(why)) = (&cgroup.systemd, &rootless.no_cgroup) {
        // The user's manager delegates its subtree: not writable means none runs.
        bail!(
            Unsupported,
            "--systemd-cgroup: {why}; is the user's systemd running (user@{}.service; `loginctl enable-linger`)?",
            unit.user.unwrap_or(0)
        );
    }
    let cgroup = Placement::new(cgroup, &rootless, &layout)?;
    let net_devices = crate::netdev::Plan::new(
        linux,
        plan.joined(LinuxNamespaceType::Network),
        caller.rootless(opts.rootless),
    )?;
    let idmapped = crate::rootfs::idmap::prepare_trees(&bundle.spec, &bundle.dir)?;
    dir.create()?;
    let lock = dir.lock().inspect_err(|_| {
        let _ = dir.remove();
    })?;
    let opts = &CreateOptions {
        preserve_fds: opts.preserve_fds + listen_fds,
        ..opts.clone()
    };
    let security = Prepared {
        caps: caps.as_ref(),
        seccomp: seccomp.as_ref(),
        idmapped: &idmapped,
        rootless: &rootless,
        visible_cgroup: &cgroup.visible,
        net_devices: net_devices.as_ref(),
    };
    let made = (|| {
        let mut record = initial_record(&dir, &bundle, &plan, &security, &cgroup, opts)?;
        record.host_mounts = host_mounts.clone();
        // From here on the container is on record: `list` shows it and `delete --force`
        // removes whatever a create killed at any later point leaves (cgroups).
        dir.save(&record)?;
        let device_rules = rootless.device_rules;
        let pid = in_cgroup(&mut record, &dir, &bundle, device_rules, |record, rules| {
            spawn(
                &dir,
                &bundle,
                &plan,
                &security,
                console.as_ref(),
                opts,
                (record, rules),
            )
        })?;
        Ok((record, pid))
    })();
    match made {
        Ok((record, pid)) => Ok(Created {
            dir,
            record,
            pid,
            lock,
        }),
        Err(e) => {
            // init is dead by now: what it mounted in the host's namespace goes too.
            if let Some(mounts) = &host_mounts {
                if let Err(left) = mounts.release() {
                    crate::logging::warn(&left.to_string());
                }
            }
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// A config without a mount namespace runs in the runtime's (rootfs/host_ns.rs): the
/// mounts already at or beneath the rootfs, which `delete` must leave. What would
/// change the host's own mounts is refused by name.
fn without_mount_ns(
    bundle: &Bundle,
    plan: &Plan,
) -> Result<Option<crate::rootfs::host_ns::HostMounts>> {
    if plan.mount_ns() {
        return Ok(None);
    }
    let linux = bundle.spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        bail!(
            InvalidConfig,
            "linux.rootfsPropagation {p:?}: needs a mount namespace (linux.namespaces has no mount entry), else it would change the host's mounts"
        );
    }
    if plan.has_own(LinuxNamespaceType::User) {
        bail!(
            InvalidConfig,
            "linux.namespaces: a user namespace needs a mount namespace too: the host's belongs to the host's user namespace, where the container's root can mount nothing"
        );
    }
    crate::rootfs::host_ns::HostMounts::snapshot(&bundle.rootfs).map(Some)
}

/// Another container without a mount namespace on the same rootfs (in this --root):
/// its mounts would be made after this one's snapshot, and this one's `delete` would
/// take them as its own and detach them from under it (and the other way round).
#[cold]
fn refuse_shared_rootfs(root: &Path, mine: &crate::rootfs::host_ns::HostMounts) -> Result<()> {
    for other in state::list_ids(root)? {
        let Ok(record) = StateDir::new(root, &other).and_then(|d| d.load()) else {
            continue;
        };
        if record.host_mounts.is_some_and(|m| m.rootfs == mine.rootfs) {
            bail!(
                InvalidConfig,
                "root.path {:?}: container {other:?} (until deleted) is on this rootfs without a mount namespace; its delete would take a second one's mounts",
                mine.rootfs.display()
            );
        }
    }
    Ok(())
}

/// What `state.json` holds before anything is made: no init yet (pid 0), and the cgroup
/// directories create will make (checked: an existing one must be empty, not frozen).
fn initial_record(
    dir: &StateDir,
    bundle: &Bundle,
    plan: &Plan,
    security: &Prepared<'_>,
    placement: &Placement,
    opts: &CreateOptions,
) -> Result<Record> {
    let mut cgroup = placement.own.clone();
    if let Some(cgroup) = &mut cgroup {
        cgroup.plan_creation()?;
    }
    let spec = &bundle.spec;
    Ok(Record {
        oci_version: spec.version().clone(),
        id: dir.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        hooks: spec.hooks().as_ref().map(later_hooks),
        own_pid_ns: plan.has_own(LinuxNamespaceType::Pid),
        namespaces: spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|all| all.iter().map(|ns| ns.typ()).collect())
            .unwrap_or_default(),
        process: spec.process().clone(),
        seccomp_filter: security.seccomp.cloned(),
        seccomp: None,
        cgroup,
        no_cgroup: placement.why_none.clone(),
        host_mounts: None,
        no_new_keyring: opts.no_new_keyring,
    })
}

/// Socket activation (sd_listen_fds): when the runtime itself was handed LISTEN_FDS for
/// its pid, those fds (3..3+N, before `--preserve-fds`) go to the container, whose
/// program is told with LISTEN_FDS=N and LISTEN_PID=1, as runc does.
fn pass_socket_activation(bundle: &mut Bundle) -> i32 {
    let count = socket_activation_fds();
    if count == 0 {
        return 0;
    }
    if let Some(process) = bundle.spec.process_mut() {
        let mut env: Vec<String> = process.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={count}"));
        env.push("LISTEN_PID=1".to_owned());
        process.set_env(Some(env));
    }
    count
}

/// How many descriptors (3..3+N) systemd-style socket activation handed to this very
/// process (LISTEN_FDS with LISTEN_PID = our pid); 0 otherwise.
pub fn socket_activation_fds() -> i32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if ours && count > 0 {
        count
    } else {
        0
    }
}

/// Make the container's cgroup with its resources (under systemd: only once init
/// exists, see [`Cgroup::adopt`]; device rules only if `device_rules`), run `f` with
/// the device rules, and remove the cgroup (stop the unit) again if `f` fails (by then
/// `f` has killed init), so a failed create leaves nothing. Without a cgroup
/// (rootless.rs) it only runs `f`.
fn in_cgroup<T>(
    record: &mut Record,
    dir: &StateDir,
    bundle: &Bundle,
    device_rules: bool,
    f: impl FnOnce(&mut Record, &[devices::Rule]) -> Result<T>,
) -> Result<T> {
    let rules = devices::container_rules(resources_of(bundle).devices().as_deref())?;
    let Some(planned) = record.cgroup.as_mut() else {
        return f(record, &rules);
    };
    let replanned = planned.prepare()?;
    let result = (|| {
        if replanned {
            dir.save(record)?;
        }
        let cgroup = record.cgroup.as_ref().expect("made");
        // Device rules need CAP_SYS_ADMIN over the host (rootless.rs): without it the
        // container's devices are host nodes the user may open anyway, as in runc.
        cgroup.apply_before_clone(resources_of(bundle), device_rules.then_some(&rules[..]))?;
        f(record, &rules)
    })();
    if result.is_err() {
        if let Some(cgroup) = &record.cgroup {
            let _ = cgroup.release();
        }
    }
    result
}

fn resources_of(bundle: &Bundle) -> &LinuxResources {
    static NONE: std::sync::LazyLock<LinuxResources> = std::sync::LazyLock::new(Default::default);
    bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&NONE)
}

fn connect_console(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .with_context(|| format!("connect to --console-socket {:?}", path.display()))?;
    Ok(OwnedFd::from(stream))
}

/// From the state dir on: clone init and walk it through setup. On any failure the
/// caller removes the state dir; init (and with it every mount it made, all in its own
/// mount namespace) is killed here.
/// What the runtime prepares for init before the clone: the capabilities and seccomp
/// filter it applies last, and the idmapped mount trees only the runtime can make.
struct Prepared<'a> {
    caps: Option<&'a CapSets>,
    seccomp: Option<&'a Seccomp>,
    idmapped: &'a [Option<OwnedFd>],
    rootless: &'a rootless::Plan,
    /// What `type: cgroup` mounts show (Placement).
    visible_cgroup: &'a Cgroup,
    /// `linux.netDevices`, checked against the host, moved once init exists.
    net_devices: Option<&'a crate::netdev::Plan>,
}

/// The container's cgroup, or none (rootless without a delegated one: `why_none`); and
/// the cgroup `type: cgroup` mounts show without a cgroup namespace (the container's, or
/// else the caller's own, as runc's rootless mode shows).
struct Placement {
    own: Option<Cgroup>,
    why_none: Option<String>,
    visible: Cgroup,
}

impl Placement {
    fn new(cgroup: Cgroup, rootless: &rootless::Plan, layout: &Layout) -> Result<Placement> {
        let Some(why) = &rootless.no_cgroup else {
            return Ok(Placement {
                visible: cgroup.clone(),
                own: Some(cgroup),
                why_none: None,
            });
        };
        let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
        Ok(Placement {
            own: None,
            why_none: Some(why.clone()),
            visible: Cgroup::resolve_with(layout, &own, Path::new("")),
        })
    }
}

fn spawn(
    dir: &StateDir,
    bundle: &Bundle,
    plan: &Plan,
    security: &Prepared<'_>,
    console: Option<&OwnedFd>,
    opts: &CreateOptions,
    (record, rules): (&mut Record, &[devices::Rule]),
) -> Result<Pid> {
    let cgroup = record.cgroup.clone();
    let spec = &bundle.spec;
    let fifo = dir.fifo_path();
    make_exec_fifo(&fifo, spec, security.rootless)?;
    // init holds the fifo itself, never the state dir: a directory descriptor would be a
    // way out of the container while init resolves the container's paths (fds.rs).
    let exec_fifo =
        open(&fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).context("open exec fifo")?;
    let (parent, child) = channel::pair()?;
    enter_namespaces_for_children(plan, spec)?;

    let ctx = InitContext {
        bundle,
        plan,
        exec_fifo: &exec_fifo,
        console_socket: console,
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        caps: security.caps,
        new_keyring: (!opts.no_new_keyring).then_some(dir.id.as_str()),
        seccomp: security.seccomp,
        cgroup: Some(security.visible_cgroup),
        idmapped: security.idmapped,
        dumpable_until_go: security.rootless.init_dumpable_until_mapped(),
        dumpable_while_waiting: security.rootless.unprivileged_caller,
        caller_in_user_ns: security.rootless.caller_in_user_ns,
    };
    let target = cgroup.as_ref().and_then(Cgroup::clone_target);
    let pid = clone_in_cgroup(plan.clone_flags, target, |joined| {
        parent.close_copy_in_child();
        if ctx.dumpable_until_go {
            // Until the maps are written (init.rs makes it non-dumpable again at Go); the
            // runtime waits for this before it writes them.
            let dumpable = nix::sys::prctl::set_dumpable(true)
                .context("make init dumpable for its maps")
                .and_then(|()| child.send(&Message::Mappable));
            if let Err(e) = dumpable {
                let _ = child.send(&Message::failed(&e));
                return 1;
            }
        }
        if let Err(e) = joined {
            let _ = child.send(&Message::failed(&e));
            return 1;
        }
        init::run(&ctx, &child)
    })?;
    drop(child);
    // systemd: the scope is made now, with init (waiting for Go) in it.
    let device_rules = security.rootless.device_rules.then_some(rules);
    let cgroup = match record.cgroup.as_mut() {
        Some(adopted) => {
            if let Err(e) = adopted.adopt(pid.as_raw(), &dir.id, resources_of(bundle), device_rules)
            {
                kill_and_reap(pid);
                return Err(e);
            }
            match adopted.systemd {
                Some(_) => Some(adopted.clone()),
                None => cgroup,
            }
        }
        None => None,
    };
    // Before init gets Go: the devices are there for the prestart and createRuntime
    // hooks and for everything init runs.
    let moved = match move_net_devices(security.net_devices, plan, pid) {
        Ok(moved) => moved,
        Err(e) => {
            kill_and_reap(pid);
            return Err(e);
        }
    };
    let result = drive_init(dir, bundle, plan, &parent, pid, security, record)
        .map_err(|e| explain_oom(e, cgroup.as_ref(), &bundle.spec))
        .and_then(|()| {
            super::announce(
                pid.as_raw(),
                opts.pid_file.as_deref(),
                opts.pidfd_socket.as_deref(),
            )
        });
    if let Err(e) = result {
        // Back to the runtime's namespace while init still holds the container's.
        if let Some(moved) = moved {
            moved.undo();
        }
        kill_and_reap(pid);
        return Err(e);
    }
    // Committed: the devices belong to the container's namespace from now on.
    Ok(pid)
}

/// `linux.netDevices` into the container's network namespace: the one given by `path`
/// (init has not joined it yet), or the one init's clone made.
fn move_net_devices(
    devices: Option<&crate::netdev::Plan>,
    plan: &Plan,
    pid: Pid,
) -> Result<Option<crate::netdev::Moved>> {
    let Some(devices) = devices else {
        return Ok(None);
    };
    if let Some(path) = plan.joined(LinuxNamespaceType::Network) {
        return devices.move_into(path).map(Some);
    }
    let made = crate::netdev::init_namespace(pid)?;
    devices.move_into(made.as_fd()).map(Some)
}

/// init killed by the kernel's OOM killer while it set up (the channel just breaks):
/// say so, naming the limit, rather than leave "ECONNRESET" as the reason.
fn explain_oom(err: Error, cgroup: Option<&Cgroup>, spec: &Spec) -> Error {
    if cgroup.is_none_or(|cg| crate::cgroups::stats::oom_kills(cg) == 0) {
        return err;
    }
    let limit = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit());
    match limit {
        Some(limit) => Error::msg(format!(
            "linux.resources.memory.limit {limit}: too low, the container's init was OOM-killed while it set up"
        )),
        None => err.wrap("the container's init was OOM-killed while it set up"),
    }
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
    security: &Prepared<'_>,
    record: &mut Record,
) -> Result<()> {
    let spec = &bundle.spec;
    let seccomp = security.seccomp;
    // init is in its cgroup already (born there, or joined before it reads Go); it
    // unshares its cgroup namespace only after Go, so this cgroup is its root.
    if security.rootless.init_dumpable_until_mapped() {
        parent
            .expect(&Message::Mappable)
            .map_err(|e| e.wrap("container init"))?;
    }
    if plan.new_user {
        security.rootless.write_id_maps(
            pid.as_raw(),
            spec.linux().as_ref().expect("user ns implies linux"),
        )?;
    }
    if plan.new_user && plan.has_own(oci_spec::runtime::LinuxNamespaceType::Mount) {
        let sources = mount_sources::wanted(spec, &bundle.dir, security.idmapped);
        mount_sources::send(pid, &sources, parent)?;
    }
    let (pid_start, _) = state::proc_stat(pid.as_raw())
        .ok_or_else(|| Error::msg("container init exited during create"))?;
    record.pid = pid.as_raw();
    record.pid_start = pid_start;
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
    dir.save(record)?;
    parent.send(&Message::Committed)
}

/// The fifo init blocks on until `start`. It belongs to init's user (through the maps);
/// an unprivileged runtime cannot give a file away, so there the fifo is the caller's and
/// writable by anyone who can reach it (only init holds a path to it: the state dir is
/// the caller's, 0711).
fn make_exec_fifo(fifo: &Path, spec: &Spec, rootless: &rootless::Plan) -> Result<()> {
    mkfifo(fifo, Mode::from_bits_truncate(0o622)).context("create exec fifo")?;
    let (uid, gid) = host_ids_of_user(spec);
    let own = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if !rootless.init_dumpable_until_mapped() || (uid, gid) == own {
        return chown(fifo, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .context("chown exec fifo");
    }
    // mkfifo's mode went through the umask.
    std::fs::set_permissions(fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .context("chmod exec fifo")
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
