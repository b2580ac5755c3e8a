//! cgroup v2: one hierarchy; a controller's files appear in a cgroup once its parent
//! lists the controller in `cgroup.subtree_control`. Resources map to v2 files, with
//! runc's conversions (shares -> weight, blkio weight -> io.weight, memory+swap ->
//! swap).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxRdma, LinuxResources,
};

use super::{read_trimmed, set};
use crate::bail;
use crate::error::{Context, Error, Result};

pub fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        enable(dir, "memory", "memory")?;
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        enable(dir, "pids", "pids.limit")?;
        set(
            dir,
            "pids.max",
            &super::v1::pids_max(p.limit()),
            "pids.limit",
        )?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        hugetlb(dir, limits)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() {
            bail!(Unsupported, "linux.resources.network.classID: needs the v1 net_cls controller, which cgroup v2 does not have");
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            bail!(Unsupported, "linux.resources.network.priorities: needs the v1 net_prio controller, which cgroup v2 does not have");
        }
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        enable(dir, "rdma", "rdma")?;
        self::rdma(dir, rdma)?;
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        unified(dir, u)?;
    }
    Ok(())
}

/// Make `controller` available in `dir` by enabling it in the parent's
/// subtree_control (only if it is not already: a parent we did not create is written
/// to only when the config asks for a controller it does not yet delegate). A parent
/// that does not have it yet (several new levels, as a pod's cgroup and the
/// container's below it) gets it from its own parent first, up to the first ancestor
/// that has it, as runc does.
pub fn enable(dir: &Path, controller: &str, key: &str) -> Result<()> {
    let parent = dir.parent().expect("cgroup dir has a parent");
    let listed = |file: &str| {
        read_trimmed(parent, file).is_some_and(|v| v.split(' ').any(|c| c == controller))
    };
    if listed("cgroup.subtree_control") {
        return Ok(());
    }
    // The root cgroup (the only one without cgroup.type) is the host's to configure:
    // patina does not change what it delegates.
    let root = !parent.join("cgroup.type").exists();
    if !listed("cgroup.controllers") {
        if root || !parent.join("cgroup.controllers").exists() {
            bail!(Unsupported, "linux.resources.{key}: invalid configuration, the host's cgroup v2 has no {controller} controller here (it is not in {:?}/cgroup.controllers)", parent.display());
        }
        enable(parent, controller, key)?;
    }
    if root {
        bail!(Unsupported, "linux.resources.{key}: the {controller} controller is not enabled in the root cgroup {:?} (cgroup.subtree_control); patina does not change the host's root cgroup", parent.display());
    }
    super::write_file(parent, "cgroup.subtree_control", &format!("+{controller}")).map_err(|e| {
        e.wrap(format!(
            "linux.resources.{key}: enable the {controller} controller"
        ))
    })
}

/// OCI's `swap` is memory+swap (v1's memsw); v2's memory.swap.max is swap alone.
pub fn swap_max(limit: Option<i64>, swap: i64) -> Result<String> {
    match (limit, swap) {
        (_, -1) => Ok("max".into()),
        (Some(l), s) if l > 0 => {
            if s < l {
                bail!(InvalidConfig, "linux.resources.memory.swap: {s} is below memory.limit {l} (swap is memory+swap)");
            }
            Ok((s - l).to_string())
        }
        (Some(-1), _) => Ok("max".into()),
        _ => {
            bail!(InvalidConfig,
            "linux.resources.memory.swap: needs memory.limit on cgroup v2 (swap is memory+swap)"
        )
        }
    }
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let max = |v: i64| {
        if v == -1 {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    let limit = m.limit().filter(|v| *v != 0);
    if let Some(s) = m.swap().filter(|v| *v != 0) {
        set(dir, "memory.swap.max", &swap_max(limit, s)?, "memory.swap")?;
    }
    if let Some(l) = limit {
        set(dir, "memory.max", &max(l), "memory.limit")?;
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        set(dir, "memory.low", &max(v), "memory.reservation")?;
    }
    let unsupported = |key: &str| {
        Err(Error::new(
            crate::Kind::Unsupported,
            format!("linux.resources.memory.{key}: not available on cgroup v2"),
        ))
    };
    if m.kernel_tcp().is_some_and(|v| v != 0) {
        return unsupported("kernelTCP");
    }
    if m.swappiness().is_some() {
        return unsupported("swappiness");
    }
    if m.disable_oom_killer() == Some(true) {
        return unsupported("disableOOMKiller");
    }
    if m.use_hierarchy() == Some(false) {
        return unsupported("useHierarchy (v2 is always hierarchical)");
    }
    Ok(())
}

/// runc's mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    let needs_cpu = c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.idle().is_some();
    if needs_cpu {
        enable(dir, "cpu", "cpu")?;
    }
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        bail!(
            Unsupported,
            "linux.resources.cpu.realtimePeriod/realtimeRuntime: not available on cgroup v2"
        );
    }
    if let Some(v) = c.shares().filter(|v| *v != 0) {
        set(
            dir,
            "cpu.weight",
            &shares_to_weight(v).to_string(),
            "cpu.shares",
        )?;
    }
    let quota = c.quota().filter(|v| *v != 0);
    let period = c.period().filter(|v| *v != 0);
    if quota.is_some() || period.is_some() {
        // cpu.max is "QUOTA PERIOD": keep the half that is not being changed.
        let current = read_trimmed(dir, "cpu.max").unwrap_or_else(|| "max 100000".into());
        let mut parts = current.split(' ');
        let (cur_quota, cur_period) = (
            parts.next().unwrap_or("max"),
            parts.next().unwrap_or("100000"),
        );
        let quota = match quota {
            Some(-1) => "max".to_string(),
            Some(q) => q.to_string(),
            None => cur_quota.to_string(),
        };
        let period = period.map_or(cur_period.to_string(), |p| p.to_string());
        set(dir, "cpu.max", &format!("{quota} {period}"), "cpu.quota")?;
    }
    if let Some(v) = c.burst() {
        set(dir, "cpu.max.burst", &v.to_string(), "cpu.burst")?;
    }
    if let Some(v) = c.idle() {
        set(dir, "cpu.idle", &v.to_string(), "cpu.idle")?;
    }
    for (key, file, list) in [
        ("cpu.cpus", "cpuset.cpus", c.cpus()),
        ("cpu.mems", "cpuset.mems", c.mems()),
    ] {
        if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
            enable(dir, "cpuset", key)?;
            set(dir, file, list, key)?;
        }
    }
    Ok(())
}

