//! cgroup v1: one hierarchy per controller; each resource goes to its controller's
//! files (docs/cgroups.md has the table). On a hybrid host, what only the unified
//! hierarchy offers (hugetlb here, `unified` keys) is written there with v2's files.

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use super::devices::{self, Rule};
use super::{absent, read_trimmed, set, v2, Cgroup};
use crate::bail;
use crate::error::{Context, Result};

pub fn apply(cg: &Cgroup, r: &LinuxResources, rules: Option<&[Rule]>) -> Result<()> {
    let dir =
        |controller: &str, key: &str| cg.v1_dir(controller).ok_or_else(|| absent(key, controller));
    if let Some(m) = r.memory() {
        memory(dir("memory", "memory")?, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(p) = r.pids() {
        set(
            dir("pids", "pids.limit")?,
            "pids.max",
            &pids_max(p.limit()),
            "pids.limit",
        )?;
    }
    if let Some(b) = r.block_io() {
        blkio(dir("blkio", "blockIO")?, b)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        match (cg.v1_dir("hugetlb"), cg.unified.as_deref()) {
            (Some(d), _) => {
                for (i, h) in limits.iter().enumerate() {
                    let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
                    set(
                        d,
                        &file,
                        &h.limit().to_string(),
                        &format!("hugepageLimits[{i}]"),
                    )?;
                }
            }
            (None, Some(unified)) => v2::hugetlb(unified, limits)?,
            (None, None) => return Err(absent("hugepageLimits", "hugetlb")),
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            set(
                dir("net_cls", "network.classID")?,
                "net_cls.classid",
                &id.to_string(),
                "network.classID",
            )?;
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let key = format!("network.priorities[{i}]");
            let value = format!("{} {}", p.name(), p.priority());
            set(dir("net_prio", &key)?, "net_prio.ifpriomap", &value, &key)?;
        }
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        v2::rdma(dir("rdma", "rdma")?, rdma)?;
    }
    if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        match cg.unified.as_deref() {
            Some(d) => v2::unified(d, unified)?,
            None => bail!(
                Unsupported,
                "linux.resources.unified: needs cgroup v2, and this host has only v1"
            ),
        }
    }
    if let Some(rules) = rules {
        match (cg.v1_dir("devices"), cg.unified.as_deref()) {
            (Some(d), _) => devices::apply_v1(d, rules)?,
            (None, Some(u)) => devices::apply_v2(u, rules)?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// `pids.max`: -1 (or 0, unset in runc's sense) is "max".
pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().filter(|v| *v != 0);
    // Lifting the memory limit lifts memory+swap too unless the caller set that (as
    // runc): the kernel refuses a memory limit above memsw, so -1 alone would fail
    // whenever a swap limit was set before.
    let swap = match m.swap().filter(|v| *v != 0) {
        None if limit == Some(-1) && dir.join("memory.memsw.limit_in_bytes").exists() => Some(-1),
        swap => swap,
    };
    let write_limit = |v: i64| set(dir, "memory.limit_in_bytes", &v.to_string(), "memory.limit");
    let write_swap = |v: i64| {
        set(
            dir,
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
            "memory.swap",
        )
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // memory <= memory+swap at every step: raise the pair from the top, lower from the bottom.
            let cur_swap: i64 = read_trimmed(dir, "memory.memsw.limit_in_bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::MAX);
            if l == -1 || l > cur_swap {
                write_swap(s)?;
                write_limit(l)?;
            } else {
                write_limit(l)?;
                write_swap(s)?;
            }
        }
        (Some(l), None) => write_limit(l)?,
        (None, Some(s)) => write_swap(s)?,
        (None, None) => {}
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        set(
            dir,
            "memory.soft_limit_in_bytes",
            &v.to_string(),
            "memory.reservation",
        )?;
    }
    // memory.kernel: deprecated by the spec and gone from the kernel (5.4+): ignored.
    if let Some(v) = m.kernel_tcp().filter(|v| *v != 0) {
        set(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &v.to_string(),
            "memory.kernelTCP",
        )?;
    }
    if let Some(v) = m.swappiness() {
        set(
            dir,
            "memory.swappiness",
            &v.to_string(),
            "memory.swappiness",
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        set(dir, "memory.oom_control", "1", "memory.disableOOMKiller")?;
    }
    if let Some(h) = m.use_hierarchy() {
        set(
            dir,
            "memory.use_hierarchy",
            if h { "1" } else { "0" },
            "memory.useHierarchy",
        )?;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    let cpu_dir = |key: &str| cg.v1_dir("cpu").ok_or_else(|| absent(key, "cpu"));
    if let Some(v) = c.shares().filter(|v| *v != 0) {
        set(
            cpu_dir("cpu.shares")?,
            "cpu.shares",
            &v.to_string(),
            "cpu.shares",
        )?;
    }
    let quota = c.quota().filter(|v| *v != 0);
    let mut period_later = None;
    if let Some(v) = c.period().filter(|v| *v != 0) {
        let written = set(
            cpu_dir("cpu.period")?,
            "cpu.cfs_period_us",
            &v.to_string(),
            "cpu.period",
        );
        match written {
            // A shorter period can make the old quota exceed a parent's limit (EINVAL,
            // as in a pod with a CPU limit): when a quota comes too, write it first and
            // the period after it, as runc does.
            Err(e) if e.errno() == Some(nix::errno::Errno::EINVAL) && quota.is_some() => {
                period_later = Some(v)
            }
            other => other?,
        }
    }
    if let Some(v) = quota {
        set(
            cpu_dir("cpu.quota")?,
            "cpu.cfs_quota_us",
            &v.to_string(),
            "cpu.quota",
        )?;
    }
    if let Some(v) = period_later {
        set(
            cpu_dir("cpu.period")?,
            "cpu.cfs_period_us",
            &v.to_string(),
            "cpu.period",
        )?;
    }
    if let Some(v) = c.burst() {
        set(
            cpu_dir("cpu.burst")?,
            "cpu.cfs_burst_us",
            &v.to_string(),
            "cpu.burst",
        )?;
    }
    if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
        set(
            cpu_dir("cpu.realtimePeriod")?,
            "cpu.rt_period_us",
            &v.to_string(),
            "cpu.realtimePeriod",
        )?;
    }
    if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
        set(
            cpu_dir("cpu.realtimeRuntime")?,
            "cpu.rt_runtime_us",
            &v.to_string(),
            "cpu.realtimeRuntime",
        )?;
    }
    if let Some(v) = c.idle() {
        set(cpu_dir("cpu.idle")?, "cpu.idle", &v.to_string(), "cpu.idle")?;
    }
    for (key, file, list) in [
        ("cpu.cpus", "cpuset.cpus", c.cpus()),
        ("cpu.mems", "cpuset.mems", c.mems()),
    ] {
        if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
            let dir = cg.v1_dir("cpuset").ok_or_else(|| absent(key, "cpuset"))?;
            set(dir, file, list, key)?;
        }
    }
    Ok(())
}

/// The throttle lists of blockIO with their config names and v1 file names.
pub fn throttles(b: &LinuxBlockIo) -> [(&'static str, &[LinuxThrottleDevice]); 4] {
    fn l(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or_default()
    }
    [
        ("throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // Kernels without CFQ only have the BFQ files.
    let weight_file = |plain: &'static str, bfq: &'static str| {
        if dir.join(plain).exists() {
            plain
        } else {
            bfq
        }
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        set(
            dir,
            weight_file("blkio.weight", "blkio.bfq.weight"),
            &w.to_string(),
            "blockIO.weight",
        )?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        set(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let key = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = d.weight() {
            let file = weight_file("blkio.weight_device", "blkio.bfq.weight_device");
            set(dir, file, &format!("{}:{} {w}", d.major(), d.minor()), &key)?;
        }
        if let Some(w) = d.leaf_weight() {
            set(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
                &key,
            )?;
        }
    }
    let files = [
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    for ((name, list), file) in throttles(b).into_iter().zip(files) {
        for (i, d) in list.iter().enumerate() {
            let value = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            set(dir, file, &value, &format!("blockIO.{name}[{i}]"))?;
        }
    }
    Ok(())
}

/// A new cpuset cgroup starts with empty cpus/mems, and no task can join it until they
/// are set: copy them down from the nearest ancestor that has them, filling the empty
/// ones on the way (a pod cgroup an engine made without a cpuset), as runc does. An
/// empty cpuset is unusable, so filling one changes nothing anyone relied on.
pub fn init_cpuset(dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut empty = Vec::new();
        let mut at = Some(dir);
        let value = loop {
            let Some(d) = at else { break None };
            match read_trimmed(d, file) {
                Some(v) if !v.is_empty() => break Some(v),
                Some(_) => empty.push(d),
                None => break None,
            }
            at = d.parent();
        };
        let Some(value) = value else { continue };
        for d in empty.iter().rev() {
            super::write_file(d, file, &value)
                .with_context(|| format!("initialise cpuset of {:?}", d.display()))?;
        }
    }
    Ok(())
}

/// v1 freezer: write the state, then wait until the kernel reports it (FREEZING is
/// transitional; re-asking helps tasks that were busy forking).
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        super::write_file(dir, "freezer.state", want).context("freezer")?;
        if read_trimmed(dir, "freezer.state").as_deref() == Some(want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = super::write_file(dir, "freezer.state", "THAWED");
            bail!("freezer: the cgroup did not reach {want} within 10s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
