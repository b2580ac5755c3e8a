//! The error kinds (docs/cli.md "Errors and exit codes"): each one produced for real,
//! through the CLI (exit 1, one line on stderr, the kind in the JSON log line) and
//! through the shim's task API (the gRPC code of shim/src/errors.rs's table).
//!
//! Beyond runc: runc writes no kind into its log, so through the shim every failure of
//! runc's is Unknown (as under containerd's own runc shim); the shim's own answers (no
//! such task, task already there, not in the created state) have their codes with both.

use containerd_shim_patina::ttrpc::Code;
use integration::shim_client::{unique, Shim};
use integration::{is_runc, runtime_path, Container, Output};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const NS: &str = "errkinds";

/// The last error line of a JSON log.
fn logged_error(log: &Path) -> Value {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("\"error\""))
        .unwrap_or_else(|| panic!("no error line in {text:?}"));
    serde_json::from_str(line).unwrap()
}

/// Runs `args` with a JSON log; asserts exit 1 and one stderr line, and for patina the
/// logged kind (and field); returns the stderr line.
#[track_caller]
fn fails_with(c: &Container, args: &[&str], kind: &str, field: Option<&str>) -> String {
    let log = c.path("log.json");
    let _ = std::fs::remove_file(&log);
    let log_arg = log.to_string_lossy().into_owned();
    let mut argv = vec!["--log", &log_arg, "--log-format", "json"];
    argv.extend_from_slice(args);
    let out: Output = c.rt(&argv);
    assert_eq!(out.code, Some(1), "{args:?}: {out:#?}");
    let lines = out.stderr_lines();
    if !is_runc() {
        assert_eq!(lines.len(), 1, "{args:?}: one line: {out:#?}");
        let logged = logged_error(&log);
        assert_eq!(logged["kind"], kind, "{args:?}: {logged}");
        assert_eq!(logged["field"].as_str(), field, "{args:?}: {logged}");
        assert_eq!(logged["msg"].as_str(), lines[0].strip_prefix("patina: "));
    }
    lines.last().copied().unwrap_or_default().to_string()
}

#[test]
fn cli_error_kinds_exit_1_with_one_line() {
    let mut c = Container::new("kinds");
    c.config["linux"].as_object_mut().unwrap().remove("sysctl");

    let line = fails_with(&c, &["state", "no-such-container"], "not_found", None);
    // Beyond runc: its message does not name the container.
    assert!(is_runc() || line.contains("no-such-container"), "{line}");

    // A sysctl of the host's: not namespaced (runc refuses it too).
    c.config["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    c.write_config();
    let (b, id) = (c.bundle.to_string_lossy().into_owned(), c.id.clone());
    let create = ["create", "--bundle", &b, &id];
    fails_with(&c, &create, "invalid_config", Some("linux.sysctl"));
    assert!(c.state().is_none(), "nothing left after a refused config");

    // A resctrl group: patina does not implement intelRdt. Beyond runc: runc 1.1.5
    // creates the container on a host without resctrl, the field ignored.
    c.config["linux"].as_object_mut().unwrap().remove("sysctl");
    c.config["linux"]["intelRdt"] = json!({"closID": "patina-test"});
    c.write_config();
    if is_runc() {
        c.create().assert_ok();
        c.delete(true).assert_ok();
    } else {
        fails_with(&c, &create, "unsupported", Some("linux.intelRdt"));
        assert!(
            c.state().is_none(),
            "nothing left after an unsupported field"
        );
    }
    c.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("intelRdt");

    // A bind mount of a missing source fails in the container's init: the OS error (and
    // its kind) comes back over the init channel.
    let missing = c.path("no-such-source").to_string_lossy().into_owned();
    integration::spec::add_mount(&mut c.config, "/mnt", "bind", &missing, &["bind"]);
    c.write_config();
    let line = fails_with(&c, &create, "os", None);
    if !is_runc() {
        assert!(line.contains("ENOENT"), "{line}");
    }
    assert!(c.state().is_none(), "nothing left after a failed mount");

    integration::spec::remove_mount(&mut c.config, "/mnt");
    c.create_ok();
    fails_with(&c, &create, "already_exists", None);
    c.start().assert_ok();
    let line = fails_with(&c, &["start", &id], "wrong_state", None);
    // Beyond runc: its message does not name the container.
    assert!(is_runc() || line.contains(&id), "{line}");
    fails_with(&c, &["resume", &id], "wrong_state", None);
    c.delete(true).assert_ok();
}

/// The code of a failed call, with its message for the assertion's text.
fn code_of<T: std::fmt::Debug>(
    r: Result<T, containerd_shim_patina::ttrpc::Status>,
) -> (i32, String) {
    let status = r.expect_err("the call should fail");
    (status.code, status.message)
}

/// What a runtime failure answers: the kind's code from patina, Unknown from runc.
fn from_runtime(code: Code) -> i32 {
    if is_runc() {
        Code::Unknown as i32
    } else {
        code as i32
    }
}

fn edit_config(shim: &Shim, edit: impl FnOnce(&mut Value)) {
    let path = shim.bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut spec);
    std::fs::write(&path, spec.to_string()).unwrap();
}

