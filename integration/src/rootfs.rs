//! A minimal busybox root filesystem (Debian's busybox-static).

use std::fs;
use std::path::Path;

/// Host path of the static busybox (`busybox-static` package).
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into `/bin` of every rootfs.
pub const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "cat",
    "echo",
    "id",
    "hostname",
    "ls",
    "readlink",
    "stat",
    "mount",
    "sleep",
    "true",
    "false",
    "kill",
    "env",
    "pwd",
    "mknod",
    "touch",
    "grep",
    "tty",
    "stty",
    "df",
    "mkdir",
    "rm",
    "test",
    "[",
    "printf",
    "head",
    "tail",
    "wc",
    "cut",
    "sed",
    "awk",
    "uname",
    "dnsdomainname",
    "ps",
    "umount",
    "ln",
    "chmod",
    "sort",
    "tr",
    "dd",
    "date",
    "nproc",
    "uptime",
    "whoami",
    "groups",
    "which",
    "xargs",
    "seq",
    "tee",
    "mktemp",
];

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
tester:x:1000:1000:tester:/home/tester:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub const GROUP: &str = "root:x:0:\n\
daemon:x:1:\n\
tty:x:5:\n\
users:x:100:\n\
tester:x:1000:\n\
extra1:x:2001:\n\
extra2:x:2002:\n\
nogroup:x:65534:\n";

/// Creates a busybox rootfs at `dir` (which must not exist yet).
pub fn build(dir: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "usr/bin",
        "usr/sbin",
        "sbin",
        "home/tester",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
    }
    let bb = dir.join("bin/busybox");
    // Same filesystem: hard link; otherwise (the usual case: /bin is not tmpfs) copy.
    if fs::hard_link(BUSYBOX, &bb).is_err() {
        fs::copy(BUSYBOX, &bb)
            .unwrap_or_else(|e| panic!("copy {BUSYBOX} (install Debian's busybox-static): {e}"));
    }
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a))
            .unwrap_or_else(|e| panic!("symlink {a}: {e}"));
    }
    fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    fs::write(dir.join("etc/group"), GROUP).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}
