//! Stats: the container's cgroup figures as containerd's cgroups v1 / v2 `Metrics`,
//! read from the cgroup of its init (`/proc/PID/cgroup`).

use std::path::{Path, PathBuf};

use crate::proto::*;

const ROOT: &str = "/sys/fs/cgroup";

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, memory.events).
fn read_kv(path: &Path) -> std::collections::HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// (controllers, path) per line of /proc/PID/cgroup.
fn cgroups(pid: u32) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("read /proc/{pid}/cgroup: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect())
}

pub fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The v1 directory of `controller` for `pid`.
pub fn v1_dir(pid: u32, controller: &str) -> Result<PathBuf, String> {
    let (ctrls, path) = cgroups(pid)?
        .into_iter()
        .find(|(c, _)| c.split(',').any(|c| c == controller))
        .ok_or_else(|| format!("pid {pid} has no {controller} cgroup"))?;
    let mount = Path::new(ROOT).join(&ctrls);
    let mount = if mount.exists() {
        mount
    } else {
        Path::new(ROOT).join(controller)
    };
    Ok(mount.join(path.trim_start_matches('/')))
}

pub fn v2_dir(pid: u32) -> Result<PathBuf, String> {
    let (_, path) = cgroups(pid)?
        .into_iter()
        .find(|(c, _)| c.is_empty())
        .ok_or_else(|| format!("pid {pid} has no cgroup v2 entry"))?;
    Ok(Path::new(ROOT).join(path.trim_start_matches('/')))
}

pub fn collect(pid: u32) -> Result<Any, String> {
    if pid == 0 {
        return Err("the container has no process".into());
    }
    if unified() {
        let dir = v2_dir(pid)?;
        let mem = read_kv(&dir.join("memory.stat"));
        let cpu = read_kv(&dir.join("cpu.stat"));
        let events = read_kv(&dir.join("memory.events"));
        let g =
            |m: &std::collections::HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let metrics = V2Metrics {
            pids: Some(V1PidsStat {
                current: read_u64(&dir.join("pids.current")),
                limit: read_u64(&dir.join("pids.max")),
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
                usage: read_u64(&dir.join("memory.current")),
                usage_limit: read_u64(&dir.join("memory.max")),
                swap_usage: read_u64(&dir.join("memory.swap.current")),
                swap_limit: read_u64(&dir.join("memory.swap.max")),
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
    if let Ok(dir) = v1_dir(pid, "memory") {
        let m = read_kv(&dir.join("memory.stat"));
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        let entry = |prefix: &str| V1MemoryEntry {
            limit: read_u64(&dir.join(format!("{prefix}limit_in_bytes"))),
            usage: read_u64(&dir.join(format!("{prefix}usage_in_bytes"))),
            max: read_u64(&dir.join(format!("{prefix}max_usage_in_bytes"))),
            failcnt: read_u64(&dir.join(format!("{prefix}failcnt"))),
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
        let oom = read_kv(&dir.join("memory.oom_control"));
        metrics.memory_oom_control = Some(V1MemoryOomControl {
            oom_kill_disable: oom.get("oom_kill_disable").copied().unwrap_or(0),
            under_oom: oom.get("under_oom").copied().unwrap_or(0),
            oom_kill: oom.get("oom_kill").copied().unwrap_or(0),
        });
    }
    if let Ok(dir) = v1_dir(pid, "pids") {
        let limit = std::fs::read_to_string(dir.join("pids.max")).unwrap_or_default();
        metrics.pids = Some(V1PidsStat {
            current: read_u64(&dir.join("pids.current")),
            limit: limit.trim().parse().unwrap_or(0),
        });
    }
    if let Ok(dir) = v1_dir(pid, "cpuacct") {
        let stat = read_kv(&dir.join("cpuacct.stat"));
        // cpuacct.stat is in USER_HZ ticks; containerd reports nanoseconds.
        let tick = 1_000_000_000 / 100;
        let throttle = v1_dir(pid, "cpu")
            .map(|d| read_kv(&d.join("cpu.stat")))
            .unwrap_or_default();
        metrics.cpu = Some(V1CpuStat {
            usage: Some(V1CpuUsage {
                total: read_u64(&dir.join("cpuacct.usage")),
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
