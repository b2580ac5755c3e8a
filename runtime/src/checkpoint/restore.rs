//! `restore`: a new container (fresh state dir and cgroup) whose processes CRIU
//! restores from an image, then, as `run` does, either return (`--detach`) or wait for
//! it and delete it.
//!
//! CRIU's process is put in the container's cgroup before it is sent the request (the
//! restored tree lands there; under systemd the scope is made with CRIU in it), the
//! bundle's rootfs is bound on a mount point of its own in the state dir (CRIU's root
//! must be a mount point), the prestart and createRuntime hooks run at CRIU's
//! "setup-namespaces" notification, and the restored init is recorded at
//! "post-restore".

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Spec};
use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root, Criu_opts, Criu_req_type, Inherit_fd, Join_namespace,
};

use super::criu::{self, Notify, Session};
use super::Common;
use crate::bail;
use crate::cgroups::{devices, Cgroup, Layout};
use crate::container::{delete, run};
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::process::kill_and_reap;
use crate::rootfs::paths;
use crate::spec::Bundle;
use crate::state::{self, Record, StateDir, Status};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub common: Common,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_subreaper: bool,
    /// Accepted as runc does: CRIU itself restores the root, pivot or not.
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub systemd_cgroup: bool,
}

/// Restore; returns the container's exit code (0 with `--detach`).
pub fn restore(root: &Path, id: &str, opts: &RestoreOptions) -> Result<i32> {
    state::check_id(id)?;
    if !nix::unistd::geteuid().is_root() {
        bail!(
            Unsupported,
            "restore: CRIU restores containers as root only"
        );
    }
    let bundle = Bundle::load(&opts.bundle)?;
    restorable(&bundle)?;
    let dir = StateDir::new(root, id)?;
    if dir.path.exists() {
        bail!(AlreadyExists, "container {id:?} already exists");
    }
    let images = super::open_dir(&opts.common.image_path, "--image-path", false)?;
    let descriptors = read_descriptors(&opts.common.image_path)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && opts.console_socket.is_none() {
        bail!(
            InvalidConfig,
            "process.terminal: restoring a container with a tty needs --console-socket"
        );
    }
    let layout = Layout::detect()?;
    let cgroups_path = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    // CRIU restores as root only: no rootless user whose own systemd makes the scope.
    let mut cgroup = Cgroup::for_container(&layout, cgroups_path, id, opts.systemd_cgroup, None)?;
    cgroup.plan_creation()?;
    let work = opts
        .common
        .work_path
        .as_ref()
        .map(|p| super::open_dir(p, "--work-path", true))
        .transpose()?;
    dir.create()?;
    let lock = dir.lock().inspect_err(|_| {
        let _ = dir.remove();
    })?;
    let mut record = initial_record(&dir, &bundle, cgroup);
    let restored = dir.save(&record).and_then(|()| {
        let ctx = Ctx {
            dir: &dir,
            bundle: &bundle,
            opts,
            images: &images,
            work: work.as_ref(),
            descriptors: &descriptors,
        };
        ctx.restore(&mut record)
    });
    if let Err(e) = restored {
        if record.pid > 0 {
            kill_and_reap(Pid::from_raw(record.pid));
        }
        if let Some(cg) = &record.cgroup {
            let _ = cg.kill_all();
            let _ = cg.release();
        }
        let _ = dir.remove();
        return Err(e);
    }
    let pid = Pid::from_raw(record.pid);
    let announced = crate::container::announce(record.pid, opts.pid_file.as_deref(), None);
    if let Err(e) = announced {
        kill_and_reap(pid);
        let _ = delete::destroy(&dir, &record);
        return Err(e);
    }
    drop(lock);
    if opts.detach {
        return Ok(0);
    }
    let forwarded = run::forwardable_signals();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&forwarded),
        None,
    )
    .context("block signals")?;
    let code = run::wait_forwarding(pid, &forwarded, None)?;
    let _lock = dir.lock()?;
    delete::destroy(&dir, &record)?;
    Ok(code)
}

