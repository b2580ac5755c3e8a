//! The client against a real `dbus-daemon` on a private socket in a temp dir (the bus
//! daemon's own methods, a signal match), and against libdbus's encoding (`dbus-send`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wire::{Kind, Message, Value};
use super::{Connection, BUS_NAME};

const BUS_PATH: &str = "/org/freedesktop/DBus";

pub(crate) struct Daemon {
    child: Child,
    dir: PathBuf,
    pub address: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bus of our own, or None (the test then says it skips, by name) when the host
/// has no dbus-daemon.
pub(crate) fn daemon(test: &str) -> Option<Daemon> {
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("{test}: SKIPPED: dbus-daemon is not installed on this host");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("patina-dbus-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("bus");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().to_owned();
    assert!(address.starts_with("unix:path="), "{address:?}");
    Some(Daemon {
        child,
        dir,
        address,
    })
}

fn bus_call(member: &str, body: Vec<Value>) -> Message {
    Message::method_call(BUS_NAME, BUS_PATH, BUS_NAME, member).with_body(body)
}

#[test]
fn bus_daemon_methods_answer_as_busctl_sees_them() {
    let Some(d) = daemon("bus_daemon_methods") else {
        return;
    };
    let mut a = Connection::open(&d.address).unwrap();
    assert!(a.unique_name.starts_with(':'), "{}", a.unique_name);
    let mut b = Connection::open(&d.address).unwrap();
    assert_ne!(a.unique_name, b.unique_name);

    let reply = a.call(bus_call("ListNames", vec![]), "ListNames").unwrap();
    let Some(Value::Array(elem, names)) = reply.body.first() else {
        panic!("{reply:?}")
    };
    assert_eq!(elem, "s");
    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
    for n in [BUS_NAME, a.unique_name.as_str(), b.unique_name.as_str()] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }

    // A well-known name taken by b is owned by b, as a and busctl see it.
    let reply = b
        .call(
            bus_call(
                "RequestName",
                vec![Value::str("org.patina.Test"), Value::U32(0)],
            ),
            "RequestName",
        )
        .unwrap();
    assert_eq!(reply.body, vec![Value::U32(1)], "primary owner");
    let owner = a
        .call(
            bus_call("GetNameOwner", vec![Value::str("org.patina.Test")]),
            "GetNameOwner",
        )
        .unwrap();
    assert_eq!(owner.first_str(), Some(b.unique_name.as_str()));
    if let Ok(out) = Command::new("busctl")
        .args(["--address", &d.address, "list", "--no-pager", "--no-legend"])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("org.patina.Test "))
            .unwrap_or_else(|| panic!("busctl list: {text}"));
        // busctl's UNIQUE NAME column (after PID, PROCESS, USER, CONNECTION) is b's.
        assert!(line.contains(&b.unique_name), "{line} vs {}", b.unique_name);
    }

    // An error reply is an error naming the D-Bus error.
    let err = a
        .call(
            bus_call("GetNameOwner", vec![Value::str("org.nobody.Here")]),
            "GetNameOwner",
        )
        .unwrap_err();
    assert_eq!(
        super::error_name(&err).as_deref(),
        Some("org.freedesktop.DBus.Error.NameHasNoOwner"),
        "{err}"
    );
}

