//! gen-syscalls: writes `runtime/src/seccomp/syscalls.rs`, the syscall name -> number
//! tables of every ABI patina's seccomp filters know, from the Linux kernel's own
//! syscall tables (`arch/*/.../syscall*.tbl`, `scripts/syscall.tbl` for the
//! architectures on the generic table).
//!
//!     gen-syscalls --linux DIR --linux-label TEXT --s390-compat DIR --s390-compat-label TEXT
//!                  [--out FILE | --check FILE]
//!
//! `--linux` is an unpacked kernel source (Debian's `linux-source-X.Y` package unpacks
//! one); `--s390-compat` an older one that still has the 31-bit s390 table (Linux 6.13
//! and later have none). The labels name where each came from; the kernel version is
//! read from its Makefile and the SHA-256 of every file read goes into the header, so
//! the output says exactly what it was made from. `--check` compares instead of
//! writing (exit 1 on a difference). docs/security.md ("Syscall tables") says how to
//! regenerate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha256};

/// Which kernel source a numbering is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tree {
    Main,
    S390Compat,
}

/// How one ABI's numbers are read.
#[derive(Debug)]
enum Source {
    /// The rows of `abis` in one table; the uapi header numbers them from `offset`.
    Table {
        path: &'static str,
        abis: &'static [&'static str],
        offset: u32,
    },
    /// The generic table (scripts/syscall.tbl) with the ABI list of 64-bit
    /// architecture `arch`: scripts/Makefile.asm-headers' defaults plus what
    /// arch/ARCH/kernel/Makefile.syscalls adds (it may also name its own table).
    Generic { arch: &'static str },
    /// ARM's private calls (`__ARM_NR_*`, from 0x0f0000), which no table lists.
    ArmPrivate { path: &'static str },
}

struct Abi {
    name: &'static str,
    tree: Tree,
    sources: &'static [Source],
}

const X86_TBL_64: &str = "arch/x86/entry/syscalls/syscall_64.tbl";
const PPC_TBL: &str = "arch/powerpc/kernel/syscalls/syscall.tbl";
const S390_TBL: &str = "arch/s390/kernel/syscalls/syscall.tbl";

/// The ABIs, in the order of each row's numbers. The ABI lists and offsets are those
/// of each architecture's syscall Makefile (arch/*/.../Makefile, the `--abis` and
/// `--offset` of the unistd headers it generates).
const ABIS: &[Abi] = &[
    Abi {
        name: "x86_64",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: X86_TBL_64,
            abis: &["common", "64"],
            offset: 0,
        }],
    },
    Abi {
        name: "x86",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: "arch/x86/entry/syscalls/syscall_32.tbl",
            abis: &["i386"],
            offset: 0,
        }],
    },
    Abi {
        name: "x32",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: X86_TBL_64,
            abis: &["common", "x32"],
            offset: 0x4000_0000, // __X32_SYSCALL_BIT
        }],
    },
    Abi {
        name: "aarch64",
        tree: Tree::Main,
        sources: &[Source::Generic { arch: "arm64" }],
    },
    Abi {
        name: "arm",
        tree: Tree::Main,
        sources: &[
            Source::Table {
                path: "arch/arm/tools/syscall.tbl",
                abis: &["common", "eabi"],
                offset: 0,
            },
            Source::ArmPrivate {
                path: "arch/arm/include/uapi/asm/unistd.h",
            },
        ],
    },
    Abi {
        name: "ppc64",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: PPC_TBL,
            abis: &["common", "nospu", "64"],
            offset: 0,
        }],
    },
    Abi {
        name: "ppc",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: PPC_TBL,
            abis: &["common", "nospu", "32"],
            offset: 0,
        }],
    },
    Abi {
        name: "s390x",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: S390_TBL,
            abis: &["common", "64"],
            offset: 0,
        }],
    },
    Abi {
        name: "s390",
        tree: Tree::S390Compat,
        sources: &[Source::Table {
            path: S390_TBL,
            abis: &["common", "32"],
            offset: 0,
        }],
    },
    Abi {
        name: "riscv64",
        tree: Tree::Main,
        sources: &[Source::Generic { arch: "riscv" }],
    },
    Abi {
        name: "mips64",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: "arch/mips/kernel/syscalls/syscall_n64.tbl",
            abis: &["common", "n64"],
            offset: 5000,
        }],
    },
    Abi {
        name: "mips",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: "arch/mips/kernel/syscalls/syscall_o32.tbl",
            abis: &["o32"],
            offset: 4000,
        }],
    },
    Abi {
        name: "mips64n32",
        tree: Tree::Main,
        sources: &[Source::Table {
            path: "arch/mips/kernel/syscalls/syscall_n32.tbl",
            abis: &["n32"],
            offset: 6000,
        }],
    },
    Abi {
        name: "loong64",
        tree: Tree::Main,
        sources: &[Source::Generic { arch: "loongarch" }],
    },
];

