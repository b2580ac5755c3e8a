//! process.scheduler (sched_setattr) and process.ioPriority (ioprio_set), applied by init
//! to itself before the exec: the program inherits both.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler,
};

use crate::bail;
use crate::error::{Error, Result};

/// `struct sched_attr` (linux/sched/types.h), SCHED_ATTR_SIZE_VER1.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn policy(p: LinuxSchedulerPolicy) -> u32 {
    match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    }
}

fn flag(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

/// Input checks that need no syscall (the kernel checks the rest at apply time).
pub fn validate(s: &Scheduler) -> Result<()> {
    if let Some(nice) = s.nice() {
        if !(-20..=19).contains(nice) {
            bail!(
                InvalidConfig,
                "process.scheduler.nice {nice}: must be -20 to 19"
            );
        }
    }
    if s.priority().is_some_and(|p| p < 0) {
        bail!(
            InvalidConfig,
            "process.scheduler.priority: must not be negative"
        );
    }
    if *s.policy() == LinuxSchedulerPolicy::SchedIso {
        bail!(
            Unsupported,
            "process.scheduler.policy SCHED_ISO: not implemented by Linux"
        );
    }
    Ok(())
}

pub fn apply(s: &Scheduler) -> Result<()> {
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy(*s.policy()),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..SchedAttr::default()
    };
    for f in s.flags().iter().flatten() {
        attr.flags |= flag(*f);
    }
    // SAFETY: sched_setattr reads `size` bytes of a struct we own; pid 0 is this thread.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(rc).map(drop).map_err(|e| {
        Error::os(
            e,
            format!("process.scheduler: sched_setattr policy {}", s.policy()),
        )
    })
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

pub fn validate_io(p: &LinuxIOPriority) -> Result<()> {
    if !(0..=7).contains(&p.priority()) {
        bail!(
            InvalidConfig,
            "process.ioPriority.priority {}: must be 0 to 7",
            p.priority()
        );
    }
    Ok(())
}

pub fn apply_io(p: &LinuxIOPriority) -> Result<()> {
    let class: u32 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << IOPRIO_CLASS_SHIFT) | p.priority() as u32;
    // SAFETY: ioprio_set takes integers only.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    nix::errno::Errno::result(rc).map(drop).map_err(|e| {
        Error::os(
            e,
            format!(
                "process.ioPriority: ioprio_set {} {}",
                p.class(),
                p.priority()
            ),
        )
    })
}
