//! Path handling that can never leave the rootfs.
//!
//! Entry names are first cleaned lexically (absolute names become relative,
//! `..` cannot climb above the root). Every directory is then opened with
//! openat2(RESOLVE_IN_ROOT), so a symlink planted by an earlier entry or
//! layer (`etc -> /etc`, `x -> ../../..`) is resolved as if the rootfs were
//! `/`, exactly as it will be inside the container. The final component is
//! always operated on with *at() calls that do not follow it. The openat2 call itself
//! (flags, EAGAIN retries) is the runtime's, which resolves mount destinations the same
//! way: `patina::rootfs::paths`.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use patina::rootfs::paths::{in_root_how, openat2_in_root};

/// Lexically normalises an archive path: drops `/`, `.`, and resolves `..`
/// against what precedes it, never above the root. `../../etc/passwd` and
/// `/etc/passwd` both become `etc/passwd`.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Opens `rel` (already cleaned) as a directory, resolving symlinks inside `root`.
pub fn open_dir(root: &impl AsFd, rel: &Path) -> nix::Result<OwnedFd> {
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2_in_root(root, rel, in_root_how(OFlag::O_PATH | OFlag::O_DIRECTORY))
}

/// Opens any file `rel` for reading, resolving symlinks (including the last
/// component) inside `root`.
pub fn open_file(root: &impl AsFd, rel: &Path) -> nix::Result<OwnedFd> {
    openat2_in_root(root, rel, in_root_how(OFlag::O_RDONLY))
}

/// Splits a cleaned path into its parent directory (opened inside the root)
/// and final name. With `create`, missing parents are made (mode 0755), as
/// tar does for entries whose directories the archive omits.
pub fn parent_of(root: &impl AsFd, rel: &Path, create: bool) -> nix::Result<(OwnedFd, OsString)> {
    let name = rel.file_name().ok_or(Errno::EINVAL)?.to_os_string();
    let parent = rel.parent().unwrap_or(Path::new(""));
    match open_dir(root, parent) {
        Err(Errno::ENOENT) if create => {
            mkdir_all(root, parent)?;
            Ok((open_dir(root, parent)?, name))
        }
        other => Ok((other?, name)),
    }
}

/// `mkdir -p` inside the root, one component at a time so each step is
/// resolved by openat2 (a symlink met on the way stays inside the root).
pub fn mkdir_all(root: &impl AsFd, rel: &Path) -> nix::Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    let mut cur = PathBuf::new();
    for comp in rel.components() {
        let next = cur.join(comp);
        match open_dir(root, &next) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let parent = open_dir(root, &cur)?;
                match mkdirat(
                    parent.as_fd(),
                    comp.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) => made.push(next.clone()),
                    // A dangling symlink sits here: the target does not exist
                    // inside the root and we refuse to guess.
                    Err(Errno::EEXIST) => return Err(Errno::ENOENT),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        cur = next;
    }
    Ok(made)
}

/// Kind of whatever is at `dir/name`, without following a symlink.
pub fn kind_at(dir: &impl AsFd, name: &OsStr) -> nix::Result<Option<SFlag>> {
    match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `rm -rf dir/name`, never following symlinks. Missing is fine.
pub fn remove_all(dir: &impl AsFd, name: &OsStr) -> nix::Result<()> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(SFlag::S_IFDIR) => {
            clear_dir(dir, name, &|_| false)?;
            unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir)
        }
        Some(_) => unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir),
    }
}

/// Removes every child of `dir/name` for which `keep` is false.
pub fn clear_dir(dir: &impl AsFd, name: &OsStr, keep: &dyn Fn(&OsStr) -> bool) -> nix::Result<()> {
    let sub = nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for child in list_dir(&sub)? {
        if !keep(&child) {
            remove_all(&sub, &child)?;
        }
    }
    Ok(())
}

/// Names in a directory opened for reading, without `.` and `..`.
pub fn list_dir(dir: &OwnedFd) -> nix::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let dup = nix::unistd::dup(dir)?;
    let mut d = nix::dir::Dir::from_fd(dup)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(&name).to_os_string());
        }
    }
    Ok(names)
}

/// A path through which path-based syscalls (lsetxattr) reach `dir/name`
/// without re-resolving anything: the fd's magic link pins the directory.
pub fn proc_path(dir: &impl AsFd, name: &OsStr) -> PathBuf {
    patina::rootfs::paths::fd_path(&dir.as_fd().as_raw_fd()).join(name)
}

/// Opens a directory of the host by its path (the bundle, the cache), not
/// inside a rootfs.
pub fn open_host_dir(path: &Path) -> anyhow::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| anyhow::anyhow!("open {}: {}", path.display(), std::io::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_paths_inside() {
        assert_eq!(
            clean(Path::new("../../etc/passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(
            clean(Path::new("/etc/./passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean(Path::new("a/b/../../../c")), PathBuf::from("c"));
        assert_eq!(clean(Path::new("./")), PathBuf::new());
    }
}
