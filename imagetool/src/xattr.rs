//! Thin wrappers over the xattr syscalls (nix does not cover them).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in name"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn fset(fd: &impl AsFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = cstring(name)?;
    // SAFETY: the fd is open for the duration of the call, `name` is a
    // NUL-terminated string and `value` a live slice of the given length.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(rc)
}

/// Sets an xattr on a path without following its last component.
pub fn lset(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let p = cstring(path.as_os_str().as_bytes())?;
    let name = cstring(name)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; `value`
    // is a live slice of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(rc)
}

/// Names of all xattrs on an open file.
pub fn flist(fd: &impl AsFd) -> io::Result<Vec<Vec<u8>>> {
    let raw = fd.as_fd().as_raw_fd();
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: buf is a writable buffer of buf.len() bytes.
        let n = unsafe { libc::flistxattr(raw, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec)
                .collect());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
        let len = buf.len() * 4;
        buf.resize(len, 0);
    }
}

pub fn fget(fd: &impl AsFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let raw = fd.as_fd().as_raw_fd();
    let name = cstring(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: name is NUL-terminated, buf is writable for buf.len() bytes.
        let n = unsafe { libc::fgetxattr(raw, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
        let len = buf.len() * 4;
        buf.resize(len, 0);
    }
}

/// Overlayfs keeps its own bookkeeping in trusted.overlay.*; a layer must
/// never be able to set those (a forged redirect or opaque flag would
/// change what other layers show).
pub fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
}

pub fn display(name: &[u8]) -> std::borrow::Cow<'_, str> {
    OsStr::from_bytes(name).to_string_lossy()
}
