//! `linux.resources` -> systemd unit properties (runc's conversions), so that
//! `systemctl show` tells the truth and a `daemon-reload` does not undo the limits.
//! Everything is also written to the cgroup files afterwards (the unit is delegated),
//! which covers what systemd has no property for (cpu.idle, burst, hugetlb, rdma,
//! `unified`) and makes the files exact where a property is rounded.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use crate::cgroups::devices::Rule;
use crate::cgroups::{parse_list, v1, v2};
use crate::dbus::wire::Value;
use crate::error::Result;

/// systemd's "infinity" for the u64 limits.
const INFINITY: u64 = u64::MAX;

pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_owned(), v)
}

/// The resource properties of `r` (without devices).
pub fn resources(r: &LinuxResources) -> Result<Vec<Property>> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        memory(m, &mut out)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c, &mut out);
    }
    if let Some(p) = r.pids() {
        match p.limit() {
            l if l > 0 => out.push(prop("TasksMax", Value::U64(l as u64))),
            -1 => out.push(prop("TasksMax", Value::U64(INFINITY))),
            _ => {}
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            out.push(prop("IOWeight", Value::U64(v2::blkio_to_io_weight(w))));
        }
        let weights: Vec<Value> = b
            .weight_device()
            .iter()
            .flatten()
            .filter_map(|d| {
                let w = d.weight()?;
                Some(dev_value(d.major(), d.minor(), v2::blkio_to_io_weight(w)))
            })
            .collect();
        if !weights.is_empty() {
            out.push(prop("IODeviceWeight", Value::Array("(st)".into(), weights)));
        }
        let names = [
            "IOReadBandwidthMax",
            "IOWriteBandwidthMax",
            "IOReadIOPSMax",
            "IOWriteIOPSMax",
        ];
        for ((_, list), name) in v1::throttles(b).into_iter().zip(names) {
            if list.is_empty() {
                continue;
            }
            let items = list
                .iter()
                .map(|d| dev_value(d.major(), d.minor(), d.rate()))
                .collect();
            out.push(prop(name, Value::Array("(st)".into(), items)));
        }
    }
    Ok(out)
}

fn dev_value(major: i64, minor: i64, v: u64) -> Value {
    Value::Struct(vec![
        Value::str(format!("/dev/block/{major}:{minor}")),
        Value::U64(v),
    ])
}

fn memory(m: &LinuxMemory, out: &mut Vec<Property>) -> Result<()> {
    let limit = |v: i64| Value::U64(if v == -1 { INFINITY } else { v as u64 });
    let max = m.limit().filter(|v| *v != 0);
    if let Some(l) = max {
        out.push(prop("MemoryMax", limit(l)));
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        out.push(prop("MemoryLow", limit(v)));
    }
    if let Some(s) = m.swap().filter(|v| *v != 0) {
        let swap = match v2::swap_max(max, s)?.as_str() {
            "max" => INFINITY,
            n => n.parse().unwrap_or(INFINITY),
        };
        out.push(prop("MemorySwapMax", Value::U64(swap)));
    }
    Ok(())
}

fn cpu(c: &LinuxCpu, out: &mut Vec<Property>) {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        out.push(prop("CPUWeight", Value::U64(v2::shares_to_weight(s))));
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if let Some(p) = period {
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(p)));
    }
    if quota.is_some() || period.is_some() {
        out.push(prop(
            "CPUQuotaPerSecUSec",
            Value::U64(quota_per_sec(quota, period)),
        ));
    }
    for (name, list) in [("AllowedCPUs", c.cpus()), ("AllowedMemoryNodes", c.mems())] {
        if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
            // validate() has parsed it already.
            let ids = parse_list(list).unwrap_or_default();
            out.push(prop(name, bitmask(&ids)));
        }
    }
}

/// systemd takes the quota as CPU time per second, which it keeps as a whole percent:
/// round up to 10ms so the cpu.max systemd writes is not below the one asked for (the
/// exact value is written to cpu.max afterwards).
fn quota_per_sec(quota: Option<i64>, period: Option<u64>) -> u64 {
    match quota {
        None | Some(-1) => INFINITY,
        Some(q) if q < 0 => INFINITY,
        Some(q) => {
            let period = period.unwrap_or(100_000).max(1);
            let per_sec = (q as u64).saturating_mul(1_000_000) / period;
            per_sec.div_ceil(10_000) * 10_000
        }
    }
}

/// A cpu/node set as systemd's byte array: bit `n % 8` of byte `n / 8`.
fn bitmask(ids: &[u32]) -> Value {
    let len = ids.iter().max().map_or(0, |m| *m as usize / 8 + 1);
    let mut bytes = vec![0u8; len];
    for id in ids {
        bytes[*id as usize / 8] |= 1 << (id % 8);
    }
    Value::Array("y".into(), bytes.into_iter().map(Value::Byte).collect())
}

/// Device rules as DevicePolicy + DeviceAllow. systemd's program and patina's own
/// (attached too, after it) must both allow an access, so systemd's list may be wider
/// than the rules but never narrower: a rule systemd cannot name (a major without a
/// name in /proc/devices, an allow-all) leaves its policy `auto` with no list, and
/// deny rules are left to patina's program, which applies them in order.
pub fn devices(rules: &[Rule], proc_devices: &str) -> Vec<Property> {
    let auto = || vec![prop("DevicePolicy", Value::str("auto"))];
    let mut allow = Vec::new();
    for rule in rules.iter().filter(|r| r.allow) {
        let Some(entry) = device_entry(rule, proc_devices) else {
            return auto();
        };
        allow.push(entry);
    }
    vec![
        prop("DevicePolicy", Value::str("strict")),
        prop("DeviceAllow", Value::Array("(ss)".into(), allow)),
    ]
}

