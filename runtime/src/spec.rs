//! Loading and checking a bundle's config.json before anything is created, so that bad
//! input fails fast with the field named, and nothing has to be undone.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bail;
use crate::error::{Context, Error, Result};

/// The OCI runtime-spec versions patina implements (config.md "ociVersion").
const SUPPORTED_MAJOR: u64 = 1;
const SUPPORTED_MINOR_MAX: u64 = 3;

/// A checked bundle: absolute paths and the parsed config.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Read `DIR/config.json`, check it and resolve the rootfs (config.md "root").
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("bundle {:?} (looking for config.json)", dir.display()))?;
        let config_path = dir.join("config.json");
        let raw = std::fs::read(&config_path)
            .with_context(|| format!("open config.json in bundle {:?}", dir.display()))?;
        let spec = parse_config(&raw)?;
        validate(&spec)?;
        let rootfs = resolve_rootfs(&dir, &spec)?;
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// Parse config.json; serde's message carries the line and column of the fault. It
/// also quotes the offending value as decoded, which may hold a newline or other control
/// characters (`"type": "\nnet"`): they are escaped, so the error stays one line.
pub fn parse_config(raw: &[u8]) -> Result<Spec> {
    let parsed = match has_spec_sched_flags(raw) {
        false => serde_json::from_slice::<Spec>(raw),
        true => serde_json::from_slice::<serde_json::Value>(raw).and_then(|mut v| {
            if let Some(process) = v.get_mut("process") {
                sched_flags_for_oci_spec(process);
            }
            serde_json::from_value::<Spec>(v)
        }),
    };
    parsed.map_err(|e| {
        let text: String = e
            .to_string()
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            })
            .collect();
        Error::new(
            crate::Kind::InvalidConfig,
            format!("parse config.json: {text}"),
        )
    })
}

/// The runtime-spec spells two scheduler flags `SCHED_FLAG_RESET_ON_FORK` and
/// `SCHED_FLAG_DL_OVERRUN`; oci-spec 0.10 derives `SCHED_RESET_ON_FORK` and
/// `SCHED_FLAG_D_L_OVERRUN` from its variant names and refuses the spec's words (to be
/// fixed upstream in oci-spec-rs). Only configs that use them take the slower way.
fn has_spec_sched_flags(raw: &[u8]) -> bool {
    let has = |word: &[u8]| raw.windows(word.len()).any(|w| w == word);
    has(b"SCHED_FLAG_RESET_ON_FORK") || has(b"SCHED_FLAG_DL_OVERRUN")
}

/// In a `process` object: the spec's scheduler flag names, as oci-spec 0.10 reads them.
pub fn sched_flags_for_oci_spec(process: &mut serde_json::Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for flag in flags {
        let renamed = match flag.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *flag = serde_json::Value::from(renamed);
    }
}

fn resolve_rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let Some(root) = spec.root() else {
        bail!(InvalidConfig, "root.path: missing in config.json");
    };
    if root.path().as_os_str().is_empty() {
        bail!(InvalidConfig, "root.path: must not be empty");
    }
    let path = bundle.join(root.path());
    let meta =
        std::fs::metadata(&path).with_context(|| format!("root.path {:?}", path.display()))?;
    if !meta.is_dir() {
        bail!(
            InvalidConfig,
            "root.path {:?}: not a directory",
            path.display()
        );
    }
    Ok(path)
}

/// Check everything that can be checked without touching the system.
pub fn validate(spec: &Spec) -> Result<()> {
    check_oci_version(spec.version())?;
    check_process(spec)?;
    check_mounts(spec)?;
    check_namespaces(spec)?;
    check_cgroups(spec)?;
    check_security(spec)?;
    reject_unimplemented(spec)
}

fn check_cgroups(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(path) = linux.cgroups_path() {
        crate::cgroups::check_path(path)?;
    }
    match linux.resources() {
        Some(r) => crate::cgroups::validate(r),
        None => Ok(()),
    }
}

