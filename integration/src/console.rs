//! Console-socket plumbing for terminal tests: receive the pty master a runtime sends
//! over SCM_RIGHTS, and read what the container writes to it.

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Accepts one connection on `listener` and receives the fd it sends.
pub fn receive_master(listener: UnixListener) -> std::thread::JoinHandle<OwnedFd> {
    std::thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept console socket");
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .expect("recvmsg");
        for c in msg.cmsgs().expect("cmsgs") {
            if let ControlMessageOwned::ScmRights(fds) = c {
                assert_eq!(fds.len(), 1, "expected exactly one fd");
                // SAFETY: SCM_RIGHTS just installed this fd in our table; we are its only owner.
                return unsafe { OwnedFd::from_raw_fd(fds[0]) };
            }
        }
        panic!("no SCM_RIGHTS message on the console socket");
    })
}

/// Reads from the pty master in a thread until EOF/EIO; returns a receiver of chunks.
pub fn read_master(master: std::fs::File) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut f = master;
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Collects output until `marker` appears (at most 10 s).
pub fn collect_until(rx: &mpsc::Receiver<Vec<u8>>, acc: &mut String, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !acc.contains(marker) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => acc.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("no {marker:?} on the terminal; got {acc:?}"),
        }
    }
}
