//! The re-exec from a read-only view of the binary (CVE-2019-5736, see
//! `patina::exe_protect`), done at the ELF entry point, before the C library starts.
//!
//! Every start of a static glibc program runs its CPU feature and cache detection: about
//! 85 `cpuid` instructions, each a VM exit on a virtual machine (7.5 us apiece on the
//! project's VM, 0.6 ms per start), then Rust's runtime set-up and the argument parsing.
//! Re-executing from `main` paid all of that twice per `create`, `run` and `exec`. Here
//! the first image does only the few system calls the re-exec needs and leaves the rest
//! to the second. Nothing of the protection changes: the second image is the same
//! read-only bind mount of the same file, and `exe_protect::run_from_read_only_image`
//! still checks in `main` that the image is unwritable (and re-execs from there, or from
//! a sealed copy, whenever this fast path could not: no privilege to mount, an odd
//! environment).
//!
//! This code runs before the C library is initialised: no thread-local storage (so no
//! errno), no allocation, no libc call at all, no panics. Only raw system calls, and
//! volatile accesses where a loop could otherwise be turned into a call to `memcpy` or
//! `bcmp`, which are not resolved yet in a static binary at this point.

use core::arch::{asm, global_asm};
use core::mem::MaybeUninit;
use core::ptr::{read_volatile, write_volatile};

// The entry point (the linker's `--entry`, set by build.rs): the kernel leaves argc at
// the stack pointer and %rdx for the C library; both are given back untouched to glibc's
// `_start` when there is no re-exec.
global_asm!(
    ".globl patina_start",
    ".type patina_start,@function",
    "patina_start:",
    "mov r12, rsp",
    "mov r13, rdx",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {early}",
    "mov rsp, r12",
    "mov rdx, r13",
    "jmp _start",
    early = sym early_reexec,
);

/// Same name as `exe_protect::REEXEC_MARKER`: `main` takes the process name back from it
/// and removes it.
const MARKER: &[u8] = b"_PATINA_READ_ONLY_IMAGE=";
const SYS_READ: usize = 0;
const SYS_CLOSE: usize = 3;
const SYS_FCNTL: usize = 72;
const SYS_FSTATFS: usize = 138;
const SYS_OPENAT: usize = 257;
const SYS_EXECVEAT: usize = 322;
const SYS_OPEN_TREE: usize = 428;
const SYS_MOUNT_SETATTR: usize = 442;
const AT_FDCWD: usize = -100isize as usize;
const AT_EMPTY_PATH: usize = 0x1000;
const O_CLOEXEC: usize = 0o2000000;
const OPEN_TREE_CLONE: usize = 1;
const F_GET_SEALS: usize = 1034;
const F_SEAL_WRITE: usize = 8;
const ST_RDONLY: u64 = 1;
const MOUNT_ATTR_RDONLY_NOSUID_NODEV: u64 = 1 | 2 | 4;
/// Environments larger than this take the slow path in `main`.
const MAX_ENV: usize = 1000;

/// Re-execs from the read-only view when the command is one that starts container
/// processes and the image is writable; returns in every other case.
///
/// # Safety
/// Only called from `patina_start` with the kernel's initial stack.
unsafe extern "C" fn early_reexec(sp: *const usize) {
    // SAFETY: the kernel's initial stack: argc, argv[argc] + NULL, envp + NULL.
    let argc = unsafe { *sp };
    let argv = unsafe { sp.add(1) } as *const *const u8;
    let envp = unsafe { argv.add(argc + 1) };
    // SAFETY: argv and envp are the kernel's NULL-terminated arrays of C strings.
    if !unsafe { starts_containers(argv, argc) } || unsafe { env_count(envp) }.is_none() {
        return;
    }
    // SAFETY: the path is NUL-terminated; the result is checked.
    let exe = unsafe {
        syscall4(
            SYS_OPENAT,
            AT_FDCWD,
            c"/proc/self/exe".as_ptr() as usize,
            O_CLOEXEC,
            0,
        )
    };
    if exe < 0 {
        return;
    }
    let exe = exe as usize;
    // SAFETY: a descriptor we own; `reexec_from` returns only when it did not exec.
    unsafe {
        if !unwritable(exe) {
            reexec_from(exe, argv, envp);
        }
        syscall1(SYS_CLOSE, exe);
    }
}

/// True when an argument is `create`, `run` or `exec`. A container or program named so
/// under another command only costs that command the re-exec (main would not do it).
unsafe fn starts_containers(argv: *const *const u8, argc: usize) -> bool {
    for i in 1..argc {
        // SAFETY: i < argc, and each argument is a NUL-terminated string.
        let arg = unsafe { *argv.add(i) };
        if unsafe {
            c_str_eq(arg, b"create\0") || c_str_eq(arg, b"run\0") || c_str_eq(arg, b"exec\0")
        } {
            return true;
        }
    }
    false
}

/// The number of environment entries, or None when there are too many or the marker of
/// a re-exec is already there (then `main` decides).
unsafe fn env_count(envp: *const *const u8) -> Option<usize> {
    let mut n = 0;
    loop {
        // SAFETY: envp is NULL-terminated; n stays within it.
        let entry = unsafe { read_volatile(envp.add(n)) };
        if entry.is_null() {
            return Some(n);
        }
        if n == MAX_ENV || unsafe { has_prefix(entry, MARKER) } {
            return None;
        }
        n += 1;
    }
}

