//! Unpacking hand-built OCI layouts: metadata, whiteouts, config, id maps,
//! platform and ref selection, inspect/list.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::*;
use serde_json::{json, Value};
use tar::EntryType;

const CAP_NET_BIND: &[u8] = &[0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn cmd() -> Value {
    json!({"Cmd": ["/bin/true"]})
}

#[test]
fn gzip_layer_keeps_every_kind_of_metadata() {
    let s = Scratch::new("meta");
    let layer = Tar::new()
        .dir("usr/", attrs(0o755).mtime(1_500_000_000))
        .dir("usr/bin/", attrs(0o750).owner(0, 10))
        .file(
            "usr/bin/tool",
            b"#!/bin/sh\necho tool\n",
            attrs(0o4755).owner(1000, 1001).mtime(1_234_567_890),
        )
        .file(
            "usr/bin/ping",
            b"ping-binary",
            attrs(0o755).xattr("security.capability", CAP_NET_BIND),
        )
        .file(
            "usr/notes",
            b"hello",
            attrs(0o640).xattr("user.comment", b"a note"),
        )
        .symlink("usr/bin/alias", "tool")
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .node("dev/null", EntryType::Char, (1, 3), attrs(0o666))
        .node(
            "dev/loop0",
            EntryType::Block,
            (7, 0),
            attrs(0o660).owner(0, 6),
        )
        .node("run/fifo", EntryType::Fifo, (0, 0), attrs(0o620))
        .finish();
    Layout::single(&s.join("img"), "v1", &[(Comp::Gzip, layer)], cmd());
    let bundle = s.join("bundle");
    unpack(
        &format!("{}:v1", s.join("img").display()),
        &bundle,
        &["--allow-devices"],
    );
    let root = bundle.join("rootfs");

    let tool = fs::symlink_metadata(root.join("usr/bin/tool")).unwrap();
    assert_eq!(
        fs::read(root.join("usr/bin/tool")).unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid bit kept after chown");
    assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
    assert_eq!(tool.mtime(), 1_234_567_890);
    let tool2 = fs::symlink_metadata(root.join("usr/bin/tool2")).unwrap();
    assert_eq!(tool2.ino(), tool.ino(), "hard link shares the inode");
    assert_eq!(tool.nlink(), 2);

    let bin = fs::symlink_metadata(root.join("usr/bin")).unwrap();
    assert_eq!((bin.mode() & 0o7777, bin.gid()), (0o750, 10));
    assert_eq!(
        fs::symlink_metadata(root.join("usr")).unwrap().mtime(),
        1_500_000_000,
        "dir mtime set after children"
    );

    assert_eq!(
        fs::read_link(root.join("usr/bin/alias")).unwrap().to_str(),
        Some("tool")
    );
    assert_eq!(
        lxattrs(&root.join("usr/bin/ping"))
            .get("security.capability")
            .map(Vec::as_slice),
        Some(CAP_NET_BIND)
    );
    assert_eq!(
        lxattrs(&root.join("usr/notes"))
            .get("user.comment")
            .map(Vec::as_slice),
        Some(&b"a note"[..])
    );
    assert_eq!(
        fs::symlink_metadata(root.join("usr/notes")).unwrap().mode() & 0o7777,
        0o640
    );

    let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (libc::makedev(1, 3), 0o666)
    );
    let lo = fs::symlink_metadata(root.join("dev/loop0")).unwrap();
    assert!(lo.file_type().is_block_device());
    assert_eq!((lo.rdev(), lo.gid()), (libc::makedev(7, 0), 6));
    assert!(fs::symlink_metadata(root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // Parents missing from the tar are created.
    assert!(root.join("run").is_dir());
    assert!(bundle.join("config.json").is_file());
    assert_eq!(leftovers(&s.0, &["img", "bundle"]), Vec::<String>::new());
}

#[test]
fn whiteouts_opaque_dirs_and_cross_layer_hardlinks() {
    let s = Scratch::new("wh");
    let base = Tar::new()
        .dir("a/", attrs(0o755))
        .file("a/keep", b"keep", attrs(0o644))
        .file("a/gone", b"gone", attrs(0o644))
        .dir("a/sub/", attrs(0o755))
        .file("a/sub/deep", b"deep", attrs(0o644))
        .dir("b/", attrs(0o755))
        .file("b/old1", b"1", attrs(0o644))
        .file("b/old2", b"2", attrs(0o644))
        .dir("c/", attrs(0o755))
        .file("c/inner", b"i", attrs(0o644))
        .file("d", b"file-d", attrs(0o644))
        .finish();
    // Upper layer: the opaque marker comes after a sibling of the same
    // layer, which it must not remove.
    let upper = Tar::new()
        .whiteout("a", "gone")
        .whiteout("a", "sub")
        .file("b/new", b"new", attrs(0o644))
        .opaque("b")
        .hardlink("linked", "a/keep")
        .file("c", b"now a file", attrs(0o600))
        .dir("d/", attrs(0o700))
        .whiteout("", "nothing-there")
        .finish();
    let top = Tar::new()
        .file("a/keep", b"rewritten", attrs(0o644))
        .finish();
    Layout::single(
        &s.join("img"),
        "t",
        &[(Comp::None, base), (Comp::Zstd, upper), (Comp::Gzip, top)],
        cmd(),
    );
    let bundle = s.join("bundle");
    unpack(&format!("{}:t", s.join("img").display()), &bundle, &[]);
    let snap = snapshot(&bundle.join("rootfs"));
    let paths: Vec<&str> = snap.keys().map(String::as_str).collect();
    assert_eq!(paths, ["a", "a/keep", "b", "b/new", "c", "d", "linked"]);
    assert_eq!(snap["c"].kind, 'f');
    assert_eq!(snap["d"].kind, 'd');
    assert_eq!(snap["d"].mode, 0o700);
    // The cross-layer hard link was made to the lower file; the top layer
    // then replaced a/keep with a new file, so `linked` keeps the old data.
    assert_eq!(fs::read(bundle.join("rootfs/linked")).unwrap(), b"keep");
    assert_eq!(
        fs::read(bundle.join("rootfs/a/keep")).unwrap(),
        b"rewritten"
    );
    assert!(
        !snap.keys().any(|k| k.contains(".wh.")),
        "no whiteout files materialised"
    );
}

/// Device entries left out by default still replace what lower layers had
/// at their paths (as a device would), the same way directly and through
/// the cache in every mode; 0:0 char devices (overlay whiteouts), FIFOs and
/// `.wh.` whiteouts work as before. With --allow-devices the nodes are made.
#[test]
fn device_entries_are_left_out_but_still_replace_lower_entries() {
    let s = Scratch::new("devpolicy");
    let base = Tar::new()
        .dir("dev/", attrs(0o755))
        .file("dev/console", b"placeholder", attrs(0o644))
        .dir("d/", attrs(0o755))
        .file("d/inner", b"i", attrs(0o644))
        .file("hidden", b"h", attrs(0o644))
        .file("kept", b"k", attrs(0o644))
        .finish();
    let upper = Tar::new()
        .node("dev/console", EntryType::Char, (5, 1), attrs(0o620))
        .hardlink("dev/console2", "dev/console")
        .node("d", EntryType::Block, (7, 0), attrs(0o660))
        .node("wh", EntryType::Char, (0, 0), attrs(0o600))
        .node("run/fifo", EntryType::Fifo, (0, 0), attrs(0o620))
        .whiteout("", "hidden")
        .finish();
    Layout::single(
        &s.join("img"),
        "t",
        &[(Comp::Gzip, base), (Comp::Gzip, upper)],
        cmd(),
    );
    let img = format!("{}:t", s.join("img").display());
    let direct = s.join("direct");
    let out = run(&[
        "unpack",
        "--quiet",
        "--image",
        &img,
        direct.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("left out 3 device node(s) (dev/console, dev/console2, d)"),
        "{warning}"
    );
    let snap = snapshot(&direct.join("rootfs"));
    let paths: Vec<&str> = snap.keys().map(String::as_str).collect();
    assert_eq!(paths, ["dev", "kept", "run", "run/fifo", "wh"]);
    assert_eq!((snap["wh"].kind, snap["wh"].rdev), ('c', 0), "0:0 kept");
    assert_eq!(snap["run/fifo"].kind, 'p');

    // Through the cache a 0:0 entry is an overlay whiteout (as it was before
    // devices were left out), so the copy has no `wh`; all else is the same.
    let mut via_cache = snap.clone();
    via_cache.remove("wh");
    let cache = s.join("cache");
    let c = cache.to_str().unwrap();
    for (i, extra) in [
        &["--cache", c][..],
        &["--cache", c, "--cache-mode", "hardlink"],
    ]
    .iter()
    .enumerate()
    {
        let b = s.join(&format!("cached{i}"));
        unpack(&img, &b, extra);
        assert_same_tree(
            &snapshot(&b.join("rootfs")),
            &via_cache,
            &format!("{extra:?}"),
        );
    }
    // In overlay form the left-out entries are whiteouts over the lower
    // layer: an overlay of the cached layers shows what the copy shows.
    let upper_dir = fs::read_dir(cache.join("layers"))
        .unwrap()
        .map(|e| e.unwrap().path().join("diff"))
        .find(|d| d.join("wh").exists())
        .unwrap();
    for name in ["dev/console", "dev/console2", "d", "hidden", "wh"] {
        let md = fs::symlink_metadata(upper_dir.join(name)).unwrap();
        assert!(
            md.file_type().is_char_device() && md.rdev() == 0,
            "{name} is an overlay whiteout"
        );
    }

    let allowed = s.join("allowed");
    unpack(&img, &allowed, &["--allow-devices"]);
    let root = allowed.join("rootfs");
    let console = fs::symlink_metadata(root.join("dev/console")).unwrap();
    assert!(console.file_type().is_char_device());
    assert_eq!(console.rdev(), libc::makedev(5, 1));
    let console2 = fs::symlink_metadata(root.join("dev/console2")).unwrap();
    assert_eq!(console2.ino(), console.ino());
    let d = fs::symlink_metadata(root.join("d")).unwrap();
    assert!(d.file_type().is_block_device());
    assert!(!root.join("hidden").exists());
}

#[test]
fn hardlink_across_layers_shares_inode() {
    let s = Scratch::new("xl");
    let l1 = Tar::new().file("bin/prog", b"prog", attrs(0o755)).finish();
    let l2 = Tar::new().hardlink("bin/prog-alias", "bin/prog").finish();
    Layout::single(
        &s.join("img"),
        "t",
        &[(Comp::Gzip, l1), (Comp::Gzip, l2)],
        cmd(),
    );
    let bundle = s.join("bundle");
    unpack(&format!("{}:t", s.join("img").display()), &bundle, &[]);
    let a = fs::metadata(bundle.join("rootfs/bin/prog")).unwrap();
    let b = fs::metadata(bundle.join("rootfs/bin/prog-alias")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

fn user_layer() -> Vec<u8> {
    Tar::new()
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            attrs(0o644),
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1001:\nwheel:x:10:app\n",
            attrs(0o644),
        )
        .dir("srv/", attrs(0o755).owner(1000, 1001))
        .finish()
}

#[test]
fn config_json_follows_conversion_rules() {
    let s = Scratch::new("cfg");
    let config = json!({
        "User": "app",
        "Entrypoint": ["/bin/server", "--flag"],
        "Cmd": ["arg1"],
        "Env": ["FOO=bar", "PATH=/custom/bin"],
        "WorkingDir": "/srv",
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "Labels": {"com.example.team": "infra", "org.opencontainers.image.os": "ignored-label"},
        "StopSignal": "SIGTERM",
    });
    Layout::single(&s.join("img"), "t", &[(Comp::Gzip, user_layer())], config);
    let bundle = s.join("bundle");
    unpack(&format!("{}:t", s.join("img").display()), &bundle, &[]);
    let spec: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let p = &spec["process"];
    assert_eq!(p["args"], json!(["/bin/server", "--flag", "arg1"]));
    assert_eq!(p["env"], json!(["FOO=bar", "PATH=/custom/bin"]));
    assert_eq!(p["cwd"], "/srv");
    assert_eq!(
        p["user"],
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10]})
    );
    assert_eq!(p["terminal"], false);
    assert_eq!(spec["root"]["path"], "rootfs");
    let a = &spec["annotations"];
    assert_eq!(
        a["org.opencontainers.image.exposedPorts"],
        "53/udp,8080/tcp"
    );
    assert_eq!(a["org.opencontainers.image.stopSignal"], "SIGTERM");
    assert_eq!(
        a["org.opencontainers.image.os"], "linux",
        "explicit field wins over a label"
    );
    assert_eq!(a["org.opencontainers.image.architecture"], host_arch());
    assert_eq!(
        a["org.opencontainers.image.created"],
        "2024-01-02T03:04:05Z"
    );
    assert_eq!(a["com.example.team"], "infra");
    assert_eq!(a["dev.patina.image.volumes"], "/data");
    // runc-compatible defaults are present.
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"mount") && ns.contains(&"pid"), "{ns:?}");
    assert!(!ns.contains(&"user"));
    assert!(spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/proc"));
}

#[test]
fn unknown_user_is_an_error() {
    let s = Scratch::new("nouser");
    Layout::single(
        &s.join("img"),
        "t",
        &[(Comp::Gzip, user_layer())],
        json!({"User": "ghost", "Cmd": ["x"]}),
    );
    let err = run_fail(&[
        "unpack",
        "--image",
        &format!("{}:t", s.join("img").display()),
        s.join("b").to_str().unwrap(),
    ]);
    assert!(err.contains("ghost"), "{err}");
    assert!(!s.join("b").exists());
    assert_eq!(leftovers(&s.0, &["img"]), Vec::<String>::new());
}

#[test]
fn uid_map_shifts_owners_and_config() {
    let s = Scratch::new("idmap");
    Layout::single(&s.join("img"), "t", &[(Comp::Gzip, user_layer())], cmd());
    let bundle = s.join("bundle");
    let img = format!("{}:t", s.join("img").display());
    unpack(
        &img,
        &bundle,
        &["--uid-map", "0:100000:65536", "--gid-map", "0:200000:65536"],
    );
    let srv = fs::metadata(bundle.join("rootfs/srv")).unwrap();
    assert_eq!((srv.uid(), srv.gid()), (101000, 201001));
    // The container's root owns the rootfs (the layer has no `./` entry)
    // and its group alone may pass through the bundle directory: the
    // runtime binds the rootfs from inside the user namespace.
    assert_eq!(mode_owner(&bundle.join("rootfs")).1, 100000);
    assert_eq!(mode_owner(&bundle.join("rootfs")).2, 200000);
    assert_eq!(mode_owner(&bundle), (0o710, 0, 200000));
    let passwd = fs::metadata(bundle.join("rootfs/etc/passwd")).unwrap();
    assert_eq!((passwd.uid(), passwd.gid()), (100000, 200000));
    let spec: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        spec["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
    );
    assert_eq!(
        spec["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}])
    );
    assert!(spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));

    // An owner outside the map cannot be represented.
    let err = run_fail(&[
        "unpack",
        "--image",
        &img,
        "--uid-map",
        "0:100000:10",
        s.join("b2").to_str().unwrap(),
    ]);
    assert!(err.contains("uid 1000 is not covered"), "{err}");

    // The cache is root's alone (0700): a user-namespaced runtime could not
    // mount an overlay of it.
    let cache = s.join("cache");
    let err = run_fail(&[
        "unpack",
        "--image",
        &img,
        "--uid-map",
        "0:100000:65536",
        "--cache",
        cache.to_str().unwrap(),
        "--overlay",
        s.join("b3").to_str().unwrap(),
    ]);
    assert!(err.contains("--overlay with --uid-map/--gid-map"), "{err}");
    assert_eq!(leftovers(&s.0, &["img", "bundle"]), Vec::<String>::new());
}

#[test]
fn rootless_keeps_unpacker_as_owner() {
    let s = Scratch::new("rootless");
    Layout::single(&s.join("img"), "t", &[(Comp::Gzip, user_layer())], cmd());
    let bundle = s.join("bundle");
    unpack(
        &format!("{}:t", s.join("img").display()),
        &bundle,
        &["--rootless"],
    );
    let srv = fs::metadata(bundle.join("rootfs/srv")).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    assert_eq!(srv.uid(), me, "no chown in rootless mode");
    let spec: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], me);
    assert!(spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
}

