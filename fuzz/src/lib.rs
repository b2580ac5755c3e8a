//! What several fuzz targets share: a scratch filesystem of their own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// A size-limited tmpfs at /dev/shm, private to this process: the process gets a mount
/// namespace of its own and mounts it there, so nothing a target writes reaches the
/// host's /dev/shm, its size cannot grow past the limit whatever an input expands to,
/// and it vanishes with the process, crash or not. Needs root (as the test suite does).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let fail = |what: &str, e: nix::Error| -> ! {
            eprintln!("fuzz scratch tmpfs: {what}: {e} (the fuzz targets run as root)");
            std::process::abort()
        };
        unshare(CloneFlags::CLONE_NEWNS).unwrap_or_else(|e| fail("unshare(CLONE_NEWNS)", e));
        // Nothing mounted from here on propagates back to the host.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap_or_else(|e| fail("make / private", e));
        let dir = PathBuf::from("/dev/shm");
        mount(
            Some("patina-fuzz"),
            &dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=256m,mode=0700"),
        )
        .unwrap_or_else(|e| fail("mount tmpfs on /dev/shm", e));
        dir
    })
}