const NONE: u32 = u32::MAX;

type Rows = BTreeMap<String, Vec<u32>>;

/// Reads files of the kernel trees and remembers each one's SHA-256.
trait Files {
    fn read(&mut self, tree: Tree, path: &str) -> Result<String, String>;
}

struct Disk {
    main: PathBuf,
    s390_compat: PathBuf,
    read: Vec<(Tree, String, String)>,
}

impl Files for Disk {
    fn read(&mut self, tree: Tree, path: &str) -> Result<String, String> {
        let root = match tree {
            Tree::Main => &self.main,
            Tree::S390Compat => &self.s390_compat,
        };
        let full = root.join(path);
        let text =
            std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        if !self.read.iter().any(|(t, p, _)| *t == tree && p == path) {
            let digest = Sha256::digest(text.as_bytes());
            let hex = digest.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
            self.read.push((tree, path.to_string(), hex));
        }
        Ok(text)
    }
}

/// The rows `(number, abi, name)` of a syscall table; comments and blank lines skipped.
fn table_rows<'a>(file: &str, text: &'a str) -> Result<Vec<(u32, &'a str, &'a str)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(nr) = words.next() else { continue };
        let (Some(abi), Some(name)) = (words.next(), words.next()) else {
            return Err(format!("{file}:{}: expected <nr> <abi> <name>", i + 1));
        };
        let nr = nr
            .parse()
            .map_err(|_| format!("{file}:{}: bad syscall number {nr:?}", i + 1))?;
        out.push((nr, abi, name));
    }
    Ok(out)
}

/// `VAR += a b` / `VAR := a,b` / `VAR = a` assignments in a kernel Makefile fragment:
/// the words of every assignment to `var`, in order (`,` separates like a space).
fn make_words(text: &str, var: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix(var) else {
            continue;
        };
        let rest = rest.trim_start();
        let value = ["+=", ":=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op));
        if let Some(value) = value {
            out.extend(
                value
                    .split([',', ' ', '\t'])
                    .filter(|w| !w.is_empty())
                    .map(str::to_string),
            );
        }
    }
    out
}

/// The table and ABI list a 64-bit generic-table architecture builds its unistd_64.h
/// from.
fn generic_table(files: &mut dyn Files, arch: &str) -> Result<(String, Vec<String>), String> {
    let defaults = files.read(Tree::Main, "scripts/Makefile.asm-headers")?;
    let mut abis = make_words(&defaults, "syscall_abis_64");
    let mut table = make_words(&defaults, "syscalltbl")
        .pop()
        .ok_or("scripts/Makefile.asm-headers: no syscalltbl")?;
    let own = files.read(Tree::Main, &format!("arch/{arch}/kernel/Makefile.syscalls"))?;
    abis.extend(make_words(&own, "syscall_abis_64"));
    if let Some(t) = make_words(&own, "syscalltbl").pop() {
        table = t;
    }
    let table = table.replace("$(srctree)/", "").replace('%', "64");
    if abis.is_empty() {
        return Err(format!("arch/{arch}: no syscall ABIs found"));
    }
    Ok((table, abis))
}

/// `#define __ARM_NR_name (__ARM_NR_BASE+N)` with `__ARM_NR_BASE` at
/// `(__NR_SYSCALL_BASE+0x0f0000)` (EABI: the syscall base is 0).
fn arm_private(file: &str, text: &str) -> Result<Vec<(u32, String)>, String> {
    let mut base = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let inner = value.trim_start_matches('(').trim_end_matches(')');
        if name == "__ARM_NR_BASE" {
            let hex = inner
                .strip_prefix("__NR_SYSCALL_BASE+0x")
                .ok_or(format!("{file}: unexpected __ARM_NR_BASE {value}"))?;
            base = Some(u32::from_str_radix(hex, 16).map_err(|e| format!("{file}: {e}"))?);
        } else if let Some(call) = name.strip_prefix("__ARM_NR_") {
            let n = inner
                .strip_prefix("__ARM_NR_BASE+")
                .ok_or(format!("{file}: unexpected {name} {value}"))?;
            let n: u32 = n.parse().map_err(|e| format!("{file}: {name}: {e}"))?;
            let base = base.ok_or(format!("{file}: {name} before __ARM_NR_BASE"))?;
            out.push((base + n, call.to_string()));
        }
    }
    if out.is_empty() {
        return Err(format!("{file}: no __ARM_NR_ calls"));
    }
    Ok(out)
}

