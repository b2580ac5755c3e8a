use super::*;

const COMMITTED: &str = include_str!("../../../runtime/src/seccomp/syscalls.rs");

/// The committed file read back: its header and its rows.
fn parse_committed() -> (String, Rows) {
    let split = COMMITTED
        .find("\n/// The ABIs")
        .expect("the generated ABIS line");
    let header = COMMITTED[..split].to_string();
    let rows_start = COMMITTED.find("pub static ROWS").expect("ROWS");
    let mut rows = Rows::new();
    for line in COMMITTED[rows_start..].lines().skip(1) {
        let Some(row) = line.trim().strip_prefix("(\"") else {
            break;
        };
        let (name, rest) = row.split_once("\", [").expect("row shape");
        let nrs = rest
            .trim_end_matches("]),")
            .split(", ")
            .map(|n| match n {
                "NONE" => NONE,
                n => match n.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => n.parse().unwrap(),
                },
            })
            .collect::<Vec<_>>();
        assert_eq!(nrs.len(), ABIS.len(), "{name}");
        rows.insert(name.to_string(), nrs);
    }
    (header, rows)
}

/// The committed tables are exactly what the generator renders from the numbers they
/// hold: hashes right and sorted, every ABI column, nothing edited by hand.
#[test]
fn committed_tables_are_what_the_generator_renders() {
    let (header, rows) = parse_committed();
    assert!(rows.len() > 500, "{} rows", rows.len());
    assert_eq!(render(&header, &rows).unwrap(), COMMITTED);
    // The header names both kernels and a digest for every table read.
    assert!(header.contains("//! Linux 7.2.13 (Debian linux-source-7.2 7.2.13-1)."));
    assert!(header.contains("//! s390 (31-bit): Linux 6.12.95"));
    for path in [
        "7.2.13/arch/x86/entry/syscalls/syscall_64.tbl",
        "7.2.13/scripts/syscall.tbl",
        "7.2.13/arch/arm64/tools/syscall_64.tbl",
        "7.2.13/arch/mips/kernel/syscalls/syscall_o32.tbl",
        "6.12.95/arch/s390/kernel/syscalls/syscall.tbl",
    ] {
        assert!(header.contains(&format!("  {path}\n")), "{path}");
    }
}

/// Facts checked against the uapi headers by hand: the columns are the ABIs they say.
#[test]
fn committed_tables_hold_known_numbers() {
    let (_, rows) = parse_committed();
    let col = |abi: &str| ABIS.iter().position(|a| a.name == abi).unwrap();
    let nr = |name: &str, abi: &str| rows[name][col(abi)];
    for (name, abi, want) in [
        ("read", "x86_64", 0),
        ("read", "x86", 3),
        ("read", "x32", 0x4000_0000),
        ("ioctl", "x32", 0x4000_0202),
        ("fchmodat2", "x86_64", 452),
        ("mseal", "x86", 462),
        ("openat", "aarch64", 56),
        ("renameat", "aarch64", 38),
        ("renameat", "riscv64", NONE),
        ("riscv_hwprobe", "riscv64", 258),
        ("getrlimit", "loong64", NONE),
        ("memfd_secret", "loong64", 447),
        ("set_tls", "arm", 0x0f_0005),
        ("socketcall", "arm", NONE),
        ("socket", "arm", 281),
        ("socketcall", "ppc64", 102),
        ("spu_run", "ppc64", 278),
        ("read", "mips", 4003),
        ("read", "mips64", 5000),
        ("read", "mips64n32", 6000),
        ("socketcall", "s390x", 102),
        ("stat64", "s390", 195),
        ("stat64", "s390x", NONE),
        ("listns", "s390x", 470),
        ("listns", "s390", NONE),
    ] {
        assert_eq!(nr(name, abi), want, "{name} on {abi}");
    }
}

/// In-memory kernel trees for the extraction tests.
struct Fake(BTreeMap<(bool, String), String>);

