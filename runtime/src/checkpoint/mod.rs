//! `checkpoint` and `restore` through CRIU (docs/checkpoint.md): what a container is
//! made of that CRIU cannot see for itself (bind mounts, masked paths, device nodes,
//! namespaces joined by path) is described to it as external, as runc does, so that the
//! image restores into a fresh bundle on this or another host.

pub mod criu;
pub mod dump;
pub mod restore;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rust_criu::rust_criu_protobuf::rpc::{Criu_cg_mode, Criu_opts, Ext_mount_map};

use crate::bail;
use crate::error::{Context, Result};

/// The stdio descriptors of init at dump, as runc's descriptors.json in the image: on
/// restore, a pipe among them is replaced by the restoring runtime's own fd of that
/// number (an engine hands new pipes to the restored container).
pub const DESCRIPTORS: &str = "descriptors.json";

/// What checkpoint and restore both take (runc's flags of the same names).
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgMode>,
    /// CLONE_NEW* bits of the namespaces CRIU makes empty (only the network's).
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    /// `--criu`.
    pub criu: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CgMode {
    pub fn parse(text: &str) -> Result<CgMode> {
        Ok(match text {
            "soft" => CgMode::Soft,
            "full" => CgMode::Full,
            "strict" => CgMode::Strict,
            "ignore" => CgMode::Ignore,
            _ => bail!(
                InvalidConfig,
                "--manage-cgroups-mode {text:?}: must be soft, full, strict or ignore"
            ),
        })
    }

    fn rpc(self) -> Criu_cg_mode {
        match self {
            CgMode::Soft => Criu_cg_mode::SOFT,
            CgMode::Full => Criu_cg_mode::FULL,
            CgMode::Strict => Criu_cg_mode::STRICT,
            CgMode::Ignore => Criu_cg_mode::IGNORE,
        }
    }
}

/// `--empty-ns NAME`: runc (and CRIU) support only the network namespace.
pub fn parse_empty_ns(names: &[String]) -> Result<u32> {
    let mut bits = 0;
    for name in names {
        match name.as_str() {
            "network" => bits |= libc::CLONE_NEWNET as u32,
            other => bail!(
                InvalidConfig,
                "--empty-ns {other:?}: only \"network\" is supported"
            ),
        }
    }
    Ok(bits)
}

/// A directory CRIU reads or writes, opened for it: `mkdir` makes it first (0700, as
/// runc; an existing one is reused: a container may be checkpointed again).
pub fn open_dir(path: &Path, flag: &str, mkdir: bool) -> Result<std::os::fd::OwnedFd> {
    if mkdir {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(
                    crate::Error::from(e).wrap(format!("{flag} {:?}: create", path.display()))
                )
            }
            _ => {}
        }
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700)).ok();
    }
    let dir = std::fs::File::open(path).with_context(|| format!("{flag} {:?}", path.display()))?;
    if !dir.metadata().is_ok_and(|m| m.is_dir()) {
        bail!(
            InvalidConfig,
            "{flag} {:?}: not a directory",
            path.display()
        );
    }
    Ok(dir.into())
}

/// The fields both requests share.
fn base_opts(common: &Common, log_file: &str, spec: &Spec) -> Criu_opts {
    let mut opts = Criu_opts::new();
    opts.set_log_level(4);
    opts.set_log_file(log_file.to_owned());
    opts.set_manage_cgroups(true);
    opts.set_notify_scripts(true);
    opts.set_shell_job(common.shell_job);
    opts.set_tcp_established(common.tcp_established);
    opts.set_ext_unix_sk(common.ext_unix_sk);
    opts.set_file_locks(common.file_locks);
    opts.set_empty_ns(common.empty_ns);
    opts.set_orphan_pts_master(true);
    opts.set_auto_dedup(common.auto_dedup);
    opts.set_lazy_pages(common.lazy_pages);
    if let Some(mode) = common.manage_cgroups_mode {
        opts.set_manage_cgroups_mode(mode.rpc());
    }
    if let Some(config) = config_file(spec) {
        opts.set_config_file(config);
    }
    opts
}

/// CRIU's configuration file: the `org.criu.config` annotation (empty: none), else
/// /etc/criu/runc.conf, the file runc names, so one host file serves both runtimes.
fn config_file(spec: &Spec) -> Option<String> {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        Some(path) if path.is_empty() => None,
        Some(path) => Some(path.clone()),
        None => Some("/etc/criu/runc.conf".to_owned()),
    }
}

/// Where CRIU's log goes: the work dir if given, else the image dir.
fn log_path(common: &Common, file: &str) -> PathBuf {
    common
        .work_path
        .as_ref()
        .unwrap_or(&common.image_path)
        .join(file)
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.options()
        .iter()
        .flatten()
        .any(|o| o == "bind" || o == "rbind")
}

/// The external mounts of the container, keyed by their path in the container: bind
/// mounts (their source on restore, as the bundle names it), the default and configured
/// device nodes (bound from the host where a user namespace forbids mknod), and, where
/// `masked` is given, masked files (/dev/null over them). `value` picks the map's value.
fn external_mounts(
    spec: &Spec,
    bundle: &Path,
    value: impl Fn(&str, Option<PathBuf>) -> String,
) -> Vec<Ext_mount_map> {
    let mut maps = Vec::new();
    let mut add = |key: String, val: String| {
        let mut m = Ext_mount_map::new();
        m.set_key(key);
        m.set_val(val);
        maps.push(m);
    };
    for m in spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let dest = clean(m.destination());
        let source = m.source().as_ref().map(|s| bundle.join(s));
        add(dest.clone(), value(&dest, source));
    }
    let devices = crate::rootfs::devices::default_devices()
        .into_iter()
        .map(|d| d.path)
        .chain(
            spec.linux()
                .as_ref()
                .and_then(|l| l.devices().as_ref())
                .into_iter()
                .flatten()
                .map(|d| d.path().clone()),
        );
    for path in devices {
        let path = clean(&path);
        add(path.clone(), value(&path, Some(PathBuf::from(&path))));
    }
    maps
}

/// A container path as CRIU keys it: absolute, without `.` or repeated slashes.
fn clean(path: &Path) -> String {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        if let std::path::Component::Normal(n) = c {
            out.push(n);
        }
    }
    out.to_string_lossy().into_owned()
}

/// CRIU's name of a namespace type (its `--external` and join-ns syntax).
fn criu_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// The key a namespace joined by path is known by in the image, as runc names it, so
/// an image is restorable by either runtime.
fn external_ns_key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "extRootNetNS",
        _ => "extRootPidNS",
    }
}

/// The namespaces the config joins by path (`linux.namespaces[].path`).
fn joined_namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, PathBuf)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ns| ns.path().as_ref().map(|p| (ns.typ(), p.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_keyed_as_criu_expects() {
        assert_eq!(clean(Path::new("/a//b/./c/")), "/a/b/c");
        assert_eq!(clean(Path::new("etc/hosts")), "/etc/hosts");
    }

    #[test]
    fn flags_are_checked() {
        assert_eq!(
            parse_empty_ns(&["network".into()]).unwrap(),
            libc::CLONE_NEWNET as u32
        );
        assert!(parse_empty_ns(&["pid".into()])
            .unwrap_err()
            .to_string()
            .contains("--empty-ns"));
        assert_eq!(CgMode::parse("strict").unwrap(), CgMode::Strict);
        assert!(CgMode::parse("hard").is_err());
    }
}
