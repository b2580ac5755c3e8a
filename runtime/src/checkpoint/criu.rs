//! One `criu swrk` session: spawn CRIU with one end of a SOCK_SEQPACKET pair, send a
//! request built from rust-criu's generated messages (`rust_criu::rust_criu_protobuf`),
//! answer its notifications, and read its final response.
//!
//! rust-criu's own `Criu` client covers dump and restore, but not what runc's behaviour
//! needs: pre-dump, the LSM options, a notify callback that can reach the container's
//! state (its callback is a bare `fn`), the pid of the restored init (its `restore()`
//! returns nothing) and a pause between spawning CRIU and sending the request (the
//! cgroup must take CRIU's pid first). So this driver uses the crate's messages only.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc::{
    Criu_notify, Criu_opts, Criu_req, Criu_req_type, Criu_resp,
};

use crate::error::{Context, Error, Result};

/// The CRIU binary: `--criu`, or `criu` from PATH.
pub fn binary(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("criu"))
}

/// A running `criu swrk`, waiting for its request.
pub struct Session {
    child: Child,
    sock: UnixDatagram,
    /// Where CRIU writes its log (work dir, or else the image dir, + log file name).
    log: PathBuf,
    what: &'static str,
}

/// What a notification handler gets: the script name, the pid CRIU reports, and the fd
/// CRIU passed with it (the pty master of "orphan-pts-master").
pub struct Notify<'a> {
    pub script: &'a str,
    pub pid: i32,
    pub fd: Option<OwnedFd>,
}

impl Session {
    /// Spawn CRIU. `inherit` are descriptors CRIU must see under their own numbers
    /// (request fields name them: images_dir_fd, work_dir_fd, inherit_fd); they lose
    /// CLOEXEC for the exec only if they had it (patina is single-threaded here).
    pub fn spawn(
        criu: &Path,
        inherit: &[BorrowedFd<'_>],
        log: PathBuf,
        what: &'static str,
    ) -> Result<Session> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("criu: socketpair")?;
        let mut passed = vec![theirs.as_fd()];
        passed.extend_from_slice(inherit);
        for fd in &passed {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).context("criu: pass descriptor")?;
        }
        let spawned = Command::new(criu)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn();
        for fd in &passed {
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
        let child = spawned.map_err(|e| {
            Error::from(e).wrap(format!(
                "criu: run {:?} swrk (is CRIU installed? --criu names it)",
                criu.display()
            ))
        })?;
        drop(theirs);
        Ok(Session {
            child,
            sock: UnixDatagram::from(ours),
            log,
            what,
        })
    }

