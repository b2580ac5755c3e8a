//! End to end: unpack a busybox image and run it with the OCI runtime
//! (PATINA_RUNTIME, default: the `patina` binary of this target dir).

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

fn busybox_image(dir: &Path) {
    let busybox = fs::read("/bin/busybox").expect("/bin/busybox (Debian busybox-static)");
    let mut base = Tar::new()
        .dir("bin/", attrs(0o755))
        .file("bin/busybox", &busybox, attrs(0o755));
    for applet in ["sh", "echo", "id", "pwd", "cat", "ls"] {
        base = base.symlink(&format!("bin/{applet}"), "busybox");
    }
    let users = Tar::new()
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            attrs(0o644),
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
            attrs(0o644),
        )
        .dir("home/app/", attrs(0o750).owner(1000, 1000))
        .file("data/msg", b"from layer 2", attrs(0o644))
        .whiteout("bin", "ls")
        .finish();
    let config = json!({
        "User": "app",
        "WorkingDir": "/home/app",
        "Env": ["GREETING=patina", "PATH=/bin"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo hello from $GREETING; id -u; id -G; pwd; cat /data/msg; test -e /bin/ls || echo no-ls"],
    });
    Layout::single(
        dir,
        "busybox",
        &[(Comp::Gzip, base.finish()), (Comp::Zstd, users)],
        config,
    );
}

const EXPECTED: &str = "hello from patina\n1000\n1000 50\n/home/app\nfrom layer 2no-ls\n";

#[test]
fn busybox_bundle_runs() {
    let s = Scratch::new("e2e");
    busybox_image(&s.join("img"));
    let bundle = s.join("bundle");
    unpack(
        &format!("{}:busybox", s.join("img").display()),
        &bundle,
        &[],
    );
    let id = format!("imagetool-e2e-{}", std::process::id());
    assert_eq!(run_container(&bundle, &id), EXPECTED);
}

/// A bundle unpacked for a user namespace runs: the container's root gets
/// through the bundle directory (0710, its group) and owns the rootfs,
/// where a 0700 root-only bundle would stop the runtime's bind of the
/// rootfs with EACCES (patina and runc alike).
#[test]
fn busybox_user_namespace_bundle_runs() {
    let s = Scratch::new("e2e-userns");
    busybox_image(&s.join("img"));
    let bundle = s.join("bundle");
    unpack(
        &format!("{}:busybox", s.join("img").display()),
        &bundle,
        &["--uid-map", "0:100000:65536", "--gid-map", "0:100000:65536"],
    );
    let id = format!("imagetool-e2e-userns-{}", std::process::id());
    assert_eq!(run_container(&bundle, &id), EXPECTED);
    assert_eq!(mode_owner(&bundle), (0o710, 0, 100000));
}

#[test]
fn busybox_overlay_bundles_share_cached_layers() {
    let s = Scratch::new("e2e-ov");
    busybox_image(&s.join("img"));
    let cache = s.join("cache");
    let src = format!("{}:busybox", s.join("img").display());
    for n in 0..2 {
        let bundle = s.join(&format!("bundle{n}"));
        unpack(
            &src,
            &bundle,
            &["--cache", cache.to_str().unwrap(), "--overlay"],
        );
        let id = format!("imagetool-e2e-ov{n}-{}", std::process::id());
        assert_eq!(run_container(&bundle, &id), EXPECTED);
        // The runtime mounted the overlay in the container's namespace only.
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(bundle.to_str().unwrap()),
            "overlay leaked onto the host"
        );
    }
    assert_eq!(
        leftovers(&cache.join("layers"), &[]).len(),
        2,
        "one cache entry per layer"
    );
}

#[test]
fn version_names_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patina-imagetool"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("patina-imagetool "), "{text}");
    assert!(text.lines().any(|l| l.starts_with("commit: ")), "{text}");
}
