//! TaskOOM: watching a container's memory cgroup for OOM kills, as containerd's runc
//! shim does. On cgroup v1 an eventfd registered for `memory.oom_control` through
//! `cgroup.event_control`; on v2 inotify on `memory.events`, whose `oom_kill` counter
//! rises. The watcher ends by itself when the cgroup goes away.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::events::Publisher;
use crate::proto::TaskOOM;

/// Start watching the memory cgroup of `pid` (the container's init) in a thread.
pub fn watch(container_id: &str, pid: u32, publisher: Arc<Publisher>) {
    let id = container_id.to_owned();
    let result = if crate::stats::unified() {
        crate::stats::v2_dir(pid).and_then(|dir| watch_v2(dir, id, publisher))
    } else {
        crate::stats::v1_dir(pid, "memory").and_then(|dir| watch_v1(dir, id, publisher))
    };
    if let Err(e) = result {
        crate::log::warn(&format!("oom watch for {container_id}: {e}"));
    }
}

fn watch_v1(dir: PathBuf, id: String, publisher: Arc<Publisher>) -> Result<(), String> {
    let oom_control = std::fs::File::open(dir.join("memory.oom_control"))
        .map_err(|e| format!("open {}: {e}", dir.join("memory.oom_control").display()))?;
    // SAFETY: eventfd takes an initial value and flags and returns a new descriptor.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    let line = format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), line)
        .map_err(|e| format!("register oom eventfd in {}: {e}", dir.display()))?;
    crate::ttrpc::spawn("oom", move || {
        let _keep = oom_control;
        let mut events = std::fs::File::from(efd);
        let mut count = [0u8; 8];
        // The eventfd fires on each OOM, and once more when the cgroup is removed.
        while events.read_exact(&mut count).is_ok() {
            if !dir.join("memory.oom_control").exists() {
                break;
            }
            publisher.publish(&TaskOOM {
                container_id: id.clone(),
            });
        }
    });
    Ok(())
}

fn oom_kills(events: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(events).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

fn watch_v2(dir: PathBuf, id: String, publisher: Arc<Publisher>) -> Result<(), String> {
    let events = dir.join("memory.events");
    let mut seen = oom_kills(&events).ok_or_else(|| format!("read {}", events.display()))?;
    // SAFETY: inotify_init1 takes flags and returns a new descriptor.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path =
        std::ffi::CString::new(events.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: inotify_add_watch reads a NUL-terminated path.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(format!(
            "watch {}: {}",
            events.display(),
            std::io::Error::last_os_error()
        ));
    }
    crate::ttrpc::spawn("oom", move || {
        let mut file = std::fs::File::from(fd);
        let mut buf = [0u8; 1024];
        // IN_IGNORED arrives (and the file is gone) when the cgroup is removed.
        while file.read(&mut buf).is_ok_and(|n| n > 0) {
            let Some(now) = oom_kills(&events) else { break };
            if now > seen {
                seen = now;
                publisher.publish(&TaskOOM {
                    container_id: id.clone(),
                });
            }
        }
    });
    Ok(())
}
