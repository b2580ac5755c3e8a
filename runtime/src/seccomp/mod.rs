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

pub mod arch;
pub mod bpf;
pub mod notify;
mod resolve;
#[cfg(test)]
mod seccompiler_oracle;
#[rustfmt::skip]
mod syscalls;

pub use resolve::syscall_number;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};
use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompOperator, LinuxSyscall};
use serde::{Deserialize, Serialize};

use self::arch::ArchDef;
use self::bpf::{ArchRules, ArgCheck, Cmp, Rule, Section, SockFilter};
use self::resolve::Mux;
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
            bail!(
                InvalidConfig,
                "{field}: errnoRet {v} is out of range (at most 65535)"
            );
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
            InvalidConfig,
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

/// One numbering the profile's architectures use, and what the profile gives it.
struct AbiRules {
    /// Column of the generated tables.
    abi: usize,
    /// `nr << 32 | rule index << 8 | call`, sorted once at the end (the index keeps a
    /// syscall's rules in profile order). `call`: 0 for the rule itself, else the rule
    /// reached through a multiplexer as that call (`through_mux`), made only when the
    /// section is built, and only if no rule before it already decides the syscall.
    keys: Vec<u64>,
    /// The largest number a name of the profile resolves to, directly or through its
    /// multiplexer (ENOSYS above it).
    max: Option<u32>,
    /// socketcall(2) and ipc(2) on this ABI (`NONE`: it has no such multiplexer).
    socketcall: u32,
    ipc: u32,
}

impl AbiRules {
    fn new(abi: usize) -> Self {
        let nr = |name| resolve::lookup(name).map_or(syscalls::NONE, |r| r.number(abi));
        AbiRules {
            abi,
            keys: Vec::with_capacity(512),
            max: None,
            socketcall: nr("socketcall"),
            ipc: nr("ipc"),
        }
    }

    /// The multiplexer that carries `mux` on this ABI, and the call's number.
    fn via(&self, mux: Mux) -> Option<(u32, u64)> {
        let (nr, call) = match mux {
            Mux::Socketcall(call) => (self.socketcall, call),
            Mux::Ipc(call) => (self.ipc, call),
        };
        (nr != syscalls::NONE).then_some((nr, call))
    }
}

/// The native architecture, then each one the profile lists (once); names patina has
/// no table for are skipped (they get the bad-arch action, as every unlisted one).
fn profile_arches(spec: &LinuxSeccomp) -> Vec<&'static ArchDef> {
    let native = arch::lookup(arch::NATIVE).expect("the native architecture has a table");
    let mut out = vec![native];
    for listed in spec.architectures().iter().flatten() {
        match arch::lookup(*listed) {
            Some(def) if !out.iter().any(|d| std::ptr::eq(*d, def)) => out.push(def),
            Some(_) => {}
            None => crate::logging::debug(&format!(
                "linux.seccomp.architectures: {listed} skipped (no syscall table for it)"
            )),
        }
    }
    out
}

/// Every syscall name the tables know (any ABI), in table order: the fuzz target's
/// vocabulary for generated profiles.
pub fn syscall_names() -> impl Iterator<Item = &'static str> {
    syscalls::ROWS.iter().map(|(name, _)| *name)
}