    /// Stop CRIU before it was sent anything.
    pub fn abort(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send `opts` as a request of type `kind`, answer every notification with
    /// `on_notify` (its error aborts CRIU's operation), and return CRIU's final answer.
    pub fn run(
        mut self,
        kind: Criu_req_type,
        opts: Criu_opts,
        on_notify: &mut dyn FnMut(Notify<'_>) -> Result<()>,
    ) -> Result<Criu_resp> {
        let result = self.exchange(kind, opts, on_notify);
        if result.is_err() {
            let _ = self.child.kill();
        }
        // CRIU exits once it has answered (pre-dump's exit status is of no interest:
        // it waits for a follow-up request that never comes, then fails).
        drop(self.sock);
        let status = self.child.wait();
        let resp = result?;
        if kind != Criu_req_type::PRE_DUMP && !status.is_ok_and(|s| s.success()) {
            return Err(failure(self.what, &self.log, None));
        }
        Ok(resp)
    }

    fn exchange(
        &mut self,
        kind: Criu_req_type,
        opts: Criu_opts,
        on_notify: &mut dyn FnMut(Notify<'_>) -> Result<()>,
    ) -> Result<Criu_resp> {
        let mut req = Criu_req::new();
        req.set_type(kind);
        req.opts = protobuf::MessageField::some(opts);
        self.send(&req)?;
        loop {
            let (resp, fd) = self.receive()?;
            if !resp.success() {
                return Err(failure(self.what, &self.log, resp.cr_errno));
            }
            if resp.type_() != Criu_req_type::NOTIFY {
                if resp.type_() != kind {
                    return Err(Error::msg(format!(
                        "criu {}: unexpected answer {:?}",
                        self.what,
                        resp.type_()
                    )));
                }
                return Ok(resp);
            }
            let notify: &Criu_notify = &resp.notify;
            let outcome = on_notify(Notify {
                script: notify.script(),
                pid: notify.pid(),
                fd,
            })
            .with_context(|| {
                format!(
                    "criu {}: at its {:?} notification",
                    self.what,
                    notify.script()
                )
            });
            let mut ack = Criu_req::new();
            ack.set_type(Criu_req_type::NOTIFY);
            ack.set_notify_success(outcome.is_ok());
            self.send(&ack)?;
            outcome?;
        }
    }

    fn send(&self, req: &Criu_req) -> Result<()> {
        let bytes = req
            .write_to_bytes()
            .map_err(|e| Error::msg(format!("criu: encode request: {e}")))?;
        self.sock.send(&bytes).context("criu: send request")?;
        Ok(())
    }

    /// One answer, with the descriptor CRIU may attach to it.
    fn receive(&self) -> Result<(Criu_resp, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!(RawFd);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("criu: read answer")?;
        let mut fd = None;
        for c in msg.cmsgs().context("criu: read answer")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: SCM_RIGHTS just installed this descriptor in our table.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Err(failure(self.what, &self.log, None));
        }
        let resp = Criu_resp::parse_from_bytes(&buf[..n])
            .map_err(|e| Error::msg(format!("criu {}: bad answer: {e}", self.what)))?;
        Ok((resp, fd))
    }
}

/// "criu dump failed (errno 17): <CRIU's last error line>; log: <path>".
fn failure(what: &str, log: &Path, errno: Option<i32>) -> Error {
    let errno = errno
        .filter(|e| *e != 0)
        .map(|e| format!(" (errno {e})"))
        .unwrap_or_default();
    let line = last_error_line(log)
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    Error::msg(format!(
        "criu {what} failed{errno}{line}; log: {}",
        log.display()
    ))
}

/// What CRIU's log says went wrong: its first error line ("Error (file:line): ...", the
/// cause; later ones follow from it) and, when another comes after it, the last one,
/// without timestamps and short of the closing "Dumping FAILED." / "Restoring FAILED.",
/// which say nothing; else the log's last line.
pub fn last_error_line(log: &Path) -> Option<String> {
    let file = std::fs::File::open(log).ok()?;
    let mut last = None;
    let mut errors: Vec<String> = Vec::new();
    for line in BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
    {
        let text = line.trim_start();
        let text = match text.strip_prefix('(') {
            Some(rest) => rest.split_once(')').map_or(text, |(_, t)| t.trim_start()),
            None => text,
        };
        if text.is_empty() {
            continue;
        }
        if text.starts_with("Error") && !text.ends_with("FAILED.") {
            errors.push(text.to_owned());
        }
        last = Some(text.to_owned());
    }
    match (errors.first(), errors.last()) {
        (Some(first), Some(last)) if first != last => Some(format!("{first} (last: {last})")),
        (Some(first), _) => Some(first.clone()),
        _ => last,
    }
}

#[cfg(test)]
mod tests {
    use super::last_error_line;

    #[test]
    fn the_last_error_line_is_picked_without_its_timestamp() {
        let dir = std::env::temp_dir().join(format!("patina-criu-log-{}", std::process::id()));
        std::fs::write(
            &dir,
            "(00.000010) Version: 3.17.1\n(00.002000) Error (criu/cr-restore.c:1480): can't open\n(00.003000) Error (criu/cr-restore.c:2447): Restoring FAILED.\n(00.003100) Unlock network\n",
        )
        .unwrap();
        assert_eq!(
            last_error_line(&dir).as_deref(),
            Some("Error (criu/cr-restore.c:1480): can't open")
        );
        std::fs::write(&dir, "(00.1) Error (a.c:1): x\n(00.2) Error (b.c:2): y\n(00.3) Error (c.c:3): Dumping FAILED.\n").unwrap();
        assert_eq!(
            last_error_line(&dir).as_deref(),
            Some("Error (a.c:1): x (last: Error (b.c:2): y)")
        );
        std::fs::write(&dir, "(00.1) a\n(00.2) b\n").unwrap();
        assert_eq!(last_error_line(&dir).as_deref(), Some("b"));
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(last_error_line(&dir), None);
    }
}
