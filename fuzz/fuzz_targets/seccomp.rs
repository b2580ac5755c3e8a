//! The seccomp compiler against the profile's meaning: a generated `linux.seccomp`
//! object is compiled by `patina::seccomp::compile`, the program is checked as the
//! kernel checks a filter, and run through the BPF interpreter of the unit tests on
//! generated syscalls (each ABI, names of the profile and their neighbours, arguments at
//! the edges of every compared value). A small reference evaluator, written here from
//! the documented semantics and not from the compiler, says what each call must get.
//! Any disagreement, an accepted invalid profile or a refused valid one is a crash.
//!
//! The semantics (docs/security.md, runc's): the call's ABI is x86 for AUDIT_ARCH_I386,
//! x32 for AUDIT_ARCH_X86_64 with nr >= __X32_SYSCALL_BIT (as libseccomp splits them),
//! x86_64 otherwise; any other arch, or an ABI the profile's `architectures` leave out
//! (none listed: x86_64 only), gets KILL_PROCESS. Then the `syscalls` entries in profile
//! order, skipping those whose action is the default action (runc skips them); an entry
//! matches when one of its names is the call's number on that ABI and its `args` hold:
//! all of them when their indices are distinct, any one of them otherwise (runc's rule).
//! The first match decides; no match gets `defaultAction`. On x86 arguments are 32 bits:
//! the low words of argument, value and mask are compared.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg};
use oci_spec::runtime::{LinuxSeccompFilterFlag as Flag, LinuxSeccompOperator as Op};
use patina::seccomp::bpf::{self, SockFilter, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use serde_json::{json, Value};

const X32_BIT: u32 = bpf::X32_SYSCALL_BIT;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const KILL_PROCESS: u32 = 0x8000_0000;
const EDGES: [u64; 12] = [
    0,
    1,
    2,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

// ---- the generated profile -------------------------------------------------------

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ActionIn {
    Kill,
    KillThread,
    KillProcess,
    Trap,
    Errno,
    Trace,
    Log,
    Allow,
    Notify,
}

impl ActionIn {
    fn name(self) -> &'static str {
        match self {
            ActionIn::Kill => "SCMP_ACT_KILL",
            ActionIn::KillThread => "SCMP_ACT_KILL_THREAD",
            ActionIn::KillProcess => "SCMP_ACT_KILL_PROCESS",
            ActionIn::Trap => "SCMP_ACT_TRAP",
            ActionIn::Errno => "SCMP_ACT_ERRNO",
            ActionIn::Trace => "SCMP_ACT_TRACE",
            ActionIn::Log => "SCMP_ACT_LOG",
            ActionIn::Allow => "SCMP_ACT_ALLOW",
            ActionIn::Notify => "SCMP_ACT_NOTIFY",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ErrnoIn {
    Small(u8),
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum NamesIn {
    /// One name of the vocabulary (sorted by x86_64 number).
    One(u16),
    /// `count` consecutive names: dense runs of syscall numbers.
    Run(u16, u8),
    /// A name no ABI has (skipped by the compiler).
    Bogus(u8),
}

#[derive(Arbitrary, Debug)]
enum ValueIn {
    Edge(u8),
    Small(u8),
    Raw(u64),
}

impl ValueIn {
    fn get(&self) -> u64 {
        match self {
            ValueIn::Edge(i) => EDGES[*i as usize % EDGES.len()],
            ValueIn::Small(v) => u64::from(*v),
            ValueIn::Raw(v) => *v,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct CondIn {
    index: u8,
    op: u8,
    value: ValueIn,
    value_two: Option<ValueIn>,
}

#[derive(Arbitrary, Debug)]
struct EntryIn {
    names: Vec<NamesIn>,
    action: ActionIn,
    errno: Option<ErrnoIn>,
    args: Vec<CondIn>,
}

#[derive(Arbitrary, Debug)]
enum ArgIn {
    /// A value the profile compares with (by index), moved by a small delta.
    Near(u8, i8),
    Edge(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum NrIn {
    /// A number the profile names (by index), moved by a small delta.
    Named(u8, i8),
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
struct ProbeIn {
    arch: u8,
    nr: NrIn,
    args: [ArgIn; 6],
}

#[derive(Arbitrary, Debug)]
struct Input {
    default: ActionIn,
    default_errno: Option<ErrnoIn>,
    arches: Vec<u8>,
    flags: Vec<u8>,
    listener: bool,
    entries: Vec<EntryIn>,
    probes: Vec<ProbeIn>,
}

/// Every name the tables know, by x86_64 number (names without one last, by x86 number).
fn vocabulary() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = patina::seccomp::syscall_names().collect();
        let key = |n: &str| {
            (
                patina::seccomp::syscall_number("x86_64", n).unwrap_or(u32::MAX),
                patina::seccomp::syscall_number("x86", n).unwrap_or(u32::MAX),
            )
        };
        names.sort_by_key(|n| (key(n), *n));
        names
    })
}

fn errno_json(e: &Option<ErrnoIn>) -> Option<Value> {
    e.as_ref().map(|e| match e {
        ErrnoIn::Small(v) => json!(v),
        ErrnoIn::Raw(v) => json!(v),
    })
}

/// The OCI object, through JSON as config.json would give it.
fn profile(input: &Input) -> LinuxSeccomp {
    const ARCHES: [&str; 6] = [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_NATIVE",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ];
    const FLAGS: [&str; 4] = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    const OPS: [&str; 7] = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let vocab = vocabulary();
    let mut obj = json!({ "defaultAction": input.default.name() });
    if let Some(e) = errno_json(&input.default_errno) {
        obj["defaultErrnoRet"] = e;
    }
    if !input.arches.is_empty() {
        let a: Vec<&str> = input
            .arches
            .iter()
            .take(8)
            .map(|i| ARCHES[*i as usize % ARCHES.len()])
            .collect();
        obj["architectures"] = json!(a);
    }
    if !input.flags.is_empty() {
        let f: Vec<&str> = input
            .flags
            .iter()
            .take(4)
            .map(|i| FLAGS[*i as usize % FLAGS.len()])
            .collect();
        obj["flags"] = json!(f);
    }
    if input.listener {
        obj["listenerPath"] = json!("/run/fuzz/listener.sock");
    }
    let mut syscalls = Vec::new();
    for e in input.entries.iter().take(64) {
        let mut names = Vec::new();
        for n in e.names.iter().take(8) {
            match n {
                NamesIn::One(i) => names.push(vocab[*i as usize % vocab.len()].to_string()),
                NamesIn::Run(i, count) => {
                    let first = *i as usize % vocab.len();
                    let last = (first + *count as usize).min(vocab.len());
                    names.extend(vocab[first..last].iter().map(|s| s.to_string()));
                }
                NamesIn::Bogus(i) => names.push(format!("no_such_syscall_{i}")),
            }
        }
        let args: Vec<Value> = e
            .args
            .iter()
            .take(8)
            .map(|c| {
                let mut a = json!({
                    "index": c.index % 8,
                    "value": c.value.get(),
                    "op": OPS[c.op as usize % OPS.len()],
                });
                if let Some(v) = &c.value_two {
                    a["valueTwo"] = json!(v.get());
                }
                a
            })
            .collect();
        let mut s = json!({ "names": names, "action": e.action.name() });
        if let Some(v) = errno_json(&e.errno) {
            s["errnoRet"] = v;
        }
        if !args.is_empty() {
            s["args"] = json!(args);
        }
        syscalls.push(s);
    }
    obj["syscalls"] = json!(syscalls);
    serde_json::from_value(obj).expect("the generated profile is a LinuxSeccomp")
}

// ---- the reference evaluator -------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64,
    X86,
    X32,
}

impl Abi {
    fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::X86 => "x86",
            Abi::X32 => "x32",
        }
    }
}

/// The kernel return value of an action; None when errnoRet does not fit its 16 bits.
fn ret(act: Act, errno: Option<u32>) -> Option<u32> {
    let data = errno.unwrap_or(1); // EPERM
    let with_data = |base: u32| (data <= 0xffff).then_some(base | data);
    match act {
        Act::ScmpActKill | Act::ScmpActKillThread => Some(0),
        Act::ScmpActKillProcess => Some(KILL_PROCESS),
        Act::ScmpActTrap => Some(0x0003_0000),
        Act::ScmpActErrno => with_data(0x0005_0000),
        Act::ScmpActTrace => with_data(0x7ff0_0000),
        Act::ScmpActLog => Some(0x7ffc_0000),
        Act::ScmpActAllow => Some(0x7fff_0000),
        Act::ScmpActNotify => Some(0x7fc0_0000),
    }
}

struct Reference<'a> {
    spec: &'a LinuxSeccomp,
    default: u32,
    abis: Vec<Abi>,
}

impl<'a> Reference<'a> {
    /// None: the profile is invalid and `compile` must refuse it.
    fn new(spec: &'a LinuxSeccomp) -> Option<Reference<'a>> {
        let default = ret(spec.default_action(), spec.default_errno_ret())?;
        if spec.default_action() == Act::ScmpActNotify {
            return None;
        }
        for sc in spec.syscalls().iter().flatten() {
            ret(sc.action(), sc.errno_ret())?;
            let args = sc.args().as_deref().unwrap_or_default();
            if args.len() > 6 || args.iter().any(|a| a.index() > 5) || sc.names().is_empty() {
                return None;
            }
            if sc.action() == Act::ScmpActNotify && spec.listener_path().is_none() {
                return None;
            }
        }
        let mut abis = Vec::new();
        for arch in spec.architectures().iter().flatten() {
            abis.push(match arch {
                Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
                Arch::ScmpArchX86 => Abi::X86,
                Arch::ScmpArchX32 => Abi::X32,
                _ => continue,
            });
        }
        if abis.is_empty() {
            abis.push(Abi::X86_64);
        }
        Some(Reference {
            spec,
            default,
            abis,
        })
    }

    fn flags(&self) -> u32 {
        let mut flags = 0;
        for f in self.spec.flags().iter().flatten() {
            flags |= match f {
                Flag::SeccompFilterFlagTsync => 1,
                Flag::SeccompFilterFlagLog => 2,
                Flag::SeccompFilterFlagSpecAllow => 4,
                Flag::SeccompFilterFlagWaitKillableRecv => 32,
            };
        }
        let notify = self
            .spec
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == Act::ScmpActNotify);
        if notify {
            flags |= 8; // NEW_LISTENER
            if flags & 1 != 0 {
                flags |= 16; // TSYNC_ESRCH
            }
        }
        flags
    }

    fn eval(&self, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        let abi = match arch {
            AUDIT_ARCH_X86_64 if nr >= X32_BIT => Abi::X32,
            AUDIT_ARCH_X86_64 => Abi::X86_64,
            AUDIT_ARCH_I386 => Abi::X86,
            _ => return KILL_PROCESS,
        };
        if !self.abis.contains(&abi) {
            return KILL_PROCESS;
        }
        for sc in self.spec.syscalls().iter().flatten() {
            let act = ret(sc.action(), sc.errno_ret()).expect("checked");
            if act == self.default {
                continue;
            }
            let named = sc
                .names()
                .iter()
                .any(|n| patina::seccomp::syscall_number(abi.name(), n) == Some(nr));
            if !named {
                continue;
            }
            let conds = sc.args().as_deref().unwrap_or_default();
            let distinct = conds
                .iter()
                .enumerate()
                .all(|(i, c)| conds[..i].iter().all(|o| o.index() != c.index()));
            let hold = |c: &LinuxSeccompArg| holds(c, args, abi == Abi::X86);
            let matched = if distinct {
                conds.iter().all(hold)
            } else {
                conds.iter().any(hold)
            };
            if matched {
                return act;
            }
        }
        self.default
    }
}

fn holds(c: &LinuxSeccompArg, args: &[u64; 6], args32: bool) -> bool {
    let low = |v: u64| if args32 { v & 0xffff_ffff } else { v };
    let (a, v) = (low(args[c.index()]), low(c.value()));
    match c.op() {
        Op::ScmpCmpNe => a != v,
        Op::ScmpCmpLt => a < v,
        Op::ScmpCmpLe => a <= v,
        Op::ScmpCmpEq => a == v,
        Op::ScmpCmpGe => a >= v,
        Op::ScmpCmpGt => a > v,
        // OCI: value is the mask, valueTwo what the masked argument must equal.
        Op::ScmpCmpMaskedEq => a & v == low(c.value_two().unwrap_or(0)),
    }
}

// ---- the program as the kernel sees it ---------------------------------------------

/// What the kernel's filter check (and our interpreter) needs: a bounded program of known
/// instructions, loads inside struct seccomp_data, jumps forward and inside the program,
/// a return at the end.
fn check_program(prog: &[SockFilter]) {
    assert!(
        !prog.is_empty() && prog.len() <= bpf::MAX_INSNS,
        "{} instructions",
        prog.len()
    );
    for (pc, f) in prog.iter().enumerate() {
        let inside = |off: usize| pc + 1 + off < prog.len();
        match f.code {
            0x20 => assert!(f.k < 64 && f.k % 4 == 0, "{pc}: load at {}", f.k),
            0x05 => assert!(inside(f.k as usize), "{pc}: ja {} out of the program", f.k),
            0x15 | 0x25 | 0x35 => assert!(
                inside(f.jt.into()) && inside(f.jf.into()),
                "{pc}: jump {}/{} out of the program",
                f.jt,
                f.jf
            ),
            0x54 | 0x06 => {}
            other => panic!("{pc}: unexpected opcode {other:#x}"),
        }
    }
    assert_eq!(
        prog[prog.len() - 1].code,
        0x06,
        "the last instruction is not a return"
    );
}

// ---- the target --------------------------------------------------------------------

fuzz_target!(|input: Input| {
    let spec = profile(&input);
    let reference = Reference::new(&spec);
    let compiled = match (patina::seccomp::compile(&spec), &reference) {
        (Ok(c), Some(_)) => c,
        (Err(_), None) => return,
        (Ok(_), None) => panic!("an invalid profile was accepted: {spec:?}"),
        (Err(e), Some(_)) => {
            // The one refusal the reference cannot predict: the kernel's size limit.
            let e = e.to_string();
            assert!(
                e.contains("BPF instructions"),
                "a valid profile was refused: {e}"
            );
            return;
        }
    };
    let reference = reference.expect("matched above");
    let prog = compiled.program();
    check_program(prog);
    assert_eq!(compiled.flags(), reference.flags(), "flags of {spec:?}");
    assert_eq!(compiled.listener.is_some(), reference.flags() & 8 != 0);

    // state.json keeps the compiled filter: it must read back as it was.
    let saved = serde_json::to_vec(&compiled).expect("serialises");
    let loaded: patina::seccomp::Seccomp = serde_json::from_slice(&saved).expect("reads back");
    assert_eq!(loaded, compiled);

    let (numbers, values) = named_numbers_and_values(&spec);
    let probe = |arch: u32, nr: u32, args: [u64; 6]| {
        let (got, steps) = bpf::run_counted(prog, arch, nr, args);
        let want = reference.eval(arch, nr, &args);
        assert!(steps <= prog.len());
        assert_eq!(
            got, want,
            "arch {arch:#x} nr {nr:#x} args {args:x?}: program {got:#x}, profile {want:#x}\n{spec:?}"
        );
    };
    // Every named number, with the arguments at and around each compared value.
    for &(arch, nr) in numbers.iter().take(96) {
        probe(arch, nr, [0; 6]);
        probe(arch, nr.wrapping_add(1), [0; 6]);
        probe(arch, nr.wrapping_sub(1), [0; 6]);
        for (i, v) in values.iter().take(24).enumerate() {
            for d in [0u64, 1, u64::MAX] {
                let mut args = [0u64; 6];
                args.iter_mut().for_each(|a| *a = v.wrapping_add(d));
                args[i % 6] = v.wrapping_sub(d);
                probe(arch, nr, args);
            }
        }
    }
    // The fuzzer's own probes.
    for p in input.probes.iter().take(64) {
        let arch = [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64][p.arch as usize % 3];
        let nr = match p.nr {
            NrIn::Named(i, d) if !numbers.is_empty() => numbers[i as usize % numbers.len()]
                .1
                .wrapping_add_signed(d.into()),
            NrIn::Named(i, _) => i.into(),
            NrIn::Raw(nr) => nr,
        };
        let args = p.args.each_ref().map(|a| match a {
            ArgIn::Near(i, d) if !values.is_empty() => {
                values[*i as usize % values.len()].wrapping_add_signed((*d).into())
            }
            ArgIn::Near(i, _) => (*i).into(),
            ArgIn::Edge(i) => EDGES[*i as usize % EDGES.len()],
            ArgIn::Raw(v) => *v,
        });
        probe(arch, nr, args);
    }
});

/// (arch, nr) of every name the profile gives on every ABI, and every value it compares
/// with (masks too).
fn named_numbers_and_values(spec: &LinuxSeccomp) -> (Vec<(u32, u32)>, Vec<u64>) {
    let mut numbers = Vec::new();
    let mut values = Vec::new();
    for sc in spec.syscalls().iter().flatten() {
        for name in sc.names() {
            for (abi, arch) in [
                ("x86_64", AUDIT_ARCH_X86_64),
                ("x32", AUDIT_ARCH_X86_64),
                ("x86", AUDIT_ARCH_I386),
            ] {
                if let Some(nr) = patina::seccomp::syscall_number(abi, name) {
                    if !numbers.contains(&(arch, nr)) {
                        numbers.push((arch, nr));
                    }
                }
            }
        }
        for a in sc.args().iter().flatten() {
            values.push(a.value());
            values.extend(a.value_two());
        }
    }
    (numbers, values)
}
