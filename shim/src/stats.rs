//! Stats: the container's cgroup figures as containerd's cgroups v1 / v2 `Metrics`.
//! Which cgroup, v1 or v2, and the reading of its files are the runtime library's
//! (`patina::cgroups`, which `patina events --stats` reads the same files with); only
//! the containerd message layout is the shim's.

use std::path::Path;

use patina::cgroups::stats::{flat_keyed, num};
use patina::cgroups::{Cgroup, Layout};
use patina::error::Context;
use patina::Error;

use crate::proto::*;

/// Whether the host has only cgroup v2 (the runtime library's detection).
pub fn unified() -> bool {
    matches!(Layout::detect(), Ok(Layout::V2 { .. }))
}

/// The cgroup of `pid` (a container's init), resolved as the runtime resolves its own.
pub fn cgroup_of(pid: u32) -> Result<Cgroup, Error> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("read /proc/{pid}/cgroup"))?;
    Ok(Cgroup::resolve_with(
        &Layout::detect()?,
        &own,
        Path::new(""),
    ))
}

/// The v1 directory of `controller` for `pid`.
fn v1_dir<'a>(cg: &'a Cgroup, controller: &str) -> Result<&'a Path, Error> {
    cg.v1_dir(controller)
        .ok_or_else(|| Error::msg(format!("no {controller} cgroup")))
}

