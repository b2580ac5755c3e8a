//! linux.memoryPolicy (config-linux.md "Memory policy"): the NUMA policy init sets on
//! itself with set_mempolicy(2) before the exec; the program and its children inherit it.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::bail;
use crate::error::{Error, Result};

/// The kernel's MAX_NUMNODES is at most 1 << 10 (CONFIG_NODES_SHIFT <= 10).
const MAX_NODES: usize = 1 << 10;
const BITS: usize = libc::c_ulong::BITS as usize;

fn mode(m: MemoryPolicyModeType) -> libc::c_int {
    match m {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

fn flag(f: MemoryPolicyFlagType) -> libc::c_int {
    match f {
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
    }
}

/// "0-3,7" as a node mask; an empty string is an empty mask.
fn node_mask(nodes: &str) -> Result<Vec<libc::c_ulong>> {
    let field = "linux.memoryPolicy.nodes";
    let mut mask = Vec::new();
    for part in nodes.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number = |s: &str| -> Result<usize> {
            match s.trim().parse::<usize>() {
                Ok(n) if n < MAX_NODES => Ok(n),
                _ => Err(Error::new(
                    crate::Kind::InvalidConfig,
                    format!("{field} {nodes:?}: {s:?} is not a node number below {MAX_NODES}"),
                )),
            }
        };
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            bail!(
                InvalidConfig,
                "{field} {nodes:?}: range {part:?} runs backwards"
            );
        }
        for node in first..=last {
            if mask.len() <= node / BITS {
                mask.resize(node / BITS + 1, 0);
            }
            mask[node / BITS] |= 1 << (node % BITS);
        }
    }
    Ok(mask)
}

/// What the spec says of modes and flags, checked before anything is made; the kernel
/// judges the nodes themselves (a node this host lacks is EINVAL at apply).
pub fn validate(p: &LinuxMemoryPolicy) -> Result<()> {
    let mask = node_mask(p.nodes().as_deref().unwrap_or_default())?;
    let has_nodes = mask.iter().any(|w| *w != 0);
    let m = p.mode();
    match m {
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal if has_nodes => {
            bail!(
                InvalidConfig,
                "linux.memoryPolicy.nodes: must be empty for mode {m}"
            )
        }
        MemoryPolicyModeType::MpolBind
        | MemoryPolicyModeType::MpolInterleave
        | MemoryPolicyModeType::MpolPreferredMany
        | MemoryPolicyModeType::MpolWeightedInterleave
            if !has_nodes =>
        {
            bail!(
                InvalidConfig,
                "linux.memoryPolicy.nodes: mode {m} needs at least one node"
            )
        }
        _ => {}
    }
    let flags = p.flags().as_deref().unwrap_or_default();
    let has = |f| flags.contains(&f);
    if has(MemoryPolicyFlagType::MpolFStaticNodes) && has(MemoryPolicyFlagType::MpolFRelativeNodes)
    {
        bail!(
            InvalidConfig,
            "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
        );
    }
    Ok(())
}

/// set_mempolicy(2) for the calling thread (init, just before it execs).
pub fn apply(p: &LinuxMemoryPolicy) -> Result<()> {
    let mask = node_mask(p.nodes().as_deref().unwrap_or_default())?;
    let flags = p.flags().iter().flatten().fold(0, |acc, f| acc | flag(*f));
    // The kernel reads maxnode - 1 bits (set_mempolicy(2), an old off-by-one).
    let max_node = (mask.len() * BITS + 1) as libc::c_ulong;
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: the kernel reads at most max_node - 1 bits from `mask`, which holds
    // mask.len() words; a null mask goes with no nodes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            mode(p.mode()) | flags,
            ptr,
            if mask.is_empty() { 0 } else { max_node },
        )
    };
    nix::errno::Errno::result(rc).map(drop).map_err(|e| {
        Error::os(
            e,
            format!(
                "linux.memoryPolicy: set_mempolicy mode {} nodes {:?}",
                p.mode(),
                p.nodes().as_deref().unwrap_or_default()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> LinuxMemoryPolicy {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn nodes_become_a_mask() {
        assert_eq!(node_mask("").unwrap(), Vec::<libc::c_ulong>::new());
        assert_eq!(node_mask("0-3,7").unwrap(), vec![0b1000_1111]);
        assert_eq!(node_mask("65").unwrap(), vec![0, 0b10]);
        for bad in ["x", "3-1", "1024", "-1"] {
            let e = node_mask(bad).unwrap_err().to_string();
            assert!(e.starts_with("linux.memoryPolicy.nodes"), "{bad}: {e}");
        }
    }

    #[test]
    fn modes_and_flags_are_checked() {
        assert!(validate(&policy(r#"{"mode":"MPOL_INTERLEAVE","nodes":"0"}"#)).is_ok());
        assert!(validate(&policy(r#"{"mode":"MPOL_PREFERRED"}"#)).is_ok());
        for (bad, word) in [
            (r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#, "must be empty"),
            (r#"{"mode":"MPOL_BIND"}"#, "needs at least one node"),
            (
                r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#,
                "exclude each other",
            ),
        ] {
            let e = validate(&policy(bad)).unwrap_err().to_string();
            assert!(e.contains(word), "{bad}: {e}");
        }
    }
}
