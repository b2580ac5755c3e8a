//! Protection of the host's `patina` binary (CVE-2019-5736 class).
//!
//! Until init (or an exec'd process) execs the user program it *is* patina, and the
//! kernel resolves a program whose interpreter is `#!/proc/self/exe` to patina itself,
//! started as a container process. Either way a container can reach the binary through
//! `/proc/<pid>/exe`: open it read-only while patina runs (writing a running executable
//! is refused with ETXTBSY) and reopen it for writing through `/proc/self/fd/N` once no
//! process runs it any more.
//!
//! Two layers, both cheap enough to pay on every `create`, `run` and `exec`:
//! - [`run_from_read_only_image`]: before anything else, these commands re-exec patina
//!   from a private, detached, read-only bind mount of its own file (`open_tree` +
//!   `mount_setattr`, no mount namespace needed, nothing left behind: the mount lives as
//!   long as a process runs from it). Every `exe` link of the runtime, of init and of
//!   what the kernel starts for `#!/proc/self/exe` then leads to that mount, and a
//!   reopen for writing fails with EROFS, whoever holds the link (CAP_SYS_PTRACE
//!   included). Where the kernel or the caller's privileges do not allow the mount, a
//!   copy in a memfd sealed against writes serves instead (runc 1.1's approach: a copy
//!   of the binary per call). A binary already on a read-only mount needs neither.
//! - [`protect`]: the runtime and init are non-dumpable, so a container process without
//!   CAP_SYS_PTRACE cannot open init's `exe`, `mem`, `environ` or descriptors at all.
//!   The kernel makes the program dumpable again at its execve.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Seek;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, AtFlags, FcntlArg, SealFlag};

use crate::error::{Context, Error, Result};

/// Make this process (and its clones until they exec) non-dumpable.
pub fn protect() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).context("make the runtime non-dumpable (PR_SET_DUMPABLE)")
}

/// Set across the re-exec, to the process name (comm) before it: a kernel which somehow
/// still reports the new image as writable gives an error instead of a loop, and the name
/// is put back (kernels before 6.13 name a program exec'd from a descriptor after the
/// descriptor's number, so `ps` would show "4" instead of "patina"). Removed again first
/// thing after the re-exec, so nothing patina starts inherits it.
const REEXEC_MARKER: &str = "_PATINA_READ_ONLY_IMAGE";

/// Makes sure this process runs from an image of patina that cannot be opened for
/// writing; re-execs itself (same pid, arguments, environment and descriptors) from one
/// if not. Returns once that holds; does not return when it re-execs.
pub fn run_from_read_only_image() -> Result<()> {
    let name_before = std::env::var_os(REEXEC_MARKER);
    let reexeced = name_before.is_some();
    if let Some(name) = name_before {
        // Single-threaded here (first thing in main), so changing the environment is sound.
        std::env::remove_var(REEXEC_MARKER);
        restore_name(&name);
    }
    let exe =
        File::open("/proc/self/exe").context("protect the runtime binary: open /proc/self/exe")?;
    if image_is_unwritable(&exe) {
        return Ok(());
    }
    if reexeced {
        crate::bail!(
            "protect the runtime binary: /proc/self/exe is still writable after the re-exec"
        );
    }
    let image = read_only_view(&exe).or_else(|e| {
        crate::logging::debug(&format!("{e}; running from a sealed copy instead"));
        sealed_copy(&exe)
    });
    let image = image.context("protect the runtime binary")?;
    let name = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    std::env::set_var(REEXEC_MARKER, name.trim_end_matches('\n'));
    let err = reexec(&image);
    std::env::remove_var(REEXEC_MARKER);
    Err(err.wrap("protect the runtime binary: re-exec from its read-only image"))
}

/// The process name from before the re-exec (best effort: only `ps` sees it).
fn restore_name(name: &std::ffi::OsStr) {
    use std::os::unix::ffi::OsStrExt;
    if name.is_empty() {
        return;
    }
    if let Ok(name) = CString::new(name.as_bytes()) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}

/// True when `file` cannot be written through any reopening of it: it lies on a read-only
/// mount, or it is a memfd sealed against writes.
pub fn image_is_unwritable(file: &File) -> bool {
    // The read-only view (the usual case) answers with one fstatvfs; only a memfd needs
    // the second call.
    let read_only_mount = nix::sys::statvfs::fstatvfs(file)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    read_only_mount
        || fcntl(file, FcntlArg::F_GET_SEALS)
            .is_ok_and(|seals| SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE))
}

