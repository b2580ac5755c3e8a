//! The seccomp compiler against the profile's meaning: a generated `linux.seccomp`
//! object is compiled by `patina::seccomp::compile`, the program is checked as the
//! kernel checks a filter, and run through the BPF interpreter of the unit tests on
//! generated syscalls (each ABI, names of the profile and their neighbours, arguments at
//! the edges of every compared value). A small reference evaluator, written here from
//! the documented semantics and not from the compiler, says what each call must get.
//! Any disagreement, an accepted invalid profile or a refused valid one is a crash.
//!
//! The semantics (docs/security.md "Seccomp", runc's and libseccomp's):
//! - ABI: the native one (x86_64) and each listed architecture this build has a table
//!   for, told apart by `seccomp_data.arch` (the kernel's AUDIT_ARCH values); x32 shares
//!   x86_64's and has the numbers with __X32_SYSCALL_BIT (without x32 listed, such a
//!   number is a bad arch). Any other arch gets KILL_PROCESS.
//! - Then the `syscalls` entries in profile order, skipping those whose action is the
//!   default action (runc skips them); an entry matches when one of its names is the
//!   call's number on that ABI and its `args` hold: all of them when their indices are
//!   distinct, any one of them otherwise (runc's rule). The first match decides.
//! - On the ABIs whose table has socketcall(2) (resp. ipc(2)), a name of a socket (SysV
//!   IPC) call also matches that multiplexer when argument 0 is the call's number
//!   (linux/net.h, linux/ipc.h); the entry's conditions on argument 0 give way to that
//!   one, the others stay (libseccomp).
//! - 32-bit ABIs (x86, x32, arm, ppc, s390, mips o32/n32) compare the low words of
//!   argument, value and mask.
//! - No match: ENOSYS for numbers above the largest one the profile's names reach on the
//!   ABI (directly or through their multiplexer; none reached, no such range), and for 0
//!   on s390/s390x; unless the default action is ALLOW, LOG, TRACE or ERRNO(ENOSYS)
//!   (runc's stub). Otherwise `defaultAction`.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg};
use oci_spec::runtime::{LinuxSeccompFilterFlag as Flag, LinuxSeccompOperator as Op};
use patina::seccomp::bpf::{self, SockFilter};
use serde_json::{json, Value};

const X32_BIT: u32 = bpf::X32_SYSCALL_BIT;
const KILL_PROCESS: u32 = 0x8000_0000;
const ENOSYS: u32 = 0x0005_0000 | 38;
/// An arch no profile can name (EM_NONE with the 64-bit and little-endian bits).
const AUDIT_ARCH_FOREIGN: u32 = 0xc000_0000;

/// One architecture as the reference knows it: its profile name, AUDIT_ARCH value
/// (linux/audit.h), its numbering (a column of the tables) and whether its arguments are
/// 32-bit. The profile's architectures come from here, in this order.
struct ArchRef {
    name: &'static str,
    audit: u32,
    abi: &'static str,
    args32: bool,
}

const fn a(name: &'static str, audit: u32, abi: &'static str, args32: bool) -> ArchRef {
    ArchRef {
        name,
        audit,
        abi,
        args32,
    }
}

const ARCHES: [ArchRef; 18] = [
    a("SCMP_ARCH_X86_64", 0xc000_003e, "x86_64", false),
    a("SCMP_ARCH_X86", 0x4000_0003, "x86", true),
    a("SCMP_ARCH_X32", 0xc000_003e, "x32", true),
    a("SCMP_ARCH_AARCH64", 0xc000_00b7, "aarch64", false),
    a("SCMP_ARCH_ARM", 0x4000_0028, "arm", true),
    a("SCMP_ARCH_PPC64", 0x8000_0015, "ppc64", false),
    a("SCMP_ARCH_PPC64LE", 0xc000_0015, "ppc64", false),
    a("SCMP_ARCH_PPC", 0x0000_0014, "ppc", true),
    a("SCMP_ARCH_S390X", 0x8000_0016, "s390x", false),
    a("SCMP_ARCH_S390", 0x0000_0016, "s390", true),
    a("SCMP_ARCH_RISCV64", 0xc000_00f3, "riscv64", false),
    a("SCMP_ARCH_MIPS64", 0x8000_0008, "mips64", false),
    a("SCMP_ARCH_MIPSEL64", 0xc000_0008, "mips64", false),
    a("SCMP_ARCH_MIPS64N32", 0xa000_0008, "mips64n32", true),
    a("SCMP_ARCH_MIPSEL64N32", 0xe000_0008, "mips64n32", true),
    a("SCMP_ARCH_MIPS", 0x0000_0008, "mips", true),
    a("SCMP_ARCH_MIPSEL", 0x4000_0008, "mips", true),
    a("SCMP_ARCH_LOONGARCH64", 0xc000_0102, "loong64", false),
];
/// This build's architecture (the fuzz build is x86_64).
const NATIVE: usize = 0;
const X32: usize = 2;

