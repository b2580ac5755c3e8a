//! `process.terminal: true` with `--console-socket`: the pty master arrives
//! over SCM_RIGHTS and carries the container's terminal.

use integration::console::{collect_until, read_master, receive_master};
use integration::Container;
use serde_json::json;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

fn setup(c: &mut Container, script: &str) -> (std::thread::JoinHandle<OwnedFd>, String) {
    c.config["process"]["terminal"] = json!(true);
    c.config["process"]["consoleSize"] = json!({ "height": 31, "width": 107 });
    c.set_sh(script);
    let sock = c.path("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    (
        receive_master(listener),
        sock.to_string_lossy().into_owned(),
    )
}

#[test]
fn console_socket_tty_and_size() {
    let mut c = Container::new("terminal");
    let (h, sock) = setup(
        &mut c,
        "tty; stty size; read line; echo got:$line; echo END",
    );
    c.create_with(&["--console-socket", &sock]).assert_ok();
    let master = std::fs::File::from(h.join().expect("console fd"));
    let rx = read_master(master.try_clone().unwrap());
    c.start().assert_ok();
    let mut out = String::new();
    // The whole line, newline included: what we type next is echoed at once.
    collect_until(&rx, &mut out, "31 107\r\n");
    (&master).write_all(b"hello-tty\n").unwrap();
    collect_until(&rx, &mut out, "END");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "tty: {out:?}");
    assert_eq!(lines[1], "31 107", "{out:?}");
    assert!(lines.contains(&"got:hello-tty"), "{out:?}");
    c.wait_status("stopped");
}

/// A process running as another user owns its terminal (uid), the group staying the
/// devpts one (gid=5 in the default config), as runc sets it; root's stays 0:5.
#[test]
fn terminal_belongs_to_the_process_user() {
    for (uid, gid, want) in [(1000, 100, "1000:5"), (0, 0, "0:5")] {
        let mut c = Container::new("ttyowner");
        let (h, sock) = setup(&mut c, "stat -c %u:%g $(tty); echo END");
        c.config["process"]["user"] = json!({ "uid": uid, "gid": gid });
        c.create_with(&["--console-socket", &sock]).assert_ok();
        let master = std::fs::File::from(h.join().expect("console fd"));
        let rx = read_master(master);
        c.start().assert_ok();
        let mut out = String::new();
        collect_until(&rx, &mut out, "END");
        let first = out
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r');
        assert_eq!(first, want, "uid {uid}: {out:?}");
        c.wait_status("stopped");
    }
}

/// A read-only /dev with a terminal: /dev/console is bound before /dev turns read-only.
#[test]
fn terminal_with_a_read_only_dev() {
    let mut c = Container::new("ttyrodev");
    let (h, sock) = setup(&mut c, "tty; touch /dev/x 2>&1; echo END");
    let dev = c.config["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .expect("the default config mounts /dev");
    dev["options"].as_array_mut().unwrap().push(json!("ro"));
    c.create_with(&["--console-socket", &sock]).assert_ok();
    let master = std::fs::File::from(h.join().expect("console fd"));
    let rx = read_master(master);
    c.start().assert_ok();
    let mut out = String::new();
    collect_until(&rx, &mut out, "END");
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.contains("Read-only file system"), "{out:?}");
    c.wait_status("stopped");
}

#[test]
fn terminal_is_controlling_and_stdio() {
    let mut c = Container::new("terminal2");
    let (h, sock) = setup(
        &mut c,
        "for i in 0 1 2; do readlink /proc/self/fd/$i; done; stat -c %t /dev/console; cut -d' ' -f7 /proc/self/stat; echo END",
    );
    c.run_with(&["--detach", "--console-socket", &sock])
        .assert_ok();
    let master = std::fs::File::from(h.join().expect("console fd"));
    let rx = read_master(master);
    let mut out = String::new();
    collect_until(&rx, &mut out, "END");
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    let pts = lines[0];
    assert!(pts.starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(lines[1], pts, "{out:?}");
    assert_eq!(lines[2], pts, "{out:?}");
    // /dev/console is bind-mounted from the pty slave (a pts device: major 0x88).
    assert_eq!(lines[3], "88", "{out:?}");
    // A controlling terminal: tty_nr in /proc/self/stat is set.
    assert_ne!(lines[4], "0", "no controlling terminal: {out:?}");
}

/// `run` in the foreground with `process.terminal` and no --console-socket: the runtime
/// relays between its own terminal and the container's pty, with its size (runc too).
#[test]
fn foreground_run_relays_its_terminal() {
    let mut c = Container::new("ttyrelay");
    c.config["process"]["terminal"] = json!(true);
    c.set_sh("tty; stty size; echo END");
    c.write_config();
    let runtime = integration::runtime_path().to_string_lossy().into_owned();
    let (root, bundle) = (
        c.root.to_string_lossy().into_owned(),
        c.bundle.to_string_lossy().into_owned(),
    );
    // A real terminal of 29x103 for the runtime, as a user's shell would give it.
    let out = integration::engines::run_in_pty(
        &[&runtime, "--root", &root, "run", "--bundle", &bundle, &c.id],
        &[],
        29,
        103,
        &c.dir,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("/dev/pts/"), "no tty inside: {out:?}");
    assert!(out.stdout.contains("END"), "{out:?}");
    // The relay passes lines as the program wrote them (ONLCR cleared on the pty, as
    // runc): "\n", not "\r\n".
    assert!(
        out.stdout.contains("END\n") && !out.stdout.contains("\r\n"),
        "{out:?}"
    );
    if integration::is_runc() {
        // beyond runc: runc 1.1.5 sizes the pty only after the program has started, so
        // an immediate `stty size` may see 0x0; patina sizes it before the program runs.
        return;
    }
    assert!(out.stdout.contains("29 103"), "size not relayed: {out:?}");
}

/// The same without any terminal (a new session, stdio not a tty): the runtime has
/// nothing to relay to, so it fails at once instead of leaving an interactive program
/// waiting for input forever (runc: "open /dev/tty: no such device or address").
#[test]
fn foreground_run_without_a_terminal_fails_at_once() {
    use std::os::unix::process::CommandExt;
    let mut c = Container::new("ttynone");
    c.config["process"]["terminal"] = json!(true);
    c.set_args(&["sh"]);
    c.write_config();
    let b = c.bundle.to_string_lossy().into_owned();
    let mut cmd = c.command();
    // SAFETY: setsid in the forked child before exec: async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = c.exec(cmd.args(["run", "--bundle", &b, &c.id]));
    out.assert_failed();
    if !integration::is_runc() {
        assert!(
            out.stderr.contains("/dev/tty") && out.stderr.contains("process.terminal"),
            "{out:?}"
        );
    }
    assert!(c.state().is_none(), "{out:?}");
}
