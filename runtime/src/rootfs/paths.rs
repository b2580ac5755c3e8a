//! Resolving paths inside the container's rootfs without ever leaving it.
//!
//! Every destination is resolved with openat2(RESOLVE_IN_ROOT) from a handle on the
//! rootfs, so `..` and symlinks planted in the image (`/proc -> /`, `etc -> /etc`) are
//! clamped to the rootfs, also if the image changes under us (CVE-2021-30465). The
//! caller then mounts onto `/proc/self/fd/N` of what was opened, not onto a path that
//! could be swapped in between. patina-imagetool resolves a layer's entries inside the
//! rootfs it unpacks with the same [`openat2_in_root`] and [`in_root_how`].

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Error, Result};

/// openat2, retried when the kernel answers EAGAIN: with RESOLVE_IN_ROOT it cannot vouch
/// for a `..` step while any rename or mount happens on the host at the same moment
/// (openat2(2): "the caller may choose to retry"). Other containers starting in
/// parallel make that common; a bounded number of tries keeps a hostile loop finite.
pub fn openat2_in_root(root: impl AsFd, path: &Path, how: OpenHow) -> nix::Result<OwnedFd> {
    const TRIES: usize = 128;
    let root = root.as_fd();
    let mut result = openat2(root, path, how);
    for _ in 1..TRIES {
        if !matches!(result, Err(Errno::EAGAIN)) {
            break;
        }
        result = openat2(root, path, how);
    }
    result
}

/// `flags` (plus O_CLOEXEC), resolved as if `root` were `/`, magic links refused.
pub fn in_root_how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Path relative to the rootfs (openat2 wants no leading `/`; "." for the root itself).
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Open `path` inside `root` as an O_PATH handle.
pub fn open_in_root(root: impl AsFd, path: &Path, extra: OFlag) -> nix::Result<OwnedFd> {
    openat2_in_root(root, &relative(path), in_root_how(OFlag::O_PATH | extra))
}

/// Whether `path` inside `root` is reached through a symlink (a missing path is not).
pub fn through_symlink(root: impl AsFd, path: &Path) -> bool {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    matches!(
        openat2_in_root(root, &relative(path), how),
        Err(Errno::ELOOP)
    )
}

/// Create every missing directory of `path` inside `root` and return a handle on the last.
/// A dangling symlink on the way (`evil -> /somewhere`) has its target made inside the
/// root, which is where the kernel will resolve it for the container.
pub fn mkdir_all_in_root(root: impl AsFd, path: &Path, mode: u32) -> Result<OwnedFd> {
    mkdir_all_depth(root.as_fd(), path, mode, 0)
}

const MAX_SYMLINK_DEPTH: u32 = 40;

fn mkdir_all_depth(
    root: std::os::fd::BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    depth: u32,
) -> Result<OwnedFd> {
    if depth > MAX_SYMLINK_DEPTH {
        return Err(Error::os(
            Errno::ELOOP,
            format!("resolve {:?}", path.display()),
        ));
    }
    let rel = relative(path);
    let mut parent = open_in_root(root, Path::new("."), OFlag::O_DIRECTORY)?;
    let mut prefix = PathBuf::new();
    for component in rel.components() {
        let parent_prefix = prefix.clone();
        prefix.push(component);
        parent = match open_in_root(root, &prefix, OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let name = component.as_os_str();
                match nix::fcntl::readlinkat(&parent, name) {
                    Ok(target) => {
                        let target = Path::new(&target);
                        let inside = if target.is_absolute() {
                            target.to_path_buf()
                        } else {
                            Path::new("/").join(&parent_prefix).join(target)
                        };
                        mkdir_all_depth(root, &inside, mode, depth + 1)?;
                    }
                    Err(_) => match mkdirat(&parent, name, Mode::from_bits_truncate(mode)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(Error::os(e, format!("mkdir {:?}", prefix.display())))
                        }
                    },
                }
                open_in_root(root, &prefix, OFlag::O_DIRECTORY)
                    .map_err(|e| Error::os(e, format!("open {:?}", prefix.display())))?
            }
            Err(e) => return Err(Error::os(e, format!("open {:?}", prefix.display()))),
        };
    }
    Ok(parent)
}

/// Create an empty regular file at `path` (and its parents) unless something is there.
pub fn touch_in_root(root: impl AsFd, path: &Path) -> Result<OwnedFd> {
    let root = root.as_fd();
    if let Some(parent) = path.parent() {
        mkdir_all_in_root(root, parent, 0o755)?;
    }
    if let Ok(fd) = open_in_root(root, path, OFlag::empty()) {
        return Ok(fd);
    }
    let created = openat2_in_root(
        root,
        &relative(path),
        in_root_how(OFlag::O_CREAT | OFlag::O_WRONLY).mode(Mode::from_bits_truncate(0o644)),
    );
    match created {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::os(e, format!("create {:?}", path.display()))),
    }
    open_in_root(root, path, OFlag::empty())
        .map_err(|e| Error::os(e, format!("open {:?}", path.display())))
}

/// Split into (parent dir handle, final name) for *at() calls that create an entry.
pub fn parent_and_name(root: impl AsFd, path: &Path) -> Result<(OwnedFd, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("{:?} has no file name", path.display())))?;
    let parent = mkdir_all_in_root(root, path.parent().unwrap_or(Path::new("/")), 0o755)?;
    Ok((parent, name))
}

/// The magic link through which syscalls that take paths reach an opened handle.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    let mut path = PathBuf::from("/proc/self/fd");
    path.push(OsStr::from_bytes(fd.as_raw_fd().to_string().as_bytes()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn relative_strips_root_and_dots() {
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }

    #[test]
    fn symlinks_out_of_the_root_stay_inside() {
        let base = std::env::temp_dir().join(format!("patina-paths-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("evil")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        let root_fd =
            nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();

        mkdir_all_in_root(&root_fd, Path::new("/evil/sub"), 0o755).unwrap();
        mkdir_all_in_root(&root_fd, Path::new("/up/x"), 0o755).unwrap();
        touch_in_root(&root_fd, Path::new("/evil/file")).unwrap();

        let outside_untouched = std::fs::read_dir(&outside).unwrap().count() == 0;
        let landed_inside = root
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir()
            && root.join("x").is_dir();
        std::fs::remove_dir_all(&base).unwrap();
        assert!(
            outside_untouched,
            "a directory was created outside the root"
        );
        assert!(landed_inside);
    }

    #[test]
    fn dotdot_resolution_survives_concurrent_renames() {
        // Every rename on the host makes the kernel refuse (EAGAIN) a RESOLVE_IN_ROOT
        // lookup that was crossing `..` at that moment: a busy host must not fail mounts.
        let base = std::env::temp_dir().join(format!("patina-eagain-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("../../a/b", root.join("a/b/up")).unwrap();
        let root_fd =
            nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let (stop, base) = (stop.clone(), base.clone());
            std::thread::spawn(move || {
                let (x, y) = (base.join("x"), base.join("y"));
                std::fs::write(&x, "").unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::rename(&x, &y).unwrap();
                    std::fs::rename(&y, &x).unwrap();
                }
            })
        };
        let path = Path::new("/a/b/up/up/../b/up/../../a/b/up");
        let failures = (0..20_000)
            .filter(|_| open_in_root(&root_fd, path, OFlag::O_DIRECTORY).is_err())
            .count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(failures, 0);
    }
}
