//! The engines' systemd cgroup driver (issue 15): docker's `native.cgroupdriver=systemd`,
//! podman's `cgroup_manager = "systemd"`, and `ctr run --runc-systemd-cgroup`. Each engine
//! then hands the runtime a `slice:prefix:name` cgroupsPath and `--systemd-cgroup`, and the
//! runtime asks systemd for a transient scope (`docker-<id>.scope` in system.slice,
//! `libpod-<id>.scope` in machine.slice, `ctr-<name>.scope` in system.slice).
//!
//! The driver is chosen per test process: `PATINA_ENGINE_CGROUP=systemd` (the engine tests
//! of `engine_*.rs` run unchanged with it), or [`use_systemd_driver`] before the first
//! `engine()` (`tests/engine_systemd.rs`). Only on a host that runs systemd: the systemd
//! guest (integration/systemd-vm); this machine has none, and the tests say so by name.

use std::path::Path;
use std::sync::OnceLock;

use crate::runtime::Output;

/// How an engine places its containers' cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// A cgroup parent beneath this test process's own cgroup (the default: on a shared
    /// host the tests touch no cgroup they did not create).
    Cgroupfs,
    /// The engine's systemd driver: transient scopes under the engine's default slice.
    Systemd,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

/// The driver of this test process: `PATINA_ENGINE_CGROUP` (`systemd` or `cgroupfs`, the
/// default), unless [`use_systemd_driver`] chose first.
pub fn driver() -> Driver {
    *DRIVER.get_or_init(|| match std::env::var("PATINA_ENGINE_CGROUP").as_deref() {
        Ok("systemd") => Driver::Systemd,
        Ok("cgroupfs") | Ok("") | Err(_) => Driver::Cgroupfs,
        Ok(other) => panic!("PATINA_ENGINE_CGROUP={other}: expected systemd or cgroupfs"),
    })
}

/// Makes every engine of this test process use its systemd driver (call before `engine()`).
pub fn use_systemd_driver() {
    let _ = DRIVER.set(Driver::Systemd);
    assert_eq!(
        driver(),
        Driver::Systemd,
        "PATINA_ENGINE_CGROUP chose cgroupfs for this test process"
    );
}

/// True when systemd is PID 1 (sd_booted(3): `/run/systemd/system` exists).
pub fn host_runs_systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `systemctl <args>` (stdout, trimmed), or `None` when it fails.
pub fn systemctl(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `systemctl show -p <props> <unit>` as `K=V` words joined by spaces, in `props` order.
pub fn show(unit: &str, props: &[&str]) -> String {
    let text = systemctl(&["show", "-p", &props.join(","), unit]).unwrap_or_default();
    props
        .iter()
        .map(|p| {
            let prefix = format!("{p}=");
            text.lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or(&format!("{p}=<none>"))
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scope units systemd knows now (loaded, in any state), sorted.
pub fn scopes() -> Vec<String> {
    let text = systemctl(&[
        "list-units",
        "--type=scope",
        "--all",
        "--no-legend",
        "--plain",
    ])
    .unwrap_or_default();
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The v2 cgroup of `pid` (`/system.slice/docker-<id>.scope`), from /proc/PID/cgroup.
pub fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// A cgroup file of the v2 hierarchy (`cgroup` as [`cgroup_of`] gives it), trimmed.
pub fn cgroup_file(cgroup: &str, file: &str) -> String {
    let path = Path::new("/sys/fs/cgroup")
        .join(cgroup.trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("read {}: {e}", path.display()))
}

/// What one engine's scopes must look like: the scopes this test process saw before its
/// engine started, so that teardown finds the ones its containers left behind.
pub struct ScopeWatch {
    before: Option<Vec<String>>,
}

impl ScopeWatch {
    /// Records the scopes now (systemd driver only; a no-op under cgroupfs).
    pub fn new() -> Self {
        let on = driver() == Driver::Systemd && host_runs_systemd();
        ScopeWatch {
            before: on.then(scopes),
        }
    }

    /// Container scopes (`docker-`, `libpod-`, `ctr-`, `crio-` prefixes) that appeared
    /// since [`ScopeWatch::new`]: each a leak, stopped here.
    pub fn leaks(&self) -> Vec<String> {
        let Some(before) = &self.before else {
            return Vec::new();
        };
        let mut leaks = Vec::new();
        for s in scopes() {
            let container = ["docker-", "libpod-", "ctr-", "crio-"]
                .iter()
                .any(|p| s.starts_with(p));
            if container && !before.contains(&s) {
                leaks.push(format!("scope left: {s} ({})", show(&s, &["ActiveState"])));
                let _ = systemctl(&["stop", &s]);
                let _ = systemctl(&["reset-failed", &s]);
            }
        }
        leaks
    }
}

impl Default for ScopeWatch {
    fn default() -> Self {
        Self::new()
    }
}

/// The scope a container's init runs in, as the engine tests compare it: the cgroup with
/// the container's id (or name) replaced by `<id>`, the unit's state and `Delegate`, the
/// limits in the scope's files and in `systemctl show`.
pub struct ScopeView {
    pub cgroup: String,
    pub unit: String,
}

impl ScopeView {
    /// The scope of `pid`, with `id` replaced in its name.
    pub fn of(pid: i32) -> Option<ScopeView> {
        let cgroup = cgroup_of(pid)?;
        let unit = cgroup.rsplit('/').next()?.to_string();
        Some(ScopeView { cgroup, unit })
    }

    /// The cgroup path with `id` shown as `<id>`.
    pub fn cgroup_named(&self, id: &str) -> String {
        if id.is_empty() {
            return self.cgroup.clone();
        }
        self.cgroup.replace(id, "<id>")
    }

    pub fn file(&self, name: &str) -> String {
        cgroup_file(&self.cgroup, name)
    }

    pub fn show(&self, props: &[&str]) -> String {
        show(&self.unit, props)
    }

    /// True once systemd no longer lists the unit (at most 10 s: the scope goes when its
    /// last process is reaped and the runtime or the engine stops it).
    pub fn gone(&self) -> bool {
        crate::runtime::wait_for(std::time::Duration::from_secs(10), || {
            (!scopes().contains(&self.unit)).then_some(())
        })
        .is_some()
    }
}

/// A command's stdout, trimmed, when it succeeded (else its failure line).
pub fn stdout_or_failure(out: &Output) -> String {
    if out.success() {
        out.stdout.trim().to_string()
    } else {
        super::failure(out)
    }
}

/// Panics unless the host runs systemd: `engine` was asked for its systemd driver.
pub fn require(engine: &str) {
    assert!(
        host_runs_systemd(),
        "{engine} with the systemd cgroup driver (PATINA_ENGINE_CGROUP=systemd) needs a host \
         that runs systemd (no /run/systemd/system here)"
    );
}