pub fn check_oci_version(version: &str) -> Result<()> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    let (major, minor, patch) = (parts.next(), parts.next(), parts.next());
    let supported = match (major, minor, patch, parts.next()) {
        (Some(Ok(major)), Some(Ok(minor)), Some(Ok(_)), None) => {
            major == SUPPORTED_MAJOR && minor <= SUPPORTED_MINOR_MAX
        }
        _ => false,
    };
    if !supported {
        bail!(Unsupported, "ociVersion {version:?} is not supported: patina implements 1.0.0 to 1.{SUPPORTED_MINOR_MAX}.x");
    }
    Ok(())
}

fn check_process(spec: &Spec) -> Result<()> {
    let Some(process) = spec.process() else {
        bail!(InvalidConfig, "process: missing in config.json");
    };
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => bail!(
            InvalidConfig,
            "process.args: must name the program to run (it is empty)"
        ),
    }
    if !process.cwd().is_absolute() {
        bail!(
            InvalidConfig,
            "process.cwd {:?}: must be an absolute path",
            process.cwd().display()
        );
    }
    check_env(process.env().as_deref().unwrap_or_default(), "process.env")
}

/// Environment entries are `KEY=value` with a non-empty key and no NUL byte (runc
/// refuses the same): caught here rather than by a failed exec at `start`.
pub fn check_env(env: &[String], field: &str) -> Result<()> {
    for (i, entry) in env.iter().enumerate() {
        if entry.contains('\0') {
            bail!(InvalidConfig, "{field}[{i}] {entry:?}: contains a NUL byte");
        }
        match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() => {}
            _ => bail!(
                InvalidConfig,
                "{field}[{i}] {entry:?}: not of the form KEY=value"
            ),
        }
    }
    Ok(())
}

/// uidMappings/gidMappings and the `idmap`/`ridmap` options (config.md "mounts"): both
/// maps, non-empty (or, for the options alone, the container's), on a bind mount.
fn check_idmapped(
    i: usize,
    mount: &oci_spec::runtime::Mount,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<()> {
    let (uids, gids) = (mount.uid_mappings(), mount.gid_mappings());
    let option = crate::rootfs::idmap::idmap_option(mount);
    let non_empty = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.as_ref().is_some_and(|m| !m.is_empty())
    };
    if uids.is_none() && gids.is_none() {
        if option.is_none() {
            return Ok(());
        }
        let container_maps =
            linux.is_some_and(|l| non_empty(l.uid_mappings()) && non_empty(l.gid_mappings()));
        if !container_maps {
            bail!(InvalidConfig, "mounts[{i}].options \"idmap\": needs uidMappings/gidMappings, on the mount or for the container's user namespace");
        }
    } else if !non_empty(uids) || !non_empty(gids) {
        bail!(
            InvalidConfig,
            "mounts[{i}].uidMappings/gidMappings: an idmapped mount needs both, non-empty"
        );
    }
    let bind = mount.typ().as_deref() == Some("bind")
        || mount
            .options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind");
    if !bind {
        bail!(
            InvalidConfig,
            "mounts[{i}].uidMappings/gidMappings: only bind mounts can be idmapped"
        );
    }
    Ok(())
}

fn check_mounts(spec: &Spec) -> Result<()> {
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        let dest = mount.destination();
        if !dest.is_absolute() {
            bail!(
                InvalidConfig,
                "mounts[{i}].destination {:?}: must be an absolute path",
                dest.display()
            );
        }
        check_idmapped(i, mount, spec.linux().as_ref())?;
        crate::rootfs::options::MountPlan::for_entry(i, mount)?;
    }
    Ok(())
}

