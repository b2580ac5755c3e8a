//! The shim's Task service called directly through the `containerd.task.v3` protos (what
//! containerd 2.x speaks), with a stand-in for containerd's event service that records
//! what the shim publishes (`integration::shim_client`). The shim drives its default
//! runtime: patina next to it.

use containerd_shim_patina::proto::*;
use containerd_shim_patina::ttrpc::{self, Client};
use integration::containerd::shim_path;
use integration::runtime::wait_for;
use integration::shim_client::{daemons_in, scratch_dir, shutdown, Events, Shim};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn shim_v3_client_lifecycle() {
    // Runtime options as `ctr --runtime-config-path` sends them: the runtime's root in dir.
    let root_option = |dir: &std::path::Path| {
        let root = dir.join("root").display().to_string();
        let opts = RuntimeOptions {
            config_body: format!("Root = {root:?}\n").into_bytes(),
            ..Default::default()
        };
        Some(Any::pack("runtimeoptions.v1.Options", &opts))
    };
    let args = ["sh", "-c", "echo hello; exec sleep 1000"];
    let mut shim = Shim::start("v3", ("v3test", "v3c"), &args, root_option);

    let log = shim.dir.join("out.log");
    let created = shim.create(None, &log).expect("Create");
    assert!(created.pid > 0);
    assert_eq!(shim.state("").unwrap().status, status::CREATED);
    assert_eq!(shim.start_task(""), created.pid);
    assert_eq!(shim.state("").unwrap().status, status::RUNNING);
    let hello = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.contains("hello"))
    });
    assert!(hello.is_some());

    let connect: ConnectResponse = shim.call("Connect", &ConnectRequest { id: "v3c".into() });
    assert_eq!(connect.task_pid, created.pid);

    // An exec'd process with its exit code.
    assert_eq!(shim.exec("x", &["sh", "-c", "exit 5"], None), 5);

    let pids: PidsResponse = shim.call("Pids", &PidsRequest { id: "v3c".into() });
    assert!(
        pids.processes.iter().any(|p| p.pid == created.pid),
        "{pids:?}"
    );

    // Checkpoint without an image path is refused with a reason.
    let checkpoint = CheckpointTaskRequest {
        id: "v3c".into(),
        ..Default::default()
    };
    let status = shim
        .try_call::<_, Empty>("Checkpoint", &checkpoint)
        .expect_err("checkpoint");
    assert_eq!(status.code, ttrpc::Code::InvalidArgument as i32);
    assert!(status.message.contains("image path"), "{status:?}");

    shim.kill(9, false).expect("Kill");
    assert_eq!(shim.wait(""), 137);
    let deleted = shim.delete("");
    assert_eq!((deleted.pid, deleted.exit_status), (created.pid, 137));
    let gone = shim.state("").expect_err("state after delete");
    assert_eq!(gone.code, ttrpc::Code::NotFound as i32);

    assert!(shim.shutdown(false), "shim {} did not exit", shim.pid);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        shim.events.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    assert!(!shim.dir.join("root/v3test/v3c").exists());
}

/// containerd 2.3's bootstrap form of `start`: no -id, a `BootstrapParams` protobuf on
/// stdin, a `BootstrapResult` on stdout; the address it names serves the Task service.
#[test]
fn shim_bootstrap_form_of_start() {
    integration::container::init_process();
    let dir = scratch_dir("boot");
    std::fs::create_dir_all(dir.join("bundle")).unwrap();
    let events_sock = dir.join("events.sock");
    let _events = Events::serve(&events_sock);

    let params = BootstrapParams {
        instance_id: "boot1".into(),
        namespace: "boottest".into(),
        containerd_grpc_address: dir.join("containerd.sock").to_string_lossy().into(),
        containerd_ttrpc_address: events_sock.to_string_lossy().into(),
        socket_dir: dir.join("s").to_string_lossy().into(),
        ..Default::default()
    };
    let mut start = Command::new(shim_path())
        .arg("start")
        .current_dir(dir.join("bundle"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    start
        .stdin
        .take()
        .unwrap()
        .write_all(&params.encode())
        .unwrap();
    let out = start.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let result = BootstrapResult::decode(&out.stdout).expect("a BootstrapResult on stdout");
    assert_eq!((result.version, result.protocol.as_str()), (3, "ttrpc"));
    assert!(result.address.starts_with("unix://"), "{}", result.address);

    // This test's shim daemon: a child (we are the subreaper) working in our bundle.
    let shims = daemons_in(&dir.join("bundle"));
    assert_eq!(shims.len(), 1, "one shim daemon for the bundle: {shims:?}");
    let mut c = Client::connect(&result.address).unwrap();
    let missing = StateRequest {
        id: "nope".into(),
        ..Default::default()
    };
    let missing = c
        .call::<_, StateResponse>(integration::shim_client::V3, "State", &missing)
        .unwrap();
    assert_eq!(
        missing.expect_err("state of an unknown task").code,
        ttrpc::Code::NotFound as i32
    );
    assert!(
        shutdown(&mut c, "boot1", shims[0], true),
        "shim {} did not exit",
        shims[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
