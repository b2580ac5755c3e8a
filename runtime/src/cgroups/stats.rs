//! `events --stats`: the container's usage in runc's JSON format (types.Stats of
//! runc's `events`), read from v1 or v2 files. Absent controllers leave their part
//! empty, as in runc.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{read_trimmed, Cgroup};

/// A file holding one number (0 when absent or not a number).
pub fn num(dir: &Path, file: &str) -> u64 {
    read_trimmed(dir, file)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events).
pub fn flat_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// "max" (or v1's near-i64::MAX "unlimited") reads as runc does: v1 keeps the number,
/// v2 "max" is u64::MAX.
fn limit(dir: &Path, file: &str) -> u64 {
    match read_trimmed(dir, file).as_deref() {
        Some("max") => u64::MAX,
        Some(v) => v.parse().unwrap_or(0),
        None => 0,
    }
}

pub fn stats(cg: &Cgroup) -> Value {
    let mut data = Map::new();
    if cg.is_v2() {
        let dir = cg.unified.as_deref().expect("v2 dir");
        v2_stats(dir, &mut data);
    } else {
        v1_stats(cg, &mut data);
    }
    Value::Object(data)
}

fn v1_stats(cg: &Cgroup, data: &mut Map<String, Value>) {
    let mut cpu = json!({ "usage": {}, "throttling": {} });
    if let Some(d) = cg.v1_dir("cpuacct") {
        let percpu: Vec<u64> = read_trimmed(d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let stat = flat_keyed(d, "cpuacct.stat");
        // USER_HZ ticks to nanoseconds.
        let tick = 1_000_000_000 / 100;
        cpu["usage"] = json!({
            "total": num(d, "cpuacct.usage"),
            "percpu": percpu,
            "kernel": stat.get("system").copied().unwrap_or(0) * tick,
            "user": stat.get("user").copied().unwrap_or(0) * tick,
        });
    }
    if let Some(d) = cg.v1_dir("cpu") {
        cpu["throttling"] = throttling(&flat_keyed(d, "cpu.stat"), 1);
    }
    data.insert("cpu".into(), cpu);
    let mut memory = json!({});
    if let Some(d) = cg.v1_dir("memory") {
        let entry = |prefix: &str| {
            json!({
                "limit": num(d, &format!("{prefix}limit_in_bytes")),
                "usage": num(d, &format!("{prefix}usage_in_bytes")),
                "max": num(d, &format!("{prefix}max_usage_in_bytes")),
                "failcnt": num(d, &format!("{prefix}failcnt")),
            })
        };
        let raw = flat_keyed(d, "memory.stat");
        memory = json!({
            "cache": raw.get("cache").copied().unwrap_or(0),
            "usage": entry("memory."),
            "swap": entry("memory.memsw."),
            "kernel": entry("memory.kmem."),
            "kernelTCP": entry("memory.kmem.tcp."),
            "raw": raw,
        });
    }
    data.insert("memory".into(), memory);
    data.insert("pids".into(), pids(cg.v1_dir("pids")));
    let mut blkio = Map::new();
    if let Some(d) = cg.v1_dir("blkio") {
        for (key, file) in [
            (
                "ioServiceBytesRecursive",
                "blkio.throttle.io_service_bytes_recursive",
            ),
            (
                "ioServicedRecursive",
                "blkio.throttle.io_serviced_recursive",
            ),
        ] {
            let entries = blkio_entries(d, file);
            if !entries.is_empty() {
                blkio.insert(key.into(), Value::Array(entries));
            }
        }
    }
    data.insert("blkio".into(), Value::Object(blkio));
    let hugetlb = match (cg.v1_dir("hugetlb"), cg.unified.as_deref()) {
        (Some(d), _) => hugetlb_v1(d),
        (None, Some(u)) => hugetlb_v2(u),
        _ => json!({}),
    };
    data.insert("hugetlb".into(), hugetlb);
}

fn throttling(stat: &BTreeMap<String, u64>, time_scale: u64) -> Value {
    let mut t = Map::new();
    for (key, name, scale) in [
        ("periods", "nr_periods", 1),
        ("throttledPeriods", "nr_throttled", 1),
        ("throttledTime", "throttled_time", 1),
        ("throttledTime", "throttled_usec", time_scale),
    ] {
        if let Some(v) = stat.get(name).filter(|v| **v != 0) {
            t.insert(key.into(), json!(v * scale));
        }
    }
    Value::Object(t)
}

fn pids(dir: Option<&Path>) -> Value {
    let Some(d) = dir else {
        return json!({});
    };
    let mut p = Map::new();
    let current = num(d, "pids.current");
    if current != 0 {
        p.insert("current".into(), json!(current));
    }
    let max = match read_trimmed(d, "pids.max").as_deref() {
        Some("max") | None => 0,
        Some(v) => v.parse().unwrap_or(0),
    };
    if max != 0 {
        p.insert("limit".into(), json!(max));
    }
    Value::Object(p)
}

fn blkio_entries(dir: &Path, file: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(json!({
                "major": major.parse::<u64>().ok()?,
                "minor": minor.parse::<u64>().ok()?,
                "op": op,
                "value": value.parse::<u64>().ok()?,
            }))
        })
        .collect()
}