/// A detached, read-only bind mount of `file` alone (an `O_PATH` descriptor of it).
/// Needs CAP_SYS_ADMIN over the mount namespace and Linux 5.12 (mount_setattr).
pub fn read_only_view(file: &File) -> Result<OwnedFd> {
    use crate::mount_api::{clone_tree, set_attr, MountAttr};
    use crate::mount_api::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    let tree = clone_tree(file.as_fd(), std::path::Path::new(""), false)
        .context("open_tree(OPEN_TREE_CLONE) of /proc/self/exe")?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        ..MountAttr::default()
    };
    set_attr(tree.as_fd(), &attr, false)
        .context("mount_setattr(MOUNT_ATTR_RDONLY) on the clone of /proc/self/exe")?;
    Ok(tree)
}

const MFD_CLOEXEC: libc::c_uint = 0x1;
const MFD_ALLOW_SEALING: libc::c_uint = 0x2;
/// Explicitly executable (Linux 6.3); older kernels reject the flag, and need none.
const MFD_EXEC: libc::c_uint = 0x10;

/// A copy of `file` in an anonymous memory file that nobody can write any more.
pub fn sealed_copy(file: &File) -> Result<OwnedFd> {
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create reads the NUL-terminated name and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, c"patina".as_ptr(), flags) };
        if fd < 0 {
            Err(Errno::last())
        } else {
            // SAFETY: a descriptor the kernel just returned to us, owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
        }
    };
    let base = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    let memfd = match create(base | MFD_EXEC) {
        Err(Errno::EINVAL) => create(base),
        other => other,
    }
    .context("memfd_create")?;
    let mut copy = File::from(memfd);
    let mut source = file;
    source.rewind().context("rewind /proc/self/exe")?;
    let copied = std::io::copy(&mut source, &mut copy).context("copy the binary into the memfd")?;
    if copied == 0 {
        crate::bail!("copy the binary into the memfd: /proc/self/exe is empty");
    }
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals)).context("seal the memfd (F_ADD_SEALS)")?;
    Ok(copy.into())
}

/// execveat(image, "", AT_EMPTY_PATH) with this process's own arguments and environment.
/// Returns only on failure.
fn reexec(image: &impl AsFd) -> Error {
    let to_c = |s: OsString| CString::new(s.into_vec());
    let args: std::result::Result<Vec<CString>, _> = std::env::args_os().map(to_c).collect();
    let env: std::result::Result<Vec<CString>, _> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    let (Ok(args), Ok(env)) = (args, env) else {
        return Error::msg("an argument or environment variable contains a NUL byte");
    };
    match nix::unistd::execveat(image, c"", &args, &env, AtFlags::AT_EMPTY_PATH) {
        Err(errno) => Error::from(errno).wrap("execveat"),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    fn scratch_file(name: &str, content: &[u8]) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("patina-exe-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bin");
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    /// What an attacker holding the image would try: reopen it for writing.
    fn reopen_for_write(image: &impl AsRawFd) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", image.as_raw_fd()))
    }

    #[test]
    fn sealed_copy_has_the_content_and_refuses_writes() {
        let (path, file) = scratch_file("sealed", b"\x7fELF and the rest");
        let copy = sealed_copy(&file).unwrap();
        let content = std::fs::read(format!("/proc/self/fd/{}", copy.as_raw_fd())).unwrap();
        assert_eq!(content, b"\x7fELF and the rest");
        let copy = File::from(copy);
        assert!(image_is_unwritable(&copy));
        // A reopen succeeds on a memfd, but no write gets through the seal.
        let err = reopen_for_write(&copy)
            .and_then(|mut f| f.write_all(b"x"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        assert!(!image_is_unwritable(&file));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn read_only_view_cannot_be_reopened_for_writing() {
        // Needs root (CAP_SYS_ADMIN for open_tree), as the whole suite does.
        let (path, file) = scratch_file("view", b"binary");
        let view = read_only_view(&file).unwrap();
        let err = reopen_for_write(&view).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        let through_view = File::open(format!("/proc/self/fd/{}", view.as_raw_fd())).unwrap();
        assert!(image_is_unwritable(&through_view));
        // The file itself stays writable to the host, and the view leaves no mount behind.
        reopen_for_write(&file).unwrap().write_all(b"!").unwrap();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(path.parent().unwrap().to_str().unwrap()));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
