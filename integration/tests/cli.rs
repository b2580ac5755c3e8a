//! Command-line surface: list, spec, state, --log/--log-format, default bundle.

use integration::{is_runc, spec, Container};
use serde_json::{json, Value};
use std::fs;

#[test]
fn list_table_json_quiet() {
    let mut c = Container::new("list");
    c.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let id2 = format!("{}-second", c.id);
    c.track_id(&id2);
    let b = c.bundle.to_str().unwrap().to_string();
    c.rt(&["create", "--bundle", &b, &id2]).assert_ok();
    c.rt(&["start", &id2]).assert_ok();

    let out = c.rt(&["list"]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header[..4],
        ["ID", "PID", "STATUS", "BUNDLE"],
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let row = lines
        .iter()
        .find(|l| l.starts_with(&format!("{} ", c.id)))
        .expect("row for first container");
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(f[1], pid.to_string());
    assert_eq!(f[2], "created");
    assert_eq!(f[3], b);
    let row2 = lines
        .iter()
        .find(|l| l.starts_with(&format!("{id2} ")))
        .expect("row for second");
    assert_eq!(row2.split_whitespace().nth(2), Some("running"));

    let out = c.rt(&["list", "--format", "json"]);
    out.assert_ok();
    // runc's key order (tools match on the raw text too): ociVersion, id, pid, status.
    let keys = [
        "\"ociVersion\"",
        "\"id\"",
        "\"pid\"",
        "\"status\"",
        "\"bundle\"",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| out.stdout.find(k).unwrap_or(usize::MAX))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", out.stdout);
    let v: Value = serde_json::from_str(&out.stdout).expect("list --format json is JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    let first = arr
        .iter()
        .find(|x| x["id"] == c.id.as_str())
        .expect("first in json");
    assert_eq!(first["status"], "created");
    assert_eq!(first["pid"].as_i64(), Some(pid as i64));
    assert_eq!(first["bundle"], b.as_str());
    let second = arr
        .iter()
        .find(|x| x["id"] == id2.as_str())
        .expect("second in json");
    assert_eq!(second["status"], "running");

    let out = c.rt(&["list", "-q"]);
    out.assert_ok();
    let mut ids: Vec<&str> = out.stdout.lines().collect();
    ids.sort();
    let mut want = vec![c.id.as_str(), id2.as_str()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn list_empty_root() {
    let c = Container::new("listempty");
    let out = c.rt(&["list", "-q"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "");
    let out = c.rt(&["list", "--format", "json"]);
    out.assert_ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    // runc prints `null` for no containers; an empty array means the same.
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{v}"
    );
}

#[test]
fn spec_writes_runnable_config() {
    let mut c = Container::new("spec");
    // In the current directory.
    let out = c.exec(c.command().arg("spec").current_dir(&c.bundle));
    out.assert_ok();
    let text =
        fs::read_to_string(c.bundle.join("config.json")).expect("config.json written in cwd");
    let mut cfg: Value = serde_json::from_str(&text).expect("config.json parses");
    assert!(
        cfg["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{cfg}"
    );
    assert_eq!(cfg["root"]["path"], "rootfs");
    assert!(cfg["process"]["args"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    // A cgroup namespace only on a pure cgroup v2 host, as runc's spec (tools add one to
    // the output on other hosts).
    let pure_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    let cgroupns = cfg["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|ns| ns["type"] == "cgroup");
    if is_runc() {
        // runc 1.1.5 never adds it; later runc as patina.
        assert!(!cgroupns || pure_v2, "{cfg}");
    } else {
        assert_eq!(cgroupns, pure_v2, "{cfg}");
    }
    // A second spec does not overwrite it.
    c.exec(c.command().arg("spec").current_dir(&c.bundle))
        .assert_failed();
    assert_eq!(
        fs::read_to_string(c.bundle.join("config.json")).unwrap(),
        text
    );
    // Runnable once there is a rootfs (no terminal here: we have none).
    cfg["process"]["terminal"] = json!(false);
    spec::set_args(&mut cfg, &["sh", "-c", "echo from-spec; hostname"]);
    c.config = cfg;
    let out = c.run();
    out.assert_ok();
    assert!(out.stdout.starts_with("from-spec\n"), "{out:?}");
}

#[test]
fn spec_with_bundle_option() {
    let c = Container::new("specbundle");
    let dir = c.path("elsewhere");
    fs::create_dir_all(&dir).unwrap();
    c.rt(&["spec", "--bundle", dir.to_str().unwrap()])
        .assert_ok();
    let cfg: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert!(cfg["process"].is_object());
    assert!(
        !c.dir.join("config.json").exists(),
        "written to cwd instead of --bundle"
    );
}

#[test]
fn state_fields() {
    let mut c = Container::new("statefields");
    c.config["annotations"] = json!({ "k": "v" });
    c.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let st = c.state_ok();
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{st}"
    );
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"].as_i64(), Some(pid as i64));
    assert_eq!(st["bundle"], c.bundle.to_str().unwrap());
    assert_eq!(st["annotations"]["k"], "v", "{st}");
    // --root is honoured: the runtime keeps its state there.
    assert!(fs::read_dir(&c.root).expect("--root dir created").count() > 0);
}

#[test]
fn log_json_on_error() {
    let c = Container::new("logjson");
    let log = c.path("runtime.log");
    let out = c.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "no-such-container",
    ]);
    out.assert_failed();
    let text = fs::read_to_string(&log).expect("log file written");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l:?}"))
        })
        .collect();
    assert!(!lines.is_empty(), "empty log");
    let err = lines
        .iter()
        .find(|l| l["level"] == "error")
        .unwrap_or_else(|| panic!("no error entry: {text}"));
    assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    assert!(err["time"].as_str().is_some_and(|t| t.len() >= 10), "{err}");
}

/// `--log FILE` is created even when nothing is logged (engines open and tail it), and a
/// path that cannot be written is an error naming the flag (as runc).
#[test]
fn log_file_is_created_and_a_bad_path_refused() {
    let c = Container::new("logcreate");
    let log = c.path("quiet.log");
    c.rt(&["--log", log.to_str().unwrap(), "list"]).assert_ok();
    assert!(log.exists(), "--log file not created");
    let bad = c.path("no-such-dir/x.log");
    let out = c.rt(&["--log", bad.to_str().unwrap(), "list"]);
    out.assert_failed();
    if !is_runc() {
        assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
        assert!(
            out.stderr.contains("--log") && out.stderr.contains("ENOENT"),
            "{out:?}"
        );
    }
}

#[test]
fn bundle_defaults_to_cwd() {
    let mut c = Container::new("cwdbundle");
    c.set_args(&["sleep", "1000"]);
    c.write_config();
    let id = c.id.clone();
    let out = c.exec(c.command().args(["create", &id]).current_dir(&c.bundle));
    out.assert_ok();
    let pid = c.pid();
    c.track_pid(pid);
    assert_eq!(c.state_ok()["bundle"], c.bundle.to_str().unwrap());

    let mut d = Container::new("cwdbundle_run");
    d.set_sh("echo ran-from-cwd");
    d.write_config();
    let id = d.id.clone();
    let out = d.exec(d.command().args(["run", &id]).current_dir(&d.bundle));
    out.assert_ok();
    assert_eq!(out.stdout, "ran-from-cwd\n");
}

#[test]
fn version_in_runc_shape() {
    // "NAME version X" then "spec: Y", for -v and --version: tools parse runc's lines.
    for flag in ["--version", "-v"] {
        let out = std::process::Command::new(integration::runtime_path())
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let named = first.split_once(" version ");
        assert!(
            named.is_some_and(|(name, v)| !name.is_empty() && !v.is_empty()),
            "{flag}: {text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("spec: 1.")),
            "{flag}: {text}"
        );
        // The commit line, as runc prints it: a hex id (or "unknown" outside git).
        let commit = text.lines().find_map(|l| l.strip_prefix("commit: "));
        assert!(
            commit.is_some_and(|c| c == "unknown" || c.bytes().any(|b| b.is_ascii_hexdigit())),
            "{flag}: {text}"
        );
    }
}
