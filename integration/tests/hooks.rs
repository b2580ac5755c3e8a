//! OCI hooks: order, args, env, state on stdin, timeout, failure.

use integration::{is_runc, spec, Container};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Records one invocation: its name in `<dir>/order`, then args, env and
/// the state from stdin in `<dir>/<name>.*`. Usage: hook.sh NAME DIR.
const HOOK: &str = "#!/bin/sh\n\
d=\"$2\"\n\
echo \"$1\" >> \"$d/order\"\n\
echo \"$*\" > \"$d/$1.args\"\n\
env > \"$d/$1.env\"\n\
cat > \"$d/$1.state\"\n";

struct Hooks {
    log: PathBuf,
    host_script: String,
}

fn setup(c: &mut Container) -> Hooks {
    let log = c.path("hooklog");
    fs::create_dir_all(&log).unwrap();
    let host_script = c.path("hook.sh");
    write_exec(&host_script, HOOK);
    // startContainer runs in the container: the path resolves in its rootfs.
    write_exec(&c.rootfs.join("hook.sh"), HOOK);
    spec::add_mount(
        &mut c.config,
        "/hooklog",
        "bind",
        log.to_str().unwrap(),
        &["bind"],
    );
    Hooks {
        log,
        host_script: host_script.to_string_lossy().into_owned(),
    }
}

fn write_exec(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(p, text).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn hook(path: &str, name: &str, dir: &str) -> Value {
    json!({
        "path": path,
        "args": ["hook.sh", name, dir],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("HOOK_VAR=value-of-{name}")]
    })
}

