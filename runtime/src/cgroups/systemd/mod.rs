//! The systemd cgroup driver (`--systemd-cgroup`, as runc's): the container's cgroup
//! is a transient scope that systemd makes (StartTransientUnit over D-Bus) with the
//! container's init in it, delegated to us; the resources go both into unit
//! properties and into the scope's files (through the cgroupfs code), and `delete`
//! stops the unit. See docs/cgroups.md "The systemd driver".

#[cfg(test)]
mod bus_tests;
pub mod properties;
pub mod unit;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bail;
use crate::dbus::wire::{Message, Value};
use crate::dbus::{self, Connection};
use crate::error::{Error, Result};
pub use unit::Unit;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// How long a start or stop job may take before we give up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// `--systemd-cgroup` needs systemd as the host's init (sd_booted: /run/systemd/system
/// exists) and cgroup v2.
pub fn check_host(layout: &super::Layout) -> Result<()> {
    check_host_with(layout, Path::new("/run/systemd/system").is_dir())
}

fn check_host_with(layout: &super::Layout, booted: bool) -> Result<()> {
    if !booted {
        bail!("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); drop the flag to use cgroupfs");
    }
    if !matches!(layout, super::Layout::V2 { .. }) {
        bail!("--systemd-cgroup: this host's cgroups are v1 or hybrid; patina's systemd driver needs the unified hierarchy (boot with systemd.unified_cgroup_hierarchy=1), or drop the flag to use cgroupfs");
    }
    Ok(())
}

impl Unit {
    fn connect(&self) -> Result<Connection> {
        let opened = match self.user {
            None => Connection::open(&dbus::system_bus_address()),
            // The user's own manager, as that user: patina may be uid 0 of a user
            // namespace (under rootless podman), which the bus sees as the host uid.
            Some(uid) => Connection::open_as(&dbus::user_bus_address(uid), uid),
        };
        opened.map_err(|e| {
            e.wrap(format!(
                "--systemd-cgroup: reach systemd for unit {:?}",
                self.name
            ))
        })
    }

    /// Make the unit with `pid` in it, and wait until systemd has (the job is done).
    /// A unit of the same name left over from an earlier container (failed or
    /// inactive) is reset first, as runc does.
    pub fn start(
        &self,
        pid: u32,
        description: &str,
        resources: Vec<properties::Property>,
    ) -> Result<()> {
        self.start_on(&mut self.connect()?, pid, description, resources)
    }

    fn start_on(
        &self,
        bus: &mut Connection,
        pid: u32,
        description: &str,
        resources: Vec<properties::Property>,
    ) -> Result<()> {
        subscribe_jobs(bus)?;
        let mut props = vec![
            prop("Description", Value::str(description)),
            prop("Slice", Value::str(&self.slice)),
            prop("Delegate", Value::Bool(true)),
            prop("DefaultDependencies", Value::Bool(false)),
            prop("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])),
            prop("MemoryAccounting", Value::Bool(true)),
            prop("CPUAccounting", Value::Bool(true)),
            prop("IOAccounting", Value::Bool(true)),
            prop("TasksAccounting", Value::Bool(true)),
        ];
        if self.name.ends_with(".slice") {
            // A slice holds no processes itself, nor takes a Slice= of its own here.
            props.retain(|p| match p {
                Value::Struct(f) => !matches!(f[0].as_str(), Some("PIDs" | "Slice")),
                _ => true,
            });
        }
        props.extend(resources.into_iter().map(|(n, v)| prop(&n, v)));
        let call = || {
            Message::method_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "StartTransientUnit").with_body(
                vec![
                    Value::str(&self.name),
                    Value::str("replace"),
                    Value::Array("(sv)".into(), props.clone()),
                    Value::Array("(sa(sv))".into(), vec![]),
                ],
            )
        };
        let what = format!("start systemd unit {:?}", self.name);
        let reply = match bus.call(call(), &what) {
            Err(e) if is(&e, "UnitExists") => {
                reset_failed(bus, &self.name);
                bus.call(call(), &what).map_err(|e| {
                    if is(&e, "UnitExists") {
                        e.wrap(format!(
                            "systemd unit {:?} is live already (another container's?)",
                            self.name
                        ))
                    } else {
                        e
                    }
                })?
            }
            other => other?,
        };
        wait_job(bus, &reply, &what).inspect_err(|_| {
            // A unit whose start failed stays as "failed" under its name: free it.
            reset_failed(bus, &self.name);
        })
    }

