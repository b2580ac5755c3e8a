//! Bind sources of a container with its own user and mount namespaces, opened by the
//! runtime. Init resolves paths as root of the container's user namespace: a source
//! below a directory that user cannot search (a 0700 directory of the host's root) is
//! EACCES there, though the runtime, which may open it, asked for it. So, as runc does,
//! the runtime opens each bind source (O_PATH) inside init's new mount namespace, before
//! init goes on, and hands the descriptors over the init channel; init then binds from
//! /proc/self/fd/N. Opening it in init's namespace (not the runtime's) matters: the
//! descriptor's mount must belong to the namespace the bind is made in, and a bind made
//! there inside the user namespace keeps the kernel's locks on the host's mount flags
//! and submounts (a tree cloned from the host's namespace would not).
//!
//! Best effort: a source the runtime cannot open (or a runtime that cannot enter init's
//! mount namespace, an unprivileged one) is left to init, which resolves it as before
//! and reports the error with the entry named.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Spec;

use super::channel::{Channel, Message};
use crate::error::{Context, Result};
use crate::rootfs::options::MountPlan;

/// The bind entries init will mount from a path (not an idmapped tree), with their
/// absolute sources (relative ones are relative to the bundle).
pub fn wanted(spec: &Spec, bundle: &Path, idmapped: &[Option<OwnedFd>]) -> Vec<(usize, PathBuf)> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let options = m.options().as_deref().unwrap_or_default();
        let Ok(plan) = MountPlan::from_options(options) else {
            continue; // init refuses the entry by name
        };
        if !plan.is_bind(m) || idmapped.get(i).is_some_and(Option::is_some) {
            continue;
        }
        if let Some(source) = m.source() {
            out.push((i, bundle.join(source)));
        }
    }
    out
}

/// Open `sources` in the mount namespace of `init` and send each descriptor to init as
/// [`Message::BindSource`]. A forked child does it: setns(CLONE_NEWNS) also moves the
/// caller's root and working directory, which the runtime keeps.
pub fn send(init: Pid, sources: &[(usize, PathBuf)], channel: &Channel) -> Result<()> {
    if sources.is_empty() {
        return Ok(());
    }
    let mntns = open(
        format!("/proc/{init}/ns/mnt").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open the container's mount namespace")?;
    // SAFETY: the runtime is single-threaded here (init waits for Go), so the child
    // cannot inherit a lock held by another thread; it leaves with _exit.
    match unsafe { fork() }.context("fork to open the bind sources")? {
        ForkResult::Child => {
            let code = match setns(&mntns, CloneFlags::CLONE_NEWNS) {
                Ok(()) => open_and_send(sources, channel),
                Err(_) => 0, // an unprivileged runtime: init resolves the sources itself
            };
            // SAFETY: leave without the runtime's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).context("wait for the opener")?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(crate::error::Error::msg(format!(
                    "opening the bind sources in the container's mount namespace failed: {other:?}"
                ))),
            }
        }
    }
}

fn open_and_send(sources: &[(usize, PathBuf)], channel: &Channel) -> i32 {
    for (index, source) in sources {
        let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        let Ok(fd) = open(source.as_path(), flags, Mode::empty()) else {
            continue; // init meets the same error and names the entry
        };
        let message = Message::BindSource(*index as u32);
        if channel.send_fd(&message, &fd).is_err() {
            return 1;
        }
    }
    0
}

/// Init's side: the descriptors sent before Go, by `mounts[]` index.
pub fn place(sources: &mut Vec<Option<OwnedFd>>, index: u32, fd: OwnedFd) {
    let index = index as usize;
    if sources.len() <= index {
        sources.resize_with(index + 1, || None);
    }
    sources[index] = Some(fd);
}
