//! linux.seccomp: the whole OCI object translated into one classic-BPF program
//! (bpf.rs), installed by init with the seccomp(2) syscall and the profile's flags.
//!
//! Compiled by the runtime before anything is created, so that a bad profile fails
//! `create` with nothing left behind; init inherits the program through the clone.
//! Installed as late as possible: just before execve, so that the runtime's own
//! syscalls are not filtered. Two cases need it earlier, as in runc: without
//! noNewPrivileges the kernel only accepts a filter from a task with CAP_SYS_ADMIN, so it
//! goes in before the user and capability switch; and with SCMP_ACT_NOTIFY the listener
//! fd has to reach the runtime before `create` returns (notify.rs).

pub mod bpf;
pub mod notify;
#[cfg(test)]
mod seccompiler_oracle;
mod syscalls;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};
use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompOperator};
use serde::{Deserialize, Serialize};

use self::bpf::{ArchRules, ArgCheck, Cmp, Rule, SockFilter};
use crate::bail;
use crate::error::{Error, Result};

// Return values (linux/seccomp.h).
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

// seccomp(2) operation and flags.
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled profile, ready to install. state.json keeps it (not the OCI object) for
/// `exec`: the program as one hex string serialises and parses in a few microseconds,
/// where the profile's hundreds of names and enums cost `create` tens, and `exec`
/// installs exactly the filter init got, without compiling again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seccomp {
    #[serde(with = "hex_program")]
    program: Vec<SockFilter>,
    flags: u32,
    /// Where the notify fd goes (SCMP_ACT_NOTIFY used), with the listener metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<(PathBuf, String)>,
}

/// The program as hex, 16 digits an instruction: code, jt, jf, k (big-endian fields).
mod hex_program {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::bpf::{SockFilter, MAX_INSNS};

    const DIGITS: &[u8; 16] = b"0123456789abcdef";

    pub fn serialize<S: Serializer>(program: &[SockFilter], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(program.len() * 16);
        for f in program {
            let word = (u64::from(f.code) << 48)
                | (u64::from(f.jt) << 40)
                | (u64::from(f.jf) << 32)
                | u64::from(f.k);
            out.extend(
                (0..16)
                    .rev()
                    .map(|i| DIGITS[(word >> (4 * i)) as usize & 0xf] as char),
            );
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SockFilter>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = text.as_bytes();
        if bytes.len() % 16 != 0 || bytes.len() / 16 > MAX_INSNS {
            return Err(D::Error::custom("seccomp program: bad length"));
        }
        bytes
            .chunks_exact(16)
            .map(|chunk| {
                let mut word = 0u64;
                for &c in chunk {
                    let digit = match c {
                        b'0'..=b'9' => c - b'0',
                        b'a'..=b'f' => c - b'a' + 10,
                        _ => return Err(D::Error::custom("seccomp program: not a hex digit")),
                    };
                    word = word << 4 | u64::from(digit);
                }
                Ok(SockFilter {
                    code: (word >> 48) as u16,
                    jt: (word >> 40) as u8,
                    jf: (word >> 32) as u8,
                    k: word as u32,
                })
            })
            .collect()
    }
}

/// Where init installs the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Still privileged: noNewPrivileges is false, so CAP_SYS_ADMIN is needed.
    BeforeUserSwitch,
    /// The notify fd must reach the runtime before "ready".
    BeforeReady,
    /// The normal case: right before execve.
    BeforeExec,
}

impl Seccomp {
    pub fn when(&self, no_new_privileges: bool) -> When {
        if !no_new_privileges {
            When::BeforeUserSwitch
        } else if self.listener.is_some() {
            When::BeforeReady
        } else {
            When::BeforeExec
        }
    }

    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// The assembled program, as seccomp(2) receives it (for tests and fuzz targets).
    pub fn program(&self) -> &[SockFilter] {
        &self.program
    }

    /// The seccomp(2) flags the program is installed with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): not seccompiler's apply_filter, which
    /// would also set no_new_privs. Returns the listener fd when the profile notifies.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        let prog = libc::sock_fprog {
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at `len` initialised sock_filter-layout instructions that
        // outlive the call; the kernel copies them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_uint,
                &prog as *const libc::sock_fprog,
            )
        };
        let rc = nix::errno::Errno::result(rc)
            .map_err(|e| Error::os(e, "linux.seccomp: install the filter"))?;
        if self.flags & FLAG_NEW_LISTENER != 0 {
            // SAFETY: with NEW_LISTENER the kernel returns a new descriptor we now own.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
        } else {
            Ok(None)
        }
    }
}

