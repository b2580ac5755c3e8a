//! The system calls that change the mount table, behind a trait: rootfs setup decides
//! which mounts to make, in which order, with which flags, and falls back when the
//! kernel refuses; those decisions are unit-tested against a recording fake, without
//! root. Path resolution stays real (openat2 inside the rootfs, which needs no
//! privilege), so a test runs the same code on a scratch directory.

use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::statvfs::FsFlags;

use super::options::RecursiveAttr;

pub trait Syscalls {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;

    /// The mount flags statvfs(3) reports for the mount `target` is on.
    fn statvfs_flags(&self, target: &Path) -> nix::Result<FsFlags>;

    /// move_mount(2) of a detached tree onto what `target` (an O_PATH handle) is.
    fn attach_tree(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()>;

    /// mount_setattr(2) on the mount `target` (an O_PATH handle on its root) and every
    /// mount below it.
    fn set_recursive_attr(&self, target: BorrowedFd<'_>, attr: RecursiveAttr) -> nix::Result<()>;

    /// Whether `mount` (a handle on a mount's root) was mounted right onto `target`.
    fn mounted_on(&self, mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<bool>;
}

/// The real kernel.
pub struct Host;

impl Syscalls for Host {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn statvfs_flags(&self, target: &Path) -> nix::Result<FsFlags> {
        nix::sys::statvfs::statvfs(target).map(|s| s.flags())
    }

    fn attach_tree(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
        crate::mount_api::attach(tree, target)
    }

    fn set_recursive_attr(&self, target: BorrowedFd<'_>, attr: RecursiveAttr) -> nix::Result<()> {
        let attr = crate::mount_api::MountAttr {
            attr_set: attr.set,
            attr_clr: attr.clear,
            ..Default::default()
        };
        crate::mount_api::set_attr(target, &attr, true)
    }

    fn mounted_on(&self, mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<bool> {
        super::identity::mounted_on(mount, target)
    }
}

/// A recording fake for unit tests: every call, with `/proc/self/fd/N` targets resolved to
/// what they name at the time of the call; answers from a script of errors.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::cell::RefCell;
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Call {
        pub source: Option<PathBuf>,
        /// The target as the kernel would see it (a `/proc/self/fd/N` resolved).
        pub target: PathBuf,
        pub fstype: Option<String>,
        pub flags: MsFlags,
        pub data: Option<String>,
    }

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<Call>>,
        /// Errors for the mount calls, in order (then success).
        pub errors: RefCell<Vec<Option<nix::errno::Errno>>>,
        pub statvfs: FsFlags,
        /// Answers "no" when asked whether a new mount sits on its target (as after a
        /// swapped destination); no real mount is made, so the default answer is "yes".
        pub swapped: bool,
    }

    fn resolve(target: &Path) -> PathBuf {
        if target.starts_with("/proc/self/fd") {
            std::fs::read_link(target).unwrap_or_else(|_| target.to_path_buf())
        } else {
            target.to_path_buf()
        }
    }

    impl Syscalls for Recorder {
        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> nix::Result<()> {
            self.calls.borrow_mut().push(Call {
                source: source.map(resolve),
                target: resolve(target),
                fstype: fstype.map(str::to_owned),
                flags,
                data: data.map(str::to_owned),
            });
            let mut errors = self.errors.borrow_mut();
            match errors.is_empty() {
                true => Ok(()),
                false => errors.remove(0).map_or(Ok(()), Err),
            }
        }

        fn statvfs_flags(&self, _target: &Path) -> nix::Result<FsFlags> {
            Ok(self.statvfs)
        }

        fn mounted_on(&self, _mount: BorrowedFd<'_>, _target: BorrowedFd<'_>) -> nix::Result<bool> {
            Ok(!self.swapped)
        }

        /// Recorded as a mount with source `<setattr>` and `set=..,clear=..` as data.
        fn set_recursive_attr(
            &self,
            target: BorrowedFd<'_>,
            attr: RecursiveAttr,
        ) -> nix::Result<()> {
            let target = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
            let data = format!("set={:#x},clear={:#x}", attr.set, attr.clear);
            self.mount(
                Some(Path::new("<setattr>")),
                &target,
                None,
                MsFlags::empty(),
                Some(&data),
            )
        }

        /// Recorded as a mount with source `<tree>` and no flags.
        fn attach_tree(&self, _tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
            let target = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
            self.mount(
                Some(Path::new("<tree>")),
                &target,
                None,
                MsFlags::empty(),
                None,
            )
        }
    }
}
