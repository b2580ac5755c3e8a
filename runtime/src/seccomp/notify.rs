//! SCMP_ACT_NOTIFY: the listener fd made by init's seccomp(2) goes to the runtime over
//! the init channel (SCM_RIGHTS), and from the runtime to `linux.seccomp.listenerPath`
//! with the container process state (config-linux.md "Seccomp", runtime.md
//! "containerProcessState"): `{"ociVersion", "fds": ["seccompFd"], "pid", "metadata",
//! "state"}` in one message, the fd attached.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Context, Result};

/// The containerProcessState document sent with the fd.
pub fn process_state(oci_version: &str, pid: i32, metadata: &str, state_json: &str) -> String {
    let state: serde_json::Value =
        serde_json::from_str(state_json).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
    .to_string()
}

/// Connect to the listener and hand it the fd with the state.
pub fn send_to_listener(path: &Path, document: &str, fd: &OwnedFd) -> Result<()> {
    let stream = UnixStream::connect(path).with_context(|| {
        format!(
            "linux.seccomp.listenerPath: failed to connect with seccomp agent at {:?}",
            path.display()
        )
    })?;
    let iov = [IoSlice::new(document.as_bytes())];
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(drop)
    .with_context(|| {
        format!(
            "linux.seccomp.listenerPath: send the seccomp fd to {:?}",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_document_has_the_spec_fields() {
        let doc = process_state("1.0.2", 42, "meta", r#"{"id":"c","status":"creating"}"#);
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["fds"][0], "seccompFd");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "meta");
        assert_eq!(v["state"]["id"], "c");
    }
}