#[test]
fn shim_answers_each_kind_with_its_grpc_code() {
    let id = unique("kinds");
    let mut shim = Shim::start("kinds", (NS, &id), &["sleep", "1000"], |_| None);
    let runtime = runtime_path().to_string_lossy().into_owned();
    let options = shim.runc_options(|o| o.binary_name = runtime.clone());
    let log = shim.dir.join("init.log");
    // The shim gives the runtime <Root>/<namespace>, as containerd's runc shim does.
    let (root, dir) = (shim.dir.join("root").join(NS), shim.dir.clone());
    // Output to files: a created container's init keeps the runtime's stdio open.
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&runtime);
        cmd.arg("--root").arg(&root).args(args);
        integration::runtime::exec(&mut cmd, &dir, Duration::from_secs(30)).assert_ok();
    };

    // The shim's own: no such task.
    let (code, msg) = code_of(shim.state(""));
    assert_eq!(code, Code::NotFound as i32, "{msg}");

    // The runtime's: a refused field, an unimplemented one.
    edit_config(&shim, |s| {
        s["linux"]["sysctl"] = json!({"kernel.panic": "1"})
    });
    let (code, msg) = code_of(shim.create(Some(options.clone()), &log));
    assert_eq!(code, from_runtime(Code::InvalidArgument), "{msg}");
    edit_config(&shim, |s| {
        s["linux"].as_object_mut().unwrap().remove("sysctl");
    });
    // Beyond runc: runc 1.1.5 ignores intelRdt on a host without resctrl.
    if is_runc() {
        println!("intelRdt (Unimplemented): not run against runc, which ignores the field");
    } else {
        edit_config(&shim, |s| {
            s["linux"]["intelRdt"] = json!({"closID": "patina-test"})
        });
        let (code, msg) = code_of(shim.create(Some(options.clone()), &log));
        assert_eq!(code, Code::Unimplemented as i32, "{msg}");
        edit_config(&shim, |s| {
            s["linux"].as_object_mut().unwrap().remove("intelRdt");
        });
    }

    // The runtime's: the id is taken in its root (by a container the shim never made).
    let bundle = shim.bundle.to_string_lossy().into_owned();
    cli(&["create", "--bundle", &bundle, &id]);
    let (code, msg) = code_of(shim.create(Some(options.clone()), &log));
    cli(&["delete", "--force", &id]);
    assert_eq!(code, from_runtime(Code::AlreadyExists), "{msg}");

    shim.create(Some(options.clone()), &log).expect("Create");
    // The shim's own: a second Create of the same task.
    let (code, msg) = code_of(shim.create(Some(options), &log));
    assert_eq!(code, Code::AlreadyExists as i32, "{msg}");
    shim.start_task("");
    // The shim's own: Start of a running task.
    let start = containerd_shim_patina::proto::StartRequest {
        id: id.clone(),
        exec_id: String::new(),
    };
    let (code, msg) =
        code_of(shim.try_call::<_, containerd_shim_patina::proto::StartResponse>("Start", &start));
    assert_eq!(code, Code::FailedPrecondition as i32, "{msg}");
    // The runtime's: resume of a container that is not paused.
    let resume = containerd_shim_patina::proto::ResumeRequest { id: id.clone() };
    let (code, msg) =
        code_of(shim.try_call::<_, containerd_shim_patina::proto::Empty>("Resume", &resume));
    assert_eq!(code, from_runtime(Code::FailedPrecondition), "{msg}");

    // The runtime's: an OS error (the kernel refuses a cpuset of a CPU it does not have).
    let update = containerd_shim_patina::proto::UpdateTaskRequest {
        id: id.clone(),
        resources: Some(containerd_shim_patina::proto::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
            value: json!({"cpu": {"cpus": "4095"}}).to_string().into_bytes(),
        }),
        ..Default::default()
    };
    let (code, msg) =
        code_of(shim.try_call::<_, containerd_shim_patina::proto::Empty>("Update", &update));
    assert_eq!(code, from_runtime(Code::Internal), "{msg}");

    // The runtime's: the container went behind the shim's back.
    cli(&["delete", "--force", &id]);
    let pause = containerd_shim_patina::proto::PauseRequest { id: id.clone() };
    let (code, msg) =
        code_of(shim.try_call::<_, containerd_shim_patina::proto::Empty>("Pause", &pause));
    assert_eq!(code, from_runtime(Code::NotFound), "{msg}");
    shim.wait("");
    shim.delete("");
}
