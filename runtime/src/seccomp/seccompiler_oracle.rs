//! Differential tests of our BPF assembler against seccompiler, the field's compiler.
//!
//! seccompiler cannot build the programs patina needs (one match action per filter, one
//! architecture, no NOTIFY; see docs/security.md), but for what it can express (one
//! x86_64 or aarch64 section, one match action, any argument conditions) its program is
//! an independent oracle: thousands of generated rule sets are compiled by both, and
//! both programs run through the same interpreter on generated syscalls, at the
//! boundaries of every compared value. Any disagreement is a bug in one of them.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::arch::AUDIT_ARCH_AARCH64;
use super::bpf::{
    self, ArchRules, ArgCheck, Cmp, Filter, Rule, Section, SockFilter, AUDIT_ARCH_X86_64,
};

const KILL_PROCESS: u32 = 0x8000_0000;

/// xorshift64*: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Values where 64-bit comparisons go wrong if the high and low words are mixed up.
const EDGES: &[u64] = &[
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

fn value(rng: &mut Rng) -> u64 {
    match rng.below(3) {
        0 => rng.pick(EDGES),
        1 => rng.below(64),
        _ => rng.next(),
    }
}

/// One generated check, in both vocabularies.
fn check(rng: &mut Rng) -> (ArgCheck, SeccompCondition) {
    let index = rng.below(6) as usize;
    let value = value(rng);
    let mask = value | rng.pick(EDGES);
    let (ours, theirs) = match rng.below(7) {
        0 => (Cmp::Eq, SeccompCmpOp::Eq),
        1 => (Cmp::Ne, SeccompCmpOp::Ne),
        2 => (Cmp::Lt, SeccompCmpOp::Lt),
        3 => (Cmp::Le, SeccompCmpOp::Le),
        4 => (Cmp::Gt, SeccompCmpOp::Gt),
        5 => (Cmp::Ge, SeccompCmpOp::Ge),
        _ => (Cmp::MaskedEq(mask), SeccompCmpOp::MaskedEq(mask)),
    };
    // (arg & mask) == value can only hold when value has no bit outside the mask.
    let value = if let Cmp::MaskedEq(m) = ours {
        value & m
    } else {
        value
    };
    let ours = ArgCheck {
        index,
        cmp: ours,
        value,
    };
    let theirs = SeccompCondition::new(index as u8, SeccompCmpArgLen::Qword, theirs, value)
        .expect("seccompiler condition");
    (ours, theirs)
}

/// A rule set with one match action: syscalls matched unconditionally or by 1-3 rules
/// of 1-3 checks each. Returns it for both compilers, and the values it compares with.
fn rule_set(rng: &mut Rng, action: u32) -> (ArchRules, BTreeMap<i64, Vec<SeccompRule>>, Vec<u64>) {
    let mut ours = ArchRules::default();
    let mut theirs = BTreeMap::new();
    let mut values = Vec::new();
    for _ in 0..1 + rng.below(24) {
        let nr = rng.below(460) as u32;
        if theirs.contains_key(&i64::from(nr)) {
            continue;
        }
        let mut rules = Vec::new();
        if rng.below(4) == 0 {
            ours.syscalls.push((
                nr,
                Rule {
                    checks: Vec::new(),
                    action,
                },
            ));
        } else {
            for _ in 0..1 + rng.below(3) {
                let (checks, conditions): (Vec<_>, Vec<_>) =
                    (0..1 + rng.below(3)).map(|_| check(rng)).unzip();
                values.extend(checks.iter().map(|c| c.value));
                values.extend(checks.iter().filter_map(|c| match c.cmp {
                    Cmp::MaskedEq(m) => Some(m),
                    _ => None,
                }));
                ours.syscalls.push((nr, Rule { checks, action }));
                rules.push(SeccompRule::new(conditions).expect("seccompiler rule"));
            }
        }
        theirs.insert(i64::from(nr), rules);
    }
    ours.syscalls.sort_by_key(|(nr, _)| *nr);
    (ours, theirs, values)
}

fn theirs_program(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    default: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Vec<SockFilter> {
    let filter = SeccompFilter::new(rules, default, matched, arch).expect("seccompiler filter");
    let prog: BpfProgram = filter.try_into().expect("seccompiler compiles");
    prog.iter()
        .map(|i| SockFilter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

/// An argument near one the rules compare with, or anything.
fn probe_arg(rng: &mut Rng, values: &[u64]) -> u64 {
    if values.is_empty() || rng.below(4) == 0 {
        return value(rng);
    }
    let v = rng.pick(values);
    match rng.below(4) {
        0 => v.wrapping_add(1),
        1 => v.wrapping_sub(1),
        2 => v ^ (1 << rng.below(64)),
        _ => v,
    }
}

/// The two architectures seccompiler compiles for, as the kernel names them.
const ARCHES: [(TargetArch, u32); 2] = [
    (TargetArch::x86_64, AUDIT_ARCH_X86_64),
    (TargetArch::aarch64, AUDIT_ARCH_AARCH64),
];

#[test]
fn single_action_programs_agree_with_seccompiler() {
    let actions: &[(u32, SeccompAction)] = &[
        (0x7fff_0000, SeccompAction::Allow),
        (0x0005_0000 | 13, SeccompAction::Errno(13)),
        (0x0003_0000, SeccompAction::Trap),
        (0x7ffc_0000, SeccompAction::Log),
        (KILL_PROCESS, SeccompAction::KillProcess),
    ];
    let mut probes = 0usize;
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (target, audit) = ARCHES[seed as usize % 2];
        let (default, default_theirs) = actions[rng.below(2) as usize].clone();
        let (matched, matched_theirs) = loop {
            let a = rng.pick(&[0, 1, 2, 3, 4]);
            if actions[a].0 != default {
                break actions[a].clone();
            }
        };
        let (ours_rules, theirs_rules, values) = rule_set(&mut rng, matched);
        let numbers: Vec<u32> = ours_rules.syscalls.iter().map(|(nr, _)| *nr).collect();
        let ours = bpf::assemble(&Filter {
            default_action: default,
            bad_arch_action: KILL_PROCESS,
            sections: vec![Section {
                arch: audit,
                rules: Some(ours_rules),
                x32: None,
            }],
        })
        .expect("our assembler");
        let theirs = theirs_program(theirs_rules, default_theirs, matched_theirs, target);
        for _ in 0..300 {
            let nr = match rng.below(5) {
                0 => rng.below(500) as u32,
                1 => rng.pick(&numbers).wrapping_add(1),
                _ => rng.pick(&numbers),
            };
            let args: [u64; 6] = std::array::from_fn(|_| probe_arg(&mut rng, &values));
            let (a, b) = (
                bpf::run(&ours, audit, nr, args),
                bpf::run(&theirs, audit, nr, args),
            );
            assert_eq!(
                a, b,
                "seed {seed} arch {audit:#x}: syscall {nr} args {args:x?}: ours {a:#x}, seccompiler {b:#x}"
            );
            probes += 1;
        }
        // Another architecture is killed by both.
        for other in [
            bpf::AUDIT_ARCH_I386,
            AUDIT_ARCH_X86_64 ^ AUDIT_ARCH_AARCH64 ^ audit,
        ] {
            assert_eq!(
                bpf::run(&ours, other, 1, [0; 6]),
                bpf::run(&theirs, other, 1, [0; 6]),
                "seed {seed}"
            );
        }
    }
    assert_eq!(probes, 400 * 300);
}