/// What a restore cannot rebuild, refused before CRIU is asked.
fn restorable(bundle: &Bundle) -> Result<()> {
    let linux = bundle.spec.linux().as_ref();
    if linux
        .and_then(|l| l.net_devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        // CRIU rebuilds the container's network namespace from the image; moving host
        // interfaces into it is create's step, which a restore does not run.
        bail!(
            Unsupported,
            "linux.netDevices: not supported by restore (devices are moved at create only)"
        );
    }
    if !crate::namespaces::Plan::from_spec(linux)?.mount_ns() {
        bail!(
            Unsupported,
            "restore: linux.namespaces has no mount namespace: CRIU restores a container's mounts into one of its own"
        );
    }
    Ok(())
}

fn initial_record(dir: &StateDir, bundle: &Bundle, cgroup: Cgroup) -> Record {
    let spec = &bundle.spec;
    let own_pid_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|all| {
            all.iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Pid && ns.path().is_none())
        });
    Record {
        oci_version: spec.version().clone(),
        id: dir.id.clone(),
        pid: 0,
        pid_start: 0,
        cgroup: Some(cgroup),
        no_cgroup: None,
        host_mounts: None,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        hooks: spec.hooks().as_ref().map(|h| {
            let mut kept = oci_spec::runtime::Hooks::default();
            kept.set_poststop(h.poststop().clone());
            kept
        }),
        own_pid_ns,
        namespaces: spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|all| all.iter().map(|ns| ns.typ()).collect())
            .unwrap_or_default(),
        process: spec.process().clone(),
        seccomp_filter: None,
        seccomp: None,
        no_new_keyring: false,
    }
}

struct Ctx<'a> {
    dir: &'a StateDir,
    bundle: &'a Bundle,
    opts: &'a RestoreOptions,
    images: &'a OwnedFd,
    work: Option<&'a OwnedFd>,
    descriptors: &'a [String],
}

