//! The tiny test programs for aarch64 (A64 instructions, the generic syscall table),
//! and for its compat ABI: 32-bit ARM EABI programs (A32 instructions, `svc #0` with
//! the number in r7), which an arm64 kernel with CONFIG_COMPAT runs on a CPU with
//! AArch32 at EL0 (`compat_runs` says whether this one does).

use super::{elf64, CompatNumbers, BASE};

/// ARM EABI's numbers (arch/arm/tools/syscall.tbl). EABI has no socketcall: its socket
/// calls are direct.
pub const COMPAT_NR: CompatNumbers = CompatNumbers {
    getpid: 20,
    add_key: 309,
    socket: 281,
    socketcall: None,
};

const SYS_EXIT: u16 = 93;
const SYS_WRITE: u16 = 64;
const SYS_GETEUID: u32 = 175;
const SYS_KEYCTL: u16 = 219;
const SVC: u32 = 0xd400_0001; // svc #0

/// `movz xd, #imm`
fn movz(d: u32, imm: u16) -> u32 {
    0xd280_0000 | (u32::from(imm) << 5) | d
}

/// `movn xd, #imm`: xd = !imm (small negative constants).
fn movn(d: u32, imm: u16) -> u32 {
    0x9280_0000 | (u32::from(imm) << 5) | d
}

/// xd = v (a 32-bit value, zero-extended).
fn mov32(d: u32, v: u32) -> Vec<u32> {
    let mut out = vec![movz(d, v as u16)];
    if v >> 16 != 0 {
        out.push(0xf2a0_0000 | ((v >> 16) << 5) | d); // movk xd, #hi, lsl #16
    }
    out
}

/// `adr xd, .+off`
fn adr(d: u32, off: u32) -> u32 {
    0x1000_0000 | ((off & 3) << 29) | (((off >> 2) & 0x7_ffff) << 5) | d
}

/// A program of `insns`, then `data`; `Adr(d)` placeholders become `adr xd, data`.
enum Insn {
    Op(u32),
    AdrData(u32),
}

fn program(insns: &[Insn], data: &[u8]) -> Vec<u8> {
    let n = insns.len() as u32;
    let mut code = Vec::new();
    for (i, insn) in insns.iter().enumerate() {
        let word = match insn {
            Insn::Op(w) => *w,
            Insn::AdrData(d) => adr(*d, 4 * (n - i as u32)),
        };
        code.extend_from_slice(&word.to_le_bytes());
    }
    code.extend_from_slice(data);
    elf64(0xb7, &code) // EM_AARCH64
}

fn ops(words: impl IntoIterator<Item = u32>) -> impl Iterator<Item = Insn> {
    words.into_iter().map(Insn::Op)
}

/// `exit(x0)`: the exit code is the low byte of the last result.
fn exit_x0() -> [u32; 2] {
    [movz(8, SYS_EXIT), SVC]
}

/// `exit(geteuid())`: the exit code is the effective uid (mod 256).
pub fn exit_with_euid() -> Vec<u8> {
    exit_with_syscall(SYS_GETEUID)
}

/// `exit(syscall(nr))` with no arguments: exit code 256 - errno on failure (218 for ENOSYS).
pub fn exit_with_syscall(nr: u32) -> Vec<u8> {
    let mut p: Vec<Insn> = ops(mov32(8, nr)).collect();
    p.extend(ops([SVC]));
    p.extend(ops(exit_x0()));
    program(&p, &[])
}

/// `exit(syscall(nr, AT_FDCWD, path, arg2, 0))`: the *at calls (fchmodat2...); exit code
/// 0 on success, 256 - errno on failure.
pub fn exit_with_at_syscall(nr: u32, path: &str, arg2: u32) -> Vec<u8> {
    let mut p: Vec<Insn> = ops(mov32(8, nr)).collect();
    p.extend(ops([movn(0, 99)])); // AT_FDCWD (-100)
    p.push(Insn::AdrData(1));
    p.extend(ops(mov32(2, arg2)));
    p.extend(ops([movz(3, 0), SVC]));
    p.extend(ops(exit_x0()));
    let mut data = path.as_bytes().to_vec();
    data.push(0);
    program(&p, &data)
}

