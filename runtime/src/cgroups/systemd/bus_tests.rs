//! The driver's D-Bus conversation, against a stand-in for systemd's Manager on a
//! private dbus-daemon: what StartTransientUnit carries (types included), waiting for
//! JobRemoved (also when it overtakes the reply), the UnitExists retry after
//! ResetFailedUnit, a failed job, StopUnit of a unit that is gone. What systemd itself
//! does with the calls is checked in the systemd guest (integration/tests/systemd_cgroup.rs).

use std::sync::mpsc;
use std::thread;

use super::{properties, Unit, MANAGER, SYSTEMD, SYSTEMD_PATH};
use crate::dbus::daemon_tests::daemon;
use crate::dbus::wire::{Kind, Message, Value};
use crate::dbus::{Connection, BUS_NAME};

/// How the stand-in answers.
#[derive(Clone, Copy)]
enum Script {
    /// Reply, then JobRemoved "done".
    Done,
    /// JobRemoved first, then the reply (the client must have kept the signal).
    SignalFirst,
    /// UnitExists on the first start, then "done".
    ExistsOnce,
    /// The job ends "failed".
    JobFails,
    /// Another peer sends the caller a JobRemoved "failed" for the job first, directly.
    Spoofed,
}

/// Serve systemd's name until told to stop; every call received goes to `seen`.
fn fake_systemd(address: &str, script: Script, seen: mpsc::Sender<Message>) -> mpsc::Sender<()> {
    let mut bus = Connection::open(address).unwrap();
    let take = Message::method_call(BUS_NAME, "/org/freedesktop/DBus", BUS_NAME, "RequestName")
        // Allow and take replacement: an earlier stand-in of the test may still hold it.
        .with_body(vec![Value::str(SYSTEMD), Value::U32(3)]);
    assert_eq!(
        bus.call(take, "RequestName").unwrap().body,
        vec![Value::U32(1)]
    );
    let mut impostor = Connection::open(address).unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let mut starts = 0;
        let mut job = 0u32;
        while stop_rx.try_recv().is_err() {
            let Ok(m) = bus.read() else { return };
            if m.kind != Kind::MethodCall {
                continue;
            }
            let member = m.member.clone().unwrap_or_default();
            let unit = m.first_str().unwrap_or_default().to_owned();
            let _ = seen.send(m.clone());
            let reply = |body: Vec<Value>| {
                Message {
                    kind: Kind::Return,
                    reply_serial: Some(m.serial),
                    destination: m.sender.clone(),
                    path: None,
                    interface: None,
                    member: None,
                    ..m.clone()
                }
                .with_body(body)
            };
            let error = |name: &str, text: &str| {
                Message {
                    kind: Kind::Error,
                    error_name: Some(format!("{SYSTEMD}.{name}")),
                    reply_serial: Some(m.serial),
                    destination: m.sender.clone(),
                    path: None,
                    interface: None,
                    member: None,
                    ..m.clone()
                }
                .with_body(vec![Value::str(text)])
            };
            job += 1;
            let path = format!("/org/freedesktop/systemd1/job/{job}");
            let removed = |result: &str| {
                let mut s = Message::method_call("", SYSTEMD_PATH, MANAGER, "JobRemoved")
                    .with_body(vec![
                        Value::U32(job),
                        Value::Path(path.clone()),
                        Value::str(&unit),
                        Value::str(result),
                    ]);
                s.kind = Kind::Signal;
                s.destination = None;
                s
            };
            match member.as_str() {
                "StartTransientUnit" => {
                    starts += 1;
                    match (script, starts) {
                        (Script::ExistsOnce, 1) => {
                            bus.send(error("UnitExists", &format!("Unit {unit} already exists.")))
                                .unwrap();
                        }
                        (Script::SignalFirst, _) => {
                            bus.send(removed("done")).unwrap();
                            bus.send(reply(vec![Value::Path(path.clone())])).unwrap();
                        }
                        (Script::Spoofed, _) => {
                            let mut fake = removed("failed");
                            fake.destination = m.sender.clone();
                            impostor.send(fake).unwrap();
                            // Let the forgery arrive first.
                            thread::sleep(std::time::Duration::from_millis(50));
                            bus.send(reply(vec![Value::Path(path.clone())])).unwrap();
                            bus.send(removed("done")).unwrap();
                        }
                        (Script::JobFails, _) => {
                            bus.send(reply(vec![Value::Path(path.clone())])).unwrap();
                            bus.send(removed("failed")).unwrap();
                        }
                        _ => {
                            bus.send(reply(vec![Value::Path(path.clone())])).unwrap();
                            bus.send(removed("done")).unwrap();
                        }
                    }
                }
                "StopUnit" => {
                    bus.send(error("NoSuchUnit", &format!("Unit {unit} not loaded.")))
                        .unwrap();
                }
                _ => {
                    bus.send(reply(vec![])).unwrap();
                }
            }
        }
    });
    stop_tx
}