    /// `update`: change the unit's properties (runtime only, as runc).
    pub fn set(&self, resources: Vec<properties::Property>) -> Result<()> {
        if resources.is_empty() {
            return Ok(());
        }
        let mut bus = self.connect()?;
        let props = resources.into_iter().map(|(n, v)| prop(&n, v)).collect();
        let m = Message::method_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "SetUnitProperties")
            .with_body(vec![
                Value::str(&self.name),
                Value::Bool(true),
                Value::Array("(sv)".into(), props),
            ]);
        bus.call(
            m,
            &format!("set properties of systemd unit {:?}", self.name),
        )
        .map(drop)
    }

    /// `delete`: stop the unit (gone already is fine: an empty scope is collected
    /// when its last process exits) and reset it if it failed, so the name is free.
    pub fn stop(&self) -> Result<()> {
        self.stop_on(&mut self.connect()?)
    }

    fn stop_on(&self, bus: &mut Connection) -> Result<()> {
        subscribe_jobs(bus)?;
        let what = format!("stop systemd unit {:?}", self.name);
        let m = Message::method_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "StopUnit")
            .with_body(vec![Value::str(&self.name), Value::str("replace")]);
        match bus.call(m, &what) {
            Ok(reply) => wait_job(bus, &reply, &what)?,
            Err(e) if is(&e, "NoSuchUnit") => {}
            Err(e) => return Err(e),
        }
        reset_failed(bus, &self.name);
        Ok(())
    }
}

fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::str(name), Value::variant(v)])
}

/// Whether `e` is the systemd D-Bus error `org.freedesktop.systemd1.<name>`.
fn is(e: &Error, name: &str) -> bool {
    dbus::error_name(e).is_some_and(|n| n == format!("{SYSTEMD}.{name}"))
}

/// JobRemoved is broadcast to clients that asked for it; systemd sends it for the jobs
/// we enqueue even if we never called Subscribe.
fn subscribe_jobs(bus: &mut Connection) -> Result<()> {
    bus.add_match(&format!(
        "type='signal',sender='{SYSTEMD}',path='{SYSTEMD_PATH}',interface='{MANAGER}',member='JobRemoved'"
    ))
}

fn reset_failed(bus: &mut Connection, name: &str) {
    let m = Message::method_call(SYSTEMD, SYSTEMD_PATH, MANAGER, "ResetFailedUnit")
        .with_body(vec![Value::str(name)]);
    // Not failed, or gone: nothing to reset.
    let _ = bus.call(m, "reset failed unit");
}

/// Wait for JobRemoved (id, job, unit, result) of the job in `reply`; any result
/// but "done" is an error naming it.
fn wait_job(bus: &mut Connection, reply: &Message, what: &str) -> Result<()> {
    let Some(job) = reply.first_str().map(str::to_owned) else {
        bail!("{what}: systemd's reply names no job");
    };
    let deadline = Instant::now() + JOB_TIMEOUT;
    // Only systemd's word counts: another peer on the bus may send us a signal directly
    // (no match rule needed for that), so the sender must be whoever answered the call.
    let systemd = reply.sender.clone();
    let removed = bus
        .wait_signal(deadline, |m| {
            m.sender == systemd
                && m.interface.as_deref() == Some(MANAGER)
                && m.member.as_deref() == Some("JobRemoved")
                && m.body.get(1).and_then(Value::as_str) == Some(&job)
        })
        .map_err(|e| e.wrap(format!("{what}: wait for job {job}")))?;
    match removed.body.get(3).and_then(Value::as_str) {
        Some("done") => Ok(()),
        result => bail!(
            "{what}: job {} (see `journalctl -u {}`)",
            result.unwrap_or("?"),
            removed.body.get(2).and_then(Value::as_str).unwrap_or("?")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Layout;

    #[test]
    fn hosts_without_systemd_or_with_v1_are_refused_by_name() {
        let v2 = Layout::from_mountinfo(
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let hybrid = Layout::from_mountinfo(
            "25 24 0:22 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             30 24 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        check_host_with(&v2, true).unwrap();
        let err = check_host_with(&v2, false).unwrap_err().to_string();
        assert!(
            err.starts_with("--systemd-cgroup: systemd is not running"),
            "{err}"
        );
        let err = check_host_with(&hybrid, true).unwrap_err().to_string();
        assert!(
            err.contains("v1 or hybrid") && err.contains("unified_cgroup_hierarchy"),
            "{err}"
        );
    }
}