/// runc's mapping of blkio weight [10, 1000] onto io.weight [1, 10000].
pub fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    enable(dir, "io", "blockIO")?;
    // With BFQ the weight is io.bfq.weight in blkio units; otherwise io.weight.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            set(dir, "io.bfq.weight", &w.to_string(), "blockIO.weight")?;
        } else {
            set(
                dir,
                "io.weight",
                &format!("default {}", blkio_to_io_weight(w)),
                "blockIO.weight",
            )?;
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        bail!(
            Unsupported,
            "linux.resources.blockIO.leafWeight: not available on cgroup v2"
        );
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let key = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = d.weight() {
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_to_io_weight(w))
            };
            set(dir, file, &format!("{}:{} {w}", d.major(), d.minor()), &key)?;
        }
        if d.leaf_weight().is_some() {
            bail!(
                Unsupported,
                "linux.resources.{key}.leafWeight: not available on cgroup v2"
            );
        }
    }
    let names = ["rbps", "wbps", "riops", "wiops"];
    for ((name, list), io_key) in super::v1::throttles(b).into_iter().zip(names) {
        for (i, d) in list.iter().enumerate() {
            let value = format!("{}:{} {io_key}={}", d.major(), d.minor(), d.rate());
            set(dir, "io.max", &value, &format!("blockIO.{name}[{i}]"))?;
        }
    }
    Ok(())
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    enable(dir, "hugetlb", "hugepageLimits")?;
    for (i, h) in limits.iter().enumerate() {
        let value = if h.limit() == -1 {
            "max".to_string()
        } else {
            h.limit().to_string()
        };
        set(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &value,
            &format!("hugepageLimits[{i}]"),
        )?;
    }
    Ok(())
}

/// `rdma.max` lines, the same on v1 and v2.
pub fn rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (device, limits) in rdma {
        let mut line = device.clone();
        if let Some(h) = limits.hca_handles() {
            line += &format!(" hca_handle={h}");
        }
        if let Some(o) = limits.hca_objects() {
            line += &format!(" hca_object={o}");
        }
        set(dir, "rdma.max", &line, &format!("rdma.{device}"))?;
    }
    Ok(())
}

/// `unified` keys: each must be a file of a controller the cgroup can have.
pub fn unified(dir: &Path, map: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        super::check_unified_key(key, &map[key])?;
        let controller = key.split('.').next().unwrap_or_default();
        let field = format!("unified {key:?}");
        enable(dir, controller, &field)?;
        if !dir.join(key).exists() {
            bail!(
                InvalidConfig,
                "linux.resources.unified {key:?}: unknown key (no such file in {:?})",
                dir.display()
            );
        }
        set(dir, key, &map[key], &field)?;
    }
    Ok(())
}