fn members(rx: &mpsc::Receiver<Message>) -> Vec<String> {
    rx.try_iter().filter_map(|m| m.member).collect()
}

fn unit() -> Unit {
    Unit::from_cgroups_path(Some("system.slice:docker:abc"), "abc", None).unwrap()
}

#[test]
fn start_sends_runcs_properties_and_waits_for_the_job() {
    let Some(d) = daemon("sd_start") else { return };
    for script in [Script::Done, Script::SignalFirst, Script::Spoofed] {
        let (tx, rx) = mpsc::channel();
        let stop = fake_systemd(&d.address, script, tx);
        let mut bus = Connection::open(&d.address).unwrap();
        let r: oci_spec::runtime::LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":1048576},"pids":{"limit":5}}"#).unwrap();
        unit()
            .start_on(
                &mut bus,
                4242,
                "patina container abc",
                properties::resources(&r).unwrap(),
            )
            .unwrap();
        let calls: Vec<Message> = rx.try_iter().collect();
        let start = calls
            .iter()
            .find(|m| m.member.as_deref() == Some("StartTransientUnit"))
            .expect("StartTransientUnit sent");
        assert_eq!(start.destination.as_deref(), Some(SYSTEMD));
        assert_eq!(start.interface.as_deref(), Some(MANAGER));
        assert_eq!(
            crate::dbus::wire::signature_of(&start.body),
            "ssa(sv)a(sa(sv))"
        );
        assert_eq!(start.body[0], Value::str("docker-abc.scope"));
        assert_eq!(start.body[1], Value::str("replace"));
        let Value::Array(_, props) = &start.body[2] else {
            panic!()
        };
        let get = |name: &str| {
            props.iter().find_map(|p| match p {
                Value::Struct(f) if f[0] == Value::str(name) => Some(f[1].clone()),
                _ => None,
            })
        };
        let v = |x: Value| Some(Value::variant(x));
        assert_eq!(
            get("PIDs"),
            v(Value::Array("u".into(), vec![Value::U32(4242)]))
        );
        assert_eq!(get("Delegate"), v(Value::Bool(true)));
        assert_eq!(get("DefaultDependencies"), v(Value::Bool(false)));
        assert_eq!(get("Slice"), v(Value::str("system.slice")));
        assert_eq!(get("Description"), v(Value::str("patina container abc")));
        assert_eq!(get("MemoryMax"), v(Value::U64(1_048_576)));
        assert_eq!(get("TasksMax"), v(Value::U64(5)));
        let _ = stop.send(());
    }
}

#[test]
fn a_leftover_unit_is_reset_then_started_and_a_failed_job_is_named() {
    let Some(d) = daemon("sd_exists") else { return };
    let (tx, rx) = mpsc::channel();
    let stop = fake_systemd(&d.address, Script::ExistsOnce, tx);
    let mut bus = Connection::open(&d.address).unwrap();
    unit().start_on(&mut bus, 1, "d", vec![]).unwrap();
    assert_eq!(
        members(&rx),
        [
            "StartTransientUnit",
            "ResetFailedUnit",
            "StartTransientUnit"
        ]
    );
    let _ = stop.send(());

    let (tx, rx) = mpsc::channel();
    let stop = fake_systemd(&d.address, Script::JobFails, tx);
    let mut bus = Connection::open(&d.address).unwrap();
    let err = unit()
        .start_on(&mut bus, 1, "d", vec![])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker-abc.scope")
            && err.contains("job failed")
            && err.contains("journalctl"),
        "{err}"
    );
    // The failed unit is reset, so the name is free for the next container.
    assert!(members(&rx).contains(&"ResetFailedUnit".to_string()));
    let _ = stop.send(());
}

#[test]
fn stopping_a_unit_that_is_gone_is_fine() {
    let Some(d) = daemon("sd_stop") else { return };
    let (tx, rx) = mpsc::channel();
    let stop = fake_systemd(&d.address, Script::Done, tx);
    let mut bus = Connection::open(&d.address).unwrap();
    unit().stop_on(&mut bus).unwrap();
    assert_eq!(members(&rx), ["StopUnit", "ResetFailedUnit"]);
    let _ = stop.send(());
}
