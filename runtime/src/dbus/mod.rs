//! A small blocking D-Bus client over a unix socket, for the systemd cgroup driver.
//!
//! Why not a crate (docs/cgroups.md "D-Bus client"): zbus's blocking API runs an
//! executor thread, and a second thread in the runtime makes `unshare(CLONE_NEWUSER)`
//! and `setns` into a mount namespace fail with EINVAL (and makes fork unsafe); the
//! `dbus` crate links libdbus, which the static build cannot take. What systemd's
//! Manager needs is a handful of method calls and one signal: SASL EXTERNAL with our
//! uid, the message format of [`wire`], and a read loop, all on the calling thread.
//! The socket is close-on-exec and dropped before the operation returns.

#[cfg(test)]
pub(crate) mod daemon_tests;
pub mod wire;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::bail;
use crate::error::{Context, Error, Result};
use wire::{Kind, Message, Value};

pub const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// The system bus, where systemd (PID 1) serves root's units.
pub const SYSTEM_BUS_DEFAULT: &str = "unix:path=/run/dbus/system_bus_socket";

/// How long a reply (or an awaited signal) may take. systemd under load (and a TCG
/// guest) answers in milliseconds to seconds; a minute means it is stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// systemd's replies and signals are a few hundred bytes; anything this big is not
/// for us (the spec allows 128 MiB, which we would not hold as values).
const MAX_ACCEPTED: usize = 1 << 20;

/// Signals kept while a reply is awaited.
const MAX_PENDING: usize = 256;

pub struct Connection {
    stream: BufReader<UnixStream>,
    serial: u32,
    /// Signals read while waiting for a reply, kept for [`Connection::wait_signal`].
    pending: VecDeque<Message>,
    /// Our unique name on the bus (from Hello).
    pub unique_name: String,
}

/// The system bus address: $DBUS_SYSTEM_BUS_ADDRESS, else the well-known socket.
pub fn system_bus_address() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|_| SYSTEM_BUS_DEFAULT.to_owned())
}

/// The session bus of a non-root user: $DBUS_SESSION_BUS_ADDRESS, else the socket
/// systemd's user manager serves in $XDG_RUNTIME_DIR, else /run/user/<uid>/bus (the
/// order runc's user-bus code follows).
pub fn user_bus_address(uid: u32) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(address) = env("DBUS_SESSION_BUS_ADDRESS") {
        return address;
    }
    match env("XDG_RUNTIME_DIR") {
        Some(dir) => format!("unix:path={dir}/bus"),
        None => format!("unix:path=/run/user/{uid}/bus"),
    }
}

/// Open a socket to the first `unix:` entry of a D-Bus address that connects.
fn connect_address(address: &str) -> Result<UnixStream> {
    let mut last = None;
    for entry in address.split(';').filter(|e| !e.is_empty()) {
        let Some(params) = entry.strip_prefix("unix:") else {
            continue;
        };
        let mut path = None;
        let mut abstract_name = None;
        for kv in params.split(',') {
            match kv.split_once('=') {
                Some(("path", v)) => path = Some(unescape(v)),
                Some(("abstract", v)) => abstract_name = Some(unescape(v)),
                _ => {}
            }
        }
        let result = match (path, abstract_name) {
            (Some(p), _) => UnixStream::connect(&p),
            (None, Some(name)) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|a| UnixStream::connect_addr(&a))
            }
            _ => continue,
        };
        match result {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(Error::from(e).wrap(format!("connect to D-Bus at {entry:?}"))),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::msg(format!(
            "D-Bus address {address:?}: no unix:path= or unix:abstract= entry"
        ))
    }))
}

