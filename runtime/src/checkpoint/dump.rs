//! `checkpoint`: dump a running container's processes into an image directory with
//! CRIU (or pre-dump its memory only). After a full dump the container is gone (CRIU
//! killed it) and patina removes its cgroup and state, as runc does; `--leave-running`
//! and `--pre-dump` keep it.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rust_criu::rust_criu_protobuf::rpc::{Criu_opts, Criu_page_server_info, Criu_req_type};

use super::criu::{self, Session};
use super::Common;
use crate::bail;
use crate::container::delete;
use crate::error::{Context, Result};
use crate::spec::parse_config;
use crate::state::{Record, StateDir, Status};

#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub common: Common,
    /// `--parent-path`: the previous (pre-)dump, relative to the image dir as CRIU reads it.
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// `--page-server ADDRESS:PORT`.
    pub page_server: Option<(String, i32)>,
    /// `--status-fd`: written a byte when the lazy-pages server is ready.
    pub status_fd: Option<i32>,
}

pub fn checkpoint(root: &Path, id: &str, opts: &CheckpointOptions) -> Result<()> {
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    match dir.status(&record) {
        Status::Running | Status::Paused => {}
        other => bail!(
            WrongState,
            "cannot checkpoint container {id:?}: it is {other}"
        ),
    }
    if record.host_mounts.is_some() {
        bail!(
            Unsupported,
            "checkpoint: container {id:?} has no mount namespace (linux.namespaces): CRIU cannot tell its mounts from the host's"
        );
    }
    if opts.status_fd.is_some() && !opts.common.lazy_pages {
        bail!(InvalidConfig, "--status-fd: only with --lazy-pages");
    }
    let common = &opts.common;
    if let Some(parent) = &opts.parent_path {
        check_parent(&common.image_path, parent)?;
    }
    let spec = saved_spec(&record)?;
    let images = super::open_dir(&common.image_path, "--image-path", true)?;
    let work = common
        .work_path
        .as_ref()
        .map(|p| super::open_dir(p, "--work-path", true))
        .transpose()?;
    let mut req = super::base_opts(common, "dump.log", &spec);
    req.set_images_dir_fd(images.as_raw_fd());
    if let Some(work) = &work {
        req.set_work_dir_fd(work.as_raw_fd());
    }
    req.set_root(record.rootfs.to_string_lossy().into_owned());
    req.set_pid(record.pid);
    req.set_leave_running(opts.leave_running);
    describe_namespaces(&mut req, &spec)?;
    if let Some(freezer) = freezer_of(&record) {
        req.set_freeze_cgroup(freezer.to_string_lossy().into_owned());
    }
    if let Some((address, port)) = &opts.page_server {
        let mut ps = Criu_page_server_info::new();
        ps.set_address(address.clone());
        ps.set_port(*port);
        req.ps = protobuf::MessageField::some(ps);
    }
    if let Some(parent) = &opts.parent_path {
        req.set_parent_img(parent.clone());
        req.set_track_mem(true);
    }
    if let Some(fd) = opts.status_fd {
        req.set_status_fd(fd);
    }
    let kind = if opts.pre_dump {
        Criu_req_type::PRE_DUMP
    } else {
        // A pre-dump copies memory only; the rest is described for the full dump.
        req.ext_mnt = super::external_mounts(&spec, &record.bundle, |name, _| name.to_owned());
        req.ext_mnt.extend(masked_files(&spec, record.pid));
        write_descriptors(&common.image_path, record.pid)?;
        Criu_req_type::DUMP
    };
    let log = super::log_path(common, "dump.log");
    let what = if opts.pre_dump { "pre-dump" } else { "dump" };
    let mut inherit = vec![images.as_fd()];
    inherit.extend(work.as_ref().map(|w| w.as_fd()));
    let session = Session::spawn(&criu::binary(common.criu.as_deref()), &inherit, log, what)?;
    session.run(kind, req, &mut |_| Ok(()))?;
    if !opts.leave_running && !opts.pre_dump {
        // CRIU killed the container's processes once the image was complete.
        delete::destroy(&dir, &record)?;
    }
    Ok(())
}

