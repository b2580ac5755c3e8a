//! The socketpair between the runtime and the container's init during `create`.
//! SOCK_SEQPACKET keeps message boundaries, and when either side dies the other reads
//! EOF at once instead of hanging.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};

use crate::error::{Context, Error, Kind, Result};

/// What flows between the runtime (parent) and init (child).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// child -> parent (rootless only): init is dumpable, its /proc files are the
    /// caller's, so the maps can be written (rootless.rs).
    Mappable,
    /// parent -> child: uid/gid maps are written, go on; carries the state JSON
    /// (with init's pid as the runtime sees it) for the hooks init runs.
    Go(String),
    /// child -> parent: mounts are done, run prestart and createRuntime hooks now.
    RunCreateRuntimeHooks,
    /// parent -> child: those hooks succeeded.
    HooksDone,
    /// child -> parent: set up and blocked before the user program.
    Ready,
    /// child -> parent: setup failed at this step, with the error's kind.
    Failed(Kind, String),
    /// child -> parent: the seccomp listener fd is attached (SCM_RIGHTS).
    SeccompFd,
    /// parent -> child: state.json is written, so the container is known to `list` and
    /// `delete`: init may now block on the exec fifo (before this, a runtime that dies
    /// leaves init reading EOF here, and init exits instead of waiting unseen).
    Committed,
    /// parent -> child, before Go: the bind source of `mounts[N]`, opened by the runtime
    /// in init's mount namespace (SCM_RIGHTS; mount_sources.rs).
    BindSource(u32),
}

impl Message {
    /// The failure of `err`, kind kept, for the other end.
    pub fn failed(err: &Error) -> Message {
        Message::Failed(err.kind(), err.to_string())
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Mappable => vec![b'M'],
            Message::Go(state) => [b"G".as_slice(), state.as_bytes()].concat(),
            Message::RunCreateRuntimeHooks => vec![b'H'],
            Message::HooksDone => vec![b'D'],
            Message::Ready => vec![b'R'],
            Message::Failed(kind, why) => [&[b'F', kind.tag()], why.as_bytes()].concat(),
            Message::SeccompFd => vec![b'S'],
            Message::Committed => vec![b'C'],
            Message::BindSource(index) => [b"B".as_slice(), &index.to_le_bytes()].concat(),
        }
    }

    fn decode(raw: &[u8]) -> Option<Message> {
        Some(match raw.first()? {
            b'M' => Message::Mappable,
            b'G' => Message::Go(String::from_utf8_lossy(&raw[1..]).into_owned()),
            b'H' => Message::RunCreateRuntimeHooks,
            b'D' => Message::HooksDone,
            b'R' => Message::Ready,
            b'F' => Message::Failed(
                Kind::from_tag(*raw.get(1)?),
                String::from_utf8_lossy(&raw[2..]).into_owned(),
            ),
            b'S' => Message::SeccompFd,
            b'C' => Message::Committed,
            b'B' => Message::BindSource(u32::from_le_bytes(raw.get(1..5)?.try_into().ok()?)),
            _ => return None,
        })
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for init channel")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Channel {
    pub fn send(&self, message: &Message) -> Result<()> {
        send(
            self.fd.as_raw_fd(),
            &message.encode(),
            MsgFlags::MSG_NOSIGNAL,
        )
        .map(drop)
        .with_context(|| format!("send {message:?} to the other side of the init channel"))
    }

    /// A message with a descriptor attached (SCM_RIGHTS).
    pub fn send_fd(&self, message: &Message, fd: &OwnedFd) -> Result<()> {
        let payload = message.encode();
        let iov = [std::io::IoSlice::new(&payload)];
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map(drop)
        .with_context(|| format!("send {message:?} to the other side of the init channel"))
    }

    /// The next message and the descriptor attached to it, if any; None when the other
    /// side closed without a word.
    pub fn recv_with_fd(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let fd = msg.cmsgs().ok().and_then(|mut all| {
                        all.find_map(|c| match c {
                            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                            _ => None,
                        })
                    });
                    break (msg.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::os(e, "read from the init channel")),
            }
        };
        // SAFETY: SCM_RIGHTS gave this process a new descriptor that nothing else owns.
        let fd = fd.map(|raw| unsafe { OwnedFd::from_raw_fd(raw) });
        if n == 0 {
            return Ok(None);
        }
        match Message::decode(&buf[..n]) {
            Some(m) => Ok(Some((m, fd))),
            None => Err(Error::msg("garbled message on the init channel")),
        }
    }

    /// The next message, which must be `wanted` with a descriptor attached.
    pub fn expect_fd(&self, wanted: &Message) -> Result<OwnedFd> {
        match self.recv_with_fd()? {
            Some((ref m, Some(fd))) if m == wanted => Ok(fd),
            Some((Message::Failed(kind, why), _)) => Err(Error::new(kind, why)),
            Some((other, _)) => Err(Error::msg(format!(
                "init channel: expected {wanted:?} with a descriptor, got {other:?}"
            ))),
            None => Err(Error::msg(format!(
                "init channel closed while waiting for {wanted:?}: the other side exited"
            ))),
        }
    }

    /// In the cloned child, close its copy of the runtime's end: otherwise init would
    /// never read EOF when the runtime dies. The OwnedFd is never dropped there (init
    /// leaves through _exit), so the number is not closed twice.
    pub fn close_copy_in_child(&self) {
        // SAFETY: closing a descriptor number this process owns a copy of.
        unsafe { libc::close(self.fd.as_raw_fd()) };
    }

    /// The next message, or None when the other side closed without a word.
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return Message::decode(&buf[..n])
                        .map(Some)
                        .ok_or_else(|| Error::msg("garbled message on the init channel"))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::os(e, "read from the init channel")),
            }
        }
    }

    /// Wait for one particular message; a failure report becomes the error itself.
    pub fn expect(&self, wanted: &Message) -> Result<()> {
        match self.recv()? {
            Some(ref m) if m == wanted => Ok(()),
            Some(Message::Failed(kind, why)) => Err(Error::new(kind, why)),
            Some(other) => Err(Error::msg(format!(
                "init channel: expected {wanted:?}, got {other:?}"
            ))),
            None => Err(Error::msg(format!(
                "init channel closed while waiting for {wanted:?}: the other side exited"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_failures_carry_their_text() {
        let (a, b) = pair().unwrap();
        a.send(&Message::Failed(
            Kind::InvalidConfig,
            "mount \"proc\" on \"/proc\": EPERM".into(),
        ))
        .unwrap();
        let err = b.expect(&Message::Ready).unwrap_err();
        assert_eq!(err.kind(), Kind::InvalidConfig);
        assert_eq!(err.to_string(), "mount \"proc\" on \"/proc\": EPERM");
        b.send(&Message::Go("{}".into())).unwrap();
        assert_eq!(a.recv().unwrap(), Some(Message::Go("{}".into())));
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }

    #[test]
    fn bind_source_carries_its_index_and_descriptor() {
        let (a, b) = pair().unwrap();
        let fd: OwnedFd = std::fs::File::open("/").unwrap().into();
        a.send_fd(&Message::BindSource(70_000), &fd).unwrap();
        match b.recv_with_fd().unwrap() {
            Some((Message::BindSource(70_000), Some(_))) => {}
            other => panic!("{other:?}"),
        }
    }
}