impl Files for Fake {
    fn read(&mut self, tree: Tree, path: &str) -> Result<String, String> {
        self.0
            .get(&(tree == Tree::Main, path.to_string()))
            .cloned()
            .ok_or(format!("{path}: not found"))
    }
}

fn fake_trees() -> Fake {
    let mut m = BTreeMap::new();
    let mut put = |main: bool, path: &str, text: &str| {
        m.insert((main, path.to_string()), text.to_string());
    };
    put(
        true,
        X86_TBL_64,
        "# comment\n0\tcommon\tread\tsys_read\n\n13\t64\trt_sigaction\tsys_rt_sigaction\n\
         512\tx32\trt_sigaction\tcompat_sys_rt_sigaction\n",
    );
    put(
        true,
        "arch/x86/entry/syscalls/syscall_32.tbl",
        "3\ti386\tread\tsys_read\n102\ti386\tsocketcall\tsys_socketcall\n",
    );
    put(
        true,
        "scripts/Makefile.asm-headers",
        "syscall_abis_32  += common,32\nsyscall_abis_64  += common,64\n\
         syscalltbl := $(srctree)/scripts/syscall.tbl\n",
    );
    put(
        true,
        "arch/arm64/kernel/Makefile.syscalls",
        "syscall_abis_64 += renameat rlimit\nsyscalltbl = arch/arm64/tools/syscall_%.tbl\n",
    );
    put(
        true,
        "arch/arm64/tools/syscall_64.tbl",
        "38\trenameat\trenameat\tsys_renameat\n63\tcommon\tread\tsys_read\n\
         79\tstat64\tfstatat64\tsys_fstatat64\n258\triscv\triscv_hwprobe\tx\n",
    );
    put(
        true,
        "arch/riscv/kernel/Makefile.syscalls",
        "syscall_abis_32 += riscv\nsyscall_abis_64 += riscv rlimit\n",
    );
    put(
        true,
        "scripts/syscall.tbl",
        "38\trenameat\trenameat\tsys_renameat\n63\tcommon\tread\tsys_read\n\
         258\triscv\triscv_hwprobe\tsys_riscv_hwprobe\n",
    );
    put(true, "arch/loongarch/kernel/Makefile.syscalls", "");
    put(
        true,
        "arch/arm/tools/syscall.tbl",
        "3\tcommon\tread\tsys_read\n102\toabi\tsocketcall\tsys_socketcall\n",
    );
    put(
        true,
        "arch/arm/include/uapi/asm/unistd.h",
        "#define __ARM_NR_BASE\t\t\t(__NR_SYSCALL_BASE+0x0f0000)\n\
         #define __ARM_NR_set_tls\t\t(__ARM_NR_BASE+5)\n",
    );
    put(
        true,
        PPC_TBL,
        "3\tcommon\tread\tsys_read\n192\t32\tmmap2\tsys_mmap2\n278\tnospu\tspu_run\tx\n\
         300\tspu\tonly_spu\tx\n",
    );
    put(true, S390_TBL, "3\tcommon\tread\tsys_read\n");
    put(
        false,
        S390_TBL,
        "3  common\tread\tsys_read\tsys_read\n195  32\tstat64\t-\tx\n",
    );
    put(
        true,
        "arch/mips/kernel/syscalls/syscall_n64.tbl",
        "0\tn64\tread\tsys_read\n",
    );
    put(
        true,
        "arch/mips/kernel/syscalls/syscall_o32.tbl",
        "3\to32\tread\tsys_read\n",
    );
    put(
        true,
        "arch/mips/kernel/syscalls/syscall_n32.tbl",
        "0\tn32\tread\tsys_read\n",
    );
    Fake(m)
}