/// The kernel return value of an action (errnoRet for ERRNO and TRACE, EPERM if unset).
fn action(field: &str, act: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<u32> {
    let data = |default: u32| -> Result<u32> {
        let v = errno_ret.unwrap_or(default);
        if v > 0xffff {
            bail!("{field}: errnoRet {v} is out of range (at most 65535)");
        }
        Ok(v)
    };
    Ok(match act {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data(libc::EPERM as u32)?,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data(libc::EPERM as u32)?,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
    })
}

fn check(field: &str, arg: &LinuxSeccompArg) -> Result<ArgCheck> {
    if arg.index() > 5 {
        bail!(
            "{field}.index {}: a syscall has 6 arguments (0 to 5)",
            arg.index()
        );
    }
    let cmp = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => Cmp::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Cmp::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Cmp::Le,
        LinuxSeccompOperator::ScmpCmpEq => Cmp::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Cmp::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Cmp::Gt,
        // OCI: value is the mask, valueTwo the value to compare with (as libseccomp).
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok(ArgCheck {
                index: arg.index(),
                cmp: Cmp::MaskedEq(arg.value()),
                value: arg.value_two().unwrap_or(0),
            })
        }
    };
    Ok(ArgCheck {
        index: arg.index(),
        cmp,
        value: arg.value(),
    })
}

/// The three x86 ABIs an x86_64 kernel runs; other architectures can never call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64,
    X86,
    X32,
}

impl Abi {
    fn column(self) -> usize {
        match self {
            Abi::X86_64 => 0,
            Abi::X86 => 1,
            Abi::X32 => 2,
        }
    }
}

/// Syscall numbers of `name` on the three ABIs (`syscalls::NONE` where it does not exist).
fn numbers(name: &str) -> Option<[u32; 3]> {
    let h = syscalls::hash(name.as_bytes());
    let i = HASHES.binary_search(&h).ok()?;
    let t = &syscalls::TABLE[i];
    (t.1 == name).then_some(t.2)
}

/// The hashes of [`syscalls::TABLE`] on their own: the binary search touches 5 KB,
/// not the 25 KB of the table (each `create` looks names up in a cold process).
static HASHES: [u64; syscalls::TABLE.len()] = {
    let mut out = [0; syscalls::TABLE.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = syscalls::TABLE[i].0;
        i += 1;
    }
    out
};

/// Syscall number of `name` on `abi_name` ("x86_64", "x86", "x32"), if it exists there.
pub fn syscall_number(abi_name: &str, name: &str) -> Option<u32> {
    let abi = match abi_name {
        "x86_64" => Abi::X86_64,
        "x86" => Abi::X86,
        "x32" => Abi::X32,
        _ => return None,
    };
    lookup(abi, name)
}

/// Every syscall name the tables know (any ABI), in table order: the fuzz target's
/// vocabulary for generated profiles.
pub fn syscall_names() -> impl Iterator<Item = &'static str> {
    syscalls::TABLE.iter().map(|(_, name, _)| *name)
}

fn lookup(abi: Abi, name: &str) -> Option<u32> {
    numbers(name)
        .map(|n| n[abi.column()])
        .filter(|n| *n != syscalls::NONE)
}