/// `write(1, text); exit(0)`: a static program that prints `text` (at most 255 bytes).
pub fn print_text(text: &str) -> Vec<u8> {
    let len = u16::from(u8::try_from(text.len()).expect("at most 255 bytes"));
    let mut p: Vec<Insn> = ops([movz(8, SYS_WRITE), movz(0, 1)]).collect();
    p.push(Insn::AdrData(1));
    p.extend(ops([movz(2, len), SVC, movz(0, 0)]));
    p.extend(ops(exit_x0()));
    program(&p, text.as_bytes())
}

/// Prints the description of its session keyring (`keyring;uid;gid;perm;name`):
/// `keyctl(KEYCTL_DESCRIBE, KEY_SPEC_SESSION_KEYRING, buf, 200)`, then `write(1, buf, n)`.
pub fn describe_session_keyring() -> Vec<u8> {
    let p: Vec<Insn> = ops([
        0xd104_03ff, // sub sp, sp, #256: the buffer
        movz(8, SYS_KEYCTL),
        movz(0, 6),  // KEYCTL_DESCRIBE
        movn(1, 2),  // KEY_SPEC_SESSION_KEYRING (-3)
        0x9100_03e2, // mov x2, sp
        movz(3, 200),
        SVC,
        0xaa00_03e2, // mov x2, x0: the length (with its NUL)
        movz(8, SYS_WRITE),
        movz(0, 1),
        0x9100_03e1, // mov x1, sp
        SVC,
        movz(0, 0),
        movz(8, SYS_EXIT),
        SVC,
    ])
    .collect();
    program(&p, &[])
}

/// `exit(syscall nr(arg0, 0))` from a 32-bit ARM EABI program (SCMP_ARCH_ARM); exit
/// code 256 - errno on failure.
pub fn exit_with_compat_syscall(nr: u32, arg0: u32) -> Vec<u8> {
    // A32: movw/movt rd, #imm16; svc #0.
    let movw = |d: u32, v: u32| 0xe300_0000 | ((v >> 12 & 0xf) << 16) | (d << 12) | (v & 0xfff);
    let movt = |d: u32, v: u32| 0xe340_0000 | ((v >> 12 & 0xf) << 16) | (d << 12) | (v & 0xfff);
    let svc = 0xef00_0000u32;
    let code: Vec<u8> = [
        movw(7, nr & 0xffff),
        movt(7, nr >> 16),
        movw(0, arg0 & 0xffff),
        movt(0, arg0 >> 16),
        movw(1, 0),
        svc,
        movw(7, 1), // exit(r0)
        svc,
    ]
    .iter()
    .flat_map(|w| w.to_le_bytes())
    .collect();
    elf32_arm(&code)
}

/// A 32-bit ARM EABI static executable whose whole program is `code` (at BASE + 84).
fn elf32_arm(code: &[u8]) -> Vec<u8> {
    let base = BASE as u32;
    let total = (52 + 32 + code.len()) as u32;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&40u16.to_le_bytes()); // EM_ARM
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(base + 84).to_le_bytes()); // entry
    e.extend_from_slice(&52u32.to_le_bytes()); // phoff
    e.extend_from_slice(&0u32.to_le_bytes()); // shoff
    e.extend_from_slice(&0x0500_0000u32.to_le_bytes()); // EABI version 5: compat requires one
    for v in [52u16, 32, 1, 0, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    // PT_LOAD, offset 0, vaddr, paddr, filesz, memsz, R+X, align
    for v in [1u32, 0, base, base, total, total, 5, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(code);
    e
}