#[test]
fn extracts_each_abi_as_its_makefile_says() {
    let rows = extract(&mut fake_trees(), 1).unwrap();
    let col = |abi: &str| ABIS.iter().position(|a| a.name == abi).unwrap();
    let nr = |name: &str, abi: &str| rows.get(name).map_or(NONE, |r| r[col(abi)]);
    let want = [
        ("read", "x86_64", 0),
        ("rt_sigaction", "x86_64", 13),
        ("rt_sigaction", "x32", 0x4000_0200),
        ("read", "x32", 0x4000_0000),
        ("socketcall", "x86", 102),
        ("socketcall", "arm", NONE),
        ("set_tls", "arm", 0x0f_0005),
        ("renameat", "aarch64", 38),
        ("fstatat64", "aarch64", NONE),
        ("riscv_hwprobe", "aarch64", NONE),
        ("riscv_hwprobe", "riscv64", 258),
        ("renameat", "riscv64", NONE),
        ("read", "loong64", 63),
        ("mmap2", "ppc", 192),
        ("mmap2", "ppc64", NONE),
        ("spu_run", "ppc64", 278),
        ("only_spu", "ppc64", NONE),
        ("stat64", "s390", 195),
        ("stat64", "s390x", NONE),
        ("read", "mips64", 5000),
        ("read", "mips", 4003),
        ("read", "mips64n32", 6000),
    ];
    for (name, abi, n) in want {
        assert_eq!(nr(name, abi), n, "{name} on {abi}");
    }
}

#[test]
fn bad_tables_are_refused_with_the_file_and_line() {
    let mut t = fake_trees();
    t.0.insert(
        (true, PPC_TBL.to_string()),
        "3\tcommon\tread\n4x\tcommon\twrite\tsys_write\n".into(),
    );
    let e = extract(&mut t, 1).unwrap_err();
    assert!(e.contains("syscall.tbl:2: bad syscall number"), "{e}");
    let mut t = fake_trees();
    t.0.insert(
        (true, PPC_TBL.to_string()),
        "3\tcommon\tread\n4\tcommon\tread\n".into(),
    );
    let e = extract(&mut t, 1).unwrap_err();
    assert!(e.contains("read is both 3 and 4"), "{e}");
    let mut t = fake_trees();
    t.0.remove(&(false, S390_TBL.to_string()));
    assert!(extract(&mut t, 1).unwrap_err().contains("not found"));
    // A source that lost its table's contents is caught by the minimum count.
    assert!(extract(&mut fake_trees(), 2)
        .unwrap_err()
        .contains("only 1 syscalls"));
}

/// With the kernel sources at hand (PATINA_LINUX_SRC: the unpacked
/// linux-source-7.2 7.2.13-1; PATINA_LINUX_S390_SRC: linux-source-6.12
/// 6.12.95-1~bpo12+1), the committed tables are regenerated from them and compared.
#[test]
fn kernel_sources_give_the_committed_tables() {
    let (Some(main), Some(s390)) = (
        std::env::var_os("PATINA_LINUX_SRC"),
        std::env::var_os("PATINA_LINUX_S390_SRC"),
    ) else {
        println!(
            "kernel_sources_give_the_committed_tables: NOT RUN here (set PATINA_LINUX_SRC and \
             PATINA_LINUX_S390_SRC to the kernel sources the header names); the render \
             round trip and the extraction tests above still ran"
        );
        return;
    };
    let mut disk = Disk {
        main: main.into(),
        s390_compat: s390.into(),
        read: Vec::new(),
    };
    let rows = extract(&mut disk, 100).unwrap();
    let (header, committed) = parse_committed();
    assert_eq!(rows, committed);
    for (tree, path, sha) in &disk.read {
        let version = kernel_version(&mut disk.clone_paths(), *tree).unwrap();
        let line = format!("//!   {sha}  {version}/{path}\n");
        assert!(header.contains(&line), "{line}");
    }
}

impl Disk {
    fn clone_paths(&self) -> Disk {
        Disk {
            main: self.main.clone(),
            s390_compat: self.s390_compat.clone(),
            read: Vec::new(),
        }
    }
}
