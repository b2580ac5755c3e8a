//! Classic BPF assembly of a translated profile: one program for every architecture of
//! the profile (each its own section, as libseccomp does), any mix of actions, and
//! 64-bit argument comparisons.
//!
//! Layout: load `arch`, jump to that arch's section (others get the bad-arch action);
//! the native arch is tested first. A section loads `nr` and walks a binary tree of
//! `jge` over segments of syscall numbers with one outcome each (a plain action, or the
//! rule block of one syscall with argument filters, emitted at the end of the program).
//! A tree node is one `jge` whose true branch skips the lower half; conditional jumps
//! have 8-bit offsets, so nodes whose lower half is longer go through `ja` (32-bit
//! offset). Offsets are checked, never truncated. Numbers above the largest one a
//! profile knows can form one more segment, ENOSYS (runc's stub, see `ArchRules`).

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

/// SECCOMP_RET_ERRNO | ENOSYS: what a call the profile cannot know about gets.
pub const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

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
    /// Numbers above this one (the largest the profile knows on the arch) return
    /// ENOSYS instead of the default action, so that a libc probing a syscall newer
    /// than the profile falls back (runc's "-ENOSYS stub").
    pub enosys_above: Option<u32>,
    /// Number 0 returns ENOSYS too: on s390 it is how a call the kernel does not know
    /// arrives (the "large syscall number" multiplexer, as runc's stub treats it).
    pub enosys_zero: bool,
}

/// One `seccomp_data.arch` value and its syscalls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub arch: u32,
    /// Its syscalls; on AUDIT_ARCH_X86_64 those below X32_SYSCALL_BIT. `None`: those
    /// numbers get the bad-arch action.
    pub rules: Option<ArchRules>,
    /// AUDIT_ARCH_X86_64 only: the x32 ABI, numbers from X32_SYSCALL_BIT on (`None`:
    /// the bad-arch action).
    pub x32: Option<ArchRules>,
}