fn order(h: &Hooks) -> Vec<String> {
    fs::read_to_string(h.log.join("order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn state_of(h: &Hooks, name: &str) -> Value {
    let text = fs::read_to_string(h.log.join(format!("{name}.state")))
        .unwrap_or_else(|e| panic!("{name} state: {e}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} got no JSON state ({e}): {text:?}"))
}

#[test]
fn all_hooks_order_args_env_state() {
    let mut c = Container::new("hooks");
    let h = setup(&mut c);
    let hd = h.log.to_str().unwrap().to_string();
    let hs = h.host_script.clone();
    c.config["annotations"] = json!({ "org.example.key": "value", "another": "one" });
    c.config["hooks"] = json!({
        "prestart": [hook(&hs, "prestart", &hd)],
        "createRuntime": [hook(&hs, "createRuntime", &hd), hook(&hs, "createRuntime2", &hd)],
        "createContainer": [hook(&hs, "createContainer", &hd)],
        "startContainer": [hook("/hook.sh", "startContainer", "/hooklog")],
        "poststart": [hook(&hs, "poststart", &hd)],
        "poststop": [hook(&hs, "poststop", &hd)]
    });
    c.set_sh("echo program >> /hooklog/order; exec sleep 1000");

    let pid = c.create_ok();
    let mut created = vec![
        "prestart",
        "createRuntime",
        "createRuntime2",
        "createContainer",
    ];
    if is_runc() {
        // beyond runc: runc 1.1.5 runs poststart hooks during `create` (before
        // the user program can run); the spec wants them after `start`.
        created.push("poststart");
    }
    assert_eq!(order(&h), created);
    c.start().assert_ok();
    let all = integration::runtime::wait_for(Duration::from_secs(10), || {
        let o = order(&h);
        (o.len() >= 7).then_some(o)
    })
    .unwrap_or_else(|| panic!("hooks after start: {:?}", order(&h)));
    if is_runc() {
        // beyond runc: see above.
        assert_eq!(all[5..], ["startContainer", "program"]);
    } else {
        assert_eq!(
            all[..5],
            [
                "prestart",
                "createRuntime",
                "createRuntime2",
                "createContainer",
                "startContainer"
            ]
        );
        // poststart runs after the user program was started: their order is not fixed.
        let mut rest = all[5..].to_vec();
        rest.sort();
        assert_eq!(rest, ["poststart", "program"]);
    }
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
    c.delete(false).assert_ok();
    assert_eq!(order(&h).last().map(String::as_str), Some("poststop"));
    assert_eq!(order(&h).len(), 8);

    for name in [
        "prestart",
        "createRuntime",
        "createRuntime2",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let args = fs::read_to_string(h.log.join(format!("{name}.args"))).unwrap();
        let dir = if name == "startContainer" {
            "/hooklog"
        } else {
            hd.as_str()
        };
        assert_eq!(args.trim(), format!("{name} {dir}"), "{name} args");
        let env = fs::read_to_string(h.log.join(format!("{name}.env"))).unwrap();
        assert!(
            env.lines()
                .any(|l| l == format!("HOOK_VAR=value-of-{name}")),
            "{name} env: {env}"
        );
        assert!(
            !env.contains("CARGO"),
            "{name} inherited the runtime's environment: {env}"
        );
        let st = state_of(&h, name);
        assert_eq!(st["id"], c.id.as_str(), "{name}: {st}");
        assert!(
            st["ociVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("1.")),
            "{name}: {st}"
        );
        assert_eq!(st["bundle"], c.bundle.to_str().unwrap(), "{name}: {st}");
        assert_eq!(
            st["annotations"]["org.example.key"], "value",
            "{name}: {st}"
        );
        assert_eq!(st["annotations"]["another"], "one", "{name}: {st}");
        let status = st["status"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {st}"));
        let want: &[&str] = match name {
            "poststart" if is_runc() => &["created"], // beyond runc: see above
            "poststart" => &["running"],
            "poststop" => &["stopped"],
            "startContainer" => &["created", "running"],
            _ => &["creating", "created"],
        };
        assert!(want.contains(&status), "{name} status {status:?}: {st}");
        if is_runc() && (name == "createContainer" || name == "startContainer") {
            // beyond runc: runc 1.1.5 computes this state inside the container
            // and reports the pid as seen in its pid namespace (1); the spec
            // wants the pid as seen by the host.
            assert_eq!(st["pid"].as_i64(), Some(1), "{name}: {st}");
        } else if name != "poststop" {
            assert_eq!(st["pid"].as_i64(), Some(pid as i64), "{name}: {st}");
        }
    }
}

#[test]
fn hook_timeout_fails_create() {
    let mut c = Container::new("hooktimeout");
    let h = setup(&mut c);
    let slow = c.path("slow.sh");
    write_exec(
        &slow,
        "#!/bin/sh\necho started >> \"$1/order\"\nexec sleep 20\n",
    );
    c.config["hooks"] = json!({
        "createRuntime": [{ "path": slow.to_str().unwrap(), "args": ["slow.sh", h.log.to_str().unwrap()], "timeout": 1 }]
    });
    let t = Instant::now();
    let out = c.create();
    out.assert_failed();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "hook timeout not enforced: {:?}",
        t.elapsed()
    );
    assert_eq!(order(&h), ["started"], "hook did not run");
    assert!(
        c.state().is_none(),
        "container exists after a failed create"
    );
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let mut c = Container::new("hookfail");
    let h = setup(&mut c);
    let hd = h.log.to_str().unwrap().to_string();
    let bad = c.path("bad.sh");
    write_exec(&bad, "#!/bin/sh\necho bad-ran >> \"$1/order\"\nexit 3\n");
    c.config["hooks"] = json!({
        "createRuntime": [{ "path": bad.to_str().unwrap(), "args": ["bad.sh", hd] }],
        "createContainer": [hook(&h.host_script, "createContainer", &hd)],
        "poststop": [hook(&h.host_script, "poststop", &hd)]
    });
    c.set_sh("echo program >> /hooklog/order");
    c.create().assert_failed();
    assert!(
        c.state().is_none(),
        "container exists after a failed create"
    );
    let o = order(&h);
    assert_eq!(o.first().map(String::as_str), Some("bad-ran"), "{o:?}");
    assert!(
        !o.iter().any(|x| x == "createContainer" || x == "program"),
        "ran past the failed hook: {o:?}"
    );
    // The leak check at drop asserts: no state dir, no process, no mount, no cgroup.
}

#[test]
fn failing_poststart_hook_is_a_warning() {
    // Spec: if a poststart hook fails, the runtime MUST log a warning, and the
    // remaining hooks and lifecycle continue as if the hook had succeeded.
    let mut c = Container::new("poststartfail");
    let h = setup(&mut c);
    let hd = h.log.to_str().unwrap().to_string();
    let bad = c.path("bad.sh");
    write_exec(&bad, "#!/bin/sh\nexit 1\n");
    c.config["hooks"] = json!({
        "poststart": [{ "path": bad.to_str().unwrap() }, hook(&h.host_script, "poststart2", &hd)]
    });
    c.set_args(&["sleep", "1000"]);
    if is_runc() {
        // beyond runc: runc 1.1.5 runs poststart hooks during create and
        // treats a failure as fatal: create fails and cleans up.
        c.create().assert_failed();
        assert!(c.state().is_none());
        assert!(
            order(&h).is_empty(),
            "runc ran the remaining hooks: {:?}",
            order(&h)
        );
    } else {
        c.create_ok();
        let out = c.start();
        out.assert_ok();
        assert!(
            !out.stderr.trim().is_empty(),
            "no warning logged for the failed poststart hook"
        );
        assert_eq!(c.status(), "running");
        assert_eq!(
            order(&h),
            ["poststart2"],
            "remaining poststart hooks did not run"
        );
    }
}

#[test]
fn failing_poststop_hook_does_not_block_delete() {
    let mut c = Container::new("poststopfail");
    let bad = c.path("bad.sh");
    write_exec(&bad, "#!/bin/sh\nexit 1\n");
    c.config["hooks"] = json!({ "poststop": [{ "path": bad.to_str().unwrap() }] });
    c.set_args(&["true"]);
    c.create_ok();
    c.start().assert_ok();
    c.wait_status("stopped");
    // Spec: a failing poststop hook is logged as a warning; delete continues.
    c.delete(false).assert_ok();
    assert!(c.state().is_none(), "container survived delete");
}

/// Hooks get stdio only: neither descriptors the runtime inherited from its caller (a
/// shim's listening socket) nor the container's preserved ones.
#[test]
fn hooks_get_no_inherited_descriptors() {
    use std::os::unix::process::CommandExt;
    let mut c = Container::new("hookfds");
    let log = c.path("fds");
    fs::create_dir_all(&log).unwrap();
    let script = c.path("fds.sh");
    write_exec(
        &script,
        "#!/bin/sh\ncat >/dev/null\nls /proc/self/fd > \"$2/$1\"\n",
    );
    let script = script.to_string_lossy().into_owned();
    let dir = log.to_string_lossy().into_owned();
    let h = |name: &str| json!({ "path": script, "args": ["fds.sh", name, dir] });
    c.config["hooks"] = json!({
        "prestart": [h("prestart")], "createRuntime": [h("createRuntime")],
        "poststart": [h("poststart")], "poststop": [h("poststop")],
    });
    c.write_config();
    let b = c.bundle.to_string_lossy().into_owned();
    let mut cmd = c.command();
    // SAFETY: runs in the forked child before exec; only open/dup2/close.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 3..6 {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if null != fd {
                    libc::dup2(null, fd);
                    libc::close(null);
                }
            }
            Ok(())
        });
    }
    c.exec(cmd.args(["run", "--preserve-fds", "1", "--bundle", &b, &c.id]))
        .assert_ok();
    for name in ["prestart", "createRuntime", "poststart", "poststop"] {
        let fds = fs::read_to_string(log.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fds: Vec<i32> = fds.lines().filter_map(|l| l.parse().ok()).collect();
        // 0-2, and the one ls reads /proc/self/fd through.
        assert!(
            fds.iter().filter(|&&fd| fd > 2).count() <= 1,
            "{name}: {fds:?}"
        );
    }
}