/// cgroup.freeze, then wait for cgroup.events to say it is done.
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "1" } else { "0" };
    super::write_file(dir, "cgroup.freeze", want).context("freeze")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events =
            std::fs::read_to_string(dir.join("cgroup.events")).context("read cgroup.events")?;
        if events.lines().any(|l| l == format!("frozen {want}")) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = super::write_file(dir, "cgroup.freeze", "0");
            bail!("freeze: the cgroup did not reach frozen={want} within 10s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup: `parent/ctr` with every controller delegated and the given files.
    fn fake(files: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("patina-v2-{}-{n}", std::process::id()));
        let dir = root.join("ctr");
        std::fs::create_dir_all(&dir).unwrap();
        let all = "cpuset cpu io memory hugetlb pids rdma misc";
        std::fs::write(root.join("cgroup.controllers"), all).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), all).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
        (root, dir)
    }

    fn read(dir: &Path, f: &str) -> String {
        std::fs::read_to_string(dir.join(f)).unwrap()
    }

    #[test]
    fn every_resource_lands_in_its_v2_file() {
        let (root, dir) = fake(&[
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "cpu.max.burst",
            "cpu.idle",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "rdma.max",
            "memory.high",
        ]);
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576,"reservation":524288,"swap":2097152},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"idle":0,"cpus":"0","mems":"0"},
                "pids":{"limit":32},
                "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                "rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":10000}},
                "unified":{"memory.high":"2097152"}}"#,
        )
        .unwrap();
        apply(&dir, &r).unwrap();
        for (file, want) in [
            ("memory.max", "1048576"),
            ("memory.low", "524288"),
            ("memory.swap.max", "1048576"),
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "1000"),
            ("cpu.idle", "0"),
            ("cpuset.cpus", "0"),
            ("cpuset.mems", "0"),
            ("pids.max", "32"),
            ("io.weight", "default 4950"),
            ("io.max", "8:0 rbps=1000"),
            ("hugetlb.2MB.max", "4194304"),
            ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("memory.high", "2097152"),
        ] {
            assert_eq!(read(&dir, file), want, "{file}");
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn unlimited_values_and_conversions() {
        let (root, dir) = fake(&["memory.max", "memory.swap.max", "cpu.max", "pids.max"]);
        std::fs::write(dir.join("cpu.max"), "20000 50000").unwrap();
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":-1},"pids":{"limit":-1}}"#,
        )
        .unwrap();
        apply(&dir, &r).unwrap();
        assert_eq!(read(&dir, "memory.max"), "max");
        assert_eq!(read(&dir, "memory.swap.max"), "max");
        assert_eq!(read(&dir, "cpu.max"), "max 50000");
        assert_eq!(read(&dir, "pids.max"), "max");
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn what_v2_cannot_do_is_named() {
        let (root, dir) = fake(&["memory.max"]);
        for (json, key) in [
            (r#"{"memory":{"swappiness":10}}"#, "memory.swappiness"),
            (r#"{"cpu":{"realtimeRuntime":100}}"#, "realtime"),
            (r#"{"network":{"classID":1}}"#, "network.classID"),
            (r#"{"unified":{"memory.nosuch":"1"}}"#, "unknown key"),
            (r#"{"memory":{"swap":100}}"#, "memory.swap"),
            (r#"{"pids":{"limit":5}}"#, "pids.max is absent"),
        ] {
            let r: LinuxResources = serde_json::from_str(json).unwrap();
            let err = apply(&dir, &r).unwrap_err().to_string();
            assert!(err.contains(key), "{json}: {err}");
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    /// Two new levels (a pod's cgroup and the container's below it): the controller is
    /// enabled from the first ancestor that delegates it down to the container's parent.
    #[test]
    fn controllers_are_enabled_down_through_new_levels() {
        let (top, _) = fake(&[]);
        std::fs::write(top.join("cgroup.type"), "domain").unwrap();
        let pod = top.join("pod");
        let dir = pod.join("inner");
        std::fs::create_dir_all(&dir).unwrap();
        for d in [&top, &pod] {
            std::fs::write(d.join("cgroup.subtree_control"), "").unwrap();
            std::fs::write(d.join("cgroup.type"), "domain").unwrap();
        }
        std::fs::write(top.join("cgroup.controllers"), "cpu pids").unwrap();
        std::fs::write(pod.join("cgroup.controllers"), "").unwrap();
        enable(&dir, "cpu", "cpu.quota").unwrap();
        assert_eq!(read(&top, "cgroup.subtree_control"), "+cpu");
        assert_eq!(read(&pod, "cgroup.subtree_control"), "+cpu");
        std::fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn controllers_are_enabled_in_the_parent_only_when_missing() {
        let (root, dir) = fake(&["pids.max"]);
        std::fs::write(root.join("cgroup.subtree_control"), "cpu").unwrap();
        // A root cgroup (no cgroup.type) is never changed.
        let err = enable(&dir, "pids", "pids.limit").unwrap_err().to_string();
        assert!(
            err.contains("root cgroup") && err.contains("pids.limit"),
            "{err}"
        );
        assert_eq!(read(&root, "cgroup.subtree_control"), "cpu");
        // A delegated, non-root parent gets the controller enabled.
        std::fs::write(root.join("cgroup.type"), "domain").unwrap();
        enable(&dir, "pids", "pids.limit").unwrap();
        assert_eq!(read(&root, "cgroup.subtree_control"), "+pids");
        std::fs::write(root.join("cgroup.controllers"), "cpu").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "cpu").unwrap();
        let err = enable(&dir, "memory", "memory.limit")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux.resources.memory.limit") && err.contains("no memory controller"),
            "{err}"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
