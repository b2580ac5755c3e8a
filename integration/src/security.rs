//! Helpers for the security tests: podman's default seccomp profile turned into the
//! OCI `linux.seccomp` object (what podman does before calling the runtime), and tiny
//! hand-made static ELF programs that make exactly the syscalls a test needs, for the
//! architecture the tests are built for (x86_64 or aarch64) and for its 32-bit
//! compat ABI (i386 through `int 0x80`, or an AArch32 program on arm64).

use serde_json::{json, Value};

/// Installed by Debian's `golang-github-containers-common`.
pub const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The native architecture's seccomp name and its sub-architectures in podman's arch
/// map (the compat ABIs), and podman's name for it in `includes.arches`.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: (&str, &[&str], &str) = (
    "SCMP_ARCH_X86_64",
    &["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "amd64",
);
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: (&str, &[&str], &str) = ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"], "arm64");

/// The native architecture with its compat ABIs: what podman lists for this machine.
pub fn native_arches() -> Vec<&'static str> {
    let (native, subs, _) = NATIVE_ARCH;
    std::iter::once(native)
        .chain(subs.iter().copied())
        .collect()
}

/// The OCI profile podman hands the runtime on this architecture for a container with
/// capabilities `caps`: the arch map's entry for it, and only the rules whose
/// includes/excludes select it and `caps`.
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
    let (native, _, podman_arch) = NATIVE_ARCH;
    let mut arches = vec![native.to_string()];
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == native {
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
        if (!inc_arch.is_empty() && !inc_arch.iter().any(|a| a == podman_arch))
            || exc_arch.iter().any(|a| a == podman_arch)
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

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

/// Where the tiny programs are loaded (one PT_LOAD of the whole file, at offset 0).
const BASE: u64 = 0x40_0000;

/// A 64-bit static ELF executable for `machine` whose whole program is `code`, which
/// starts right after the headers (at BASE + 120).
fn elf64(machine: u16, code: &[u8]) -> Vec<u8> {
    let total = (64 + 56 + code.len()) as u64;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&machine.to_le_bytes());
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

/// Whether this machine runs the 32-bit compat programs at all: the kernel may be
/// built without compat support (or booted with ia32_emulation=0), and many arm64
/// CPUs have no AArch32 mode. The tests that need one say so by name when not.
pub fn compat_runs() -> bool {
    let dir = std::env::temp_dir().join(format!("patina-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("getpid32");
    install_program(&path, &exit_with_compat_syscall(COMPAT_NR.getpid, 0), 0o755);
    let ran = std::process::Command::new(&path).status();
    std::fs::remove_dir_all(&dir).unwrap();
    match ran {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => false,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Numbers of the compat ABI's calls the tests make.
pub struct CompatNumbers {
    pub getpid: u32,
    pub add_key: u32,
    pub socket: u32,
    /// socketcall(2), where the ABI multiplexes socket calls through it.
    pub socketcall: Option<u32>,
}

/// Writes `bytes` as an executable file (mode `mode`, owned by root).
pub fn install_program(path: &std::path::Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
