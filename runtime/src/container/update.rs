//! `update`: change the resources of a live container, from an OCI LinuxResources
//! JSON (`--resources FILE|-`) and/or runc's flags (the flags win).

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::state::{StateDir, Status};

/// runc's `update` flags, as given (sizes and numbers still text).
#[derive(Debug, Clone, Default)]
pub struct UpdateFlags {
    pub resources: Option<PathBuf>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<String>,
    pub blkio_weight: Option<String>,
}

pub fn update(root: &Path, id: &str, flags: &UpdateFlags) -> Result<()> {
    let mut r = resources_from(flags)?;
    // Device rules are not changed by update; they are ignored, as runc's update does:
    // containerd (CRI's UpdateContainerResources) sends the spec's whole resources,
    // devices included.
    r.set_devices(None);
    crate::cgroups::validate(&r)?;
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    if dir.status(&record) == Status::Stopped {
        bail!(WrongState, "cannot update container {id:?}: it is stopped");
    }
    super::pause::cgroup_of(&record)?.apply(&r, None)
}

fn resources_from(flags: &UpdateFlags) -> Result<LinuxResources> {
    let mut r: LinuxResources = match &flags.resources {
        None => LinuxResources::default(),
        Some(path) => {
            let mut raw = Vec::new();
            if path == Path::new("-") {
                std::io::stdin()
                    .read_to_end(&mut raw)
                    .context("read --resources from stdin")?;
            } else {
                raw = std::fs::read(path)
                    .with_context(|| format!("read --resources {:?}", path.display()))?;
            }
            serde_json::from_slice(&raw)
                .map_err(|e| Error::msg(format!("--resources: not OCI LinuxResources JSON: {e}")))?
        }
    };
    let mut memory = r.memory().unwrap_or_default();
    if let Some(v) = &flags.memory {
        memory.set_limit(Some(size("--memory", v)?));
    }
    if let Some(v) = &flags.memory_reservation {
        memory.set_reservation(Some(size("--memory-reservation", v)?));
    }
    if let Some(v) = &flags.memory_swap {
        memory.set_swap(Some(size("--memory-swap", v)?));
    }
    if memory != LinuxMemory::default() {
        r.set_memory(Some(memory));
    }
    let mut cpu = r.cpu().clone().unwrap_or_default();
    if let Some(v) = &flags.cpu_shares {
        cpu.set_shares(Some(number("--cpu-shares", v)?));
    }
    if let Some(v) = &flags.cpu_quota {
        cpu.set_quota(Some(number("--cpu-quota", v)?));
    }
    if let Some(v) = &flags.cpu_period {
        cpu.set_period(Some(number("--cpu-period", v)?));
    }
    if let Some(v) = &flags.cpu_rt_period {
        cpu.set_realtime_period(Some(number("--cpu-rt-period", v)?));
    }
    if let Some(v) = &flags.cpu_rt_runtime {
        cpu.set_realtime_runtime(Some(number("--cpu-rt-runtime", v)?));
    }
    if let Some(v) = &flags.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
    }
    if let Some(v) = &flags.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
    }
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(v) = &flags.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(number("--pids-limit", v)?);
        r.set_pids(Some(pids));
    }
    if let Some(v) = &flags.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(number("--blkio-weight", v)?));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::msg(format!("{flag} {v:?}: not a valid number")))
}

/// A size as runc takes it: bytes, or with a k/m/g/t suffix (optionally followed by b),
/// or -1 for unlimited.
pub fn size(flag: &str, v: &str) -> Result<i64> {
    let t = v.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    match digits.parse::<i64>() {
        Ok(n) if n >= 0 => n
            .checked_mul(mult)
            .ok_or_else(|| Error::msg(format!("{flag} {v:?}: too large"))),
        _ => bail!(
            InvalidConfig,
            "{flag} {v:?}: expected a size in bytes (e.g. 512m), or -1"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_runc_suffixes() {
        assert_eq!(size("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(size("--memory", "1G").unwrap(), 1 << 30);
        assert_eq!(size("--memory", "10kb").unwrap(), 10 << 10);
        assert_eq!(size("--memory", "4096").unwrap(), 4096);
        assert_eq!(size("--memory", "-1").unwrap(), -1);
        for bad in ["", "-5", "12x", "m"] {
            assert!(
                size("--memory", bad)
                    .unwrap_err()
                    .to_string()
                    .contains("--memory"),
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_override_the_resources_file() {
        let flags = UpdateFlags {
            memory: Some("64m".into()),
            pids_limit: Some("10".into()),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let r = resources_from(&flags).unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.pids().unwrap().limit(), 10);
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        let bad = UpdateFlags {
            cpu_quota: Some("x".into()),
            ..Default::default()
        };
        assert!(resources_from(&bad)
            .unwrap_err()
            .to_string()
            .contains("--cpu-quota"));
    }
}
