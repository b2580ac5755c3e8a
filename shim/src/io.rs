//! A process's stdio: what the runtime command gets as its stdin/stdout/stderr (the
//! container process inherits them), and the relays between those and what containerd
//! asked for.
//!
//! * FIFOs (a plain path, the default): pipes to the runtime, copied by threads to/from
//!   the FIFOs. An output relay writes to its FIFO only once containerd's reader has it
//!   open, then keeps a reader of its own so one that goes away (containerd restarting)
//!   never raises SIGPIPE ([`crate::fifo`]: why the order matters).
//! * `binary:///path?k=v`: a logger process gets the read ends of the stdout/stderr pipes
//!   as fds 3/4 and a wait pipe as fd 5, which it closes when ready; env CONTAINER_ID,
//!   CONTAINER_NAMESPACE.
//! * `file:///path`: both streams appended to the file.
//! * terminal: the runtime sends the pty master over a console socket; the relays copy
//!   stdin -> master and master -> stdout; ResizePty sets the master's window size.
//!
//! Output relays count themselves out when they reached EOF and closed their FIFO, so an
//! exit is reported only after the output written before it has been delivered
//! (`wait_drained`). A relay whose reader never came is released when its process is
//! dropped (deleted, or its create or start failed).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::fifo::OutputFifo;
use crate::ttrpc::spawn;

/// What containerd asked for (CreateTaskRequest / ExecProcessRequest).
#[derive(Debug, Clone, Default)]
pub struct Stdio3 {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Counts the running output relays.
#[derive(Default)]
struct Drain {
    running: Mutex<usize>,
    cond: Condvar,
}

impl Drain {
    fn add(&self) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
    fn done(&self) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.cond.notify_all();
    }
}

/// The shim side of a process's stdio, kept for its life.
pub struct ProcessIo {
    stdin_path: String,
    stdin: Arc<Mutex<Option<File>>>,
    console: Mutex<Option<File>>,
    drain: Arc<Drain>,
    /// the output FIFOs, released on drop
    outputs: Mutex<Vec<Arc<OutputFifo>>>,
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        for fifo in self.outputs.get_mut().unwrap_or_else(|p| p.into_inner()) {
            fifo.release();
        }
    }
}

/// What the runtime command is started with, and what happens after it exited.
pub struct Prepared {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// with a terminal: the listener the runtime sends the pty master to
    pub console: Option<(UnixListener, PathBuf)>,
    io: Arc<ProcessIo>,
}

impl Prepared {
    pub fn console_path(&self) -> Option<&Path> {
        self.console.as_ref().map(|(_, p)| p.as_path())
    }

    /// Give the runtime command its stdio (consumed: the shim keeps no copy of the
    /// container's ends, so EOF comes when the container closes them).
    pub fn apply(&mut self, cmd: &mut Command) {
        let take = |fd: Option<OwnedFd>| fd.map(Stdio::from).unwrap_or_else(Stdio::null);
        cmd.stdin(take(self.stdin.take()));
        cmd.stdout(take(self.stdout.take()));
        cmd.stderr(take(self.stderr.take()));
    }

    /// After the runtime command succeeded: with a terminal, receive the pty master and
    /// start its relays.
    pub fn finish(self, paths: &Stdio3) -> io::Result<Arc<ProcessIo>> {
        if let Some((listener, path)) = self.console {
            let master = receive_master(&listener);
            let _ = std::fs::remove_file(&path);
            let master = master?;
            let io = self.io.clone();
            let reader = master.try_clone()?;
            if !paths.stdin.is_empty() {
                let writer = master.try_clone()?;
                *io.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
                relay_stdin(paths.stdin.clone(), io.stdin.clone());
            }
            if !paths.stdout.is_empty() {
                let out = io.output_fifo(&paths.stdout)?;
                relay_output(reader, Sink::Fifo(out), io.drain.clone());
            }
            *io.console.lock().unwrap_or_else(|p| p.into_inner()) = Some(master);
        }
        Ok(self.io)
    }
}