#[test]
fn signals_reach_a_match_and_libdbus_encoding_reads_back() {
    let Some(d) = daemon("signals") else {
        return;
    };
    let mut a = Connection::open(&d.address).unwrap();
    a.add_match("type='signal',interface='org.patina.Test',member='Job'")
        .unwrap();
    // From our own encoder, through the daemon.
    let mut b = Connection::open(&d.address).unwrap();
    let mut sig =
        Message::method_call("", "/org/patina", "org.patina.Test", "Job").with_body(vec![
            Value::U32(7),
            Value::Path("/org/freedesktop/systemd1/job/7".into()),
            Value::str("x.scope"),
            Value::str("done"),
        ]);
    sig.kind = Kind::Signal;
    sig.destination = None;
    b.send(sig).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = a
        .wait_signal(deadline, |m| m.member.as_deref() == Some("Job"))
        .unwrap();
    assert_eq!(got.sender.as_deref(), Some(b.unique_name.as_str()));
    assert_eq!(got.body[3], Value::str("done"));

    // From libdbus (dbus-send), with a spread of types.
    let sent = Command::new("dbus-send")
        .args([
            &format!("--bus={}", d.address),
            "--type=signal",
            "/org/patina",
            "org.patina.Test.Job",
            "string:héllo",
            "uint64:18446744073709551615",
            "int32:-3",
            "boolean:true",
            "byte:9",
            "objpath:/a/b",
            "array:string:x,y",
            "dict:string:uint32:k,1",
            "variant:int16:-2",
        ])
        .status();
    let Ok(status) = sent else {
        eprintln!("signals: dbus-send part SKIPPED: dbus-send is not installed");
        return;
    };
    assert!(status.success());
    let got = a
        .wait_signal(deadline, |m| m.member.as_deref() == Some("Job"))
        .unwrap();
    assert_eq!(
        got.body,
        vec![
            Value::str("héllo"),
            Value::U64(u64::MAX),
            Value::I32(-3),
            Value::Bool(true),
            Value::Byte(9),
            Value::Path("/a/b".into()),
            Value::Array("s".into(), vec![Value::str("x"), Value::str("y")]),
            Value::Array(
                "{su}".into(),
                vec![Value::Dict(
                    Box::new(Value::str("k")),
                    Box::new(Value::U32(1))
                )]
            ),
            Value::variant(Value::I16(-2)),
        ]
    );
}

#[test]
fn a_refused_authentication_is_named() {
    // A socket that answers REJECTED, as a bus refusing our uid would.
    let dir = std::env::temp_dir().join(format!("patina-dbus-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bus");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        s.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        line
    });
    let err = Connection::open(&format!("unix:path={}", path.display()))
        .err()
        .unwrap()
        .to_string();
    let line = server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let uid = nix::unistd::geteuid().as_raw().to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(line, format!("\0AUTH EXTERNAL {hex}\r\n"));
    assert!(
        err.contains("refused EXTERNAL") && err.contains("REJECTED"),
        "{err}"
    );
}

/// Any peer may send our connection signals directly (no match rule needed): one with
/// a type we do not decode (a double), one of 2 MiB, then a flood while we wait for a
/// reply. None of them may end or break the conversation with the bus.
#[test]
fn hostile_signals_from_another_peer_are_skipped() {
    let Some(d) = daemon("hostile") else {
        return;
    };
    let mut a = Connection::open(&d.address).unwrap();
    let mut b = Connection::open(&d.address).unwrap();
    let direct = |body: Vec<Value>, member: &str| {
        let mut s = Message::method_call("", "/x", "org.patina.Evil", member).with_body(body);
        s.kind = Kind::Signal;
        s.destination = Some(a.unique_name.clone());
        s
    };
    if Command::new("dbus-send")
        .args([
            &format!("--bus={}", d.address),
            &format!("--dest={}", a.unique_name),
            "--type=signal",
            "/x",
            "org.patina.Evil.Double",
            "double:1.5",
        ])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("hostile: sent a double");
    }
    let big = vec![Value::Byte(7); 2 << 20];
    b.send(direct(vec![Value::Array("y".into(), big)], "Big"))
        .unwrap();
    for i in 0..300 {
        b.send(direct(vec![Value::U32(i)], "Flood")).unwrap();
    }
    b.send(direct(vec![Value::str("last")], "Last")).unwrap();
    // Our own conversation goes on, and what we wait for still comes.
    let reply = a
        .call(
            bus_call("GetNameOwner", vec![Value::str(BUS_NAME)]),
            "GetNameOwner",
        )
        .unwrap();
    assert_eq!(reply.first_str(), Some(BUS_NAME));
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = a
        .wait_signal(deadline, |m| m.member.as_deref() == Some("Last"))
        .unwrap();
    assert_eq!(last.first_str(), Some("last"));
    assert!(a.pending.len() <= super::MAX_PENDING);
}