/// A two-platform nested index: the host's entry by default, `--platform`
/// to pick another, an error for one that is absent.
#[test]
fn nested_index_picks_platform() {
    let s = Scratch::new("plat");
    let mut l = Layout::create(&s.join("img"));
    let (host, _) = l.image(
        &[(
            Comp::Gzip,
            Tar::new().file("which", b"host", attrs(0o644)).finish(),
        )],
        cmd(),
    );
    let (other, _) = l.image(
        &[(
            Comp::Gzip,
            Tar::new().file("which", b"other", attrs(0o644)).finish(),
        )],
        cmd(),
    );
    let other_arch = if host_arch() == "arm64" {
        "riscv64"
    } else {
        "arm64"
    };
    let mut host = host;
    host["platform"] = json!({"os": "linux", "architecture": host_arch()});
    let mut other = other;
    other["platform"] = json!({"os": "linux", "architecture": other_arch, "variant": "v8"});
    let nested = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [other, host]});
    let nb = l.blob(&serde_json::to_vec(&nested).unwrap());
    l.tag(json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": nb.digest, "size": nb.size}), Some("multi"));
    let src = format!("{}:multi", s.join("img").display());

    unpack(&src, &s.join("b1"), &[]);
    assert_eq!(fs::read(s.join("b1/rootfs/which")).unwrap(), b"host");
    unpack(
        &src,
        &s.join("b2"),
        &["--platform", &format!("linux/{other_arch}/v8")],
    );
    assert_eq!(fs::read(s.join("b2/rootfs/which")).unwrap(), b"other");
    let err = run_fail(&[
        "unpack",
        "--image",
        &src,
        "--platform",
        "linux/s390x",
        s.join("b3").to_str().unwrap(),
    ]);
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
}