/// True when the image cannot be written: on a read-only mount, or a sealed memfd.
unsafe fn unwritable(fd: usize) -> bool {
    let mut statfs = MaybeUninit::<[u64; 16]>::uninit();
    // SAFETY: the buffer is larger than struct statfs (120 bytes on x86_64).
    if unsafe { syscall2(SYS_FSTATFS, fd, statfs.as_mut_ptr() as usize) } == 0 {
        // SAFETY: filled by the kernel; f_flags is the eleventh field.
        let flags = unsafe { read_volatile((statfs.as_ptr() as *const u64).add(10)) };
        if flags & ST_RDONLY != 0 {
            return true;
        }
    }
    // SAFETY: plain fcntl on our descriptor.
    let seals = unsafe { syscall2(SYS_FCNTL, fd, F_GET_SEALS) };
    seals >= 0 && seals as usize & F_SEAL_WRITE != 0
}

/// execveat of a detached, read-only bind mount of `exe`, with the environment plus the
/// marker holding the current process name. Returns when any step fails.
unsafe fn reexec_from(exe: usize, argv: *const *const u8, envp: *const *const u8) {
    let empty = c"".as_ptr() as usize;
    // SAFETY: raw system calls on our descriptors; results checked.
    let tree = unsafe {
        syscall3(
            SYS_OPEN_TREE,
            exe,
            empty,
            OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH,
        )
    };
    if tree < 0 {
        return;
    }
    let tree = tree as usize;
    // struct mount_attr: attr_set, attr_clr, propagation, userns_fd (written field by
    // field: an unoptimised build copies array literals and iterators with memcpy).
    let mut attr = MaybeUninit::<[u64; 4]>::uninit();
    let attr_ptr = attr.as_mut_ptr() as *mut u64;
    // SAFETY: four u64 fields of the buffer.
    unsafe {
        write_volatile(attr_ptr, MOUNT_ATTR_RDONLY_NOSUID_NODEV);
        write_volatile(attr_ptr.add(1), 0);
        write_volatile(attr_ptr.add(2), 0);
        write_volatile(attr_ptr.add(3), 0);
    }
    // SAFETY: attr is a valid mount_attr of the size given.
    let set = unsafe {
        syscall5(
            SYS_MOUNT_SETATTR,
            tree,
            empty,
            AT_EMPTY_PATH,
            attr_ptr as usize,
            32,
        )
    };
    if set == 0 {
        let mut marker = MaybeUninit::<[u8; 64]>::uninit();
        let mut env = MaybeUninit::<[*const u8; MAX_ENV + 2]>::uninit();
        // SAFETY: both buffers are large enough (see `marker_entry` and `env_count`).
        unsafe {
            let marker = marker.as_mut_ptr() as *mut u8;
            marker_entry(marker);
            let env = env.as_mut_ptr() as *mut *const u8;
            let n = env_count(envp).unwrap_or(0);
            for i in 0..n {
                write_volatile(env.add(i), read_volatile(envp.add(i)));
            }
            write_volatile(env.add(n), marker as *const u8);
            write_volatile(env.add(n + 1), core::ptr::null());
            syscall5(
                SYS_EXECVEAT,
                tree,
                empty,
                argv as usize,
                env as usize,
                AT_EMPTY_PATH,
            );
        }
    }
    // SAFETY: our descriptor.
    unsafe { syscall1(SYS_CLOSE, tree) };
}

/// Writes `_PATINA_READ_ONLY_IMAGE=<comm>\0` (at most 24 + 16 bytes) into `out`.
unsafe fn marker_entry(out: *mut u8) {
    let mut at = 0;
    for &b in MARKER {
        // SAFETY: within the 64-byte buffer.
        unsafe { write_volatile(out.add(at), b) };
        at += 1;
    }
    let mut comm = MaybeUninit::<[u8; 16]>::uninit();
    // SAFETY: raw system calls into our 16-byte buffer; results checked.
    let fd = unsafe {
        syscall4(
            SYS_OPENAT,
            AT_FDCWD,
            c"/proc/self/comm".as_ptr() as usize,
            O_CLOEXEC,
            0,
        )
    };
    if fd >= 0 {
        let got = unsafe { syscall3(SYS_READ, fd as usize, comm.as_mut_ptr() as usize, 16) };
        unsafe { syscall1(SYS_CLOSE, fd as usize) };
        for i in 0..got.max(0) as usize {
            // SAFETY: i < got <= 16, filled by read.
            let b = unsafe { read_volatile((comm.as_ptr() as *const u8).add(i)) };
            if b == b'\n' || b == 0 {
                break;
            }
            unsafe { write_volatile(out.add(at), b) };
            at += 1;
        }
    }
    unsafe { write_volatile(out.add(at), 0) };
}

unsafe fn c_str_eq(s: *const u8, word: &[u8]) -> bool {
    for (i, &w) in word.iter().enumerate() {
        // SAFETY: stops at the first difference, so never past s's NUL.
        if unsafe { read_volatile(s.add(i)) } != w {
            return false;
        }
    }
    true
}

unsafe fn has_prefix(s: *const u8, prefix: &[u8]) -> bool {
    for (i, &p) in prefix.iter().enumerate() {
        // SAFETY: stops at the first difference, so never past s's NUL.
        if unsafe { read_volatile(s.add(i)) } != p {
            return false;
        }
    }
    true
}

unsafe fn syscall1(n: usize, a: usize) -> isize {
    unsafe { syscall5(n, a, 0, 0, 0, 0) }
}
unsafe fn syscall2(n: usize, a: usize, b: usize) -> isize {
    unsafe { syscall5(n, a, b, 0, 0, 0) }
}
unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    unsafe { syscall5(n, a, b, c, 0, 0) }
}
unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    unsafe { syscall5(n, a, b, c, d, 0) }
}

/// A raw system call; returns the kernel's result (negative errno on failure).
unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for system call `n`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