/// createContainer hooks run with the container's root as their working directory (as
/// runc: hooks that set up the container write relative paths such as `./lib/...`).
#[test]
fn create_container_hook_runs_in_the_rootfs() {
    let mut c = Container::new("hookcwd");
    let out = c.path("hook-cwd");
    c.config["hooks"] = json!({
        "createContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("pwd > {}; touch ./made-by-hook", out.display())]
        }]
    });
    c.set_args(&["true"]);
    c.create_ok();
    let cwd = fs::read_to_string(&out).expect("the hook ran");
    let rootfs = fs::canonicalize(&c.rootfs).unwrap();
    assert_eq!(Path::new(cwd.trim()), rootfs);
    assert!(c.rootfs.join("made-by-hook").exists());
}

/// A hook without `env` inherits an environment, as runc's: the runtime's for hooks run
/// by the runtime (prestart here), the container process' for hooks run in the
/// container (startContainer); `env: []` is an empty one.
#[test]
fn hooks_without_env_inherit_one() {
    let mut c = Container::new("hookenv");
    let h = setup(&mut c);
    integration::spec::add_env(&mut c.config, "PROBE_INSIDE=from-process");
    let dump = |name: &str, dir: &str| json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("env > {dir}/{name}.env")] });
    let hd = h.log.to_str().unwrap().to_owned();
    let mut empty = dump("empty", &hd);
    empty["env"] = json!([]);
    c.config["hooks"] = json!({
        "prestart": [dump("prestart", &hd), empty],
        "startContainer": [dump("startContainer", "/hooklog")]
    });
    c.set_args(&["true"]);
    c.write_config();
    let mut cmd = c.command();
    cmd.env("PROBE_RUNTIME", "from-runtime").args([
        "run",
        "--bundle",
        c.bundle.to_str().unwrap(),
        &c.id,
    ]);
    c.exec(&mut cmd).assert_ok();
    let read = |name: &str| fs::read_to_string(h.log.join(format!("{name}.env"))).unwrap();
    assert!(
        read("prestart").contains("PROBE_RUNTIME=from-runtime"),
        "{}",
        read("prestart")
    );
    let inside = read("startContainer");
    assert!(inside.contains("PROBE_INSIDE=from-process"), "{inside}");
    assert!(!inside.contains("PROBE_RUNTIME"), "{inside}");
    assert!(
        !read("empty").contains("PROBE_RUNTIME"),
        "{}",
        read("empty")
    );
}

