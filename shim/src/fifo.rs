//! An output FIFO that containerd reads a process's stdout or stderr from, written by the
//! process's output relay only once containerd's reader has it open.
//!
//! Why the wait: containerd opens its end as `O_RDONLY|O_NONBLOCK` through
//! github.com/containerd/fifo, which returns at once and does the blocking open(2) later
//! in a goroutine, with nothing ordering it against the Exec and Start it sends us. If
//! the writer opens (never blocking, as the read-write open this replaces did), writes
//! the output of a process that exits at once, and closes before that goroutine ran,
//! the last open end is gone: the kernel frees the FIFO's buffer with the output in it,
//! and containerd's open(2) then waits for a writer that never comes. ExecSync waits for
//! the end of both streams after the exit, so it hung (and the output was lost). A
//! blocking write-only open returns only once a reader has the FIFO open, so the output
//! goes to containerd's reader and the close is its EOF (the runc shim's rule too).
//!
//! The FIFO is held by an `O_PATH` descriptor from the request on, so a bad path fails
//! the request, and a relay still waiting when its process is deleted (a client that
//! never reads) can be released even if the FIFO was unlinked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub struct OutputFifo {
    /// `O_PATH`: pins the FIFO without being a reader or a writer of it
    handle: OwnedFd,
    fifo: bool,
    released: AtomicBool,
    /// our own reader after [`release`](Self::release): the relay's open can no longer wait
    reader: Mutex<Option<File>>,
}

/// Where the relay writes, with the reader of our own that keeps writes from failing
/// with EPIPE while containerd is away (a restart): they wait in the FIFO instead.
pub struct Connected {
    pub writer: File,
    _reader: Option<File>,
}

impl OutputFifo {
    /// `path` as containerd sent it (a FIFO, `fifo://` prefix allowed, or another file).
    pub fn open(path: &str) -> io::Result<OutputFifo> {
        let path = path.strip_prefix("fifo://").unwrap_or(path);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {path}: {e}")))?;
        let fifo = file.metadata()?.file_type().is_fifo();
        Ok(OutputFifo {
            handle: file.into(),
            fifo,
            released: AtomicBool::new(false),
            reader: Mutex::new(None),
        })
    }

    fn reopen(&self, flags: libc::c_int, write: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(flags | libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", self.handle.as_raw_fd()))
    }

    /// Block until a reader has the FIFO open, then open it for writing; None when
    /// [`release`](Self::release)d first, or when it cannot be opened.
    pub fn connect(&self) -> Option<Connected> {
        let writer = match self.reopen(0, true) {
            Ok(w) => w,
            Err(e) => {
                crate::log::warn(&format!("output FIFO: open for writing: {e}"));
                return None;
            }
        };
        if self.released.load(Ordering::SeqCst) {
            return None;
        }
        let reader = match self.fifo {
            true => self.reopen(libc::O_NONBLOCK, false).ok(),
            false => None,
        };
        Some(Connected {
            writer,
            _reader: reader,
        })
    }

    /// The process is gone: a relay waiting in [`connect`](Self::connect) for a reader
    /// that never came returns (now or when it gets there) without writing.
    pub fn release(&self) {
        if !self.fifo {
            return;
        }
        self.released.store(true, Ordering::SeqCst);
        // Held, not opened and closed: a relay that has not reached its open(2) yet must
        // find a reader there too.
        let reader = self.reopen(libc::O_NONBLOCK, false).ok();
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = reader;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::time::Duration;

    fn fifo(name: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("patina-shim-fifo-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        path
    }

    #[test]
    fn output_waits_for_a_reader_that_opens_late() {
        let path = fifo("late");
        let out = Arc::new(OutputFifo::open(path.to_str().unwrap()).unwrap());
        let o = out.clone();
        let writer = std::thread::spawn(move || {
            let mut c = o.connect().expect("connected");
            c.writer.write_all(b"late\n").unwrap();
        });
        // The writer's side is done only after a reader came: it wrote nothing yet.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!writer.is_finished());
        let mut text = String::new();
        File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        writer.join().unwrap();
        assert_eq!(text, "late\n");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn release_frees_a_relay_whose_reader_never_comes() {
        let path = fifo("never");
        let out = Arc::new(OutputFifo::open(path.to_str().unwrap()).unwrap());
        // Unlinked while the relay waits: the O_PATH handle still reaches it.
        std::fs::remove_file(&path).unwrap();
        let o = out.clone();
        let waiting = std::thread::spawn(move || o.connect().is_none());
        std::thread::sleep(Duration::from_millis(50));
        out.release();
        assert!(waiting.join().unwrap(), "released: no writer");
        // Released before the relay got to its open: it does not wait either.
        assert!(out.connect().is_none());
    }
}