#[test]
fn refs_select_images_and_list_shows_them() {
    let s = Scratch::new("refs");
    let mut l = Layout::create(&s.join("img"));
    let (a, _) = l.image(
        &[(
            Comp::Gzip,
            Tar::new().file("name", b"alpha", attrs(0o644)).finish(),
        )],
        cmd(),
    );
    let (b, _) = l.image(
        &[(
            Comp::Zstd,
            Tar::new().file("name", b"beta", attrs(0o644)).finish(),
        )],
        cmd(),
    );
    l.tag(a, Some("alpha"));
    l.tag(b, Some("beta"));
    let dir = s.join("img");
    let dir = dir.to_str().unwrap();
    assert_eq!(run_ok(&["list", dir]), "alpha\nbeta\n");
    unpack(&format!("{dir}:beta"), &s.join("b"), &[]);
    assert_eq!(fs::read(s.join("b/rootfs/name")).unwrap(), b"beta");
    let err = run_fail(&["unpack", "--image", dir, s.join("c").to_str().unwrap()]);
    assert!(err.contains("alpha, beta"), "{err}");
    let err = run_fail(&[
        "unpack",
        "--image",
        &format!("{dir}:gamma"),
        s.join("c").to_str().unwrap(),
    ]);
    assert!(err.contains("no image with ref \"gamma\""), "{err}");
    assert!(!s.join("c").exists());
}