fn check_namespaces(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if namespaces[..i].iter().any(|other| other.typ() == ns.typ()) {
            bail!(
                InvalidConfig,
                "linux.namespaces[{i}]: namespace {} is listed twice",
                ns.typ()
            );
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                bail!(
                    InvalidConfig,
                    "linux.namespaces[{i}].path {:?}: must be absolute",
                    path.display()
                );
            }
        }
    }
    let has = |typ| namespaces.iter().any(|ns| ns.typ() == typ);
    if (linux.uid_mappings().is_some() || linux.gid_mappings().is_some())
        && !has(LinuxNamespaceType::User)
    {
        bail!(
            InvalidConfig,
            "linux.uidMappings/gidMappings: set without a user namespace"
        );
    }
    if has(LinuxNamespaceType::User)
        && namespaces
            .iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none())
        && (linux.uid_mappings().is_none() || linux.gid_mappings().is_none())
    {
        bail!(
            InvalidConfig,
            "linux.uidMappings/gidMappings: a new user namespace needs both mappings"
        );
    }
    crate::netdev::validate(linux, has(LinuxNamespaceType::Network))?;
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!(
            InvalidConfig,
            "hostname: cannot be set without a private uts namespace"
        );
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        bail!(
            InvalidConfig,
            "domainname: cannot be set without a private uts namespace"
        );
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        bail!(
            InvalidConfig,
            "linux.timeOffsets: set without a time namespace"
        );
    }
    Ok(())
}

/// Security fields that can be checked up front (seccomp is compiled by `create`).
fn check_security(spec: &Spec) -> Result<()> {
    crate::sysctl::validate(spec)?;
    crate::lsm::validate(spec)?;
    if let Some(process) = spec.process() {
        if let Some(s) = process.scheduler() {
            crate::scheduler::validate(s)?;
        }
        if let Some(p) = process.io_priority() {
            crate::scheduler::validate_io(p)?;
        }
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        crate::personality::validate(p)?;
    }
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        crate::mempolicy::validate(p)?;
    }
    Ok(())
}

/// Fields patina does not implement yet are refused by name rather than ignored:
/// a container that silently runs without its seccomp profile or memory limit is worse
/// than one that does not start.
fn reject_unimplemented(spec: &Spec) -> Result<()> {
    let unsupported = |field: &str| {
        Err(Error::new(
            crate::Kind::Unsupported,
            format!("{field}: not supported by patina yet"),
        ))
    };
    if let Some(process) = spec.process() {
        if process.exec_cpu_affinity().is_some() {
            return unsupported("process.execCPUAffinity");
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if linux.intel_rdt().is_some() {
        return unsupported("linux.intelRdt");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from(json: &str) -> Spec {
        parse_config(json.as_bytes()).unwrap()
    }

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"}}"#;

    #[test]
    fn accepts_versions_1_0_to_1_3() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.7+x"] {
            check_oci_version(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
        for v in ["0.1.0", "2.0.0", "1.4.0", "1.0", "", "one"] {
            let err = check_oci_version(v).unwrap_err().to_string();
            assert!(err.contains("ociVersion"), "{v}: {err}");
        }
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse_config(b"{\n  \"ociVersion\": 1.0.2\n}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("column"), "{err}");
    }

    /// Found by fuzz/fuzz_targets/config_json.rs: a JSON escape in an enum value came
    /// back raw in serde's message, and `create` printed a two-line error.
    #[test]
    fn parse_errors_stay_on_one_line() {
        let json = MINIMAL.replace(
            r#""root""#,
            r#""linux":{"namespaces":[{"type":"\nnet\twork\u0000"}]},"root""#,
        );
        let err = parse_config(json.as_bytes()).unwrap_err().to_string();
        assert!(!err.contains(['\n', '\t', '\0']), "{err:?}");
        assert!(err.contains(r"unknown variant `\nnet\twork\u{0}`"), "{err}");
    }

    #[test]
    fn empty_args_are_refused_by_field_name() {
        let spec = spec_from(&MINIMAL.replace(r#"["sh"]"#, "[]"));
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("process.args"));
        validate(&spec_from(MINIMAL)).unwrap();
    }

    #[test]
    fn relative_mount_destination_is_refused() {
        let spec = spec_from(&MINIMAL.replace(
            r#""root""#,
            r#""mounts":[{"destination":"tmp","type":"tmpfs","source":"tmpfs"}],"root""#,
        ));
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("mounts[0].destination"), "{err}");
    }

    #[test]
    fn unimplemented_fields_are_named() {
        let spec = spec_from(&MINIMAL.replace(r#""root""#, r#""linux":{"intelRdt":{}},"root""#));
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("linux.intelRdt"), "{err}");
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let spec = spec_from(&MINIMAL.replace(r#""root""#, r#""hostname":"x","linux":{},"root""#));
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("hostname"));
    }
}
