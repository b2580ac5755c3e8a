//! The tiny test programs for x86_64; the compat ABI is i386, reached through `int 0x80`
//! from a 64-bit program.

use super::{elf64, CompatNumbers};

/// i386's numbers.
pub const COMPAT_NR: CompatNumbers = CompatNumbers {
    getpid: 20,
    add_key: 286,
    socket: 359,
    socketcall: Some(102),
};

/// x32's calls are x86_64's arch with this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn tiny_elf(code: &[u8]) -> Vec<u8> {
    elf64(0x3e, code) // EM_X86_64
}

/// `exit(geteuid())`: the exit code is the effective uid (mod 256).
pub fn exit_with_euid() -> Vec<u8> {
    tiny_elf(&[
        0xb8, 107, 0, 0, 0, // mov eax, SYS_geteuid
        0x0f, 0x05, // syscall
        0x89, 0xc7, // mov edi, eax
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x0f, 0x05,
    ])
}

/// `exit(syscall(nr))` with no arguments: exit code 256 - errno on failure (218 for ENOSYS).
pub fn exit_with_syscall(nr: u32) -> Vec<u8> {
    let n = nr.to_le_bytes();
    tiny_elf(&[
        0xb8, n[0], n[1], n[2], n[3], // mov eax, nr
        0x0f, 0x05, // syscall
        0x89, 0xc7, // mov edi, eax
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x0f, 0x05,
    ])
}

/// `exit(int 0x80 syscall nr(arg0, 0))`: a 32-bit (SCMP_ARCH_X86) syscall from a 64-bit
/// program; exit code 256 - errno on failure.
pub fn exit_with_compat_syscall(nr: u32, arg0: u32) -> Vec<u8> {
    let (n, a) = (nr.to_le_bytes(), arg0.to_le_bytes());
    tiny_elf(&[
        0xb8, n[0], n[1], n[2], n[3], // mov eax, nr
        0xbb, a[0], a[1], a[2], a[3], // mov ebx, arg0
        0x31, 0xc9, // xor ecx, ecx
        0xcd, 0x80, // int 0x80
        0x89, 0xc7, // mov edi, eax
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x0f, 0x05,
    ])
}

/// `exit(syscall(nr, AT_FDCWD, path, arg2, 0))`: the *at calls (fchmodat2...); exit code
/// 0 on success, 256 - errno on failure.
pub fn exit_with_at_syscall(nr: u32, path: &str, arg2: u32) -> Vec<u8> {
    let (n, a) = (nr.to_le_bytes(), arg2.to_le_bytes());
    let mut code = vec![
        0xb8, n[0], n[1], n[2], n[3], // mov eax, nr
        0xbf, 0x9c, 0xff, 0xff, 0xff, // mov edi, AT_FDCWD (-100)
        0x48, 0x8d, 0x35, 19, 0, 0, 0, // lea rsi, [rip+19]: the path after this code
        0xba, a[0], a[1], a[2], a[3], // mov edx, arg2
        0x45, 0x31, 0xd2, // xor r10d, r10d
        0x0f, 0x05, // syscall
        0x89, 0xc7, // mov edi, eax
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x0f, 0x05, // syscall
    ];
    code.extend_from_slice(path.as_bytes());
    code.push(0);
    tiny_elf(&code)
}

/// `write(1, text); exit(0)`: a static program that prints `text` (at most 255 bytes).
pub fn print_text(text: &str) -> Vec<u8> {
    let len = u8::try_from(text.len()).expect("at most 255 bytes");
    let mut code = vec![
        0xb8, 1, 0, 0, 0, // mov eax, SYS_write
        0xbf, 1, 0, 0, 0, // mov edi, 1
        0x48, 0x8d, 0x35, 16, 0, 0, 0, // lea rsi, [rip+16]: the text after this code
        0xba, len, 0, 0, 0, // mov edx, len
        0x0f, 0x05, // syscall
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
    ];
    code.extend_from_slice(text.as_bytes());
    tiny_elf(&code)
}

/// Prints the description of its session keyring (`keyring;uid;gid;perm;name`):
/// `keyctl(KEYCTL_DESCRIBE, KEY_SPEC_SESSION_KEYRING, buf, 200)`, then `write(1, buf, n)`.
pub fn describe_session_keyring() -> Vec<u8> {
    tiny_elf(&[
        0xb8, 250, 0, 0, 0, // mov eax, SYS_keyctl
        0xbf, 6, 0, 0, 0, // mov edi, KEYCTL_DESCRIBE
        0xbe, 0xfd, 0xff, 0xff, 0xff, // mov esi, KEY_SPEC_SESSION_KEYRING (-3)
        0x48, 0x81, 0xec, 0, 1, 0, 0, // sub rsp, 256: the buffer
        0x48, 0x89, 0xe2, // mov rdx, rsp
        0x41, 0xba, 200, 0, 0, 0, // mov r10d, 200
        0x0f, 0x05, // syscall
        0x48, 0x89, 0xc2, // mov rdx, rax: the length (with its NUL)
        0xb8, 1, 0, 0, 0, // mov eax, SYS_write
        0xbf, 1, 0, 0, 0, // mov edi, 1
        0x48, 0x89, 0xe6, // mov rsi, rsp
        0x0f, 0x05, // syscall
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
    ])
}
