//! /dev inside the container: the default devices every container gets (config-linux.md
//! "Default Devices"), the `linux.devices` the config asks for, and the usual links.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::paths::{fd_path, parent_and_name, touch_in_root};
use super::syscalls::Syscalls;
use crate::error::{Context, Error, Result};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices config-linux.md requires in every container.
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

impl DeviceNode {
    pub fn from_spec(index: usize, dev: &LinuxDevice) -> Result<DeviceNode> {
        let field = || format!("linux.devices[{index}] ({:?})", dev.path().display());
        let kind = match dev.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::new(
                    crate::Kind::InvalidConfig,
                    format!("{}: type \"a\" is only valid in cgroup rules", field()),
                ))
            }
        };
        if !dev.path().is_absolute() {
            return Err(Error::new(
                crate::Kind::InvalidConfig,
                format!("{}: path must be absolute", field()),
            ));
        }
        let number = |n: i64, what: &str| {
            u64::try_from(n).map_err(|_| {
                Error::new(
                    crate::Kind::InvalidConfig,
                    format!("{}: negative {what} number", field()),
                )
            })
        };
        Ok(DeviceNode {
            path: dev.path().clone(),
            kind,
            major: number(dev.major(), "major")?,
            minor: number(dev.minor(), "minor")?,
            mode: dev.file_mode().unwrap_or(0o666) & 0o7777,
            uid: dev.uid().unwrap_or(0),
            gid: dev.gid().unwrap_or(0),
        })
    }
}

/// Create a node with mknod, or, where mknod is not allowed (a user namespace), bind
/// the host's node over an empty file as runc does.
pub fn create(
    sys: &dyn Syscalls,
    root: BorrowedFd<'_>,
    dev: &DeviceNode,
    bind_from_host: bool,
) -> Result<()> {
    let step = || format!("create device {:?}", dev.path.display());
    if bind_from_host {
        // Over a regular file only: a symlink in the image's /dev would take the bind
        // elsewhere and stay the path processes (and the masks) open.
        remove_symlink(root, &dev.path).with_context(step)?;
        let target = touch_in_root(root, &dev.path).with_context(step)?;
        return sys
            .mount(
                Some(&dev.path),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND,
                None,
            )
            .with_context(|| format!("bind host device {:?}", dev.path.display()));
    }
    let (parent, name) = parent_and_name(root, &dev.path).with_context(step)?;
    match nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::os(e, step())),
    }
    let perm = Mode::from_bits_truncate(dev.mode);
    mknodat(&parent, name, dev.kind, perm, makedev(dev.major, dev.minor)).with_context(step)?;
    // mknod is subject to the umask; set the exact mode and owner asked for.
    nix::sys::stat::fchmodat(
        &parent,
        name,
        perm,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            chmod_via_fd(&parent, name, perm)
        } else {
            Err(e)
        }
    })
    .with_context(step)?;
    fchownat(
        &parent,
        name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(step)
}

/// Unlink `path` if it is a symlink (its parent resolved inside `root`).
fn remove_symlink(root: BorrowedFd<'_>, path: &Path) -> Result<()> {
    use nix::fcntl::AtFlags;
    let (parent, name) = parent_and_name(root, path)?;
    match nix::sys::stat::fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
            nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                .context("remove the image's symlink")
        }
        _ => Ok(()),
    }
}

fn chmod_via_fd(parent: &impl AsFd, name: &std::ffi::OsStr, mode: Mode) -> nix::Result<()> {
    let fd = nix::fcntl::openat(
        parent,
        name,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &fd_path(&fd),
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx and /dev/core, as every runtime lays them.
pub fn create_links(root: BorrowedFd<'_>) -> Result<()> {
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ];
    for (target, link) in links {
        let link = Path::new(link);
        let (parent, name) = parent_and_name(root, link)?;
        if link.ends_with("ptmx") {
            // A node left by the image would shadow the devpts instance.
            match nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(Error::os(e, "remove /dev/ptmx")),
            }
        }
        match symlinkat(target, &parent, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::os(
                    e,
                    format!("symlink {:?} -> {target:?}", link.display()),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_six_of_the_spec() {
        let names: Vec<_> = default_devices()
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(default_devices()
            .iter()
            .all(|d| d.mode == 0o666 && d.kind == SFlag::S_IFCHR));
    }

    #[test]
    fn spec_devices_keep_mode_and_owner() {
        let dev: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":8630,"uid":1,"gid":2}"#,
        )
        .unwrap();
        let node = DeviceNode::from_spec(0, &dev).unwrap();
        assert_eq!(
            (node.major, node.minor, node.mode, node.uid, node.gid),
            (10, 229, 0o666, 1, 2)
        );
        let bad: LinuxDevice =
            serde_json::from_str(r#"{"path":"dev/x","type":"c","major":1,"minor":3}"#).unwrap();
        assert!(DeviceNode::from_spec(3, &bad)
            .unwrap_err()
            .to_string()
            .contains("linux.devices[3]"));
    }
}