fn set(rows: &mut Rows, column: usize, name: &str, nr: u32, abi: &str) -> Result<(), String> {
    let row = rows
        .entry(name.to_string())
        .or_insert_with(|| vec![NONE; ABIS.len()]);
    match row[column] {
        NONE => row[column] = nr,
        old if old == nr => {}
        old => return Err(format!("{abi}: {name} is both {old} and {nr}")),
    }
    Ok(())
}

/// Every ABI's numbers, by name.
fn extract(files: &mut dyn Files, min: usize) -> Result<Rows, String> {
    let mut rows = Rows::new();
    for (column, abi) in ABIS.iter().enumerate() {
        let mut count = 0;
        for source in abi.sources {
            let (path, abis, offset): (String, Vec<String>, u32) = match source {
                Source::Table { path, abis, offset } => (
                    path.to_string(),
                    abis.iter().map(|a| a.to_string()).collect(),
                    *offset,
                ),
                Source::Generic { arch } => {
                    let (path, abis) = generic_table(files, arch)?;
                    (path, abis, 0)
                }
                Source::ArmPrivate { path } => {
                    let text = files.read(abi.tree, path)?;
                    for (nr, name) in arm_private(path, &text)? {
                        set(&mut rows, column, &name, nr, abi.name)?;
                        count += 1;
                    }
                    continue;
                }
            };
            let text = files.read(abi.tree, &path)?;
            for (nr, row_abi, name) in table_rows(&path, &text)? {
                if abis.iter().any(|a| a == row_abi) {
                    set(&mut rows, column, name, nr + offset, abi.name)?;
                    count += 1;
                }
            }
        }
        if count < min {
            return Err(format!("{}: only {count} syscalls found", abi.name));
        }
    }
    Ok(rows)
}

/// FNV-1a, 64 bit (the runtime's lookup hashes the same way).
fn hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn number(nr: u32) -> String {
    match nr {
        NONE => "NONE".to_string(),
        n if n >= 0x1_0000 => format!("{n:#x}"),
        n => n.to_string(),
    }
}

/// The Rust source: `header` (comment lines), then the tables sorted by hash.
fn render(header: &str, rows: &Rows) -> Result<String, String> {
    let mut sorted: Vec<(u64, &String, &Vec<u32>)> = rows
        .iter()
        .map(|(n, v)| (hash(n.as_bytes()), n, v))
        .collect();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("hash collision: {} and {}", w[0].1, w[1].1));
    }
    let n = sorted.len();
    let k = ABIS.len();
    let mut out = String::from(header);
    let names: Vec<String> = ABIS.iter().map(|a| format!("{:?}", a.name)).collect();
    let _ = writeln!(
        out,
        "\n/// The ABIs, in the order of each row's numbers.\n\
         pub const ABIS: [&str; {k}] = [{}];\n\n\
         /// Not on that ABI.\n\
         pub const NONE: u32 = u32::MAX;\n\n\
         /// FNV-1a, 64 bit: the order of the rows.\n\
         pub const fn hash(name: &[u8]) -> u64 {{\n    \
             let mut h: u64 = 0xcbf2_9ce4_8422_2325;\n    \
             let mut i = 0;\n    \
             while i < name.len() {{\n        \
                 h ^= name[i] as u64;\n        \
                 h = h.wrapping_mul(0x0100_0000_01b3);\n        \
                 i += 1;\n    \
             }}\n    \
             h\n\
         }}\n\n\
         /// `hash` of each row's name, ascending: a lookup's binary search reads only these.\n\
         pub static HASHES: [u64; {n}] = [",
        names.join(", ")
    );
    for (h, _, _) in &sorted {
        let _ = writeln!(out, "    {h:#018x},");
    }
    let _ = writeln!(
        out,
        "];\n\n/// Each row's name and its numbers on the ABIs (`NONE`: not there).\n\
         pub static ROWS: [(&str, [u32; {k}]); {n}] = ["
    );
    for (_, name, nrs) in &sorted {
        let nrs: Vec<String> = nrs.iter().map(|n| number(*n)).collect();
        let _ = writeln!(out, "    ({name:?}, [{}]),", nrs.join(", "));
    }
    out.push_str("];\n");
    Ok(out)
}