/// Translate and assemble `linux.seccomp`; every error names the field.
pub fn compile(spec: &LinuxSeccomp) -> Result<Seccomp> {
    let default_action = action(
        "linux.seccomp.defaultAction",
        spec.default_action(),
        spec.default_errno_ret(),
    )?;
    if default_action == RET_USER_NOTIF {
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own syscalls would wait on the listener)");
    }
    let mut abis = Vec::new();
    for arch in spec.architectures().iter().flatten() {
        let abi = match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                crate::logging::debug(&format!(
                    "linux.seccomp.architectures: {other} skipped (not an x86_64 kernel ABI)"
                ));
                continue;
            }
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }
    if abis.is_empty() {
        abis.push(Abi::X86_64);
    }
    // Every rule once, in profile order; per ABI, keys `nr << 32 | rule index` (sorted
    // once, unstably: the index keeps a syscall's rules in profile order).
    let mut all_rules: Vec<Rule> = Vec::new();
    let mut keys: Vec<(Abi, Vec<u64>)> =
        abis.iter().map(|a| (*a, Vec::with_capacity(512))).collect();

    let mut notify = false;
    for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.errnoRet"), sc.action(), sc.errno_ret())?;
        let args = sc.args().as_deref().unwrap_or_default();
        if args.len() > 6 {
            bail!(
                "{field}.args: {} conditions, but a syscall has at most 6 arguments",
                args.len()
            );
        }
        let checks = args
            .iter()
            .enumerate()
            .map(|(j, a)| check(&format!("{field}.args[{j}]"), a))
            .collect::<Result<Vec<_>>>()?;
        if sc.names().is_empty() {
            bail!("{field}.names: must name at least one syscall");
        }
        if act == RET_USER_NOTIF {
            if spec.listener_path().is_none() {
                bail!("{field}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
            }
            notify = true;
        }
        if act == default_action {
            // Same as the default: libseccomp refuses such rules, runc skips them.
            continue;
        }
        // Conditions on distinct arguments must all hold; several on the same argument
        // are alternatives (one rule each), as runc does.
        let distinct = checks
            .iter()
            .enumerate()
            .all(|(k, c)| checks[..k].iter().all(|o| o.index != c.index));
        let first = all_rules.len() as u64;
        if distinct {
            all_rules.push(Rule {
                checks,
                action: act,
            });
        } else {
            all_rules.extend(checks.iter().map(|c| Rule {
                checks: vec![*c],
                action: act,
            }));
        }
        let new_rules = first..all_rules.len() as u64;
        for name in sc.names() {
            let mut known = false;
            let nrs = numbers(name).unwrap_or([syscalls::NONE; 3]);
            for (abi, keys) in keys.iter_mut() {
                let nr = nrs[abi.column()];
                if nr != syscalls::NONE {
                    known = true;
                    keys.extend(new_rules.clone().map(|r| u64::from(nr) << 32 | r));
                }
            }
            if !known {
                crate::logging::debug(&format!(
                    "{field}: syscall {name:?} does not exist on this architecture: skipped"
                ));
            }
        }
    }

    let mut flags = 0;
    for flag in spec.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    if notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    let mut rules: Vec<(Abi, ArchRules)> = keys
        .into_iter()
        .map(|(abi, mut keys)| {
            keys.sort_unstable();
            let syscalls = keys
                .iter()
                .map(|k| ((k >> 32) as u32, all_rules[*k as u32 as usize].clone()))
                .collect();
            let args32 = abi == Abi::X86;
            (abi, ArchRules { syscalls, args32 })
        })
        .collect();
    let mut take = |abi| {
        rules
            .iter()
            .position(|(a, _)| *a == abi)
            .map(|i| rules.swap_remove(i).1)
    };
    let filter = bpf::Filter {
        default_action,
        bad_arch_action: RET_KILL_PROCESS,
        x86_64: take(Abi::X86_64),
        x32: take(Abi::X32),
        x86: take(Abi::X86),
    };
    let program = bpf::assemble(&filter).map_err(|e| e.wrap("linux.seccomp"))?;
    let listener = match (notify, spec.listener_path()) {
        (true, Some(path)) => Some((
            path.clone(),
            spec.listener_metadata().clone().unwrap_or_default(),
        )),
        _ => None,
    };
    Ok(Seccomp {
        program,
        flags,
        listener,
    })
}

