//! The shim's Task service called directly through the `containerd.task.v3` protos (what
//! containerd 2.x speaks), with a stand-in for containerd's event service that records
//! what the shim publishes. The shim drives its default runtime: patina next to it.

use containerd_shim_patina::proto::*;
use containerd_shim_patina::ttrpc::{self, Client, Handler, RpcResult};
use integration::containerd::{shim_path, target_dir};
use integration::runtime::wait_for;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const V3: &str = "containerd.task.v3.Task";

#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Handler for Events {
    fn handle(&self, service: &str, method: &str, payload: &[u8]) -> RpcResult<Vec<u8>> {
        assert_eq!(
            (service, method),
            ("containerd.services.events.ttrpc.v1.Events", "Forward")
        );
        let req = ForwardRequest::decode(payload).unwrap();
        self.0.lock().unwrap().push(req.envelope.unwrap().topic);
        Ok(Empty {}.encode())
    }
}

fn call<Req: Message, Resp: Message>(c: &mut Client, method: &str, req: &Req) -> Resp {
    match c.call(V3, method, req).expect("ttrpc call") {
        Ok(r) => r,
        Err(status) => panic!("{method}: {status:?}"),
    }
}

#[test]
fn shim_v3_client_lifecycle() {
    integration::container::init_process();
    let dir = std::env::temp_dir().join(format!("pshim-v3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("bundle");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/busybox-bundle.sh");
    let ok = Command::new(fixture)
        .arg(&bundle)
        .args(["sh", "-c", "echo hello; exec sleep 1000"])
        .env("PATINA", target_dir().join("patina"))
        .status()
        .unwrap();
    assert!(ok.success());

    // containerd's event service, as the shim finds it through TTRPC_ADDRESS.
    let events_sock = dir.join("events.sock");
    let events = Arc::new(Events::default());
    let listener = UnixListener::bind(&events_sock).unwrap();
    let handler: Arc<dyn Handler> = events.clone();
    std::thread::spawn(move || ttrpc::serve(listener, handler));

    let mut start = Command::new(shim_path())
        .args(["-namespace", "v3test", "-id", "v3c", "-address"])
        .arg(dir.join("containerd.sock"))
        .arg("start")
        .current_dir(&bundle)
        .env("TTRPC_ADDRESS", &events_sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Runtime options as `ctr --runtime-config-path` sends them: the runtime's root in dir.
    let opts = RuntimeOptions {
        config_body: format!("Root = {:?}\n", dir.join("root").display().to_string()).into_bytes(),
        ..Default::default()
    };
    let any = Any::pack("runtimeoptions.v1.Options", &opts);
    start
        .stdin
        .take()
        .unwrap()
        .write_all(&any.encode())
        .unwrap();
    let out = start.wait_with_output().unwrap();
    assert!(out.status.success());
    let address = String::from_utf8(out.stdout).unwrap();
    assert!(address.starts_with("unix://"), "{address}");
    let mut c = Client::connect(&address).unwrap();

    let log = dir.join("out.log");
    let created: CreateTaskResponse = call(
        &mut c,
        "Create",
        &CreateTaskRequest {
            id: "v3c".into(),
            bundle: bundle.to_string_lossy().into(),
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", log.display()),
            ..Default::default()
        },
    );
    assert!(created.pid > 0);
    let st: StateResponse = call(
        &mut c,
        "State",
        &StateRequest {
            id: "v3c".into(),
            ..Default::default()
        },
    );
    assert_eq!(st.status, status::CREATED);
    let started: StartResponse = call(
        &mut c,
        "Start",
        &StartRequest {
            id: "v3c".into(),
            ..Default::default()
        },
    );
    assert_eq!(started.pid, created.pid);
    let st: StateResponse = call(
        &mut c,
        "State",
        &StateRequest {
            id: "v3c".into(),
            ..Default::default()
        },
    );
    assert_eq!(st.status, status::RUNNING);
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s.contains("hello"))
            .map(drop)
    })
    .is_some());

    let connect: ConnectResponse = call(&mut c, "Connect", &ConnectRequest { id: "v3c".into() });
    assert_eq!(connect.task_pid, created.pid);

    // An exec'd process with its exit code.
    let spec = serde_json::json!({"args": ["sh", "-c", "exit 5"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    let _: Empty = call(
        &mut c,
        "Exec",
        &ExecProcessRequest {
            id: "v3c".into(),
            exec_id: "x".into(),
            spec: Some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: spec.to_string().into_bytes(),
            }),
            ..Default::default()
        },
    );
    let _: StartResponse = call(
        &mut c,
        "Start",
        &StartRequest {
            id: "v3c".into(),
            exec_id: "x".into(),
        },
    );
    let waited: WaitResponse = call(
        &mut c,
        "Wait",
        &WaitRequest {
            id: "v3c".into(),
            exec_id: "x".into(),
        },
    );
    assert_eq!(waited.exit_status, 5);
    let _: DeleteResponse = call(
        &mut c,
        "Delete",
        &DeleteRequest {
            id: "v3c".into(),
            exec_id: "x".into(),
        },
    );

    let pids: PidsResponse = call(&mut c, "Pids", &PidsRequest { id: "v3c".into() });
    assert!(
        pids.processes.iter().any(|p| p.pid == created.pid),
        "{pids:?}"
    );

    // Checkpoint is refused with a reason.
    let refused = c
        .call::<_, Empty>(
            V3,
            "Checkpoint",
            &CheckpointTaskRequest {
                id: "v3c".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let status = refused.expect_err("checkpoint");
    assert_eq!(status.code, ttrpc::Code::Unimplemented as i32);
    assert!(status.message.contains("checkpoint"), "{status:?}");

    let _: Empty = call(
        &mut c,
        "Kill",
        &KillRequest {
            id: "v3c".into(),
            signal: 9,
            ..Default::default()
        },
    );
    let waited: WaitResponse = call(
        &mut c,
        "Wait",
        &WaitRequest {
            id: "v3c".into(),
            ..Default::default()
        },
    );
    assert_eq!(waited.exit_status, 137);
    let deleted: DeleteResponse = call(
        &mut c,
        "Delete",
        &DeleteRequest {
            id: "v3c".into(),
            ..Default::default()
        },
    );
    assert_eq!((deleted.pid, deleted.exit_status), (created.pid, 137));
    let gone = c
        .call::<_, StateResponse>(
            V3,
            "State",
            &StateRequest {
                id: "v3c".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        gone.expect_err("state after delete").code,
        ttrpc::Code::NotFound as i32
    );

    let shims = integration::containerd::children_named("containerd-shim");
    let _: Result<Empty, _> = c
        .call(
            V3,
            "Shutdown",
            &ShutdownRequest {
                id: "v3c".into(),
                now: false,
            },
        )
        .unwrap();
    for pid in shims {
        assert!(integration::container::reap(pid, Duration::from_secs(5)));
    }
    std::thread::sleep(Duration::from_millis(100));
    let topics = events.0.lock().unwrap().clone();
    assert_eq!(
        topics,
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
    assert!(!dir.join("root/v3test/v3c").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// containerd 2.3's bootstrap form of `start`: no -id, a `BootstrapParams` protobuf on
/// stdin, a `BootstrapResult` on stdout; the address it names serves the Task service.
#[test]
fn shim_bootstrap_form_of_start() {
    integration::container::init_process();
    let dir = std::env::temp_dir().join(format!("pshim-boot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bundle")).unwrap();
    let events_sock = dir.join("events.sock");
    let listener = UnixListener::bind(&events_sock).unwrap();
    let handler: Arc<dyn Handler> = Arc::new(Events::default());
    std::thread::spawn(move || ttrpc::serve(listener, handler));

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
    let bundle = dir.join("bundle");
    let shims: Vec<i32> = integration::containerd::children_named("containerd-shim")
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == bundle))
        .collect();
    assert_eq!(
        shims.len(),
        1,
        "expected one shim daemon for the bundle: {shims:?}"
    );
    let mut c = Client::connect(&result.address).unwrap();
    let missing = c
        .call::<_, StateResponse>(
            V3,
            "State",
            &StateRequest {
                id: "nope".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        missing.expect_err("state of an unknown task").code,
        ttrpc::Code::NotFound as i32
    );
    let _: Result<Empty, _> = c
        .call(
            V3,
            "Shutdown",
            &ShutdownRequest {
                id: "boot1".into(),
                now: true,
            },
        )
        .unwrap();
    for pid in shims {
        assert!(
            integration::container::reap(pid, Duration::from_secs(5)),
            "shim {pid} did not exit"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