/// linux/net.h: socketcall(2)'s call numbers, 1 to 20 in this order.
const SOCKET_CALLS: [&str; 20] = [
    "socket",
    "bind",
    "connect",
    "listen",
    "accept",
    "getsockname",
    "getpeername",
    "socketpair",
    "send",
    "recv",
    "sendto",
    "recvfrom",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "sendmsg",
    "recvmsg",
    "accept4",
    "recvmmsg",
    "sendmmsg",
];

/// linux/ipc.h: ipc(2)'s call numbers.
const IPC_CALLS: [(&str, u64); 12] = [
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

/// The multiplexer that carries `name` on ABI `abi`: (its number, the call's number).
fn via_mux(abi: &str, name: &str) -> Option<(u32, u64)> {
    let (mux, call) = match SOCKET_CALLS.iter().position(|c| *c == name) {
        Some(i) => ("socketcall", i as u64 + 1),
        None => {
            let (_, call) = IPC_CALLS.iter().find(|(c, _)| *c == name)?;
            ("ipc", *call)
        }
    };
    Some((patina::seccomp::syscall_number(abi, mux)?, call))
}
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
            .map(|i| match *i as usize % (ARCHES.len() + 1) {
                i if i == ARCHES.len() => "SCMP_ARCH_NATIVE",
                i => ARCHES[i].name,
            })
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
    /// Indices into ARCHES: the native one and each listed one, once.
    arches: Vec<usize>,
    /// Per ARCHES index (of the profile's arches): each entry's numbers there.
    numbers: Vec<Option<ArchNumbers>>,
}

type EntryNumbers = (Vec<u32>, Vec<(u32, u64)>);

/// What the profile's names are on one architecture, worked out once per profile.
struct ArchNumbers {
    /// Per entry: its names' own numbers, and (multiplexer, call) pairs.
    entries: Vec<EntryNumbers>,
    /// The largest number any name reaches, directly or through its multiplexer.
    largest: Option<u32>,
}