/// What to assemble.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub default_action: u32,
    pub bad_arch_action: u32,
    /// Tested in this order (the native arch first: nearly every call is native).
    pub sections: Vec<Section>,
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
    asm.ld(OFF_ARCH);
    // All but the last section: `jeq arch` falls through to a `ja` to the section,
    // which comes later. The last one follows its test directly.
    let Some((last, rest)) = filter.sections.split_last() else {
        asm.ret(filter.bad_arch_action);
        return asm.finish();
    };
    let labels: Vec<Label> = rest.iter().map(|_| asm.label()).collect();
    for (section, label) in rest.iter().zip(&labels) {
        let next = asm.label();
        asm.jmp(BPF_JEQ_K, section.arch, Tgt::Next, Tgt::To(next));
        asm.ja(*label);
        asm.mark(next);
    }
    let last_label = asm.label();
    asm.jmp(BPF_JEQ_K, last.arch, Tgt::To(last_label), Tgt::Next);
    asm.ret(filter.bad_arch_action);
    asm.mark(last_label);
    section(&mut asm, &mut blocks, last, filter);
    for (s, label) in rest.iter().zip(labels) {
        asm.mark(label);
        section(&mut asm, &mut blocks, s, filter);
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

/// One arch's code: load `nr`, search. On x86_64, one `jge` first splits the x32
/// numbers (__X32_SYSCALL_BIT) from the native ones.
fn section<'a>(asm: &mut Asm, blocks: &mut Vec<Block<'a>>, s: &'a Section, filter: &Filter) {
    asm.ld(OFF_NR);
    let mut part = |asm: &mut Asm, rules: &'a Option<ArchRules>| match rules {
        Some(rules) => dispatch(asm, blocks, rules, filter.default_action),
        None => asm.ret(filter.bad_arch_action),
    };
    if s.arch != AUDIT_ARCH_X86_64 {
        part(asm, &s.rules);
        return;
    }
    let (native, x32) = (asm.label(), asm.label());
    asm.jmp(BPF_JGE_K, X32_SYSCALL_BIT, Tgt::Next, Tgt::To(native));
    asm.ja(x32);
    asm.mark(native);
    part(asm, &s.rules);
    asm.mark(x32);
    part(asm, &s.x32);
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
    let mut segments: Vec<(u32, Outcome)> = Vec::with_capacity(2 * rules.syscalls.len() + 3);
    let mut next = 0u32;
    if rules.enosys_zero && rules.syscalls.first().is_none_or(|(nr, _)| *nr > 0) {
        push_segment(&mut segments, 0, Outcome::Ret(RET_ENOSYS));
        next = 1;
    }
    let mut rest = rules.syscalls.as_slice();
    while let Some(&(nr, _)) = rest.first() {
        let n = rest.iter().take_while(|(x, _)| *x == nr).count();
        let (list, tail) = rest.split_at(n);
        rest = tail;
        // First match wins: rules after one without conditions are never reached.
        let list = match list.iter().position(|(_, r)| r.checks.is_empty()) {
            Some(i) => &list[..=i],
            None => list,
        };
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
    match rules.enosys_above {
        Some(max) if max < u32::MAX => {
            let from = (max + 1).max(next);
            if next < from {
                push_segment(&mut segments, next, Outcome::Ret(default));
            }
            push_segment(&mut segments, from, Outcome::Ret(RET_ENOSYS));
        }
        _ => push_segment(&mut segments, next, Outcome::Ret(default)),
    }
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

    /// x86_64 (with x32 when given) and, when given, i386.
    fn x86_sections(
        x86_64: Option<ArchRules>,
        x32: Option<ArchRules>,
        x86: Option<ArchRules>,
    ) -> Vec<Section> {
        let mut sections = vec![Section {
            arch: AUDIT_ARCH_X86_64,
            rules: x86_64,
            x32,
        }];
        if let Some(rules) = x86 {
            sections.push(Section {
                arch: AUDIT_ARCH_I386,
                rules: Some(rules),
                x32: None,
            });
        }
        sections
    }

    fn one(nr: u32, checks: Vec<ArgCheck>, action: u32) -> Filter {
        let mut rules = ArchRules::default();
        rules.syscalls.push((nr, Rule { checks, action }));
        Filter {
            default_action: ALLOW,
            bad_arch_action: KILL,
            sections: x86_sections(Some(rules), None, None),
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
            sections: x86_sections(Some(rules), None, None),
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
            sections: x86_sections(Some(rules), Some(x32), Some(x86)),
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
            ArchRules {
                syscalls,
                args32,
                ..ArchRules::default()
            }
        };
        let f = Filter {
            default_action: DEFAULT,
            bad_arch_action: KILL,
            sections: x86_sections(
                Some(table(0, false)),
                Some(table(X32_SYSCALL_BIT, false)),
                Some(table(0, true)),
            ),
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
                sections: x86_sections(Some(rules), None, None),
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

    /// Many architectures in one program: each `seccomp_data.arch` reaches its own
    /// section (same syscall number, different actions), whatever its place in the
    /// chain of tests, and any other arch value gets the bad-arch action.
    #[test]
    fn every_arch_reaches_its_own_section() {
        let arches: Vec<u32> = crate::seccomp::arch::ARCHES
            .iter()
            .map(|a| a.audit)
            .filter(|a| *a != AUDIT_ARCH_X86_64)
            .chain([AUDIT_ARCH_X86_64])
            .collect();
        let mut sections = Vec::new();
        for (i, arch) in arches.iter().enumerate() {
            let mut rules = ArchRules::default();
            // Long enough sections that the `ja`s to them cross more than 255.
            for nr in 0..60u32 {
                let action = 0x7ff0_0000 | (i as u32) << 8 | (nr % 2);
                rules.syscalls.push((
                    2 * nr,
                    Rule {
                        checks: vec![],
                        action,
                    },
                ));
            }
            sections.push(Section {
                arch: *arch,
                rules: Some(rules),
                x32: None,
            });
        }
        let f = Filter {
            default_action: EPERM,
            bad_arch_action: KILL,
            sections,
        };
        let prog = assemble(&f).unwrap();
        for (i, arch) in arches.iter().enumerate() {
            for nr in [0u32, 1, 2, 3, 118, 119, 120] {
                let want = match nr {
                    n if n % 2 == 0 && n < 120 => 0x7ff0_0000 | (i as u32) << 8 | (n / 2 % 2),
                    _ => EPERM,
                };
                assert_eq!(
                    run(&prog, *arch, nr, [0; 6]),
                    want,
                    "arch {arch:#x} nr {nr}"
                );
            }
        }
        // x86_64 is in the list, x32 is not: the x32 numbers are a bad arch.
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]), KILL);
        for other in [0u32, 0x4000_003e, 0xc000_0102 + 1, 0x8000_000f] {
            assert_eq!(run(&prog, other, 2, [0; 6]), KILL, "{other:#x}");
        }
        assert_eq!(
            run(
                &assemble(&Filter::default()).unwrap(),
                AUDIT_ARCH_X86_64,
                0,
                [0; 6]
            ),
            0,
            "no section: everything is a bad arch"
        );
    }

    /// Numbers above `enosys_above` return ENOSYS, numbers up to it the default (or
    /// their rule), per part: the x32 numbers have their own limit; on s390 number 0
    /// too.
    #[test]
    fn enosys_above_the_largest_known_number() {
        let rules = |nrs: &[u32], above: Option<u32>, zero: bool| ArchRules {
            syscalls: nrs
                .iter()
                .map(|nr| {
                    (
                        *nr,
                        Rule {
                            checks: vec![],
                            action: ALLOW,
                        },
                    )
                })
                .collect(),
            args32: false,
            enosys_above: above,
            enosys_zero: zero,
        };
        let b = X32_SYSCALL_BIT;
        let f = Filter {
            default_action: EPERM,
            bad_arch_action: KILL,
            sections: vec![
                Section {
                    arch: AUDIT_ARCH_X86_64,
                    // 300 is known to the profile but has no rule (same as the default).
                    rules: Some(rules(&[1, 2, 200], Some(300), false)),
                    x32: Some(rules(&[b + 1, b + 5], Some(b + 5), false)),
                },
                Section {
                    arch: 0x8000_0016,
                    rules: Some(rules(&[3, 4], Some(4), true)),
                    x32: None,
                },
                Section {
                    arch: AUDIT_ARCH_I386,
                    rules: Some(rules(&[3, 4], None, false)),
                    x32: None,
                },
            ],
        };
        let prog = assemble(&f).unwrap();
        let r = |arch, nr| run(&prog, arch, nr, [0; 6]);
        for (nr, want) in [
            (0, EPERM),
            (1, ALLOW),
            (200, ALLOW),
            (201, EPERM),
            (300, EPERM),
            (301, RET_ENOSYS),
            (b - 1, RET_ENOSYS),
            (b, EPERM),
            (b + 5, ALLOW),
            (b + 6, RET_ENOSYS),
            (u32::MAX, RET_ENOSYS),
        ] {
            assert_eq!(r(AUDIT_ARCH_X86_64, nr), want, "x86_64/x32 {nr:#x}");
        }
        for (nr, want) in [
            (0, RET_ENOSYS),
            (1, EPERM),
            (3, ALLOW),
            (4, ALLOW),
            (5, RET_ENOSYS),
        ] {
            assert_eq!(r(0x8000_0016, nr), want, "s390x {nr}");
        }
        // No stub asked for: the default all the way up.
        for (nr, want) in [(0, EPERM), (4, ALLOW), (5, EPERM), (u32::MAX, EPERM)] {
            assert_eq!(r(AUDIT_ARCH_I386, nr), want, "x86 {nr}");
        }
    }

    /// A rule without conditions ends a syscall's list (first match wins): rules after
    /// it cost nothing, and a list that starts with one is a plain action.
    #[test]
    fn rules_after_an_unconditional_one_are_dropped() {
        let check = ArgCheck {
            index: 0,
            cmp: Cmp::Eq,
            value: 1,
        };
        let mut rules = ArchRules::default();
        rules.syscalls.push((
            7,
            Rule {
                checks: vec![],
                action: ALLOW,
            },
        ));
        rules.syscalls.push((
            7,
            Rule {
                checks: vec![check],
                action: KILL,
            },
        ));
        let f = Filter {
            default_action: EPERM,
            bad_arch_action: KILL,
            sections: x86_sections(Some(rules), None, None),
        };
        let prog = assemble(&f).unwrap();
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 7, [1, 0, 0, 0, 0, 0]), ALLOW);
        // ld arch, jeq, ret bad, ld nr, jge x32, ja, and a three-way tree: no rule block.
        assert!(prog.len() <= 12, "{}", prog.len());
    }
}
