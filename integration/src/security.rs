//! Helpers for the security tests: podman's default seccomp profile turned into the
//! OCI `linux.seccomp` object (what podman does before calling the runtime), and tiny
//! hand-made static ELF programs that make exactly the syscalls a test needs.

use serde_json::{json, Value};

/// Installed by Debian's `golang-github-containers-common`.
pub const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The x86_64 OCI profile for a container with capabilities `caps`: the arch map's
/// x86_64 entry, and only the rules whose includes/excludes select amd64 and `caps`.
pub fn podman_profile(caps: &[&str]) -> Value {
    let text = std::fs::read_to_string(PODMAN_PROFILE).unwrap_or_else(|e| {
        panic!("{PODMAN_PROFILE}: {e} (apt-get install golang-github-containers-common)")
    });
    let p: Value = serde_json::from_str(&text).expect("profile is JSON");
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut arches = vec!["SCMP_ARCH_X86_64".to_string()];
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            arches.extend(strs(&m["subArchitectures"]));
        }
    }
    let has = |c: &String| caps.contains(&c.as_str());
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array().expect("syscalls") {
        let inc_arch = strs(&s["includes"]["arches"]);
        let exc_arch = strs(&s["excludes"]["arches"]);
        let inc_caps = strs(&s["includes"]["caps"]);
        let exc_caps = strs(&s["excludes"]["caps"]);
        if (!inc_arch.is_empty() && !inc_arch.iter().any(|a| a == "amd64"))
            || exc_arch.iter().any(|a| a == "amd64")
            || !inc_caps.iter().all(has)
            || exc_caps.iter().any(has)
        {
            continue;
        }
        let mut rule = json!({ "names": s["names"], "action": s["action"] });
        if let Some(e) = s["errnoRet"].as_u64() {
            rule["errnoRet"] = json!(e);
        }
        if let Some(args) = s["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = json!(args
                .iter()
                .map(|a| json!({ "index": a["index"], "value": a["value"],
                                 "valueTwo": a["valueTwo"], "op": a["op"] }))
                .collect::<Vec<_>>());
        }
        syscalls.push(rule);
    }
    let mut out = json!({
        "defaultAction": p["defaultAction"],
        "architectures": arches,
        "syscalls": syscalls,
    });
    if let Some(e) = p["defaultErrnoRet"].as_u64() {
        out["defaultErrnoRet"] = json!(e);
    }
    out
}

/// A static x86_64 ELF executable whose whole program is `code` (loaded at 0x400078).
pub fn tiny_elf(code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let total = (64 + 56 + code.len()) as u64;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total, total, 0x1000u64] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(code);
    e
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

/// `exit(int 0x80 getpid())`: a 32-bit (SCMP_ARCH_X86) syscall from a 64-bit program.
pub fn exit_with_i386_getpid() -> Vec<u8> {
    tiny_elf(&[
        0xb8, 20, 0, 0, 0, // mov eax, __NR_getpid (i386)
        0xcd, 0x80, // int 0x80
        0x89, 0xc7, // mov edi, eax
        0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
        0x0f, 0x05,
    ])
}

/// `exit(int 0x80 syscall nr(arg0, 0))`: a 32-bit (SCMP_ARCH_X86) syscall from a 64-bit
/// program; exit code 256 - errno on failure.
pub fn exit_with_i386_syscall(nr: u32, arg0: u32) -> Vec<u8> {
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

/// Writes `bytes` as an executable file (mode `mode`, owned by root).
pub fn install_program(path: &std::path::Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