impl ArchNumbers {
    fn new(spec: &LinuxSeccomp, abi: &str) -> ArchNumbers {
        let mut largest = None;
        let mut entries = Vec::new();
        for sc in spec.syscalls().iter().flatten() {
            let direct: Vec<u32> = sc
                .names()
                .iter()
                .filter_map(|n| patina::seccomp::syscall_number(abi, n))
                .collect();
            let muxed: Vec<(u32, u64)> =
                sc.names().iter().filter_map(|n| via_mux(abi, n)).collect();
            largest = largest
                .max(direct.iter().max().copied())
                .max(muxed.iter().map(|m| m.0).max());
            entries.push((direct, muxed));
        }
        ArchNumbers { entries, largest }
    }
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
        let mut arches = vec![NATIVE];
        for arch in spec.architectures().iter().flatten() {
            let name = serde_json::to_value(arch).expect("an Arch serialises");
            let i = match ARCHES.iter().position(|a| name == a.name) {
                Some(i) => i,
                None if *arch == Arch::ScmpArchNative => NATIVE,
                None => panic!("the generator named {name}"),
            };
            if !arches.contains(&i) {
                arches.push(i);
            }
        }
        let numbers = (0..ARCHES.len())
            .map(|i| {
                arches
                    .contains(&i)
                    .then(|| ArchNumbers::new(spec, ARCHES[i].abi))
            })
            .collect();
        Some(Reference {
            spec,
            default,
            arches,
            numbers,
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

    /// The profile's architecture (ARCHES index) that a call with this `seccomp_data` is on.
    fn arch_of(&self, audit: u32, nr: u32) -> Option<usize> {
        let mut found = self
            .arches
            .iter()
            .copied()
            .filter(|i| ARCHES[*i].audit == audit);
        match (found.next(), found.next()) {
            (None, _) => None,
            // x86_64 and x32: the x32 bit tells them apart.
            (Some(a), Some(b)) => {
                let (x32, other) = if a == X32 { (a, b) } else { (b, a) };
                Some(if nr >= X32_BIT { x32 } else { other })
            }
            (Some(NATIVE), None) if nr >= X32_BIT => None,
            (Some(one), None) => Some(one),
        }
    }

    fn eval(&self, audit: u32, nr: u32, args: &[u64; 6]) -> u32 {
        let Some(i) = self.arch_of(audit, nr) else {
            return KILL_PROCESS;
        };
        let (arch, numbers) = (&ARCHES[i], self.numbers[i].as_ref().expect("worked out"));
        let low = |v: u64| if arch.args32 { v & 0xffff_ffff } else { v };
        let entries = self.spec.syscalls().iter().flatten().zip(&numbers.entries);
        for (sc, (direct, muxed)) in entries {
            let act = ret(sc.action(), sc.errno_ret()).expect("checked");
            if act == self.default {
                continue;
            }
            let conds = sc.args().as_deref().unwrap_or_default();
            let distinct = conds
                .iter()
                .enumerate()
                .all(|(i, c)| conds[..i].iter().all(|o| o.index() != c.index()));
            // All conditions on distinct arguments, else any one.
            let test = |f: &dyn Fn(&LinuxSeccompArg) -> bool| {
                if distinct {
                    conds.iter().all(f)
                } else {
                    conds.iter().any(f)
                }
            };
            let hold = |c: &LinuxSeccompArg| holds(c, args, arch.args32);
            if direct.contains(&nr) && test(&hold) {
                return act;
            }
            // Through the multiplexer: argument 0 is the call, conditions on it give way.
            let call = muxed
                .iter()
                .any(|&(via, call)| via == nr && low(args[0]) == call);
            if call && test(&|c| c.index() == 0 || hold(c)) {
                return act;
            }
        }
        let stub = !matches!(
            self.default & 0xffff_0000,
            0x7fff_0000 | 0x7ffc_0000 | 0x7ff0_0000
        ) && self.default != ENOSYS;
        let s390 = matches!(arch.abi, "s390" | "s390x");
        if stub && (numbers.largest.is_some_and(|max| nr > max) || s390 && nr == 0) {
            return ENOSYS;
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
        for (i, v) in values.iter().take(8).enumerate() {
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
        let arch = match p.arch as usize % (ARCHES.len() + 1) {
            i if i == ARCHES.len() => AUDIT_ARCH_FOREIGN,
            i => ARCHES[i].audit,
        };
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

/// (arch, nr) of every name the profile gives on every ABI (directly and through its
/// multiplexer, and 0: s390's unknown call), every value it compares with (masks too)
/// and the multiplexed calls' numbers (argument 0 of socketcall/ipc).
fn named_numbers_and_values(spec: &LinuxSeccomp) -> (Vec<(u32, u32)>, Vec<u64>) {
    let mut numbers = Vec::new();
    let mut values = Vec::new();
    let mut add = |arch: u32, nr: u32| {
        if !numbers.contains(&(arch, nr)) {
            numbers.push((arch, nr));
        }
    };
    for a in &ARCHES {
        add(a.audit, 0);
    }
    for sc in spec.syscalls().iter().flatten() {
        for name in sc.names() {
            for a in &ARCHES {
                if let Some(nr) = patina::seccomp::syscall_number(a.abi, name) {
                    add(a.audit, nr);
                }
                if let Some((via, call)) = via_mux(a.abi, name) {
                    add(a.audit, via);
                    if !values.contains(&call) {
                        values.push(call);
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