impl ProcessIo {
    /// Set up the relays for `paths`; `id`/`namespace` are for binary loggers; `owner`
    /// (IoUid/IoGid) owns the pipes.
    pub fn prepare(
        paths: &Stdio3,
        id: &str,
        namespace: &str,
        owner: Option<(u32, u32)>,
    ) -> io::Result<Prepared> {
        let io = Arc::new(ProcessIo {
            stdin_path: paths.stdin.clone(),
            stdin: Arc::new(Mutex::new(None)),
            console: Mutex::new(None),
            drain: Arc::new(Drain::default()),
            outputs: Mutex::new(Vec::new()),
        });
        let mut prepared = Prepared {
            stdin: None,
            stdout: None,
            stderr: None,
            console: None,
            io,
        };
        if paths.terminal {
            let path = std::env::temp_dir().join(format!(
                "patina-shim-pty-{}-{}.sock",
                std::process::id(),
                unique()
            ));
            let listener = UnixListener::bind(&path)
                .map_err(|e| with_context(e, &format!("bind console socket {}", path.display())))?;
            prepared.console = Some((listener, path));
            return Ok(prepared);
        }
        let io = prepared.io.clone();
        if !paths.stdin.is_empty() {
            let (r, w) = stdio_pipe(owner)?;
            prepared.stdin = Some(r);
            *io.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(File::from(w));
            relay_stdin(paths.stdin.clone(), io.stdin.clone());
        }
        if let Some(uri) = paths.stdout.strip_prefix("binary://") {
            let (out_r, out_w) = stdio_pipe(owner)?;
            let (err_r, err_w) = stdio_pipe(owner)?;
            start_logger(uri, id, namespace, out_r, err_r)?;
            prepared.stdout = Some(out_w);
            prepared.stderr = Some(err_w);
            return Ok(prepared);
        }
        if let Some(path) = paths.stdout.strip_prefix("file://") {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| with_context(e, &format!("open log file {path}")))?;
            let (out_r, out_w) = stdio_pipe(owner)?;
            let (err_r, err_w) = stdio_pipe(owner)?;
            let copy = Sink::File(file.try_clone()?);
            relay_output(File::from(out_r), copy, io.drain.clone());
            relay_output(File::from(err_r), Sink::File(file), io.drain.clone());
            prepared.stdout = Some(out_w);
            prepared.stderr = Some(err_w);
            return Ok(prepared);
        }
        for (path, slot) in [
            (&paths.stdout, &mut prepared.stdout),
            (&paths.stderr, &mut prepared.stderr),
        ] {
            if path.is_empty() {
                continue;
            }
            let out = io.output_fifo(path)?;
            let (r, w) = stdio_pipe(owner)?;
            relay_output(File::from(r), Sink::Fifo(out), io.drain.clone());
            *slot = Some(w);
        }
        Ok(prepared)
    }

    fn output_fifo(&self, path: &str) -> io::Result<Arc<OutputFifo>> {
        let fifo = Arc::new(OutputFifo::open(path)?);
        let mut outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        outputs.push(fifo.clone());
        Ok(fifo)
    }

    /// Wait (at most `limit`) until every output relay reached EOF.
    pub fn wait_drained(&self, limit: Duration) -> bool {
        let guard = self.drain.running.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .drain
            .cond
            .wait_timeout_while(guard, limit, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *guard == 0
    }

    /// CloseIO: the process sees EOF on stdin.
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        // A relay still blocked opening a FIFO nobody opened for writing is released.
        if !self.stdin_path.is_empty() {
            let _ = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&self.stdin_path);
        }
    }

    pub fn resize(&self, width: u32, height: u32) -> io::Result<()> {
        let console = self.console.lock().unwrap_or_else(|p| p.into_inner());
        let Some(master) = console.as_ref() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the process has no terminal",
            ));
        };
        let ws = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if rc < 0 {
            return Err(with_context(io::Error::last_os_error(), "TIOCSWINSZ"));
        }
        Ok(())
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| with_context(e.into(), "pipe2"))
}

/// A pipe for a process's stdio, owned by IoUid:IoGid when they are set: a process whose
/// user namespace maps its root to that uid can then reopen `/proc/self/fd/0..2` (opening
/// a pipe through /proc checks the pipe inode's owner and mode, 0600).
fn stdio_pipe(owner: Option<(u32, u32)>) -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe()?;
    if let Some((uid, gid)) = owner {
        // The two ends share one inode, so the first call already does it; the second
        // keeps that a kernel detail rather than something this code relies on.
        for end in [&r, &w] {
            nix::unistd::fchown(
                end,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| with_context(e.into(), &format!("chown stdio pipe to {uid}:{gid}")))?;
        }
    }
    Ok((r, w))
}

/// stdin FIFO -> the process (a pipe or the pty master), until EOF or CloseIO.
fn relay_stdin(path: String, sink: Arc<Mutex<Option<File>>>) {
    spawn("stdin", move || {
        let path = path.strip_prefix("fifo://").unwrap_or(&path);
        let Ok(mut fifo) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
        else {
            return;
        };
        let mut buf = vec![0u8; 32 << 10];
        loop {
            let n = match fifo.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
            let Some(w) = guard.as_mut() else { return };
            if w.write_all(&buf[..n]).is_err() {
                return;
            }
        }
        // EOF on the FIFO: the process sees EOF too (a pty gets ^D, as a tty does).
        let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = guard.as_mut() {
            if is_tty(w.as_raw_fd()) {
                let _ = w.write_all(&[4]);
                return;
            }
        }
        guard.take();
    });
}

fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Where an output relay writes.
enum Sink {
    /// `file://`: opened by the request
    File(File),
    /// a FIFO (or other file) path: opened by the relay once a reader has it open
    /// ([`OutputFifo::connect`])
    Fifo(Arc<OutputFifo>),
}

/// The process's output -> where containerd wants it, until EOF (EIO on a pty master).
fn relay_output(mut from: File, to: Sink, drain: Arc<Drain>) {
    drain.add();
    spawn("output", move || {
        match to {
            Sink::File(mut file) => copy(&mut from, &mut file),
            Sink::Fifo(fifo) => {
                if let Some(mut out) = fifo.connect() {
                    copy(&mut from, &mut out.writer);
                }
            }
        }
        // Every end is closed (the FIFO too: containerd's EOF) before the relay counts
        // itself out, so TaskExit never overtakes the end of the output.
        drop(from);
        drain.done();
    });
}

fn copy(from: &mut File, to: &mut File) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Accept the runtime's connection on the console socket and take the pty master it
/// sent (SCM_RIGHTS). The runtime has exited by now: its message waits in the socket.
fn receive_master(listener: &UnixListener) -> io::Result<File> {
    listener.set_nonblocking(true)?;
    let (sock, _) = listener.accept().map_err(|e| {
        with_context(
            e,
            "accept on the console socket (the runtime sent no terminal)",
        )
    })?;
    sock.set_nonblocking(false)?;
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| with_context(e.into(), "recvmsg on the console socket"))?;
    for c in msg
        .cmsgs()
        .map_err(|e| with_context(e.into(), "console socket cmsgs"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut files: Vec<File> = fds
                .iter()
                // SAFETY: SCM_RIGHTS just installed these descriptors; nothing else owns them.
                .map(|fd| unsafe { File::from_raw_fd(*fd) })
                .collect();
            if let Some(master) = files.pop() {
                return Ok(master);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no pty master on the console socket",
    ))
}

/// Start a `binary://` logger with fds 3 (stdout), 4 (stderr) and 5 (closed when ready).
fn start_logger(
    uri: &str,
    id: &str,
    namespace: &str,
    out: OwnedFd,
    err: OwnedFd,
) -> io::Result<()> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut cmd = Command::new(percent_decode(path));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        cmd.arg(percent_decode(k));
        if !v.is_empty() {
            cmd.arg(percent_decode(v));
        }
    }
    let (wait_r, wait_w) = pipe()?;
    let fds = [out.as_raw_fd(), err.as_raw_fd(), wait_w.as_raw_fd()];
    cmd.env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the closure only calls dup2, which is
    // async-signal-safe, on descriptors that are open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| with_context(e, &format!("start logger {path}")))?;
    drop((out, err, wait_w));
    // The logger is the shim's child: its exit is taken by the reaper.
    drop(child);
    let mut wait = File::from(wait_r);
    let mut byte = [0u8; 1];
    let _ = wait.read(&mut byte);
    Ok(())
}

/// `%XX` escapes of a logger URI's path and query (pub for the fuzz target).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    // On bytes: the two after a '%' need not end on a char boundary ("%a\u{e9}").
    let hex = |c: u8| (c as char).to_digit(16);
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((hi << 4 | lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_of(fd: &OwnedFd) -> (u32, u32) {
        let st = nix::sys::stat::fstat(fd).unwrap();
        (st.st_uid, st.st_gid)
    }

    /// Found by fuzz/fuzz_targets/shim_ttrpc.rs: a '%' followed by a multi-byte
    /// character in a `binary://` logger URI panicked the shim (a str sliced inside a
    /// character).
    #[test]
    fn percent_decode_takes_any_text() {
        assert_eq!(percent_decode("%a\u{e9}"), "%a\u{e9}");
        assert_eq!(percent_decode("\n%\u{e9}\n"), "\n%\u{e9}\n");
        assert_eq!(
            percent_decode("/usr/bin/log%20ger%2F%"),
            "/usr/bin/log ger/%"
        );
        assert_eq!(percent_decode("%c3%a9%4"), "\u{e9}%4");
        // Only hex digits: from_str_radix took a sign ("%+f" was "\x0f").
        assert_eq!(percent_decode("%+f"), "%+f");
    }

    #[test]
    fn stdio_pipes_owned_by_io_uid_gid() {
        let (r, w) = stdio_pipe(None).unwrap();
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        assert_eq!((owner_of(&r), owner_of(&w)), (me, me));
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let (r, w) = stdio_pipe(Some((1000, 1001))).unwrap();
        assert_eq!((owner_of(&r), owner_of(&w)), ((1000, 1001), (1000, 1001)));
    }
}