fn device_entry(rule: &Rule, proc_devices: &str) -> Option<Value> {
    let kind = match rule.kind {
        'c' => "char",
        'b' => "block",
        _ => return None,
    };
    let node = match (rule.major, rule.minor) {
        (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
        (None, _) => format!("{kind}-*"),
        (Some(ma), None) => format!("{kind}-{}", device_group(proc_devices, kind, ma)?),
    };
    let access = rule.v1_string();
    let access = access.rsplit(' ').next().unwrap_or("rwm");
    Some(Value::Struct(vec![Value::str(node), Value::str(access)]))
}

/// The name /proc/devices gives `major` in its "Character devices:" or "Block
/// devices:" section (`136 pts` -> `pts`), which systemd takes as `char-pts`.
fn device_group(proc_devices: &str, kind: &str, major: u32) -> Option<String> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let mut in_section = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with("devices:") {
            in_section = line == header;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((num, name)) = line.split_once(' ') {
            if num.parse::<u32>() == Ok(major) {
                return Some(name.trim().to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::container_rules;

    fn props(json: &str) -> Vec<Property> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        resources(&r).unwrap()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> &'a Value {
        &p.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {p:?}"))
            .1
    }

    #[test]
    fn memory_cpu_pids_io_as_runc_sends_them() {
        let p = props(
            r#"{"memory":{"limit":268435456,"reservation":1048576,"swap":536870912},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1,9","mems":"0"},
                "pids":{"limit":100},
                "blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":100}],
                           "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#,
        );
        assert_eq!(get(&p, "MemoryMax"), &Value::U64(268_435_456));
        assert_eq!(get(&p, "MemoryLow"), &Value::U64(1_048_576));
        assert_eq!(get(&p, "MemorySwapMax"), &Value::U64(268_435_456));
        assert_eq!(get(&p, "CPUWeight"), &Value::U64(39));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), &Value::U64(500_000));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), &Value::U64(100_000));
        let bytes =
            |v: &[u8]| Value::Array("y".into(), v.iter().map(|b| Value::Byte(*b)).collect());
        assert_eq!(get(&p, "AllowedCPUs"), &bytes(&[0b11, 0b10]));
        assert_eq!(get(&p, "AllowedMemoryNodes"), &bytes(&[1]));
        assert_eq!(get(&p, "TasksMax"), &Value::U64(100));
        assert_eq!(get(&p, "IOWeight"), &Value::U64(4950));
        assert_eq!(get(&p, "IOReadBandwidthMax").signature(), "a(st)");
        assert_eq!(
            get(&p, "IODeviceWeight"),
            &Value::Array("(st)".into(), vec![dev_value(8, 0, 910)])
        );
    }

    #[test]
    fn unlimited_and_rounded_values() {
        let p =
            props(r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":-1},"pids":{"limit":-1}}"#);
        for name in [
            "MemoryMax",
            "MemorySwapMax",
            "CPUQuotaPerSecUSec",
            "TasksMax",
        ] {
            assert_eq!(get(&p, name), &Value::U64(u64::MAX), "{name}");
        }
        // 1234us per 100ms is 12.34ms/s: systemd keeps whole percents, rounded up.
        assert_eq!(quota_per_sec(Some(1234), Some(100_000)), 20_000);
        assert_eq!(quota_per_sec(Some(150_000), None), 1_500_000);
        assert!(props(r#"{"pids":{"limit":0}}"#).is_empty());
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"swap":100}}"#).unwrap();
        assert!(resources(&r)
            .unwrap_err()
            .to_string()
            .contains("memory.swap"));
    }

    const PROC_DEVICES: &str =
        "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n";

    #[test]
    fn device_rules_become_an_allow_list_never_narrower() {
        let rules = container_rules(None).unwrap();
        let p = devices(&rules, PROC_DEVICES);
        assert_eq!(get(&p, "DevicePolicy"), &Value::str("strict"));
        let Value::Array(_, list) = get(&p, "DeviceAllow") else {
            panic!()
        };
        let pairs: Vec<(String, String)> = list
            .iter()
            .map(|v| match v {
                Value::Struct(f) => (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into()),
                _ => panic!(),
            })
            .collect();
        assert!(
            pairs.contains(&("/dev/char/1:3".into(), "rwm".into())),
            "{pairs:?}"
        );
        assert!(pairs.contains(&("char-*".into(), "m".into())), "{pairs:?}");
        assert!(
            pairs.contains(&("char-pts".into(), "rwm".into())),
            "{pairs:?}"
        );
        // A major /proc/devices does not name: systemd cannot say it, so it allows all.
        let odd: oci_spec::runtime::LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"c","major":250,"access":"rw"}"#).unwrap();
        let rules = container_rules(Some(&[odd])).unwrap();
        assert_eq!(
            devices(&rules, PROC_DEVICES),
            vec![prop("DevicePolicy", Value::str("auto"))]
        );
        let all: oci_spec::runtime::LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"access":"rwm"}"#).unwrap();
        let rules = container_rules(Some(&[all])).unwrap();
        assert_eq!(
            get(&devices(&rules, PROC_DEVICES), "DevicePolicy"),
            &Value::str("auto")
        );
        assert_eq!(
            device_group(PROC_DEVICES, "block", 8).as_deref(),
            Some("sd")
        );
        assert_eq!(device_group(PROC_DEVICES, "char", 8), None);
    }
}