impl Ctx<'_> {
    fn restore(&self, record: &mut Record) -> Result<()> {
        let common = &self.opts.common;
        let spec = &self.bundle.spec;
        let criu_root = self.dir.path.join("criu-root");
        std::fs::create_dir(&criu_root).context("restore: make CRIU's root mount point")?;
        let bound = mount(
            Some(&self.bundle.rootfs),
            &criu_root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "restore: bind the rootfs {:?} for CRIU",
                self.bundle.rootfs.display()
            )
        });
        let result = bound.and_then(|()| {
            make_mountpoints(spec, &self.bundle.rootfs)?;
            let mut req = super::base_opts(common, "restore.log", spec);
            req.set_images_dir_fd(self.images.as_raw_fd());
            if let Some(work) = self.work {
                req.set_work_dir_fd(work.as_raw_fd());
            }
            req.set_root(criu_root.to_string_lossy().into_owned());
            req.set_evasive_devices(true);
            req.set_rst_sibling(true);
            self.lsm(&mut req)?;
            let ns_files = restore_namespaces(&mut req, spec)?;
            req.ext_mnt = super::external_mounts(spec, &self.bundle.dir, |_, source| {
                source
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            if spec
                .linux()
                .as_ref()
                .and_then(|l| l.masked_paths().as_ref())
                .is_some_and(|m| !m.is_empty())
            {
                let mut null = rust_criu::rust_criu_protobuf::rpc::Ext_mount_map::new();
                null.set_key("/dev/null".to_owned());
                null.set_val("/dev/null".to_owned());
                req.ext_mnt.push(null);
            }
            for (fd, name) in self.descriptors.iter().enumerate() {
                if name.contains("pipe:") {
                    let mut inherit = Inherit_fd::new();
                    inherit.set_key(name.clone());
                    inherit.set_fd(fd as i32);
                    req.inherit_fd.push(inherit);
                }
            }
            self.run_criu(req, &ns_files, record)
        });
        let _ = umount2(&criu_root, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&criu_root);
        result
    }

    fn lsm(&self, req: &mut Criu_opts) -> Result<()> {
        if let Some(profile) = &self.opts.lsm_profile {
            if !profile.contains(':') {
                bail!(
                    InvalidConfig,
                    "--lsm-profile {profile:?}: must be TYPE:NAME (apparmor:NAME or selinux:LABEL)"
                );
            }
            req.set_lsm_profile(profile.clone());
        }
        if let Some(context) = &self.opts.lsm_mount_context {
            req.set_lsm_mount_context(context.clone());
        }
        Ok(())
    }

    fn run_criu(
        &self,
        mut req: Criu_opts,
        ns_files: &[OwnedFd],
        record: &mut Record,
    ) -> Result<()> {
        let common = &self.opts.common;
        let mut inherit = vec![self.images.as_fd()];
        inherit.extend(self.work.map(|w| w.as_fd()));
        inherit.extend(ns_files.iter().map(|f| f.as_fd()));
        let log = super::log_path(common, "restore.log");
        let session = Session::spawn(
            &criu::binary(common.criu.as_deref()),
            &inherit,
            log,
            "restore",
        )?;
        if !self.opts.no_subreaper {
            // With rst_sibling the restored init is our child; orphans of the
            // container come to us too, as in `run`.
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        if let Err(e) = self.apply_cgroup(session.pid(), record, &mut req) {
            session.abort();
            return Err(e);
        }
        self.dir.save(record)?;
        let console = self.opts.console_socket.as_deref();
        let spec = &self.bundle.spec;
        let resp = session.run(Criu_req_type::RESTORE, req, &mut |n| {
            self.notified(n, spec, record, console)
        })?;
        if record.pid == 0 {
            // A CRIU without the post-restore notification: its answer has the pid.
            self.record_init(record, resp.restore.pid())?;
        }
        Ok(())
    }

    /// CRIU's process joins the container's cgroup with its limits in place, so that
    /// everything it restores is born there (runc's criuApplyCgroups).
    fn apply_cgroup(&self, criu_pid: i32, record: &mut Record, req: &mut Criu_opts) -> Result<()> {
        let resources = resources_of(&self.bundle.spec);
        let rules = devices::container_rules(resources.devices().as_deref())?;
        let cg = record.cgroup.as_mut().expect("restore records a cgroup");
        if cg.systemd.is_some() {
            cg.adopt(criu_pid, &self.dir.id, resources, Some(&rules))?;
        } else {
            cg.prepare()?;
            cg.apply(resources, Some(&rules))?;
            cg.join(criu_pid)?;
        }
        // Where CRIU's process now is, for each controller (v1) or the unified
        // hierarchy (v2: no controller named) becomes the root CRIU restores the
        // container's cgroup into. runc 1.1.5 does this on v1 only: on v2 CRIU re-makes
        // the dumped container's cgroup path, so a restore under a new id lands in the
        // old id's cgroup (beyond runc).
        let text = std::fs::read_to_string(format!("/proc/{criu_pid}/cgroup"))
            .context("restore: read CRIU's cgroups")?;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            if ctrls.is_empty() {
                if cg.is_v2() {
                    let mut root = Cgroup_root::new();
                    root.set_path(path.to_owned());
                    req.cg_root.push(root);
                }
                continue;
            }
            for ctrl in ctrls.split(',') {
                let mut root = Cgroup_root::new();
                root.set_ctrl(ctrl.trim_start_matches("name=").to_owned());
                root.set_path(path.to_owned());
                req.cg_root.push(root);
            }
        }
        Ok(())
    }

    fn notified(
        &self,
        n: Notify<'_>,
        spec: &Spec,
        record: &mut Record,
        console: Option<&Path>,
    ) -> Result<()> {
        match n.script {
            "setup-namespaces" => {
                let Some(h) = spec.hooks() else { return Ok(()) };
                let mut state = record.oci_state(Status::Creating);
                state.pid = n.pid;
                let json = serde_json::to_vec(&state).expect("state serialises");
                hooks::run_all(
                    "prestart",
                    h.prestart().as_deref().unwrap_or_default(),
                    &json,
                )?;
                hooks::run_all(
                    "createRuntime",
                    h.create_runtime().as_deref().unwrap_or_default(),
                    &json,
                )
            }
            "post-restore" => self.record_init(record, n.pid),
            "orphan-pts-master" => {
                let (Some(master), Some(path)) = (n.fd, console) else {
                    bail!(
                        InvalidConfig,
                        "process.terminal: CRIU restored a tty but no --console-socket takes it"
                    );
                };
                send_master(path, &master)
            }
            _ => Ok(()),
        }
    }

    fn record_init(&self, record: &mut Record, pid: i32) -> Result<()> {
        let (start, _) = state::proc_stat(pid)
            .ok_or_else(|| Error::msg(format!("restore: the restored init {pid} is gone")))?;
        record.pid = pid;
        record.pid_start = start;
        self.dir.save(record)
    }
}