/// The rules of one `syscalls[]` entry, checked: all conditions on distinct arguments
/// must hold; several on the same argument are alternatives (one rule each, as runc).
fn entry_rules(field: &str, sc: &LinuxSyscall, act: u32) -> Result<Vec<Rule>> {
    let args = sc.args().as_deref().unwrap_or_default();
    if args.len() > 6 {
        bail!(
            InvalidConfig,
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
        bail!(
            InvalidConfig,
            "{field}.names: must name at least one syscall"
        );
    }
    let distinct = checks
        .iter()
        .enumerate()
        .all(|(k, c)| checks[..k].iter().all(|o| o.index != c.index));
    Ok(if distinct {
        vec![Rule {
            checks,
            action: act,
        }]
    } else {
        checks
            .iter()
            .map(|c| Rule {
                checks: vec![*c],
                action: act,
            })
            .collect()
    })
}

/// `rule` reached through a multiplexer, as libseccomp rewrites it: the first
/// argument must be the call's number (any condition on it is replaced), the other
/// conditions stay.
fn through_mux(rule: &Rule, call: u64) -> Rule {
    let mut checks = vec![ArgCheck {
        index: 0,
        cmp: Cmp::Eq,
        value: call,
    }];
    checks.extend(rule.checks.iter().filter(|c| c.index != 0));
    Rule {
        checks,
        action: rule.action,
    }
}

/// Whether numbers above the largest one the profile knows get ENOSYS (runc's stub):
/// not when the default already allows the call (ALLOW, LOG, or TRACE, whose tracer
/// handles new calls) or already returns ENOSYS.
fn enosys_stub(default_action: u32) -> bool {
    let kind = default_action & 0xffff_0000;
    !(matches!(kind, RET_ALLOW | RET_LOG | RET_TRACE) || default_action == bpf::RET_ENOSYS)
}

fn key(nr: u32, rule: usize, call: u64) -> u64 {
    u64::from(nr) << 32 | (rule as u64) << 8 | call
}

/// The (sorted) keys of one ABI as its rules. A rule without conditions decides its
/// syscall (first match wins): the ones after it are left out, never built.
fn arch_syscalls(keys: &[u64], all_rules: &[Rule]) -> Vec<(u32, Rule)> {
    let mut out: Vec<(u32, Rule)> = Vec::with_capacity(keys.len());
    let mut decided = None;
    for k in keys {
        let nr = (k >> 32) as u32;
        if decided == Some(nr) {
            continue;
        }
        let rule = &all_rules[(*k as u32 >> 8) as usize];
        let rule = match *k as u8 {
            0 => rule.clone(),
            call => through_mux(rule, u64::from(call)),
        };
        if rule.checks.is_empty() {
            decided = Some(nr);
        }
        out.push((nr, rule));
    }
    out
}

/// One section per `seccomp_data.arch` value, in the order of `arches` (native first);
/// x32 joins x86_64's.
fn sections(
    arches: &[&'static ArchDef],
    abis: &[AbiRules],
    all_rules: &[Rule],
    stub: bool,
) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::with_capacity(arches.len());
    for def in arches {
        let Some(a) = abis.iter().find(|a| a.abi == def.abi) else {
            continue;
        };
        let rules = ArchRules {
            syscalls: arch_syscalls(&a.keys, all_rules),
            args32: def.args32,
            enosys_above: a.max.filter(|_| stub),
            enosys_zero: stub
                && matches!(def.audit, arch::AUDIT_ARCH_S390 | arch::AUDIT_ARCH_S390X),
        };
        let i = match out.iter().position(|s| s.arch == def.audit) {
            Some(i) => i,
            None => {
                out.push(Section {
                    arch: def.audit,
                    ..Section::default()
                });
                out.len() - 1
            }
        };
        if def.arch == Arch::ScmpArchX32 {
            out[i].x32 = Some(rules);
        } else {
            out[i].rules = Some(rules);
        }
    }
    out
}

fn filter_flags(spec: &LinuxSeccomp, notify: bool) -> u32 {
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
    flags
}

/// Translate and assemble `linux.seccomp`; every error names the field.
pub fn compile(spec: &LinuxSeccomp) -> Result<Seccomp> {
    let default_action = action(
        "linux.seccomp.defaultAction",
        spec.default_action(),
        spec.default_errno_ret(),
    )?;
    if default_action == RET_USER_NOTIF {
        bail!(InvalidConfig, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own syscalls would wait on the listener)");
    }
    let arches = profile_arches(spec);
    let mut abis: Vec<AbiRules> = Vec::with_capacity(arches.len());
    for def in &arches {
        if !abis.iter().any(|a| a.abi == def.abi) {
            abis.push(AbiRules::new(def.abi));
        }
    }
    // Every rule once, in profile order.
    let mut all_rules: Vec<Rule> = Vec::new();
    let mut notify = false;
    for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.errnoRet"), sc.action(), sc.errno_ret())?;
        let rules = entry_rules(&field, sc, act)?;
        if act == RET_USER_NOTIF {
            if spec.listener_path().is_none() {
                bail!(
                    InvalidConfig,
                    "{field}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"
                );
            }
            if sc.names().iter().any(|n| n == "write") {
                // As runc: the runtime's own last words to the caller are writes made
                // under the filter; parked on an agent they could wait forever.
                bail!(
                    InvalidConfig,
                    "{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall"
                );
            }
            notify = true;
        }
        // Same as the default: libseccomp refuses such rules, runc skips them (their
        // names still count for the largest known number).
        let first = all_rules.len();
        if act != default_action {
            all_rules.extend(rules);
        }
        if all_rules.len() >= 1 << 24 {
            bail!(
                InvalidConfig,
                "{field}: more than 2^24 rules in the profile"
            );
        }
        let new_rules = first..all_rules.len();
        for name in sc.names() {
            let row = resolve::lookup(name);
            let mux = row.and_then(|r| r.mux());
            let mut known = false;
            for a in abis.iter_mut() {
                let nr = row.map_or(syscalls::NONE, |r| r.number(a.abi));
                if nr != syscalls::NONE {
                    known = true;
                    a.max = a.max.max(Some(nr));
                    a.keys.extend(new_rules.clone().map(|r| key(nr, r, 0)));
                }
                if let Some((via, call)) = mux.and_then(|m| a.via(m)) {
                    known = true;
                    // The multiplexer counts as a number the name reaches: ENOSYS
                    // starts above it, never shadowing (or leaving a gap below) its
                    // rules in a profile whose direct names are all smaller.
                    a.max = a.max.max(Some(via));
                    a.keys.extend(new_rules.clone().map(|r| key(via, r, call)));
                }
            }
            if !known {
                crate::logging::debug(&format!(
                    "{field}: syscall {name:?} does not exist on the profile's architectures: skipped"
                ));
            }
        }
    }
    for a in abis.iter_mut() {
        a.keys.sort_unstable();
    }
    let flags = filter_flags(spec, notify);
    let filter = bpf::Filter {
        default_action,
        bad_arch_action: RET_KILL_PROCESS,
        sections: sections(&arches, &abis, &all_rules, enosys_stub(default_action)),
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

    /// The number of `name` on ABI `abi` (it must exist there).
    fn nr(abi: &str, name: &str) -> u32 {
        syscall_number(abi, name).unwrap_or_else(|| panic!("{name} on {abi}"))
    }

    fn profile(json: &str) -> Result<Seccomp> {
        compile(&serde_json::from_str::<LinuxSeccomp>(json).unwrap())
    }

    #[test]
    fn tables_know_every_abi() {
        assert_eq!(syscall_number("x86_64", "read"), Some(0));
        assert_eq!(syscall_number("x86", "read"), Some(3));
        assert_eq!(syscall_number("x32", "read"), Some(0x4000_0000));
        assert_eq!(syscall_number("x86_64", "socketcall"), None);
        assert_eq!(syscall_number("x86", "socketcall"), Some(102));
        assert_eq!(syscall_number("aarch64", "fchmodat2"), Some(452));
        assert_eq!(syscall_number("mips", "fchmodat2"), Some(4452));
        assert_eq!(syscall_number("no-such-abi", "read"), None);
        assert_eq!(syscall_number("x86_64", "no_such_call"), None);
        for (i, (name, nrs)) in syscalls::ROWS.iter().enumerate() {
            assert_eq!(
                syscalls::hash(name.as_bytes()),
                syscalls::HASHES[i],
                "{name}"
            );
            assert_eq!(resolve::numbers(name), Some(nrs), "{name}");
        }
        // Every architecture's column exists, and the native one is among them.
        assert!(arch::lookup(Arch::ScmpArchNative).is_some());
        for def in &arch::ARCHES {
            assert!(def.abi < syscalls::ABIS.len(), "{}", def.name);
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
        assert_eq!(r(AUDIT_ARCH_X86_64, nr("x86_64", "getpid"), 0), RET_ALLOW);
        assert_eq!(r(AUDIT_ARCH_I386, nr("x86", "getpid"), 0), RET_ALLOW);
        assert_eq!(r(AUDIT_ARCH_X86_64, nr("x32", "getpid"), 0), RET_ALLOW);
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr("x86_64", "getppid"), 0),
            RET_ERRNO | 13
        );
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr("x86_64", "kill"), 0),
            RET_KILL_PROCESS
        );
        assert_eq!(
            r(AUDIT_ARCH_X86_64, nr("x86_64", "write"), 0),
            RET_ERRNO | 38
        );
        let pers = nr("x86_64", "personality");
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
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(
            e.contains("syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
            "{e}"
        );
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
        // time, per-call cost). 377 before the tables covered every architecture. Built
        // for another architecture, its own section comes on top.
        let limit = if arch::NATIVE == Arch::ScmpArchX86_64 {
            350
        } else {
            700
        };
        assert!(s.instructions() <= limit, "{}", s.instructions());
        let r = |n| run(&s.program, AUDIT_ARCH_X86_64, n, [0; 6]);
        assert_eq!(r(nr("x86_64", "read")), RET_ALLOW);
        assert_eq!(r(nr("x86_64", "add_key")), RET_ERRNO | 38);
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

    /// The same rules for every architecture at once (18 sections in one program):
    /// still far below the kernel's 4096 instructions.
    #[test]
    fn podman_rules_on_every_arch_fit() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../bench/podman-seccomp-x86_64.json"
        ))
        .unwrap();
        let mut p: serde_json::Value = serde_json::from_str(&text).unwrap();
        p["architectures"] = arch::ARCHES.iter().map(|a| a.name).collect();
        let s = compile(&serde_json::from_value(p).unwrap()).unwrap();
        assert!(s.instructions() < 2500, "{}", s.instructions());
        for def in &arch::ARCHES {
            let abi = syscalls::ABIS[def.abi];
            let r = |n| run(&s.program, def.audit, n, [0; 6]);
            assert_eq!(r(nr(abi, "read")), RET_ALLOW, "{}", def.name);
            assert_eq!(r(nr(abi, "add_key")), RET_ERRNO | 38, "{}", def.name);
        }
    }

    /// Podman's default profile as podman hands it to the runtime on arm64 (its arch map's
    /// aarch64 entry with arm, the rules that include arm64), compiled on any machine:
    /// each of the two ABIs decides with its own numbers, other architectures' calls are
    /// a bad arch.
    #[test]
    fn podman_default_profile_for_arm64() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../bench/podman-seccomp-aarch64.json"
        ))
        .unwrap();
        let s = compile(&serde_json::from_str(&text).unwrap()).unwrap();
        assert!(s.instructions() < 1000, "{}", s.instructions());
        let def = |name: &str| arch::ARCHES.iter().find(|d| d.name == name).unwrap();
        for d in [def("SCMP_ARCH_AARCH64"), def("SCMP_ARCH_ARM")] {
            let abi = syscalls::ABIS[d.abi];
            let r =
                |call: &str, a0: u64| run(&s.program, d.audit, nr(abi, call), [a0, 0, 0, 0, 0, 0]);
            assert_eq!(r("read", 0), RET_ALLOW, "{abi}");
            assert_eq!(r("socket", 0), RET_ALLOW, "{abi}");
            assert_eq!(r("add_key", 0), RET_ERRNO | 38, "{abi}");
            assert_eq!(r("sethostname", 0), RET_ERRNO | 1, "{abi}");
            assert_eq!(r("personality", 8), RET_ALLOW, "{abi}");
            assert_eq!(r("personality", 0xffff_ffff), RET_ALLOW, "{abi}");
            assert_eq!(r("personality", 0x40_0000), RET_ERRNO | 38, "{abi}");
        }
        // The rule naming ARM's own calls: its private ones (0xf0000 and up) included.
        let arm = def("SCMP_ARCH_ARM");
        for call in ["arm_fadvise64_64", "cacheflush", "set_tls", "breakpoint"] {
            let n = nr("arm", call);
            assert_eq!(run(&s.program, arm.audit, n, [0; 6]), RET_ALLOW, "{call}");
        }
        // Any other architecture, unless it is the machine's own (always in a filter, as
        // libseccomp has it), is a bad arch.
        let native = arch::lookup(arch::NATIVE).unwrap().audit;
        let listed = [def("SCMP_ARCH_AARCH64").audit, arm.audit, native];
        for other in arch::ARCHES.iter().filter(|d| !listed.contains(&d.audit)) {
            let n = nr(syscalls::ABIS[other.abi], "read");
            assert_eq!(
                run(&s.program, other.audit, n, [0; 6]),
                RET_KILL_PROCESS,
                "{}",
                other.name
            );
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

    /// Each architecture alone in a profile (with the native one, always there): the
    /// rules reach it with its own numbers, names it lacks are skipped, calls above the
    /// largest number it knows get ENOSYS (on s390 also number 0), and an
    /// architecture the profile does not name gets KILL_PROCESS.
    #[test]
    fn every_arch_gets_the_rules_with_its_own_numbers() {
        let native = arch::lookup(arch::NATIVE).unwrap();
        for def in &arch::ARCHES {
            let s = profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["{}"],
                    "syscalls":[
                      {{"names":["read","fchmodat2","open","mseal"],"action":"SCMP_ACT_ALLOW"}},
                      {{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":13}},
                      {{"names":["kill"],"action":"SCMP_ACT_ALLOW",
                        "args":[{{"index":1,"value":9,"op":"SCMP_CMP_NE"}}]}}]}}"#,
                def.name
            ))
            .unwrap();
            let abi = syscalls::ABIS[def.abi];
            let r = |n: u32, a1: u64| run(&s.program, def.audit, n, [0, a1, 0, 0, 0, 0]);
            let name = def.name;
            assert_eq!(r(nr(abi, "read"), 0), RET_ALLOW, "{name}");
            assert_eq!(r(nr(abi, "fchmodat2"), 0), RET_ALLOW, "{name}");
            assert_eq!(r(nr(abi, "getppid"), 0), RET_ERRNO | 13, "{name}");
            assert_eq!(r(nr(abi, "kill"), 15), RET_ALLOW, "{name}");
            assert_eq!(r(nr(abi, "kill"), 9), RET_ERRNO | 1, "{name}");
            // Not in the profile, below its largest number: the default.
            assert_eq!(r(nr(abi, "write"), 0), RET_ERRNO | 1, "{name}");
            if let Some(open) = syscall_number(abi, "open") {
                assert_eq!(r(open, 0), RET_ALLOW, "{name}");
            }
            // mseal is the largest the profile names (s390's 31-bit table predates it
            // on no kernel: it has it too), then ENOSYS.
            let max = nr(abi, "mseal");
            assert_eq!(r(max, 0), RET_ALLOW, "{name}");
            assert_eq!(r(max + 1, 0), bpf::RET_ENOSYS, "{name}");
            assert_eq!(r(max + 1000, 0), bpf::RET_ENOSYS, "{name}");
            if matches!(def.arch, Arch::ScmpArchS390 | Arch::ScmpArchS390x) {
                assert_eq!(r(0, 0), bpf::RET_ENOSYS, "{name}");
            }
            // Architectures neither native nor named.
            for other in &arch::ARCHES {
                let named = other.audit == def.audit || other.audit == native.audit;
                if !named {
                    assert_eq!(
                        run(
                            &s.program,
                            other.audit,
                            nr(syscalls::ABIS[other.abi], "read"),
                            [0; 6]
                        ),
                        RET_KILL_PROCESS,
                        "{name} profile, {} call",
                        other.name
                    );
                }
            }
        }
    }

    /// On the ABIs with socketcall(2) / ipc(2), a rule naming a socket or IPC call also
    /// matches it through the multiplexer, with the call's number as the first argument
    /// (any condition on that argument replaced, the others kept), as libseccomp does;
    /// a call with no direct syscall there (recv on x86) is matched only that way.
    #[test]
    fn multiplexed_calls_follow_libseccomp() {
        let s = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_S390","SCMP_ARCH_S390X","SCMP_ARCH_PPC",
                                 "SCMP_ARCH_PPC64LE","SCMP_ARCH_MIPS","SCMP_ARCH_ARM","SCMP_ARCH_AARCH64"],
                "syscalls":[
                  {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":42,
                   "args":[{"index":0,"value":40,"op":"SCMP_CMP_NE"},
                           {"index":2,"value":7,"op":"SCMP_CMP_NE"}]},
                  {"names":["recv","shmget"],"action":"SCMP_ACT_ERRNO","errnoRet":43}]}"#,
        )
        .unwrap();
        let mut muxing = 0;
        for def in &arch::ARCHES {
            let abi = syscalls::ABIS[def.abi];
            let r = |n: u32, args: [u64; 6]| run(&s.program, def.audit, n, args);
            if matches!(def.arch, Arch::ScmpArchX86_64 | Arch::ScmpArchX32) {
                continue;
            }
            let listed = matches!(
                def.arch,
                Arch::ScmpArchX86
                    | Arch::ScmpArchS390
                    | Arch::ScmpArchS390x
                    | Arch::ScmpArchPpc
                    | Arch::ScmpArchPpc64le
                    | Arch::ScmpArchMips
                    | Arch::ScmpArchArm
                    | Arch::ScmpArchAarch64
            );
            if !listed {
                continue;
            }
            if let Some(socket) = syscall_number(abi, "socket") {
                assert_eq!(r(socket, [2, 0, 0, 0, 0, 0]), RET_ERRNO | 42, "{abi}");
                assert_eq!(r(socket, [40, 0, 0, 0, 0, 0]), RET_ALLOW, "{abi}");
                assert_eq!(r(socket, [2, 0, 7, 0, 0, 0]), RET_ALLOW, "{abi}");
            }
            if let Some(shmget) = syscall_number(abi, "shmget") {
                assert_eq!(r(shmget, [0; 6]), RET_ERRNO | 43, "{abi}");
            }
            let Some(socketcall) = syscall_number(abi, "socketcall") else {
                assert!(matches!(
                    def.arch,
                    Arch::ScmpArchArm | Arch::ScmpArchAarch64
                ));
                continue;
            };
            muxing += 1;
            // socketcall(SYS_SOCKET, args): arg0 is the call, its NE 40 condition gone;
            // the condition on arg 2 stays (and compares socketcall's own arg 2).
            assert_eq!(r(socketcall, [1, 0, 0, 0, 0, 0]), RET_ERRNO | 42, "{abi}");
            assert_eq!(r(socketcall, [1, 0, 7, 0, 0, 0]), RET_ALLOW, "{abi}");
            assert_eq!(r(socketcall, [2, 0, 0, 0, 0, 0]), RET_ALLOW, "{abi}");
            assert_eq!(r(socketcall, [10, 0, 0, 0, 0, 0]), RET_ERRNO | 43, "{abi}");
            let ipc = nr(abi, "ipc");
            assert_eq!(r(ipc, [23, 0, 0, 0, 0, 0]), RET_ERRNO | 43, "{abi}");
            assert_eq!(r(ipc, [22, 0, 0, 0, 0, 0]), RET_ALLOW, "{abi}");
        }
        assert_eq!(muxing, 6);
        // x86 has no direct recv: only the multiplexed rule names it.
        assert_eq!(syscall_number("x86", "recv"), None);
        // The native x86_64 has neither multiplexer: its socket rule is the direct one.
        let r = |n, a0| run(&s.program, AUDIT_ARCH_X86_64, n, [a0, 0, 0, 0, 0, 0]);
        assert_eq!(r(nr("x86_64", "socket"), 2), RET_ERRNO | 42);
        assert_eq!(r(nr("x86_64", "socket"), 40), RET_ALLOW);
    }

    /// runc's ENOSYS stub: only when the default would neither allow the call nor
    /// already return ENOSYS; and a name whose rule equals the default (skipped) still
    /// counts for the largest known number.
    #[test]
    fn enosys_stub_follows_the_default_action() {
        let compile_with = |default: &str| {
            profile(&format!(
                r#"{{{default},"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[
                    {{"names":["read"],"action":"SCMP_ACT_KILL_PROCESS"}},
                    {{"names":["rseq"],"action":"SCMP_ACT_ERRNO","errnoRet":1}}]}}"#
            ))
            .unwrap()
        };
        let rseq = nr("x86_64", "rseq");
        for (default, stub) in [
            (r#""defaultAction":"SCMP_ACT_ERRNO""#, true),
            (
                r#""defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":95"#,
                true,
            ),
            (r#""defaultAction":"SCMP_ACT_KILL""#, true),
            (r#""defaultAction":"SCMP_ACT_TRAP""#, true),
            (
                r#""defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38"#,
                false,
            ),
            (r#""defaultAction":"SCMP_ACT_ALLOW""#, false),
            (r#""defaultAction":"SCMP_ACT_LOG""#, false),
            (r#""defaultAction":"SCMP_ACT_TRACE""#, false),
        ] {
            let s = compile_with(default);
            let r = |arch, n| run(&s.program, arch, n, [0; 6]);
            let dflt = r(AUDIT_ARCH_X86_64, nr("x86_64", "write"));
            assert_eq!(r(AUDIT_ARCH_X86_64, nr("x86_64", "read")), RET_KILL_PROCESS);
            // rseq's rule (ERRNO 1) is the default in the first case: skipped, but rseq
            // is still the largest number the profile knows.
            assert_eq!(r(AUDIT_ARCH_X86_64, rseq - 1), dflt, "{default}");
            let above = if stub { bpf::RET_ENOSYS } else { dflt };
            assert_eq!(r(AUDIT_ARCH_X86_64, rseq + 1), above, "{default}");
            assert_eq!(
                r(AUDIT_ARCH_I386, nr("x86", "rseq") + 1),
                above,
                "{default}"
            );
            assert_eq!(r(AUDIT_ARCH_I386, nr("x86", "rseq") - 1), dflt, "{default}");
        }
    }
}