/// A failing startContainer hook in a foreground `run` with a terminal (the runtime
/// relays the container's pty): what the hook wrote on stderr, and the runtime's
/// "error running hook", reach the caller's terminal, and `run` fails.
#[test]
fn failing_start_container_hook_output_reaches_a_terminal_caller() {
    let mut c = Container::new("hookstarttty");
    c.config["process"]["terminal"] = json!(true);
    c.set_args(&["true"]);
    c.config["hooks"] = json!({ "startContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"],
    }] });
    c.write_config();
    let runtime = integration::runtime_path().to_string_lossy().into_owned();
    let (root, bundle) = (
        c.root.to_string_lossy().into_owned(),
        c.bundle.to_string_lossy().into_owned(),
    );
    let out = integration::engines::run_in_pty(
        &[&runtime, "--root", &root, "run", "--bundle", &bundle, &c.id],
        &[],
        24,
        80,
        &c.dir,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("hook-said-no"), "{out:?}");
    assert!(out.stdout.contains("error running hook"), "{out:?}");
}

/// poststart hooks run after the program started, even when it has already exited by
/// the time `start` looks (a program that does nothing).
#[test]
fn poststart_runs_when_the_program_already_exited() {
    let mut c = Container::new("hookpostfast");
    let marker = c.path("poststart-ran");
    c.set_args(&["true"]);
    c.config["hooks"] = json!({ "poststart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", marker.display())],
    }] });
    c.create().assert_ok();
    // Give the program no chance to still be running at `start`'s end.
    c.start().assert_ok();
    let state = fs::read_to_string(&marker).expect("poststart hook ran");
    assert!(state.contains(&c.id), "{state}");
}