#[test]
fn inspect_reports_manifest_config_and_layers() {
    let s = Scratch::new("inspect");
    let (_, blobs) = Layout::single(
        &s.join("img"),
        "t",
        &[
            (Comp::Gzip, user_layer()),
            (
                Comp::Zstd,
                Tar::new().file("x", b"x", attrs(0o644)).finish(),
            ),
        ],
        json!({"Cmd": ["/bin/sh"], "User": "app"}),
    );
    let spec = format!("{}:t", s.join("img").display());
    let text = run_ok(&["inspect", &spec]);
    for b in &blobs {
        assert!(text.contains(&b.digest), "{text}");
        assert!(text.contains(&format!("{} bytes", b.size)), "{text}");
    }
    assert!(
        text.contains("tar+zstd") && text.contains("user:     app"),
        "{text}"
    );
    let v: Value = serde_json::from_str(&run_ok(&["inspect", "--json", &spec])).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(v["totalLayerSize"], blobs[0].size + blobs[1].size);
    assert_eq!(v["config"]["content"]["config"]["User"], "app");
}

#[test]
fn without_a_terminal_progress_is_plain_lines() {
    // stderr is a pipe here: one line per applied layer and a summary, as skopeo prints
    // (bars need a terminal); nothing at all with --quiet.
    let s = Scratch::new("lines");
    let l1 = Tar::new().file("a", b"a", attrs(0o644)).finish();
    let l2 = Tar::new().file("b", b"b", attrs(0o644)).finish();
    Layout::single(
        &s.join("img"),
        "t",
        &[(Comp::Gzip, l1), (Comp::Zstd, l2)],
        cmd(),
    );
    let image = format!("{}:t", s.join("img").display());
    let bundle = s.join("bundle").display().to_string();
    let out = run(&["unpack", "--image", &image, &bundle]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("applied layer ").count(), 2, "{err}");
    assert!(
        err.lines().last().unwrap_or_default().contains("unpacked"),
        "{err}"
    );
    let quiet = s.join("quiet").display().to_string();
    let out = run(&["unpack", "--quiet", "--image", &image, &quiet]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}