#[cfg(test)]
mod tests {
    use super::bpf::{run, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    use super::*;

    fn profile(json: &str) -> Result<Seccomp> {
        compile(&serde_json::from_str::<LinuxSeccomp>(json).unwrap())
    }

    #[test]
    fn tables_know_the_x86_abis() {
        assert_eq!(lookup(Abi::X86_64, "read"), Some(0));
        assert_eq!(lookup(Abi::X86, "read"), Some(3));
        assert_eq!(lookup(Abi::X32, "read"), Some(0x4000_0000));
        assert_eq!(lookup(Abi::X86_64, "socketcall"), None);
        assert!(lookup(Abi::X86, "socketcall").is_some());
        for (h, name, nrs) in syscalls::TABLE {
            assert_eq!(syscalls::hash(name.as_bytes()), *h, "{name}");
            assert_eq!(numbers(name), Some(*nrs), "{name}");
        }
    }

    #[test]
    fn mixed_actions_arch_map_and_default_errno() {
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[
                  {"names":["getpid","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                  {"names":["kill"],"action":"SCMP_ACT_KILL_PROCESS"},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let r = |arch, nr: u32, a0| run(&s.program, arch, nr, [a0, 0, 0, 0, 0, 0]);
        let nr = |abi, n| lookup(abi, n).unwrap();
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr(Abi::X86_64, "getpid"), 0),
            RET_ALLOW
        );
        assert_eq!(r(AUDIT_ARCH_I386, nr(Abi::X86, "getpid"), 0), RET_ALLOW);
        assert_eq!(r(AUDIT_ARCH_X86_64, nr(Abi::X32, "getpid"), 0), RET_ALLOW);
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr(Abi::X86_64, "getppid"), 0),
            RET_ERRNO | 13
        );
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr(Abi::X86_64, "kill"), 0),
            RET_KILL_PROCESS
        );
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr(Abi::X86_64, "write"), 0),
            RET_ERRNO | 38
        );
        let pers = nr(Abi::X86_64, "personality");
        assert_eq!(r(AUDIT_ARCH_X86_64, pers, 8), RET_ALLOW);
        assert_eq!(r(AUDIT_ARCH_X86_64, pers, 9), RET_ERRNO | 38);
        assert_eq!(s.flags, 0);
        assert!(s.listener.is_none());
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let err = |json: &str| profile(json).unwrap_err().to_string();
        let seven: Vec<String> = (0..7)
            .map(|i| format!(r#"{{"index":{},"value":1,"op":"SCMP_CMP_EQ"}}"#, i % 6))
            .collect();
        let e = err(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{}]}}]}}"#,
            seven.join(",")
        ));
        assert!(
            e.contains("linux.seccomp.syscalls[0].args") && e.contains("7"),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(e.contains("syscalls[0].args[0].index 6"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(e.contains("listenerPath"), "{e}");
        let e = err(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/x"}"#);
        assert!(e.contains("defaultAction"), "{e}");
    }

    #[test]
    fn podman_default_profile_is_compact() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../bench/podman-seccomp-x86_64.json"
        ))
        .unwrap();
        let s = compile(&serde_json::from_str(&text).unwrap()).unwrap();
        // Three ABIs, ~370 syscalls each: segments and pooled returns keep it small (JIT
        // time, per-call cost).
        assert!(s.instructions() < 400, "{}", s.instructions());
        let r = |nr| run(&s.program, AUDIT_ARCH_X86_64, nr, [0; 6]);
        assert_eq!(r(lookup(Abi::X86_64, "read").unwrap()), RET_ALLOW);
        assert_eq!(r(lookup(Abi::X86_64, "add_key").unwrap()), RET_ERRNO | 38);
        // The tree: every syscall number of every ABI decided in a few instructions.
        for (arch, base) in [
            (AUDIT_ARCH_X86_64, 0),
            (AUDIT_ARCH_X86_64, bpf::X32_SYSCALL_BIT),
            (AUDIT_ARCH_I386, 0),
        ] {
            for nr in 0..600 {
                let (_, steps) = bpf::run_counted(&s.program, arch, base + nr, [0; 6]);
                assert!(steps <= 20, "arch {arch:#x} nr {nr}: {steps} instructions");
            }
        }
    }

    #[test]
    fn state_json_keeps_the_compiled_filter() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../bench/podman-seccomp-x86_64.json"
        ))
        .unwrap();
        let s = compile(&serde_json::from_str(&text).unwrap()).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Seccomp>(&json).unwrap(), s);
        let n = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/l.sock",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<Seccomp>(&json).unwrap(), n);
        for bad in [
            r#"{"program":"0006000","flags":0}"#,
            r#"{"program":"000600007fff000g","flags":0}"#,
            r#"{"program":"+00600007fff0000","flags":0}"#,
        ] {
            assert!(serde_json::from_str::<Seccomp>(bad).is_err(), "{bad}");
        }
        let one: Seccomp =
            serde_json::from_str(r#"{"program":"000600007fff0000","flags":0}"#).unwrap();
        assert_eq!(
            one.program,
            vec![SockFilter {
                code: 6,
                jt: 0,
                jf: 0,
                k: RET_ALLOW
            }]
        );
    }

    #[test]
    fn notify_and_flags() {
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/l.sock","listenerMetadata":"m",
                "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        assert_eq!(s.flags, FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER);
        assert_eq!(s.listener, Some(("/run/l.sock".into(), "m".into())));
        assert_eq!(s.when(true), When::BeforeReady);
        assert_eq!(s.when(false), When::BeforeUserSwitch);
    }
}
