//! Device access rules (config-linux.md "Allowed Device Cgroup"): the v1 `devices`
//! controller, or on v2 an eBPF program of type CGROUP_DEVICE attached to the cgroup.
//!
//! The rule list is the config's rules, then runc's default allow list (so that a
//! config that starts with "deny all" still has /dev/null, /dev/pts, ...). Later rules
//! win over earlier ones. A `linux.devices` entry is a node in /dev, not a permission:
//! as runc, patina allows it only if `linux.resources.devices` does (engines add the
//! rule for each device they pass).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::set;
use crate::bail;
use crate::error::{Context, Error, Result};

const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'b' or 'c'.
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow: true,
            kind: 'c',
            major,
            minor,
            access,
        }
    }

    pub fn from_spec(d: &LinuxDeviceCgroup) -> Result<Rule> {
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::P) => bail!(
                InvalidConfig,
                "type \"p\" (fifo) is not a cgroup device type"
            ),
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>> {
            match n {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| *n <= i32::MAX as u32)
                    .map(Some)
                    .ok_or_else(|| {
                        Error::new(
                            crate::Kind::InvalidConfig,
                            format!("{what} {n} is not a device number"),
                        )
                    }),
            }
        };
        let access = match d.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(a) => parse_access(a)?,
        };
        Ok(Rule {
            allow: d.allow(),
            kind,
            major: number(d.major(), "major")?,
            minor: number(d.minor(), "minor")?,
            access,
        })
    }

    /// The v1 form: `c 1:3 rwm`, `a`.
    pub fn v1_string(&self) -> String {
        if self.kind == 'a'
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
        {
            return "a".into();
        }
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{} {}:{} {acc}", self.kind, n(self.major), n(self.minor))
    }
}

/// The r, w, m of an access string. Other letters are ignored with a warning, as runc
/// ignores them (configs written for runc carry "rwa"); one with none of r, w, m would
/// be a rule without effect, and is refused.
fn parse_access(a: &str) -> Result<u8> {
    let mut bits = 0;
    let mut ignored = String::new();
    for c in a.chars() {
        match c {
            'r' => bits |= ACC_READ,
            'w' => bits |= ACC_WRITE,
            'm' => bits |= ACC_MKNOD,
            other => ignored.push(other),
        }
    }
    if bits == 0 {
        bail!(InvalidConfig, "access {a:?}: none of r, w, m");
    }
    if !ignored.is_empty() {
        crate::logging::warn(&format!(
            "device rule access {a:?}: {ignored:?} ignored (only r, w, m mean something)"
        ));
    }
    Ok(bits)
}

/// runc's default allow list: mknod of any device, and the devices every container has.
pub const DEFAULT_ALLOWED: [Rule; 11] = [
    Rule::allow_char(None, None, ACC_MKNOD),
    Rule {
        allow: true,
        kind: 'b',
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule::allow_char(Some(1), Some(3), ACC_ALL), // null
    Rule::allow_char(Some(1), Some(5), ACC_ALL), // zero
    Rule::allow_char(Some(1), Some(7), ACC_ALL), // full
    Rule::allow_char(Some(1), Some(8), ACC_ALL), // random
    Rule::allow_char(Some(1), Some(9), ACC_ALL), // urandom
    Rule::allow_char(Some(5), Some(0), ACC_ALL), // tty
    Rule::allow_char(Some(5), Some(2), ACC_ALL), // ptmx
    Rule::allow_char(Some(136), None, ACC_ALL),  // pts/*
    Rule::allow_char(Some(10), Some(200), ACC_ALL), // net/tun
];

/// The container's full rule list (see the module doc).
pub fn container_rules(spec_rules: Option<&[LinuxDeviceCgroup]>) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (i, d) in spec_rules.unwrap_or_default().iter().enumerate() {
        rules
            .push(Rule::from_spec(d).map_err(|e| e.wrap(format!("linux.resources.devices[{i}]")))?);
    }
    rules.extend(DEFAULT_ALLOWED);
    Ok(rules)
}

/// v1: deny everything, then replay the rules in order.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    set(dir, "devices.deny", "a", "devices")?;
    for (i, rule) in rules.iter().enumerate() {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        set(
            dir,
            file,
            &rule.v1_string(),
            &format!("devices (rule {i}: {})", rule.v1_string()),
        )?;
    }
    Ok(())
}