fn resources_of(spec: &Spec) -> &LinuxResources {
    static NONE: std::sync::LazyLock<LinuxResources> = std::sync::LazyLock::new(Default::default);
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&NONE)
}

/// Namespaces joined by path: net and pid are handed to CRIU as the external ones the
/// image names (runc's keys); the others CRIU joins itself. Returns the descriptors
/// CRIU must inherit.
fn restore_namespaces(req: &mut Criu_opts, spec: &Spec) -> Result<Vec<OwnedFd>> {
    let mut files = Vec::new();
    for (typ, path) in super::joined_namespaces(spec) {
        let field = || format!("linux.namespaces: {typ} path {:?}", path.display());
        match typ {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let file = std::fs::File::open(&path).with_context(field)?;
                let fd = OwnedFd::from(file);
                let mut inherit = Inherit_fd::new();
                inherit.set_key(super::external_ns_key(typ).to_owned());
                inherit.set_fd(fd.as_raw_fd());
                req.inherit_fd.push(inherit);
                files.push(fd);
            }
            LinuxNamespaceType::Cgroup => {
                bail!(
                    Unsupported,
                    "linux.namespaces: joining a cgroup namespace by path on restore (CRIU cannot)"
                )
            }
            _ => {
                let mut join = Join_namespace::new();
                join.set_ns(super::criu_ns_name(typ).to_owned());
                join.set_ns_file(path.to_string_lossy().into_owned());
                req.join_ns.push(join);
            }
        }
    }
    Ok(files)
}

/// Mount points CRIU expects in the rootfs, made as create would: the destinations of
/// mounts not inside a tmpfs of the container (CRIU restores a tmpfs's content whole);
/// a file for a bind mount of a file.
fn make_mountpoints(spec: &Spec, rootfs: &Path) -> Result<()> {
    let root =
        std::fs::File::open(rootfs).with_context(|| format!("root.path {:?}", rootfs.display()))?;
    let mounts: Vec<_> = spec.mounts().iter().flatten().collect();
    let tmpfs: Vec<String> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| super::clean(m.destination()))
        .collect();
    for m in mounts {
        let dest = super::clean(m.destination());
        if m.typ().as_deref() == Some("cgroup")
            || tmpfs.iter().any(|t| dest.starts_with(&format!("{t}/")))
        {
            continue;
        }
        let file = super::is_bind(m)
            && m.source()
                .as_ref()
                .is_some_and(|s| std::fs::metadata(s).is_ok_and(|md| !md.is_dir()));
        let path = Path::new(&dest);
        let made = if file {
            paths::touch_in_root(&root, path)
        } else {
            paths::mkdir_all_in_root(&root, path, 0o755)
        };
        made.with_context(|| format!("mounts: {dest:?}: make its mount point for CRIU"))?;
    }
    Ok(())
}

fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(super::DESCRIPTORS);
    let raw = std::fs::read(&path).with_context(|| {
        format!(
            "--image-path {:?}: not a checkpoint image (read {})",
            images.display(),
            super::DESCRIPTORS
        )
    })?;
    serde_json::from_slice(&raw)
        .map_err(|e| Error::msg(format!("--image-path: {:?}: {e}", path.display())))
}

/// The restored tty's master to the console socket, as create sends a new one.
fn send_master(path: &Path, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connect to --console-socket {:?}", path.display()))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[std::io::IoSlice::new(b"/dev/ptmx")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .context("send the restored tty to --console-socket")
}
