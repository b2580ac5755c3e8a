//! Bad input: the runtime fails cleanly (non-zero exit, no state dir, no
//! process, no mount, no cgroup — the fixture's leak check runs at drop).
//! For patina the error is also exactly one line naming the culprit.

use integration::{is_runc, spec, Container, Output};
use serde_json::json;
use std::fs;

/// Asserts a clean rejection. For patina, stderr must be one line containing every key.
fn create_in(c: &Container, bundle: &std::path::Path, id: &str) -> Output {
    c.rt(&["create", "--bundle", bundle.to_str().unwrap(), id])
}

#[test]
fn missing_bundle_dir() {
    let c = Container::new("nobundle");
    let out = create_in(&c, &c.path("no-such-bundle"), &c.id);
    c.assert_rejected(&out, &["config.json"]);
}

#[test]
fn missing_config_json() {
    let c = Container::new("noconfig");
    let out = create_in(&c, &c.bundle, &c.id);
    c.assert_rejected(&out, &["config.json"]);
}

#[test]
fn malformed_json() {
    let c = Container::new("badjson");
    fs::write(
        c.bundle.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}\n",
    )
    .unwrap();
    let out = create_in(&c, &c.bundle, &c.id);
    c.assert_rejected(&out, &["line", "column"]);
}

#[test]
fn unsupported_oci_version() {
    for v in ["0.1.0", "2.0.0"] {
        let mut c = Container::new("ociversion");
        c.config["ociVersion"] = json!(v);
        c.set_args(&["true"]);
        let out = c.create();
        if is_runc() {
            // beyond runc: runc 1.1.5 does not check ociVersion at all and
            // creates the container.
            out.assert_ok();
            assert_eq!(c.status(), "created");
        } else {
            c.assert_rejected(&out, &["ociVersion", v]);
        }
    }
}

#[test]
fn empty_args() {
    let mut c = Container::new("emptyargs");
    c.config["process"]["args"] = json!([]);
    let out = c.create();
    c.assert_rejected(&out, &["process.args"]);
}

#[test]
fn missing_rootfs() {
    let mut c = Container::new("norootfs");
    c.config["root"]["path"] = json!("no-such-rootfs");
    let out = c.create();
    c.assert_rejected(&out, &["root.path"]);
}

#[test]
fn bad_container_ids() {
    let long = "a".repeat(1025);
    for id in ["", long.as_str(), "a/b", "..", "/abs"] {
        let c = Container::new("badid");
        c.write_config();
        let out = create_in(&c, &c.bundle, id);
        out.assert_failed();
        let out2 = c.rt(&["state", id]);
        out2.assert_failed();
        c.assert_rejected(&out, &["container id"]);
        assert!(!c.path("a").exists() && !c.bundle.join("b").exists());
    }
}

#[test]
fn id_already_in_use() {
    let mut c = Container::new("inuse");
    c.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let out = c.create();
    out.assert_failed();
    // The first container is untouched.
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
    if !is_runc() {
        let lines = out.stderr_lines();
        assert_eq!(lines.len(), 1, "{:?}", out.stderr);
        assert!(lines[0].contains("already exists"), "{:?}", lines[0]);
    }
}

#[test]
fn unknown_mount_type() {
    let mut c = Container::new("mounttype");
    spec::add_mount(&mut c.config, "/x", "nosuchfs", "none", &[]);
    let out = c.create();
    c.assert_rejected(&out, &["nosuchfs"]);
}

#[test]
fn relative_mount_destination() {
    let mut c = Container::new("relmount");
    spec::add_mount(&mut c.config, "relative/dir", "tmpfs", "tmpfs", &[]);
    c.set_sh("grep -c ' /relative/dir ' /proc/self/mountinfo");
    if is_runc() {
        // beyond runc: runc 1.1.5 accepts a relative destination (treating it
        // as relative to the rootfs) and mounts it at /relative/dir.
        let out = c.run();
        out.assert_ok();
        assert_eq!(out.stdout, "1\n");
    } else {
        let out = c.create();
        c.assert_rejected(&out, &["destination", "relative/dir"]);
    }
}

#[test]
fn missing_namespace_path() {
    let mut c = Container::new("nonspath");
    let p = c.path("no-such-netns");
    let ps = p.to_str().unwrap().to_string();
    spec::set_namespace(&mut c.config, "network", Some(&ps));
    let out = c.create();
    c.assert_rejected(&out, &[&ps]);
}

#[test]
fn proc_mounted_on_the_root() {
    // It used to cover the rootfs and fail later with an error about /dev/null.
    let mut c = Container::new("procroot");
    spec::add_mount(&mut c.config, "/", "proc", "proc", &[]);
    let index = format!(
        "mounts[{}]",
        c.config["mounts"].as_array().unwrap().len() - 1
    );
    let out = c.create();
    c.assert_rejected(&out, &[&index, "(proc)", "on \"/\""]);
}

#[test]
fn unknown_option_on_a_bind_mount() {
    let mut c = Container::new("bindopt");
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    spec::add_mount(
        &mut c.config,
        "/v",
        "bind",
        src.to_str().unwrap(),
        &["rbind", "nosuid", "bogus-option"],
    );
    let index = c.config["mounts"].as_array().unwrap().len() - 1;
    if is_runc() {
        // beyond runc: runc 1.1.5 hands it to mount(2) as data, which a bind ignores.
        c.set_args(&["true"]);
        c.run().assert_ok();
    } else {
        let out = c.create();
        let field = format!("mounts[{index}].options");
        c.assert_rejected(&out, &[&field, "\"bogus-option\""]);
    }
}

#[test]
fn filesystem_data_on_a_bind_mount_is_ignored_as_runc_does() {
    // runtime-tools and configs written for runc put `mode=755` on binds: the kernel
    // ignores data for a bind, so it is dropped (with a warning), not refused.
    let mut c = Container::new("binddata");
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "seen").unwrap();
    spec::add_mount(
        &mut c.config,
        "/v",
        "bind",
        src.to_str().unwrap(),
        &["rbind", "mode=755"],
    );
    assert_eq!(c.sh_ok("cat /v/f"), "seen");
}

#[test]
fn unknown_option_on_a_tmpfs_mount() {
    // Data of a filesystem mount goes to the kernel, which refuses what tmpfs does not know.
    let mut c = Container::new("tmpfsopt");
    spec::add_mount(
        &mut c.config,
        "/t",
        "tmpfs",
        "tmpfs",
        &["nosuid", "bogus=1"],
    );
    let index = format!(
        "mounts[{}]",
        c.config["mounts"].as_array().unwrap().len() - 1
    );
    let out = c.create();
    c.assert_rejected(&out, &[&index, "(tmpfs)", "\"/t\"", "EINVAL"]);
}

#[test]
fn missing_bind_source() {
    let mut c = Container::new("nosource");
    let src = c.path("no-such-source");
    spec::add_mount(
        &mut c.config,
        "/v",
        "bind",
        src.to_str().unwrap(),
        &["rbind"],
    );
    let index = format!(
        "mounts[{}]",
        c.config["mounts"].as_array().unwrap().len() - 1
    );
    let out = c.create();
    c.assert_rejected(&out, &[&index, "\"/v\"", "ENOENT"]);
}