/// D-Bus addresses escape bytes as %XX.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(n) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A D-Bus error reply: its name (`org.freedesktop.systemd1.NoSuchUnit`) and message.
pub fn error_name(e: &Error) -> Option<String> {
    let text = e.to_string();
    text.split("D-Bus error ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|n| n.trim_end_matches(':').to_owned())
}

impl Connection {
    /// Connect, authenticate as our uid (SASL EXTERNAL) and say Hello.
    pub fn open(address: &str) -> Result<Connection> {
        Connection::open_as(address, nix::unistd::geteuid().as_raw())
    }

    /// The same, claiming `uid`: the uid the bus daemon sees on our socket (its
    /// SO_PEERCRED, in the daemon's user namespace). A runtime that is uid 0 of a user
    /// namespace (rootless podman's) is its user's host uid to the user's bus, which
    /// refuses a claim of 0.
    pub fn open_as(address: &str, uid: u32) -> Result<Connection> {
        let stream = connect_address(address)?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .context("D-Bus: set the socket's read timeout")?;
        let mut conn = Connection {
            stream: BufReader::new(stream),
            serial: 0,
            pending: VecDeque::new(),
            unique_name: String::new(),
        };
        conn.authenticate(uid)?;
        let reply = conn.call(
            Message::method_call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello"),
            "Hello",
        )?;
        conn.unique_name = reply.first_str().unwrap_or_default().to_owned();
        Ok(conn)
    }

    fn authenticate(&mut self, uid: u32) -> Result<()> {
        let uid = uid.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // The NUL byte first is the spec's credentials byte (SO_PEERCRED on Linux).
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        self.stream
            .get_mut()
            .write_all(hello.as_bytes())
            .context("D-Bus: send AUTH")?;
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .context("D-Bus: read the AUTH answer")?;
        if !line.starts_with("OK ") {
            bail!(
                "D-Bus: the bus refused EXTERNAL authentication as uid {uid}: {:?}",
                line.trim_end()
            );
        }
        self.stream
            .get_mut()
            .write_all(b"BEGIN\r\n")
            .context("D-Bus: send BEGIN")
    }

    /// Send a message without waiting for anything (a signal).
    pub fn send(&mut self, mut msg: Message) -> Result<u32> {
        self.serial += 1;
        msg.serial = self.serial;
        self.stream
            .get_mut()
            .write_all(&msg.encode())
            .context("D-Bus: send a message")?;
        Ok(msg.serial)
    }

    /// The next message of any kind (a test's fake service reads calls with it).
    /// Messages nobody asked for (signals, calls to us) that are oversized or that the
    /// decoder refuses are skipped: any peer on the bus may send them to our connection,
    /// and they must not end the wait for systemd.
    pub fn read(&mut self) -> Result<Message> {
        loop {
            let mut head = [0u8; 16];
            self.stream
                .read_exact(&mut head)
                .map_err(|e| timeout_named(e, "read a message"))?;
            let total = Message::total_len(&head).map_err(|e| Error::msg(format!("D-Bus: {e}")))?;
            let unsolicited = matches!(head[1], 1 | 4);
            if total > MAX_ACCEPTED {
                self.discard(total - 16)?;
                if unsolicited {
                    continue;
                }
                bail!("D-Bus: a reply of {total} bytes (more than systemd ever sends)");
            }
            let mut buf = head.to_vec();
            buf.resize(total, 0);
            self.stream
                .read_exact(&mut buf[16..])
                .map_err(|e| timeout_named(e, "read a message"))?;
            match Message::decode(&buf) {
                Ok(m) => return Ok(m),
                Err(_) if unsolicited => continue,
                Err(e) => bail!("D-Bus: {e}"),
            }
        }
    }

    fn discard(&mut self, mut left: usize) -> Result<()> {
        let mut chunk = [0u8; 8192];
        while left > 0 {
            let n = left.min(chunk.len());
            self.stream
                .read_exact(&mut chunk[..n])
                .map_err(|e| timeout_named(e, "read a message"))?;
            left -= n;
        }
        Ok(())
    }

    /// Send a method call and wait for its reply; signals that arrive meanwhile are
    /// queued. An error reply becomes an error naming `what`, the D-Bus error name
    /// and its message.
    pub fn call(&mut self, msg: Message, what: &str) -> Result<Message> {
        let serial = self.send(msg)?;
        loop {
            let m = self.read().map_err(|e| e.wrap(what.to_owned()))?;
            match m.kind {
                Kind::Signal => {
                    // Kept for wait_signal, bounded: other peers can send us signals.
                    if self.pending.len() == MAX_PENDING {
                        self.pending.pop_front();
                    }
                    self.pending.push_back(m)
                }
                _ if m.reply_serial != Some(serial) => {}
                Kind::Error => {
                    let name = m.error_name.as_deref().unwrap_or("?");
                    let text = m.first_str().unwrap_or("");
                    bail!("{what}: D-Bus error {name}: {text}");
                }
                _ => return Ok(m),
            }
        }
    }

    /// Wait for a signal `accept` takes (queued ones first), until `deadline` (other
    /// signals may keep arriving on a busy bus; each read also has its own timeout).
    pub fn wait_signal(
        &mut self,
        deadline: Instant,
        mut accept: impl FnMut(&Message) -> bool,
    ) -> Result<Message> {
        if let Some(i) = self.pending.iter().position(&mut accept) {
            return Ok(self.pending.remove(i).expect("found"));
        }
        loop {
            if Instant::now() > deadline {
                bail!("D-Bus: the awaited signal did not come in time");
            }
            let m = self.read()?;
            if m.kind == Kind::Signal && accept(&m) {
                return Ok(m);
            }
        }
    }

    /// Ask the bus to route signals matching `rule` to us.
    pub fn add_match(&mut self, rule: &str) -> Result<()> {
        let m = Message::method_call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch")
            .with_body(vec![Value::str(rule)]);
        self.call(m, "D-Bus AddMatch").map(drop)
    }
}

fn timeout_named(e: std::io::Error, step: &str) -> Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        return Error::msg(format!(
            "D-Bus: {step}: no answer within {}s",
            READ_TIMEOUT.as_secs()
        ));
    }
    Error::from(e).wrap(format!("D-Bus: {step}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_error_names() {
        assert_eq!(unescape("/tmp/a%20b"), "/tmp/a b");
        assert_eq!(unescape("/x%2"), "/x%2");
        let err = connect_address("tcp:host=x").unwrap_err().to_string();
        assert!(err.contains("no unix:path="), "{err}");
        let err = connect_address("unix:path=/nonexistent/bus")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/bus") && err.contains("ENOENT"),
            "{err}"
        );
        let e = Error::msg("start unit: D-Bus error org.freedesktop.systemd1.NoSuchUnit: gone");
        assert_eq!(
            error_name(&e).as_deref(),
            Some("org.freedesktop.systemd1.NoSuchUnit")
        );
    }
}
