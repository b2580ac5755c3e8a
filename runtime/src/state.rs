//! The state directory of each container under `--root`: `state.json` (written
//! atomically), the exec fifo that holds a created container before `start`, and an
//! flock so two operations on one container never interleave.
//!
//! Status is never stored: it is derived from the kernel each time (runtime.md
//! "State"), from the init pid plus its start time, so a reused pid is never mistaken
//! for the container.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{Context, Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
const MAX_ID_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What patina remembers of a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22).
    pub pid_start: u64,
    /// The container's cgroup directories, resolved at create. Kept near the start of
    /// the file, with the pid: what `delete --force` can still read of a truncated state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// Why there is no cgroup (rootless without a delegated one), for the operations that
    /// need one to say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cgroup: Option<String>,
    /// Without a mount namespace: the mounts `delete` detaches from the host's table
    /// (rootfs/host_ns.rs). Near the start, for `delete --force` of a truncated state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts: Option<crate::rootfs::host_ns::HostMounts>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Only the hooks that run after `create` returns (poststart, poststop).
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// Whether the container has its own pid namespace (then killing init kills all).
    pub own_pid_ns: bool,
    /// The namespaces of config.json, which `exec` joins through init.
    #[serde(default)]
    pub namespaces: Vec<oci_spec::runtime::LinuxNamespaceType>,
    /// config.json's process: what `exec` starts from when not given `--process`.
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// linux.seccomp, compiled: `exec`'d processes get the container's filter too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_filter: Option<crate::seccomp::Seccomp>,
    /// The OCI object, as patina before the compiled `seccomp_filter` stored it: read
    /// (and compiled by `exec`) for containers created by such a version, never written.
    #[serde(default, skip_serializing)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// `create --no-new-keyring`: exec'd processes then keep their own session keyring too.
    #[serde(default)]
    pub no_new_keyring: bool,
}

/// The state JSON of runtime.md, with runc's extra fields (rootfs, created, owner).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

impl Record {
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: "",
            annotations: &self.annotations,
        }
    }
}

/// Container ids become directory names: refuse anything that could walk out of `--root`.
pub fn check_id(id: &str) -> Result<()> {
    let valid_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() {
        return Err(Error::invalid(
            "container id",
            "invalid container id: must not be empty",
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            "container id",
            format!("invalid container id: longer than {MAX_ID_LEN} characters"),
        ));
    }
    if id == "." || id == ".." || !valid_chars {
        return Err(Error::invalid(
            "container id",
            format!("invalid container id {id:?}: only letters, digits and _ + - . are allowed"),
        ));
    }
    Ok(())
}

/// The state directory of one container.
#[derive(Debug)]
pub struct StateDir {
    pub id: String,
    pub path: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> Result<StateDir> {
        check_id(id)?;
        Ok(StateDir {
            id: id.to_owned(),
            path: root.join(id),
        })
    }