pub fn collect(pid: u32) -> Result<Any, Error> {
    if pid == 0 {
        return Err(Error::new(
            patina::Kind::WrongState,
            "the container has no process",
        ));
    }
    let cg = cgroup_of(pid)?;
    if let Some(dir) = cg.unified.as_deref().filter(|_| cg.is_v2()) {
        let mem = flat_keyed(dir, "memory.stat");
        let cpu = flat_keyed(dir, "cpu.stat");
        let events = flat_keyed(dir, "memory.events");
        let g =
            |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let metrics = V2Metrics {
            pids: Some(V1PidsStat {
                current: num(dir, "pids.current"),
                limit: num(dir, "pids.max"),
            }),
            cpu: Some(V2CpuStat {
                usage_usec: g(&cpu, "usage_usec"),
                user_usec: g(&cpu, "user_usec"),
                system_usec: g(&cpu, "system_usec"),
                nr_periods: g(&cpu, "nr_periods"),
                nr_throttled: g(&cpu, "nr_throttled"),
                throttled_usec: g(&cpu, "throttled_usec"),
            }),
            memory: Some(V2MemoryStat {
                anon: g(&mem, "anon"),
                file: g(&mem, "file"),
                kernel_stack: g(&mem, "kernel_stack"),
                slab: g(&mem, "slab"),
                sock: g(&mem, "sock"),
                shmem: g(&mem, "shmem"),
                file_mapped: g(&mem, "file_mapped"),
                file_dirty: g(&mem, "file_dirty"),
                file_writeback: g(&mem, "file_writeback"),
                inactive_anon: g(&mem, "inactive_anon"),
                active_anon: g(&mem, "active_anon"),
                inactive_file: g(&mem, "inactive_file"),
                active_file: g(&mem, "active_file"),
                unevictable: g(&mem, "unevictable"),
                pgfault: g(&mem, "pgfault"),
                pgmajfault: g(&mem, "pgmajfault"),
                usage: num(dir, "memory.current"),
                usage_limit: num(dir, "memory.max"),
                swap_usage: num(dir, "memory.swap.current"),
                swap_limit: num(dir, "memory.swap.max"),
            }),
            memory_events: Some(V2MemoryEvents {
                low: g(&events, "low"),
                high: g(&events, "high"),
                max: g(&events, "max"),
                oom: g(&events, "oom"),
                oom_kill: g(&events, "oom_kill"),
            }),
        };
        return Ok(Any::pack("io.containerd.cgroups.v2.Metrics", &metrics));
    }
    let mut metrics = V1Metrics::default();
    if let Ok(dir) = v1_dir(&cg, "memory") {
        let m = flat_keyed(dir, "memory.stat");
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        let entry = |prefix: &str| V1MemoryEntry {
            limit: num(dir, &format!("{prefix}limit_in_bytes")),
            usage: num(dir, &format!("{prefix}usage_in_bytes")),
            max: num(dir, &format!("{prefix}max_usage_in_bytes")),
            failcnt: num(dir, &format!("{prefix}failcnt")),
        };
        metrics.memory = Some(V1MemoryStat {
            cache: g("cache"),
            rss: g("rss"),
            rss_huge: g("rss_huge"),
            mapped_file: g("mapped_file"),
            dirty: g("dirty"),
            writeback: g("writeback"),
            pg_pg_in: g("pgpgin"),
            pg_pg_out: g("pgpgout"),
            pg_fault: g("pgfault"),
            pg_maj_fault: g("pgmajfault"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g("inactive_file"),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            hierarchical_memory_limit: g("hierarchical_memory_limit"),
            hierarchical_swap_limit: g("hierarchical_memsw_limit"),
            total_cache: g("total_cache"),
            total_rss: g("total_rss"),
            total_rss_huge: g("total_rss_huge"),
            total_mapped_file: g("total_mapped_file"),
            total_dirty: g("total_dirty"),
            total_writeback: g("total_writeback"),
            total_pg_pg_in: g("total_pgpgin"),
            total_pg_pg_out: g("total_pgpgout"),
            total_pg_fault: g("total_pgfault"),
            total_pg_maj_fault: g("total_pgmajfault"),
            total_inactive_anon: g("total_inactive_anon"),
            total_active_anon: g("total_active_anon"),
            total_inactive_file: g("total_inactive_file"),
            total_active_file: g("total_active_file"),
            total_unevictable: g("total_unevictable"),
            usage: Some(entry("memory.")),
            swap: Some(entry("memory.memsw.")),
            kernel: Some(entry("memory.kmem.")),
            kernel_tcp: Some(entry("memory.kmem.tcp.")),
        });
        let oom = flat_keyed(dir, "memory.oom_control");
        metrics.memory_oom_control = Some(V1MemoryOomControl {
            oom_kill_disable: oom.get("oom_kill_disable").copied().unwrap_or(0),
            under_oom: oom.get("under_oom").copied().unwrap_or(0),
            oom_kill: oom.get("oom_kill").copied().unwrap_or(0),
        });
    }
    if let Ok(dir) = v1_dir(&cg, "pids") {
        let limit = std::fs::read_to_string(dir.join("pids.max")).unwrap_or_default();
        metrics.pids = Some(V1PidsStat {
            current: num(dir, "pids.current"),
            limit: limit.trim().parse().unwrap_or(0),
        });
    }
    if let Ok(dir) = v1_dir(&cg, "cpuacct") {
        let stat = flat_keyed(dir, "cpuacct.stat");
        // cpuacct.stat is in USER_HZ ticks; containerd reports nanoseconds.
        let tick = 1_000_000_000 / 100;
        let throttle = v1_dir(&cg, "cpu")
            .map(|d| flat_keyed(d, "cpu.stat"))
            .unwrap_or_default();
        metrics.cpu = Some(V1CpuStat {
            usage: Some(V1CpuUsage {
                total: num(dir, "cpuacct.usage"),
                kernel: stat.get("system").copied().unwrap_or(0) * tick,
                user: stat.get("user").copied().unwrap_or(0) * tick,
            }),
            throttling: Some(V1Throttle {
                periods: throttle.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: throttle.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: throttle.get("throttled_time").copied().unwrap_or(0),
            }),
        });
    }
    Ok(Any::pack("io.containerd.cgroups.v1.Metrics", &metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test process's own cgroup: it runs there, so its CPU time (and on v1 its memory,
    /// which the root cgroup counts too) is not zero, whichever of v1 and v2 this host has
    /// (pids.current and v2's memory.current are absent in a root cgroup, where the test
    /// may run).
    #[test]
    fn own_cgroup_has_cpu_and_memory() {
        let any = collect(std::process::id()).unwrap();
        if any.type_url.ends_with("v2.Metrics") {
            let m = V2Metrics::decode(&any.value).unwrap();
            assert!(m.cpu.unwrap().usage_usec > 0);
        } else {
            let m = V1Metrics::decode(&any.value).unwrap();
            assert!(m.memory.unwrap().usage.unwrap().usage > 0);
            assert!(m.cpu.unwrap().usage.unwrap().total > 0);
        }
    }
}
