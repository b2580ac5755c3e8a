//! Classic BPF assembly of a translated profile: one program for every architecture of
//! the profile (x86_64, x86 and x32 share it, as libseccomp does), any mix of actions,
//! and 64-bit argument comparisons.
//!
//! Layout: load `arch`, jump to that arch's section (others get the bad-arch action).
//! A section loads `nr` and walks a binary tree of `jge` over segments of syscall
//! numbers with one outcome each (a plain action, or the rule block of one syscall with
//! argument filters, emitted at the end of the program). A tree node is one `jge` whose
//! true branch skips the lower half; conditional jumps have 8-bit offsets, so nodes
//! whose lower half is longer go through `ja` (32-bit offset). Offsets are checked,
//! never truncated.

use crate::error::{Error, Result};

// Instruction classes and fields (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JGE_K: u16 = 0x35;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_RET_K: u16 = 0x06;

/// Offsets into `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: usize) -> u32 {
    16 + 8 * i as u32
}
const fn off_arg_hi(i: usize) -> u32 {
    20 + 8 * i as u32
}

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The kernel refuses longer programs (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// One instruction as the kernel reads it (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Comparison of one argument (the seven of libseccomp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`
    MaskedEq(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCheck {
    pub index: usize,
    pub cmp: Cmp,
    pub value: u64,
}

/// A rule: all checks hold (AND) -> `action`. An empty list matches every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub checks: Vec<ArgCheck>,
    pub action: u32,
}

/// One architecture's rules: (syscall number, rule), sorted by number; the rules of
/// one number are tried in order, first match wins. A flat vector (not a map of
/// vectors): `compile` pushes, sorts once (stably) and hands it over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchRules {
    pub syscalls: Vec<(u32, Rule)>,
    /// Arguments are 32-bit (x86): only the low words are compared.
    pub args32: bool,
}

/// What to assemble.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub default_action: u32,
    pub bad_arch_action: u32,
    pub x86_64: Option<ArchRules>,
    pub x32: Option<ArchRules>,
    pub x86: Option<ArchRules>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Tgt {
    Next,
    To(Label),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Stmt(u16, u32),
    Jump(u16, u32, Tgt, Tgt),
    Ja(Label),
    Mark(Label),
}

