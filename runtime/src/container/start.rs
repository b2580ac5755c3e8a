//! `start`: runtime.md "start" — release the init blocked on the exec fifo.

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::state::{self, Record, StateDir, Status};

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::new(root, id)?;
    let _lock = dir.lock()?;
    let record = dir.load()?;
    start_locked(&dir, &record)
}

pub fn start_locked(dir: &StateDir, record: &Record) -> Result<()> {
    match dir.status(record) {
        Status::Created => {}
        other => bail!(
            WrongState,
            "cannot start container {:?}: it is {other}, not created",
            dir.id
        ),
    }
    release_init(dir, record)?;
    state::remove_if_exists(&dir.fifo_path())?;
    if let Some(h) = record.hooks.as_ref().and_then(|h| h.poststart().as_ref()) {
        let running =
            serde_json::to_vec(&record.oci_state(Status::Running)).expect("state serialises");
        hooks::run_all_warn("poststart", h, &running);
    }
    Ok(())
}

/// Open the fifo for reading (init's blocked open for writing then completes), read its
/// byte, then wait for EOF: init's end is close-on-exec, so EOF means the user program
/// has been exec'd (or init died). Non-blocking, so a dead init is noticed, not waited on.
fn release_init(dir: &StateDir, record: &Record) -> Result<()> {
    let fifo = nix::fcntl::open(
        &dir.fifo_path(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open exec fifo")?;
    let mut got_byte = false;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u16)).context("wait on exec fifo")?;
        if ready > 0 {
            let mut byte = [0u8; 1];
            match nix::unistd::read(&fifo, &mut byte) {
                Ok(1) => {
                    got_byte = true;
                    continue;
                }
                Ok(_) if got_byte => return Ok(()),
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(Error::os(e, "read exec fifo")),
            }
        }
        if !state::process_is(record.pid, record.pid_start) {
            if got_byte {
                return Ok(());
            }
            bail!(
                WrongState,
                "container {:?} init exited before it could be started",
                dir.id
            );
        }
        if ready > 0 {
            // EOF before the byte (a writer that went away): avoid spinning on POLLHUP.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
