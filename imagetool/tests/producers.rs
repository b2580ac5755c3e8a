//! Images made by real producers (umoci, skopeo), compared file by file
//! with `umoci unpack` of the same image; plus the layer cache.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use common::*;
use serde_json::Value;

fn setxattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {name} on {}", path.display());
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Builds `layout:app` with umoci: a base layer with every file type and
/// metadata, and an upper layer that deletes, replaces and adds.
fn umoci_image(s: &Scratch) -> String {
    let layout = s.join("layout");
    let image = format!("{}:app", layout.display());
    sh("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    sh("umoci", &["new", "--image", &image]);
    let work = s.join("work");
    sh(
        "umoci",
        &["unpack", "--image", &image, work.to_str().unwrap()],
    );
    let r = work.join("rootfs");
    for d in ["bin", "etc", "srv/data", "dev", "opt/old", "var/lib"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    symlink("busybox", r.join("bin/sh")).unwrap();
    symlink("/etc/hostname", r.join("etc/hostlink")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nsvc:x:500:500::/srv:/bin/sh\n",
    )
    .unwrap();
    fs::write(r.join("srv/data/owned"), "svc data").unwrap();
    chown(&r.join("srv/data/owned"), 500, 500);
    chown(&r.join("srv/data"), 500, 501);
    chmod(&r.join("srv/data"), 0o2770);
    fs::write(r.join("bin/suid"), "suid").unwrap();
    chmod(&r.join("bin/suid"), 0o4755);
    fs::write(r.join("bin/capped"), "cap").unwrap();
    setxattr(
        &r.join("bin/capped"),
        "security.capability",
        &[0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    fs::write(r.join("etc/tagged"), "x").unwrap();
    setxattr(&r.join("etc/tagged"), "user.origin", b"umoci-test");
    fs::hard_link(r.join("bin/busybox"), r.join("bin/busybox-hl")).unwrap();
    nix::sys::stat::mknod(
        &r.join("dev/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        libc::makedev(1, 3),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &r.join("var/lib/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    fs::write(r.join("opt/old/a"), "a").unwrap();
    fs::write(r.join("opt/old/b"), "b").unwrap();
    sh(
        "umoci",
        &[
            "repack",
            "--refresh-bundle",
            "--image",
            &image,
            work.to_str().unwrap(),
        ],
    );

    // Second layer: whiteouts, a replaced directory, new files.
    fs::remove_file(r.join("etc/tagged")).unwrap();
    fs::remove_dir_all(r.join("opt/old")).unwrap();
    fs::write(r.join("opt/old"), "now a file").unwrap();
    fs::write(r.join("srv/data/new"), "new").unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nsvc:x:500:500::/srv:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
    )
    .unwrap();
    sh(
        "umoci",
        &[
            "repack",
            "--refresh-bundle",
            "--image",
            &image,
            work.to_str().unwrap(),
        ],
    );
    sh(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.user",
            "svc",
        ],
    );
    fs::remove_dir_all(&work).unwrap();
    image
}

fn umoci_reference(s: &Scratch, image: &str) -> std::collections::BTreeMap<String, Node> {
    let b = s.join("umoci-bundle");
    sh("umoci", &["unpack", "--image", image, b.to_str().unwrap()]);
    assert_eq!(mode_owner(&b).0, 0o700, "umoci closes its bundles");
    let snap = snapshot(&b.join("rootfs"));
    fs::remove_dir_all(&b).unwrap();
    snap
}

fn skopeo(args: &[&str]) {
    let mut full = vec!["--insecure-policy", "copy", "--quiet"];
    full.extend_from_slice(args);
    sh("skopeo", &full);
}

#[test]
fn umoci_and_skopeo_images_match_umoci_unpack() {
    let s = Scratch::new("producers");
    let image = umoci_image(&s);
    let reference = umoci_reference(&s, &image);
    let layers = run_ok(&["inspect", &image]);
    assert!(
        layers.contains("layers:   2"),
        "umoci made two layers: {layers}"
    );
    assert!(
        reference.contains_key("opt/old") && !reference.contains_key("etc/tagged"),
        "umoci applied its own layers"
    );
    // The comparison is only as good as the reference: make sure it holds
    // every kind of thing we claim to compare.
    assert_eq!(reference["opt/old"].kind, 'f');
    assert_eq!(reference["dev/null"].kind, 'c');
    assert_eq!(reference["var/lib/fifo"].kind, 'p');
    assert_eq!(reference["bin/suid"].mode, 0o4755);
    assert_eq!(
        (
            reference["srv/data"].uid,
            reference["srv/data"].gid,
            reference["srv/data"].mode
        ),
        (500, 501, 0o2770)
    );
    assert!(reference["bin/capped"]
        .xattrs
        .contains_key("security.capability"));
    assert_eq!(
        reference["etc/hostlink"].link.as_deref(),
        Some("/etc/hostname")
    );
    assert!(reference.contains_key("srv/data/new"));

    // The layout itself. umoci creates device nodes as root: compared with
    // --allow-devices; by default the device node is the one difference
    // (beyond umoci). Both close the bundle the same way.
    let b = s.join("b-oci");
    unpack(&image, &b, &["--allow-devices"]);
    assert_same_tree(&snapshot(&b.join("rootfs")), &reference, "oci layout");
    assert_eq!(mode_owner(&b), (0o700, 0, 0));
    let d = s.join("b-default");
    unpack(&image, &d, &[]);
    let mut without_devices = reference.clone();
    without_devices.remove("dev/null");
    assert_same_tree(
        &snapshot(&d.join("rootfs")),
        &without_devices,
        "devices left out",
    );
    let spec: Value = serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["user"]["uid"], 500);
    assert_eq!(spec["process"]["args"][0], "/bin/sh");

    // skopeo as producer: oci-archive, docker-archive and zstd layers.
    let layout = format!("oci:{}", image);
    let oci_archive = s.join("image.oci.tar");
    skopeo(&[
        &layout,
        &format!("oci-archive:{}:app", oci_archive.display()),
    ]);
    let docker_archive = s.join("image.docker.tar");
    skopeo(&[
        &layout,
        &format!(
            "docker-archive:{}:example.com/app:v1",
            docker_archive.display()
        ),
    ]);
    let zstd_layout = s.join("zstd-layout");
    skopeo(&[
        "--dest-compress-format",
        "zstd",
        &layout,
        &format!("oci:{}:z", zstd_layout.display()),
    ]);

    let cases = [
        (format!("{}:app", oci_archive.display()), "oci-archive"),
        (
            format!("{}", oci_archive.display()),
            "oci-archive, sole image",
        ),
        (
            format!("{}:example.com/app:v1", docker_archive.display()),
            "docker-archive",
        ),
        (
            format!("{}", docker_archive.display()),
            "docker-archive, sole image",
        ),
        (format!("{}:z", zstd_layout.display()), "zstd layout"),
    ];
    for (i, (src, what)) in cases.iter().enumerate() {
        let b = s.join(&format!("b{i}"));
        unpack(src, &b, &["--allow-devices"]);
        assert_same_tree(&snapshot(&b.join("rootfs")), &reference, what);
        fs::remove_dir_all(&b).unwrap();
    }
    let text = run_ok(&["inspect", &format!("{}", zstd_layout.display())]);
    assert!(
        text.contains("tar+zstd"),
        "skopeo wrote zstd layers: {text}"
    );
    assert_eq!(
        run_ok(&["list", docker_archive.to_str().unwrap()]),
        "example.com/app:v1\n"
    );
}

#[test]
fn cache_extracts_shared_layers_once() {
    let s = Scratch::new("cache");
    let base = Tar::new()
        .dir("etc/", attrs(0o755))
        .file("etc/base", b"base", attrs(0o644).owner(7, 8))
        .file("etc/gone", b"gone", attrs(0o644))
        .dir("lib/", attrs(0o755))
        .file("lib/a", b"a", attrs(0o755))
        .hardlink("lib/a-link", "lib/a")
        .finish();
    let mut l = Layout::create(&s.join("img"));
    let cmd = serde_json::json!({"Cmd": ["/bin/sh"]});
    let (one, _) = l.image(
        &[
            (Comp::Gzip, base.clone()),
            (
                Comp::Gzip,
                Tar::new()
                    .file("one", b"1", attrs(0o644))
                    .whiteout("etc", "gone")
                    .finish(),
            ),
        ],
        cmd.clone(),
    );
    let (two, _) = l.image(
        &[
            (Comp::Gzip, base),
            (
                Comp::Zstd,
                Tar::new()
                    .file("two", b"2", attrs(0o644))
                    .hardlink("lib/b", "lib/a")
                    .opaque("etc")
                    .finish(),
            ),
        ],
        cmd,
    );
    l.tag(one, Some("one"));
    l.tag(two, Some("two"));
    let cache = s.join("cache");
    let c = cache.to_str().unwrap();
    let dir = s.join("img");
    for (tag, mode) in [("one", "copy"), ("two", "hardlink"), ("one", "auto")] {
        let src = format!("{}:{tag}", dir.display());
        let direct = s.join(&format!("direct-{tag}-{mode}"));
        unpack(&src, &direct, &[]);
        let cached = s.join(&format!("cached-{tag}-{mode}"));
        unpack(&src, &cached, &["--cache", c, "--cache-mode", mode]);
        assert_same_tree(
            &snapshot(&cached.join("rootfs")),
            &snapshot(&direct.join("rootfs")),
            &format!("{tag} via cache ({mode})"),
        );
    }
    // base + one upper per image: three layer directories, not four.
    assert_eq!(leftovers(&cache.join("layers"), &[]).len(), 3);
    // Hard-link mode shares the cache's inodes.
    let bundle_ino = fs::metadata(s.join("cached-two-hardlink/rootfs/two"))
        .unwrap()
        .ino();
    let cached_inos: Vec<u64> = fs::read_dir(cache.join("layers"))
        .unwrap()
        .filter_map(|e| fs::metadata(e.unwrap().path().join("diff/two")).ok())
        .map(|m| m.ino())
        .collect();
    assert_eq!(cached_inos, vec![bundle_ino]);

    // --overlay: the config mounts cached layers; two bundles share them.
    let mut lowers = vec![];
    for name in ["ov1", "ov2"] {
        let b = s.join(name);
        unpack(
            &format!("{}:two", dir.display()),
            &b,
            &["--cache", c, "--overlay"],
        );
        let spec: Value =
            serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap();
        let m = &spec["mounts"][0];
        assert_eq!(
            (m["destination"].as_str(), m["type"].as_str()),
            (Some("/"), Some("overlay"))
        );
        let opts: Vec<&str> = m["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        let lower = opts
            .iter()
            .find_map(|o| o.strip_prefix("lowerdir="))
            .unwrap()
            .to_string();
        assert_eq!(lower.split(':').count(), 2);
        for d in lower.split(':') {
            assert!(
                Path::new(d).starts_with(fs::canonicalize(&cache).unwrap()),
                "{d}"
            );
        }
        assert!(
            opts.contains(&format!("upperdir={}", b.join("upper").display()).as_str()),
            "{opts:?}"
        );
        assert!(b.join("work").is_dir() && b.join("rootfs").is_dir());
        lowers.push(lower);
    }
    assert_eq!(lowers[0], lowers[1]);
    // The overlay-format upper layer of image two records its opaque dir.
    let opaque_dirs = fs::read_dir(cache.join("layers"))
        .unwrap()
        .filter(|e| {
            lxattrs(&e.as_ref().unwrap().path().join("diff/etc"))
                .get("trusted.overlay.opaque")
                .is_some_and(|v| v == b"y")
        })
        .count();
    assert_eq!(opaque_dirs, 1);
    assert_eq!(
        leftovers(&cache.join("layers"), &[]).len(),
        3,
        "still three layers"
    );
}