#[derive(Default)]
struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn mark(&mut self, l: Label) {
        self.ops.push(Op::Mark(l));
    }
    fn ld(&mut self, off: u32) {
        self.ops.push(Op::Stmt(BPF_LD_W_ABS, off));
    }
    fn ret(&mut self, action: u32) {
        self.ops.push(Op::Stmt(BPF_RET_K, action));
    }
    fn and(&mut self, k: u32) {
        self.ops.push(Op::Stmt(BPF_ALU_AND_K, k));
    }
    fn jmp(&mut self, code: u16, k: u32, jt: Tgt, jf: Tgt) {
        self.ops.push(Op::Jump(code, k, jt, jf));
    }
    fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    /// Resolve labels into offsets.
    fn finish(self) -> Result<Vec<SockFilter>> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pos = 0;
        for op in &self.ops {
            match op {
                Op::Mark(l) => at[l.0] = pos,
                _ => pos += 1,
            }
        }
        let mut out = Vec::with_capacity(pos);
        for op in &self.ops {
            let here = out.len();
            let offset = |t: Tgt| -> Result<u32> {
                match t {
                    Tgt::Next => Ok(0),
                    Tgt::To(l) => at[l.0]
                        .checked_sub(here + 1)
                        .map(|o| o as u32)
                        .ok_or_else(|| Error::msg("seccomp: internal error: backward jump")),
                }
            };
            let short = |t: Tgt| -> Result<u8> {
                u8::try_from(offset(t)?)
                    .map_err(|_| Error::msg("seccomp: internal error: conditional jump too far"))
            };
            match *op {
                Op::Mark(_) => {}
                Op::Stmt(code, k) => out.push(SockFilter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Op::Jump(code, k, jt, jf) => out.push(SockFilter {
                    code,
                    jt: short(jt)?,
                    jf: short(jf)?,
                    k,
                }),
                Op::Ja(l) => out.push(SockFilter {
                    code: BPF_JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: offset(Tgt::To(l))?,
                }),
            }
        }
        if out.len() > MAX_INSNS {
            return Err(Error::msg(format!(
                "linux.seccomp: the profile needs {} BPF instructions, the kernel takes at most {MAX_INSNS}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// A rule block emitted after the sections, reached by `ja`.
struct Block<'a> {
    label: Label,
    rules: &'a [(u32, Rule)],
    args32: bool,
}

/// Assemble the whole filter.
pub fn assemble(filter: &Filter) -> Result<Vec<SockFilter>> {
    let mut asm = Asm::default();
    let mut blocks = Vec::new();
    let x86_64_section = asm.label();
    asm.ld(OFF_ARCH);
    let has64 = filter.x86_64.is_some() || filter.x32.is_some();
    if has64 {
        let not64 = asm.label();
        asm.jmp(BPF_JEQ_K, AUDIT_ARCH_X86_64, Tgt::Next, Tgt::To(not64));
        asm.ja(x86_64_section);
        asm.mark(not64);
    }
    if let Some(rules) = &filter.x86 {
        let x86 = asm.label();
        asm.jmp(BPF_JEQ_K, AUDIT_ARCH_I386, Tgt::To(x86), Tgt::Next);
        asm.ret(filter.bad_arch_action);
        asm.mark(x86);
        asm.ld(OFF_NR);
        dispatch(&mut asm, &mut blocks, rules, filter.default_action);
    } else {
        asm.ret(filter.bad_arch_action);
    }
    if has64 {
        asm.mark(x86_64_section);
        asm.ld(OFF_NR);
        let (native, x32) = (asm.label(), asm.label());
        asm.jmp(BPF_JGE_K, X32_SYSCALL_BIT, Tgt::Next, Tgt::To(native));
        asm.ja(x32);
        asm.mark(native);
        match &filter.x86_64 {
            Some(rules) => dispatch(&mut asm, &mut blocks, rules, filter.default_action),
            None => asm.ret(filter.bad_arch_action),
        }
        asm.mark(x32);
        match &filter.x32 {
            Some(rules) => dispatch(&mut asm, &mut blocks, rules, filter.default_action),
            None => asm.ret(filter.bad_arch_action),
        }
    }
    for block in blocks {
        asm.mark(block.label);
        for (_, rule) in block.rules {
            let next = asm.label();
            for check in &rule.checks {
                compare(&mut asm, check, block.args32, next);
            }
            asm.ret(rule.action);
            asm.mark(next);
        }
        asm.ret(filter.default_action);
    }
    asm.finish()
}

/// What a range of syscall numbers leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// Index into the rule blocks.
    Block(usize),
}

/// The search over one arch's syscall numbers (A holds `nr`); ends in returns.
/// Numbers are cut into segments `[start, next start)` with one outcome each: runs of
/// consecutive syscalls with the same plain action (and the gaps, which get the
/// default) are one segment, so a dense allow-list costs a few dozen comparisons, not
/// one per syscall, both in program size (kernel JIT time) and per syscall.
fn dispatch<'a>(asm: &mut Asm, blocks: &mut Vec<Block<'a>>, rules: &'a ArchRules, default: u32) {
    debug_assert!(rules.syscalls.windows(2).all(|w| w[0].0 <= w[1].0));
    let mut segments: Vec<(u32, Outcome)> = Vec::with_capacity(2 * rules.syscalls.len() + 1);
    let mut next = 0u32;
    let mut rest = rules.syscalls.as_slice();
    while let Some(&(nr, _)) = rest.first() {
        let n = rest.iter().take_while(|(x, _)| *x == nr).count();
        let (list, tail) = rest.split_at(n);
        rest = tail;
        let outcome = match list {
            [(_, only)] if only.checks.is_empty() => Outcome::Ret(only.action),
            _ => {
                let label = asm.label();
                blocks.push(Block {
                    label,
                    rules: list,
                    args32: rules.args32,
                });
                Outcome::Block(blocks.len() - 1)
            }
        };
        if nr > next || segments.is_empty() {
            push_segment(&mut segments, next, Outcome::Ret(default));
        }
        push_segment(&mut segments, nr, outcome);
        next = nr.saturating_add(1);
    }
    push_segment(&mut segments, next, Outcome::Ret(default));
    segment_tree(asm, blocks, &segments);
}

fn push_segment(segments: &mut Vec<(u32, Outcome)>, start: u32, outcome: Outcome) {
    match segments.last() {
        Some((_, last)) if *last == outcome && matches!(outcome, Outcome::Ret(_)) => {}
        Some((s, _)) if *s == start => {
            segments.pop();
            push_segment(segments, start, outcome);
        }
        _ => segments.push((start, outcome)),
    }
}

/// Longest code a conditional jump (8-bit offset) can always cross.
const SHORT: usize = u8::MAX as usize;

/// Instructions of a pooled subtree (`pooled_tree`): one `jge` per inner node, one
/// `ja` per rule-block leaf, and one shared `ret` per distinct plain action.
fn pooled_size(segments: &[(u32, Outcome)]) -> usize {
    if segments.len() <= 1 {
        return 1;
    }
    let mut actions: Vec<u32> = Vec::new();
    let mut blocks = 0;
    for (_, outcome) in segments {
        match outcome {
            Outcome::Ret(a) if !actions.contains(a) => actions.push(*a),
            Outcome::Ret(_) => {}
            Outcome::Block(_) => blocks += 1,
        }
    }
    segments.len() - 1 + blocks + actions.len()
}

/// Instructions of the tree over `segments` (as `segment_tree` emits it).
fn tree_size(segments: &[(u32, Outcome)]) -> usize {
    let pooled = pooled_size(segments);
    if pooled <= SHORT {
        return pooled;
    }
    let mid = segments.len() / 2;
    let lower = tree_size(&segments[..mid]);
    1 + usize::from(lower > SHORT) + lower + tree_size(&segments[mid..])
}

/// Binary search on segment starts. Near the root (subtrees too long for 8-bit
/// offsets) a node is `jge start` that jumps over the lower half (emitted right after
/// it) to the upper half, through a `ja` when the lower half is longer than 255.
/// Subtrees that fit in 255 instructions are pooled (`pooled_tree`).
fn segment_tree(asm: &mut Asm, blocks: &[Block<'_>], segments: &[(u32, Outcome)]) {
    if pooled_size(segments) <= SHORT {
        pooled_tree(asm, blocks, segments);
        return;
    }
    let mid = segments.len() / 2;
    let (lower, upper) = (asm.label(), asm.label());
    if tree_size(&segments[..mid]) > SHORT {
        let upper_stub = asm.label();
        asm.jmp(
            BPF_JGE_K,
            segments[mid].0,
            Tgt::To(upper_stub),
            Tgt::To(lower),
        );
        asm.mark(upper_stub);
        asm.ja(upper);
    } else {
        asm.jmp(BPF_JGE_K, segments[mid].0, Tgt::To(upper), Tgt::Next);
    }
    asm.mark(lower);
    segment_tree(asm, blocks, &segments[..mid]);
    asm.mark(upper);
    segment_tree(asm, blocks, &segments[mid..]);
}

/// A subtree short enough for 8-bit offsets everywhere: inner nodes are one `jge`
/// each, whose branches go straight to a shared `ret` at the end of the subtree (one
/// per distinct action: the "pool") when that side is a plain action, so plain leaves
/// cost no instruction of their own. Rule-block leaves are one `ja`.
fn pooled_tree(asm: &mut Asm, blocks: &[Block<'_>], segments: &[(u32, Outcome)]) {
    if let [(_, outcome)] = segments {
        match outcome {
            Outcome::Ret(action) => asm.ret(*action),
            Outcome::Block(i) => asm.ja(blocks[*i].label),
        }
        return;
    }
    let mut pool: Vec<(u32, Label)> = Vec::new();
    pooled_node(asm, blocks, segments, &mut pool);
    for (action, label) in pool {
        asm.mark(label);
        asm.ret(action);
    }
}

fn pooled_node(
    asm: &mut Asm,
    blocks: &[Block<'_>],
    segments: &[(u32, Outcome)],
    pool: &mut Vec<(u32, Label)>,
) {
    let mid = segments.len() / 2;
    let (lo, hi) = segments.split_at(mid);
    let mut target = |asm: &mut Asm, half: &[(u32, Outcome)]| match half {
        [(_, Outcome::Ret(action))] => {
            let label = match pool.iter().find(|(a, _)| a == action) {
                Some((_, l)) => *l,
                None => {
                    let l = asm.label();
                    pool.push((*action, l));
                    l
                }
            };
            (label, false)
        }
        _ => (asm.label(), true),
    };
    let (lo_label, lo_code) = target(asm, lo);
    let (hi_label, hi_code) = target(asm, hi);
    asm.jmp(BPF_JGE_K, hi[0].0, Tgt::To(hi_label), Tgt::To(lo_label));
    for (half, label, code) in [(lo, lo_label, lo_code), (hi, hi_label, hi_code)] {
        if !code {
            continue;
        }
        asm.mark(label);
        match half {
            [(_, Outcome::Block(i))] => asm.ja(blocks[*i].label),
            _ => pooled_node(asm, blocks, half, pool),
        }
    }
}

/// One argument check: falls through when it holds, jumps to `fail` otherwise.
/// 64-bit values are compared high word first; on x86 only the low word exists.
fn compare(asm: &mut Asm, check: &ArgCheck, args32: bool, fail: Label) {
    let (hi, lo) = ((check.value >> 32) as u32, check.value as u32);
    let pass = asm.label();
    let fail_t = Tgt::To(fail);
    let pass_t = Tgt::To(pass);
    let i = check.index;
    let load_hi = |asm: &mut Asm| asm.ld(off_arg_hi(i));
    match check.cmp {
        Cmp::Eq | Cmp::MaskedEq(_) => {
            let mask = match check.cmp {
                Cmp::MaskedEq(m) => Some(m),
                _ => None,
            };
            if !args32 {
                load_hi(asm);
                if let Some(m) = mask {
                    asm.and((m >> 32) as u32);
                }
                asm.jmp(BPF_JEQ_K, hi, Tgt::Next, fail_t);
            }
            asm.ld(off_arg_lo(i));
            if let Some(m) = mask {
                asm.and(m as u32);
            }
            asm.jmp(BPF_JEQ_K, lo, Tgt::Next, fail_t);
        }
        Cmp::Ne => {
            if !args32 {
                load_hi(asm);
                asm.jmp(BPF_JEQ_K, hi, Tgt::Next, pass_t);
            }
            asm.ld(off_arg_lo(i));
            asm.jmp(BPF_JEQ_K, lo, fail_t, Tgt::Next);
        }
        // For the orderings: the high words decide unless equal, then the low words.
        Cmp::Gt | Cmp::Ge => {
            if !args32 {
                load_hi(asm);
                asm.jmp(BPF_JGT_K, hi, pass_t, Tgt::Next);
                asm.jmp(BPF_JEQ_K, hi, Tgt::Next, fail_t);
            }
            asm.ld(off_arg_lo(i));
            let code = if check.cmp == Cmp::Gt {
                BPF_JGT_K
            } else {
                BPF_JGE_K
            };
            asm.jmp(code, lo, Tgt::Next, fail_t);
        }
        Cmp::Lt | Cmp::Le => {
            if !args32 {
                load_hi(asm);
                asm.jmp(BPF_JGT_K, hi, fail_t, Tgt::Next);
                asm.jmp(BPF_JEQ_K, hi, Tgt::Next, pass_t);
            }
            asm.ld(off_arg_lo(i));
            // lt: !(lo >= v); le: !(lo > v)
            let code = if check.cmp == Cmp::Lt {
                BPF_JGE_K
            } else {
                BPF_JGT_K
            };
            asm.jmp(code, lo, fail_t, Tgt::Next);
        }
    }
    asm.mark(pass);
}

/// A tiny classic-BPF interpreter for the unit tests and the fuzz targets (fuzz/, with
/// the `fuzzing` feature): runs `prog` on one syscall.
#[cfg(any(test, feature = "fuzzing"))]
pub fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_counted(prog, arch, nr, args).0
}

/// `run`, also returning how many instructions executed.
#[cfg(any(test, feature = "fuzzing"))]
pub fn run_counted(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let f = prog[pc];
        pc += 1;
        steps += 1;
        match f.code {
            BPF_LD_W_ABS => {
                let o = f.k as usize;
                acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            }
            BPF_ALU_AND_K => acc &= f.k,
            BPF_RET_K => return (f.k, steps),
            BPF_JMP_JA => pc += f.k as usize,
            BPF_JEQ_K | BPF_JGT_K | BPF_JGE_K => {
                let hit = match f.code {
                    BPF_JEQ_K => acc == f.k,
                    BPF_JGT_K => acc > f.k,
                    _ => acc >= f.k,
                };
                pc += if hit { f.jt } else { f.jf } as usize;
            }
            other => panic!("unknown opcode {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: u32 = 0x7fff_0000;
    const KILL: u32 = 0x8000_0000;
    const EPERM: u32 = 0x0005_0001;

    fn one(nr: u32, checks: Vec<ArgCheck>, action: u32) -> Filter {
        let mut rules = ArchRules::default();
        rules.syscalls.push((nr, Rule { checks, action }));
        Filter {
            default_action: ALLOW,
            bad_arch_action: KILL,
            x86_64: Some(rules),
            ..Filter::default()
        }
    }

    #[test]
    fn every_comparison_on_64_bit_values() {
        let big = 0x1_0000_0005u64;
        type Probes<'a> = &'a [(u64, bool)];
        let cases: &[(Cmp, u64, Probes)] = &[
            (Cmp::Eq, big, &[(big, true), (5, false), (big + 1, false)]),
            (Cmp::Ne, big, &[(big, false), (5, true), (0, true)]),
            (
                Cmp::Gt,
                big,
                &[(big + 1, true), (big, false), (6, false), (u64::MAX, true)],
            ),
            (
                Cmp::Ge,
                big,
                &[(big, true), (big - 1, false), (0x2_0000_0000, true)],
            ),
            (
                Cmp::Lt,
                big,
                &[
                    (big - 1, true),
                    (big, false),
                    (0x2_0000_0000, false),
                    (7, true),
                ],
            ),
            (Cmp::Le, big, &[(big, true), (big + 1, false), (0, true)]),
            (
                Cmp::MaskedEq(0xff00_0000_00f0),
                0x1200_0000_0030,
                &[
                    (0x1234_0000_0031, true),
                    (0x1200_0000_0040, false),
                    (0x1300_0000_0030, false),
                ],
            ),
        ];
        for (cmp, value, probes) in cases {
            for index in [0usize, 5] {
                let check = ArgCheck {
                    index,
                    cmp: *cmp,
                    value: *value,
                };
                let prog = assemble(&one(42, vec![check], EPERM)).unwrap();
                for (arg, hit) in *probes {
                    let mut args = [0u64; 6];
                    args[index] = *arg;
                    let got = run(&prog, AUDIT_ARCH_X86_64, 42, args);
                    assert_eq!(
                        got == EPERM,
                        *hit,
                        "{cmp:?} {value:#x} vs {arg:#x} (arg {index})"
                    );
                    assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 43, args), ALLOW);
                }
            }
        }
    }

    #[test]
    fn several_args_are_anded_and_rules_tried_in_order() {
        let mut rules = ArchRules::default();
        let c = |index, value| ArgCheck {
            index,
            cmp: Cmp::Eq,
            value,
        };
        rules.syscalls.push((
            41,
            Rule {
                checks: vec![c(0, 16), c(2, 9)],
                action: 0x0005_0016,
            },
        ));
        rules.syscalls.push((
            41,
            Rule {
                checks: vec![c(0, 16)],
                action: EPERM,
            },
        ));
        let f = Filter {
            default_action: ALLOW,
            bad_arch_action: KILL,
            x86_64: Some(rules),
            ..Filter::default()
        };
        let prog = assemble(&f).unwrap();
        let r = |a0, a2| run(&prog, AUDIT_ARCH_X86_64, 41, [a0, 0, a2, 0, 0, 0]);
        assert_eq!(r(16, 9), 0x0005_0016);
        assert_eq!(r(16, 8), EPERM);
        assert_eq!(r(15, 9), ALLOW);
    }

    #[test]
    fn many_syscalls_and_arches_stay_short_and_exact() {
        let mut rules = ArchRules::default();
        for nr in (0..450).step_by(1) {
            let action = if nr % 3 == 0 { EPERM } else { 0x7ff0_0000 | nr };
            rules.syscalls.push((
                nr,
                Rule {
                    checks: vec![],
                    action,
                },
            ));
        }
        let mut x32 = ArchRules::default();
        x32.syscalls.push((
            X32_SYSCALL_BIT + 1,
            Rule {
                checks: vec![],
                action: EPERM,
            },
        ));
        let x86 = ArchRules {
            args32: true,
            ..rules.clone()
        };
        let f = Filter {
            default_action: 0x0005_0026,
            bad_arch_action: KILL,
            x86_64: Some(rules),
            x32: Some(x32),
            x86: Some(x86),
        };
        let prog = assemble(&f).unwrap();
        // Worst case: every syscall its own action (three instructions per segment).
        assert!(prog.len() < 3000, "{}", prog.len());
        for nr in 0..450 {
            let want = if nr % 3 == 0 { EPERM } else { 0x7ff0_0000 | nr };
            assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr, [0; 6]), want, "nr {nr}");
            assert_eq!(run(&prog, AUDIT_ARCH_I386, nr, [0; 6]), want, "x86 nr {nr}");
        }
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 450, [0; 6]), 0x0005_0026);
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 1, [0; 6]),
            EPERM
        );
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 2, [0; 6]),
            0x0005_0026
        );
        assert_eq!(run(&prog, 0xc000_00b7, 1, [0; 6]), KILL);
    }

    /// The tree's boundaries on every ABI: first and last number of a run, the numbers
    /// between runs and beyond the last one (the default), a rule block inside a run,
    /// and the x32 bit (x32 numbers never reach the x86_64 tree and vice versa).
    #[test]
    fn tree_dispatch_boundaries_on_each_abi() {
        const DEFAULT: u32 = 0x0005_0026;
        // Runs: [3, 9] allow, [10, 11] EPERM, [40, 300] allow with 100 blocked by an
        // argument rule, 301 kill, [305, 449] allow; everything else the default.
        let want = |nr: u32, a0: u64| -> u32 {
            match nr {
                3..=9 | 40..=99 | 101..=300 | 305..=449 => ALLOW,
                100 if a0 == 7 => EPERM,
                100 => ALLOW,
                10 | 11 => EPERM,
                301 => KILL,
                _ => DEFAULT,
            }
        };
        let table = |base: u32, args32: bool| {
            let mut syscalls = Vec::new();
            for nr in 0..460u32 {
                let rule = |checks, action| Rule { checks, action };
                match (nr, want(nr, 0)) {
                    (100, _) => {
                        let c = ArgCheck {
                            index: 0,
                            cmp: Cmp::Eq,
                            value: 7,
                        };
                        syscalls.push((base + nr, rule(vec![c], EPERM)));
                        syscalls.push((base + nr, rule(vec![], ALLOW)));
                    }
                    (_, DEFAULT) => {}
                    (_, action) => syscalls.push((base + nr, rule(vec![], action))),
                }
            }
            ArchRules { syscalls, args32 }
        };
        let f = Filter {
            default_action: DEFAULT,
            bad_arch_action: KILL,
            x86_64: Some(table(0, false)),
            x32: Some(table(X32_SYSCALL_BIT, false)),
            x86: Some(table(0, true)),
        };
        let prog = assemble(&f).unwrap();
        let probes = [
            0u32,
            2,
            3,
            9,
            10,
            11,
            12,
            39,
            40,
            99,
            100,
            101,
            300,
            301,
            302,
            304,
            305,
            449,
            450,
            451,
            1000,
            0x3fff_ffff,
        ];
        for nr in probes {
            for a0 in [0u64, 7] {
                let args = [a0, 0, 0, 0, 0, 0];
                let w = want(nr, a0);
                assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr, args), w, "x86_64 {nr}");
                assert_eq!(run(&prog, AUDIT_ARCH_I386, nr, args), w, "x86 {nr}");
                let x32 = nr.wrapping_add(X32_SYSCALL_BIT);
                if nr < X32_SYSCALL_BIT {
                    assert_eq!(run(&prog, AUDIT_ARCH_X86_64, x32, args), w, "x32 {nr}");
                }
            }
        }
        // On x86 only the low word of an argument is compared.
        let hi7 = [0x1_0000_0007u64, 0, 0, 0, 0, 0];
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 100, hi7), EPERM);
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 100, hi7), ALLOW);
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), DEFAULT);
        assert_eq!(run(&prog, 0xc000_00b7, 3, [0; 6]), KILL);
        // A few comparisons per syscall, not one per syscall.
        assert!(prog.len() < 200, "{}", prog.len());
    }

    /// Trees big enough that some lower halves exceed a conditional jump's reach (255):
    /// every number still lands on its own action.
    #[test]
    fn long_trees_use_ja_where_needed() {
        for count in (60u32..200).chain([255, 256, 257, 600, 900]) {
            let mut rules = ArchRules::default();
            for nr in 0..count {
                let action = 0x7ff0_0000 | (nr & 0xffff);
                // Every other number only: each syscall its own segment.
                rules.syscalls.push((
                    2 * nr + 1,
                    Rule {
                        checks: vec![],
                        action,
                    },
                ));
            }
            let f = Filter {
                default_action: EPERM,
                bad_arch_action: KILL,
                x86_64: Some(rules),
                ..Filter::default()
            };
            let prog = assemble(&f).unwrap();
            for nr in 0..2 * count + 2 {
                let want = if nr % 2 == 1 && nr / 2 < count {
                    0x7ff0_0000 | ((nr / 2) & 0xffff)
                } else {
                    EPERM
                };
                assert_eq!(
                    run(&prog, AUDIT_ARCH_X86_64, nr, [0; 6]),
                    want,
                    "{count}: {nr}"
                );
            }
        }
    }

    #[test]
    fn missing_arches_get_the_bad_arch_action() {
        let prog = assemble(&one(1, vec![], EPERM)).unwrap();
        assert_eq!(run(&prog, AUDIT_ARCH_I386, 1, [0; 6]), KILL);
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 1, [0; 6]),
            KILL
        );
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 1, [0; 6]), EPERM);
    }
}