fn kernel_version(files: &mut dyn Files, tree: Tree) -> Result<String, String> {
    let makefile = files.read(tree, "Makefile")?;
    let part = |var: &str| {
        make_words(&makefile, var)
            .first()
            .cloned()
            .unwrap_or_default()
    };
    let extra = make_words(&makefile, "EXTRAVERSION").join("");
    Ok(format!(
        "{}.{}.{}{extra}",
        part("VERSION"),
        part("PATCHLEVEL"),
        part("SUBLEVEL")
    ))
}

fn header(main: (&str, &str), s390: (&str, &str), read: &[(Tree, String, String)]) -> String {
    let mut h = String::from(
        "//! @generated by tools/gen-syscalls from the Linux kernel's syscall tables: do not\n\
         //! edit (docs/security.md, \"Syscall tables\", says how to regenerate).\n\
         //!\n\
         //! Syscall numbers by name on every ABI patina's seccomp filters know, as the\n\
         //! kernel's uapi headers number them (x32 with __X32_SYSCALL_BIT, MIPS from 4000,\n\
         //! 5000, 6000, ARM's private calls from 0x0f0000). Sorted by the hash of the name,\n\
         //! so a lookup is a binary search on integers and one string comparison.\n\
         //!\n",
    );
    let _ = writeln!(h, "//! Linux {} ({}).", main.0, main.1);
    let _ = writeln!(
        h,
        "//! s390 (31-bit): Linux {} ({}), the 31-bit table being gone from newer kernels.",
        s390.0, s390.1
    );
    h.push_str("//! SHA-256 of each file read:\n");
    for (tree, path, sha) in read {
        let version = match tree {
            Tree::Main => main.0,
            Tree::S390Compat => s390.0,
        };
        let _ = writeln!(h, "//!   {sha}  {version}/{path}");
    }
    h
}

struct Args {
    main: PathBuf,
    main_label: String,
    s390: PathBuf,
    s390_label: String,
    out: Option<PathBuf>,
    check: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag}: needs a value"))?;
        map.insert(flag, value);
    }
    let mut take = |k: &str| map.remove(k);
    let need = |v: Option<String>, k: &str| v.ok_or(format!("missing {k}"));
    let a = Args {
        main: need(take("--linux"), "--linux DIR")?.into(),
        main_label: need(take("--linux-label"), "--linux-label TEXT")?,
        s390: need(take("--s390-compat"), "--s390-compat DIR")?.into(),
        s390_label: need(take("--s390-compat-label"), "--s390-compat-label TEXT")?,
        out: take("--out").map(PathBuf::from),
        check: take("--check").map(PathBuf::from),
    };
    if let Some(k) = map.keys().next() {
        return Err(format!("unknown flag {k}"));
    }
    if a.out.is_some() == a.check.is_some() {
        return Err("give one of --out FILE, --check FILE".into());
    }
    Ok(a)
}

fn generate(a: &Args) -> Result<String, String> {
    let mut disk = Disk {
        main: a.main.clone(),
        s390_compat: a.s390.clone(),
        read: Vec::new(),
    };
    let main_version = kernel_version(&mut disk, Tree::Main)?;
    let s390_version = kernel_version(&mut disk, Tree::S390Compat)?;
    let rows = extract(&mut disk, 100)?;
    // The Makefiles were only read for the versions, which the header names.
    disk.read.retain(|(_, p, _)| p != "Makefile");
    let header = header(
        (&main_version, &a.main_label),
        (&s390_version, &a.s390_label),
        &disk.read,
    );
    render(&header, &rows)
}

fn run() -> Result<bool, String> {
    let a = args()?;
    let text = generate(&a)?;
    if let Some(out) = &a.out {
        std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
        return Ok(true);
    }
    let path = a.check.as_deref().unwrap_or(Path::new(""));
    let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if old == text {
        println!("{}: up to date", path.display());
        Ok(true)
    } else {
        eprintln!(
            "{}: differs from what the kernel tables give (regenerate with --out)",
            path.display()
        );
        Ok(false)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gen-syscalls: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