/// `--parent-path` is read by CRIU relative to the image dir: refuse an absolute path
/// (CRIU would take it as is, while runc's images name their parent relatively) and one
/// that is no directory, before anything is made, as runc does. The path is joined
/// lexically (`..` drops a component, as runc's filepath.Join), so it can be checked
/// before the image dir exists.
fn check_parent(images: &Path, parent: &str) -> Result<()> {
    use std::path::Component;
    if Path::new(parent).is_absolute() {
        bail!(
            InvalidConfig,
            "--parent-path {parent:?}: must be relative to --image-path"
        );
    }
    let mut full = images.to_path_buf();
    for part in Path::new(parent).components() {
        match part {
            Component::ParentDir => {
                if matches!(full.components().next_back(), Some(Component::Normal(_))) {
                    full.pop();
                } else {
                    full.push("..");
                }
            }
            Component::Normal(name) => full.push(name),
            _ => {}
        }
    }
    match std::fs::metadata(&full) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            InvalidConfig,
            "--parent-path {parent:?}: {}: not a directory",
            full.display()
        ),
        Err(e) => {
            Err(crate::Error::from(e).wrap(format!("--parent-path {parent:?}: {}", full.display())))
        }
    }
}

/// The container's config as create read it, from its bundle (the mounts, masked
/// paths and namespaces CRIU needs described).
fn saved_spec(record: &Record) -> Result<Spec> {
    let path = record.bundle.join("config.json");
    let raw = std::fs::read(&path)
        .with_context(|| format!("checkpoint: read the container's {:?}", path.display()))?;
    parse_config(&raw)
}

/// Namespaces the container joined by path are not its own: CRIU records them as
/// external (net and pid, under runc's keys) and restore hands them back. Others
/// joined by path cannot be described (runc refuses the cgroup one at restore).
fn describe_namespaces(req: &mut Criu_opts, spec: &Spec) -> Result<()> {
    for (typ, path) in super::joined_namespaces(spec) {
        if !matches!(typ, LinuxNamespaceType::Network | LinuxNamespaceType::Pid) {
            continue;
        }
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("linux.namespaces: {typ} path {:?}", path.display()))?;
        let ino = std::os::unix::fs::MetadataExt::ino(&meta);
        req.external.push(format!(
            "{}[{ino}]:{}",
            super::criu_ns_name(typ),
            super::external_ns_key(typ)
        ));
    }
    Ok(())
}

/// The cgroup CRIU freezes the container through (v1 freezer, or the cgroup2 dir).
fn freezer_of(record: &Record) -> Option<PathBuf> {
    let cg = record.cgroup.as_ref()?;
    cg.v1_dir("freezer")
        .map(Path::to_path_buf)
        .or_else(|| cg.is_v2().then(|| cg.unified.clone()).flatten())
}

/// Masked files are /dev/null bound over them: named "/dev/null" in the image, which
/// restore maps to the host's. Masked directories are tmpfs mounts CRIU dumps itself.
fn masked_files(spec: &Spec, pid: i32) -> Vec<rust_criu::rust_criu_protobuf::rpc::Ext_mount_map> {
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    masked
        .iter()
        .filter(|p| std::fs::metadata(format!("/proc/{pid}/root/{p}")).is_ok_and(|m| !m.is_dir()))
        .map(|p| {
            let mut m = rust_criu::rust_criu_protobuf::rpc::Ext_mount_map::new();
            m.set_key(super::clean(Path::new(p)));
            m.set_val("/dev/null".to_owned());
            m
        })
        .collect()
}

/// init's stdio as descriptors.json (runc's format): restore swaps pipes among them for
/// its own.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "/dev/null".to_owned())
        })
        .collect();
    let path = images.join(super::DESCRIPTORS);
    std::fs::write(&path, serde_json::to_vec(&fds).expect("strings serialise"))
        .with_context(|| format!("write {:?}", path.display()))
}