// eBPF encoding (include/uapi/linux/bpf.h).
const BPF_LDX_MEM_W: u8 = 0x61;
const BPF_ALU64_AND_K: u8 = 0x57;
const BPF_ALU64_RSH_K: u8 = 0x77;
const BPF_ALU64_MOV_K: u8 = 0xb7;
const BPF_ALU64_MOV_X: u8 = 0xbf;
const BPF_JNE_K: u8 = 0x55;
const BPF_EXIT: u8 = 0x95;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program: r2 = access, r3 = type, r4 = major, r5 = minor; then one block per
/// rule from the last to the first, each returning its verdict when every condition
/// matches and jumping to the next block otherwise; no match denies.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(BPF_LDX_MEM_W, 2, 1, 0, 0), // access_type
        insn(BPF_ALU64_MOV_X, 3, 2, 0, 0),
        insn(BPF_ALU64_AND_K, 3, 0, 0, 0xffff), // type
        insn(BPF_ALU64_RSH_K, 2, 0, 0, 16),     // access
        insn(BPF_LDX_MEM_W, 4, 1, 4, 0),        // major
        insn(BPF_LDX_MEM_W, 5, 1, 8, 0),        // minor
    ];
    for rule in rules.iter().rev() {
        let mut conds: Vec<Vec<Insn>> = Vec::new();
        match rule.kind {
            'b' => conds.push(vec![insn(BPF_JNE_K, 3, 0, 0, BPF_DEVCG_DEV_BLOCK)]),
            'c' => conds.push(vec![insn(BPF_JNE_K, 3, 0, 0, BPF_DEVCG_DEV_CHAR)]),
            _ => {}
        }
        if rule.access != ACC_ALL {
            conds.push(vec![
                insn(BPF_ALU64_MOV_X, 1, 2, 0, 0),
                insn(BPF_ALU64_AND_K, 1, 0, 0, i32::from(!rule.access & ACC_ALL)),
                insn(BPF_JNE_K, 1, 0, 0, 0),
            ]);
        }
        if let Some(m) = rule.major {
            conds.push(vec![insn(BPF_JNE_K, 4, 0, 0, m as i32)]);
        }
        if let Some(m) = rule.minor {
            conds.push(vec![insn(BPF_JNE_K, 5, 0, 0, m as i32)]);
        }
        let unconditional = conds.is_empty();
        let mut block: Vec<Insn> = conds.into_iter().flatten().collect();
        block.push(insn(BPF_ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(insn(BPF_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (j, i) in block.iter_mut().enumerate() {
            if i.code == BPF_JNE_K {
                i.off = (len - j - 1) as i16;
            }
        }
        p.extend(block);
        if unconditional {
            // Earlier rules can never be reached (the verifier refuses dead code).
            return p;
        }
    }
    p.push(insn(BPF_ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(BPF_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    rest: [u8; 64],
}

#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    rest: [u8; 44],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<i64, Errno> {
    // SAFETY: bpf(2) reads (and for some commands writes) `size` bytes of attr, which is a
    // fully initialised repr(C) struct we own; pointers inside it outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(rc)
}

/// Load the rules' program and attach it to the v2 cgroup `dir` (beside programs that
/// ancestors attached: with ALLOW_MULTI, every program must allow an access).
pub fn apply_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let insns = program(rules);
    let license = b"Apache-2.0\0";
    let mut name = [0u8; 16];
    name[..6].copy_from_slice(b"patina");
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        rest: [0; 64],
    };
    let prog = bpf(BPF_PROG_LOAD, &mut load)
        .map_err(|e| Error::os(e, "linux.resources.devices: load the eBPF device program"))?;
    // SAFETY: BPF_PROG_LOAD returned a new descriptor that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cgroup = std::fs::File::open(dir)
        .with_context(|| format!("linux.resources.devices: open cgroup {:?}", dir.display()))?;
    let mut attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        rest: [0; 44],
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map(drop).map_err(|e| {
        Error::os(
            e,
            format!(
                "linux.resources.devices: attach the eBPF device program to {:?}",
                dir.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Rule {
        Rule::from_spec(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn rules_parse_and_print_like_v1() {
        assert_eq!(rule(r#"{"allow":false,"access":"rwm"}"#).v1_string(), "a");
        assert_eq!(
            rule(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#).v1_string(),
            "c 1:3 rw"
        );
        assert_eq!(
            rule(r#"{"allow":true,"type":"b","access":"m"}"#).v1_string(),
            "b *:* m"
        );
        // runc ignores letters other than r, w, m ("rwa" in configs written for it).
        assert_eq!(
            rule(r#"{"allow":false,"type":"c","major":1,"minor":11,"access":"rwa"}"#).v1_string(),
            "c 1:11 rw"
        );
        assert!(Rule::from_spec(
            &serde_json::from_str(r#"{"allow":true,"access":"xyz"}"#).unwrap()
        )
        .is_err());
        assert!(
            Rule::from_spec(&serde_json::from_str(r#"{"allow":true,"major":-7}"#).unwrap())
                .is_err()
        );
    }

    #[test]
    fn program_checks_each_rule_from_the_last_and_skips_dead_code() {
        let deny_all = rule(r#"{"allow":false,"access":"rwm"}"#);
        let null = rule(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}"#);
        let p = program(&[deny_all, null]);
        // 6 loads, null block (3 jumps + mov + exit), deny-all block (mov + exit), no tail.
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(p[6], insn(BPF_JNE_K, 3, 0, 4, BPF_DEVCG_DEV_CHAR));
        assert_eq!(p[8], insn(BPF_JNE_K, 5, 0, 2, 3));
        assert_eq!(p[9], insn(BPF_ALU64_MOV_K, 0, 0, 0, 1));
        assert_eq!(p[11], insn(BPF_ALU64_MOV_K, 0, 0, 0, 0));
        let partial = rule(r#"{"allow":true,"type":"c","major":1,"access":"r"}"#);
        let p = program(&[partial]);
        // type, access (3), major, mov, exit, then the default deny.
        assert_eq!(p.len(), 6 + 7 + 2);
        assert_eq!(p[8], insn(BPF_ALU64_AND_K, 1, 0, 0, 5));
        assert_eq!(p[9], insn(BPF_JNE_K, 1, 0, 3, 0));
    }
}
