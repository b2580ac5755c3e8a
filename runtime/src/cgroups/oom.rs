//! A descriptor that becomes readable when the kernel reports an OOM in a container's
//! memory cgroup, so `events` (and the shim's TaskOOM watcher) sleep until something
//! happens instead of polling: on cgroup v1 an eventfd registered for
//! `memory.oom_control` through `cgroup.event_control` (it also fires once when the
//! cgroup is removed); on v2 inotify on `memory.events` (its `oom_kill` counter rises;
//! IN_IGNORED when the cgroup is removed). The kill count itself is read from those
//! files.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use super::Cgroup;
use crate::error::{Context, Error, Result};

pub struct OomNotifier {
    fd: File,
    /// v1: memory.oom_control stays open while its eventfd is registered.
    _oom_control: Option<File>,
}

impl OomNotifier {
    /// None when the container has no memory cgroup to watch.
    pub fn new(cg: &Cgroup) -> Result<Option<OomNotifier>> {
        match (cg.v1_dir("memory"), cg.unified.as_deref()) {
            (Some(dir), _) => Self::v1(dir).map(Some),
            (None, Some(dir)) if cg.is_v2() => Self::v2(dir).map(Some),
            _ => Ok(None),
        }
    }

    /// For the memory cgroup directory `dir` of a v1 hierarchy.
    pub fn v1(dir: &std::path::Path) -> Result<OomNotifier> {
        let control = dir.join("memory.oom_control");
        let oom_control =
            File::open(&control).with_context(|| format!("open {:?}", control.display()))?;
        // SAFETY: eventfd takes an initial value and flags and returns a new descriptor.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(Error::os(Errno::last(), "eventfd for OOM notifications"));
        }
        // SAFETY: the kernel just returned this descriptor to us.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let line = format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd());
        let event_control = dir.join("cgroup.event_control");
        std::fs::write(&event_control, line)
            .with_context(|| format!("register for OOM events in {:?}", event_control.display()))?;
        Ok(OomNotifier {
            fd: File::from(efd),
            _oom_control: Some(oom_control),
        })
    }

    /// For the cgroup2 directory `dir`.
    pub fn v2(dir: &std::path::Path) -> Result<OomNotifier> {
        let events = dir.join("memory.events");
        // SAFETY: inotify_init1 takes flags and returns a new descriptor.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(Error::os(
                Errno::last(),
                "inotify_init1 for OOM notifications",
            ));
        }
        // SAFETY: the kernel just returned this descriptor to us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(events.as_os_str().as_bytes())
            .map_err(|_| Error::msg(format!("{:?}: NUL in path", events.display())))?;
        // SAFETY: inotify_add_watch reads the NUL-terminated path, which outlives the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            let step = format!("watch {:?}", events.display());
            return Err(Error::os(Errno::last(), step));
        }
        Ok(OomNotifier {
            fd: File::from(fd),
            _oom_control: None,
        })
    }

    /// Read what is pending, so the next poll waits for the next event; whether there
    /// was anything.
    pub fn drain(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        while matches!(self.fd.read(&mut buf), Ok(n) if n > 0) {
            any = true;
        }
        any
    }

    /// Blocks until there is something to drain (or a signal interrupts).
    pub fn wait(&self) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(Error::os(e, "wait for an OOM notification (poll)")),
        }
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
