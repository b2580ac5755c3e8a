//! The architectures a profile can name (`linux.seccomp.architectures`), as the kernel
//! tells them apart (`seccomp_data.arch`, an AUDIT_ARCH_* value) and as they number
//! their syscalls (a column of the generated tables), and the native one of this build.

use oci_spec::runtime::Arch;

pub use super::bpf::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use super::resolve::eq;
use super::syscalls::ABIS;

/// One `SCMP_ARCH_*`.
#[derive(Debug, PartialEq, Eq)]
pub struct ArchDef {
    pub arch: Arch,
    /// As `features` and the OCI profile spell it.
    pub name: &'static str,
    /// `seccomp_data.arch` of its tasks (x32 shares x86_64's: its numbers carry
    /// __X32_SYSCALL_BIT).
    pub audit: u32,
    /// Its numbering: the column of [`super::syscalls::ROWS`].
    pub abi: usize,
    /// Arguments compared on their low 32 bits only, as libseccomp does for its
    /// 32-bit ABIs (ARCH_SIZE_32).
    pub args32: bool,
}

pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const AUDIT_ARCH_S390: u32 = 0x0000_0016;
pub const AUDIT_ARCH_S390X: u32 = 0x8000_0016;

/// The column of ABI `name` in the generated tables (a build error if it has none).
const fn abi(name: &str) -> usize {
    let mut i = 0;
    while i < ABIS.len() {
        if eq(ABIS[i].as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("no such ABI in the syscall tables");
}

const fn def(arch: Arch, name: &'static str, audit: u32, abi_name: &str, args32: bool) -> ArchDef {
    ArchDef {
        arch,
        name,
        audit,
        abi: abi(abi_name),
        args32,
    }
}

/// Every architecture patina compiles filters for: those runc supports.
pub static ARCHES: [ArchDef; 18] = [
    def(
        Arch::ScmpArchX86_64,
        "SCMP_ARCH_X86_64",
        AUDIT_ARCH_X86_64,
        "x86_64",
        false,
    ),
    def(
        Arch::ScmpArchX86,
        "SCMP_ARCH_X86",
        AUDIT_ARCH_I386,
        "x86",
        true,
    ),
    def(
        Arch::ScmpArchX32,
        "SCMP_ARCH_X32",
        AUDIT_ARCH_X86_64,
        "x32",
        true,
    ),
    def(
        Arch::ScmpArchAarch64,
        "SCMP_ARCH_AARCH64",
        AUDIT_ARCH_AARCH64,
        "aarch64",
        false,
    ),
    def(Arch::ScmpArchArm, "SCMP_ARCH_ARM", 0x4000_0028, "arm", true),
    def(
        Arch::ScmpArchPpc64,
        "SCMP_ARCH_PPC64",
        0x8000_0015,
        "ppc64",
        false,
    ),
    def(
        Arch::ScmpArchPpc64le,
        "SCMP_ARCH_PPC64LE",
        0xc000_0015,
        "ppc64",
        false,
    ),
    def(Arch::ScmpArchPpc, "SCMP_ARCH_PPC", 0x0000_0014, "ppc", true),
    def(
        Arch::ScmpArchS390x,
        "SCMP_ARCH_S390X",
        AUDIT_ARCH_S390X,
        "s390x",
        false,
    ),
    def(
        Arch::ScmpArchS390,
        "SCMP_ARCH_S390",
        AUDIT_ARCH_S390,
        "s390",
        true,
    ),
    def(
        Arch::ScmpArchRiscv64,
        "SCMP_ARCH_RISCV64",
        0xc000_00f3,
        "riscv64",
        false,
    ),
    def(
        Arch::ScmpArchMips64,
        "SCMP_ARCH_MIPS64",
        0x8000_0008,
        "mips64",
        false,
    ),
    def(
        Arch::ScmpArchMipsel64,
        "SCMP_ARCH_MIPSEL64",
        0xc000_0008,
        "mips64",
        false,
    ),
    def(
        Arch::ScmpArchMips64n32,
        "SCMP_ARCH_MIPS64N32",
        0xa000_0008,
        "mips64n32",
        true,
    ),
    def(
        Arch::ScmpArchMipsel64n32,
        "SCMP_ARCH_MIPSEL64N32",
        0xe000_0008,
        "mips64n32",
        true,
    ),
    def(
        Arch::ScmpArchMips,
        "SCMP_ARCH_MIPS",
        0x0000_0008,
        "mips",
        true,
    ),
    def(
        Arch::ScmpArchMipsel,
        "SCMP_ARCH_MIPSEL",
        0x4000_0008,
        "mips",
        true,
    ),
    def(
        Arch::ScmpArchLoongarch64,
        "SCMP_ARCH_LOONGARCH64",
        0xc000_0102,
        "loong64",
        false,
    ),
];

/// The architecture this runtime is built for: a profile's rules always apply to it
/// (libseccomp's native arch), listed or not.
#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
pub const NATIVE: Arch = Arch::ScmpArchX86_64;
#[cfg(all(target_arch = "x86_64", target_pointer_width = "32"))]
pub const NATIVE: Arch = Arch::ScmpArchX32;
#[cfg(target_arch = "x86")]
pub const NATIVE: Arch = Arch::ScmpArchX86;
#[cfg(target_arch = "aarch64")]
pub const NATIVE: Arch = Arch::ScmpArchAarch64;
#[cfg(target_arch = "arm")]
pub const NATIVE: Arch = Arch::ScmpArchArm;
#[cfg(all(target_arch = "powerpc64", target_endian = "big"))]
pub const NATIVE: Arch = Arch::ScmpArchPpc64;
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
pub const NATIVE: Arch = Arch::ScmpArchPpc64le;
#[cfg(target_arch = "powerpc")]
pub const NATIVE: Arch = Arch::ScmpArchPpc;
#[cfg(target_arch = "s390x")]
pub const NATIVE: Arch = Arch::ScmpArchS390x;
#[cfg(target_arch = "riscv64")]
pub const NATIVE: Arch = Arch::ScmpArchRiscv64;
#[cfg(target_arch = "loongarch64")]
pub const NATIVE: Arch = Arch::ScmpArchLoongarch64;
#[cfg(all(
    target_arch = "mips64",
    target_endian = "big",
    target_pointer_width = "64"
))]
pub const NATIVE: Arch = Arch::ScmpArchMips64;
#[cfg(all(
    target_arch = "mips64",
    target_endian = "little",
    target_pointer_width = "64"
))]
pub const NATIVE: Arch = Arch::ScmpArchMipsel64;
#[cfg(all(
    target_arch = "mips64",
    target_endian = "big",
    target_pointer_width = "32"
))]
pub const NATIVE: Arch = Arch::ScmpArchMips64n32;
#[cfg(all(
    target_arch = "mips64",
    target_endian = "little",
    target_pointer_width = "32"
))]
pub const NATIVE: Arch = Arch::ScmpArchMipsel64n32;
#[cfg(all(target_arch = "mips", target_endian = "big"))]
pub const NATIVE: Arch = Arch::ScmpArchMips;
#[cfg(all(target_arch = "mips", target_endian = "little"))]
pub const NATIVE: Arch = Arch::ScmpArchMipsel;

/// The definition of `arch` (`SCMP_ARCH_NATIVE`: this build's), if patina has one.
pub fn lookup(arch: Arch) -> Option<&'static ArchDef> {
    let arch = match arch {
        Arch::ScmpArchNative => NATIVE,
        other => other,
    };
    ARCHES.iter().find(|d| d.arch == arch)
}