    /// Make the directory; failing if it exists is what makes ids unique.
    pub fn create(&self) -> Result<()> {
        let root = self.path.parent().expect("state dir has a parent");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("create state root {:?}", root.display()))?;
        // 0711: the container's user must be able to reach the exec fifo through it.
        match std::fs::DirBuilder::new().mode(0o711).create(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!(AlreadyExists, "container {:?} already exists", self.id)
            }
            Err(e) => {
                Err(Error::from(e).wrap(format!("create state dir {:?}", self.path.display())))
            }
        }
    }

    pub fn exists(&self) -> bool {
        self.path.join(STATE_FILE).exists()
    }

    /// Open the directory and hold an exclusive flock on it for as long as the guard lives.
    pub fn lock(&self) -> Result<Flock<File>> {
        let dir = File::open(&self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::new(
                    crate::Kind::NotFound,
                    format!("container {:?} does not exist", self.id),
                )
            } else {
                Error::from(e).wrap(format!("open state dir {:?}", self.path.display()))
            }
        })?;
        Flock::lock(dir, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::os(errno, format!("lock state dir of {:?}", self.id)))
    }

    pub fn load(&self) -> Result<Record> {
        let raw = match std::fs::read(self.path.join(STATE_FILE)) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.path.exists() {
                    bail!(WrongState, "container {:?} is still being created", self.id);
                }
                bail!(NotFound, "container {:?} does not exist", self.id);
            }
            Err(e) => return Err(Error::from(e).wrap(format!("read state of {:?}", self.id))),
        };
        serde_json::from_slice(&raw)
            .map_err(|e| Error::msg(format!("state of {:?} is corrupt: {e}", self.id)))
    }

    /// Write state.json through a temporary file and rename, so readers never see half.
    pub fn save(&self, record: &Record) -> Result<()> {
        let json = serde_json::to_vec(record).expect("state serialises");
        write_atomically(&self.path.join(STATE_FILE), &json)
            .with_context(|| format!("write state of {:?}", self.id))
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::from(e).wrap(format!("remove state dir {:?}", self.path.display())))
            }
            _ => Ok(()),
        }
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// [`StateDir::status`] for a caller that does not hold the lock (`state`, `list`):
    /// a container with no init on record yet is `creating` while its `create` still
    /// holds the lock, and `stopped` once that create is gone (killed half-way).
    pub fn observed_status(&self, record: &Record) -> Status {
        if record.pid == 0 && self.is_locked() {
            Status::Creating
        } else {
            self.status(record)
        }
    }

    pub fn is_locked(&self) -> bool {
        let Ok(dir) = File::open(&self.path) else {
            return false;
        };
        matches!(
            Flock::lock(dir, FlockArg::LockSharedNonblock),
            Err((_, Errno::EWOULDBLOCK))
        )
    }

    /// created vs running: the exec fifo exists until `start` consumes it; paused while
    /// the cgroup is frozen.
    pub fn status(&self, record: &Record) -> Status {
        if !process_is(record.pid, record.pid_start) {
            return Status::Stopped;
        }
        if record.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            Status::Paused
        } else if self.fifo_path().exists() {
            Status::Created
        } else {
            Status::Running
        }
    }
}

/// Write `path` as a whole or not at all (temp file in the same dir, fsync-free rename:
/// state lives on tmpfs in practice, and a crash loses the container anyway).
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Start time (clock ticks since boot) and run state letter of a live process.
pub fn proc_stat(pid: i32) -> Option<(u64, u8)> {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let after = raw.iter().rposition(|&b| b == b')')? + 2;
    let mut fields = raw.get(after..)?.split(|&b| b == b' ');
    let state = *fields.next()?.first()?;
    // Field 3 is state; starttime is field 22, i.e. 19 fields after state.
    let start = fields.nth(18)?;
    let start = std::str::from_utf8(start).ok()?.parse().ok()?;
    Some((start, state))
}

/// Is `pid` still the process we started (and not a zombie)?
pub fn process_is(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((s, state)) if s == start && state != b'Z' && state != b'X')
}

/// List the ids of all containers under `root`, those still without state.json (being
/// created, or a create killed right after making the dir) included.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::from(e).wrap(format!("read state root {:?}", root.display()))),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| check_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// RFC 3339 UTC timestamp with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// ENOENT-tolerant unlink.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match nix::unistd::unlink(path) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::os(e, format!("remove {:?}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(1025)] {
            let err = check_id(bad).unwrap_err().to_string();
            assert!(err.contains("container id"), "{bad:?}: {err}");
        }
        for good in ["a", "ctr-1_2+3.4", &"x".repeat(1024)] {
            check_id(good).unwrap();
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_795_000_000, 5),
            "2026-11-18T11:06:40.000000005Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn own_process_is_alive_and_start_time_distinguishes_reuse() {
        let me = std::process::id() as i32;
        let (start, _) = proc_stat(me).unwrap();
        assert!(process_is(me, start));
        assert!(!process_is(me, start + 1));
        assert!(!process_is(i32::MAX, start));
    }

    #[test]
    fn second_create_of_one_id_fails() {
        let root = std::env::temp_dir().join(format!("patina-state-test-{}", std::process::id()));
        let dir = StateDir::new(&root, "dup").unwrap();
        dir.create().unwrap();
        let err = dir.create().unwrap_err().to_string();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(err.contains("already exists"), "{err}");
    }
}