fn page_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
                (!size.contains('.')).then(|| size.to_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    sizes
}

fn hugetlb_v1(d: &Path) -> Value {
    let mut out = Map::new();
    for size in page_sizes(d, ".limit_in_bytes") {
        out.insert(
            size.clone(),
            json!({
                "usage": num(d, &format!("hugetlb.{size}.usage_in_bytes")),
                "max": num(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                "failcnt": num(d, &format!("hugetlb.{size}.failcnt")),
            }),
        );
    }
    Value::Object(out)
}

fn hugetlb_v2(d: &Path) -> Value {
    let mut out = Map::new();
    for size in page_sizes(d, ".max") {
        let events = flat_keyed(d, &format!("hugetlb.{size}.events"));
        out.insert(
            size.clone(),
            json!({
                "usage": num(d, &format!("hugetlb.{size}.current")),
                "failcnt": events.get("max").copied().unwrap_or(0),
            }),
        );
    }
    Value::Object(out)
}

fn v2_stats(d: &Path, data: &mut Map<String, Value>) {
    let cpu_stat = flat_keyed(d, "cpu.stat");
    let us = |k: &str| cpu_stat.get(k).copied().unwrap_or(0) * 1000;
    data.insert(
        "cpu".into(),
        json!({
            "usage": { "total": us("usage_usec"), "kernel": us("system_usec"), "user": us("user_usec") },
            "throttling": throttling(&cpu_stat, 1000),
        }),
    );
    let mut memory = json!({});
    if d.join("memory.current").exists() {
        let raw = flat_keyed(d, "memory.stat");
        let events = flat_keyed(d, "memory.events");
        // "swap" is memory+swap, as v1's memsw and runc's v2 figures are: v2 counts
        // swap alone, so memory is added back (an unlimited side stays unlimited).
        let (mem_limit, mem_usage) = (limit(d, "memory.max"), num(d, "memory.current"));
        let swap_limit = match limit(d, "memory.swap.max") {
            u64::MAX => u64::MAX,
            s => s.saturating_add(mem_limit),
        };
        memory = json!({
            "cache": raw.get("file").copied().unwrap_or(0),
            "usage": { "limit": mem_limit, "usage": mem_usage,
                       "max": num(d, "memory.peak"), "failcnt": events.get("max").copied().unwrap_or(0) },
            "swap": { "limit": swap_limit, "usage": num(d, "memory.swap.current") + mem_usage, "failcnt": 0 },
            "raw": raw,
        });
    }
    data.insert("memory".into(), memory);
    data.insert(
        "pids".into(),
        if d.join("pids.current").exists() {
            pids(Some(d))
        } else {
            json!({})
        },
    );
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in std::fs::read_to_string(d.join("io.stat"))
        .unwrap_or_default()
        .lines()
    {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(json!({ "major": major, "minor": minor, "op": op, "value": v }));
        }
    }
    let mut blkio = Map::new();
    if !bytes.is_empty() {
        blkio.insert("ioServiceBytesRecursive".into(), Value::Array(bytes));
    }
    if !ios.is_empty() {
        blkio.insert("ioServicedRecursive".into(), Value::Array(ios));
    }
    data.insert("blkio".into(), Value::Object(blkio));
    data.insert("hugetlb".into(), hugetlb_v2(d));
}

/// How many times the kernel OOM-killed in the cgroup so far (v1 memory.oom_control,
/// v2 memory.events): `events` reports an "oom" event each time it goes up.
pub fn oom_kills(cg: &Cgroup) -> u64 {
    let (dir, file) = match (cg.v1_dir("memory"), cg.unified.as_deref()) {
        (Some(d), _) => (d, "memory.oom_control"),
        (None, Some(u)) if cg.is_v2() => (u, "memory.events"),
        _ => return 0,
    };
    flat_keyed(dir, file).get("oom_kill").copied().unwrap_or(0)
}
