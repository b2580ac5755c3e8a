//! Hostile layers and broken images: the host stays untouched, errors are
//! one line naming the blob, exit status 1, and no bundle is left behind.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn cmd() -> Value {
    json!({"Cmd": ["/bin/true"]})
}

/// Host-side sentinel directory and file that hostile layers aim at.
struct Sentinel {
    _scratch: Scratch,
    dir: std::path::PathBuf,
}

impl Sentinel {
    fn new() -> Self {
        let s = Scratch::new("sentinel");
        let dir = s.join("host");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("secret"), b"original").unwrap();
        Sentinel { _scratch: s, dir }
    }
    fn assert_untouched(&self) {
        assert_eq!(
            leftovers(&self.dir, &[]),
            vec!["secret".to_string()],
            "host dir gained entries"
        );
        assert_eq!(fs::read(self.dir.join("secret")).unwrap(), b"original");
    }
    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

fn unpack_args(img: &Path, bundle: &Path) -> [String; 5] {
    let image = format!("{}:t", img.display());
    let bundle = bundle.to_string_lossy().into_owned();
    ["unpack", "--quiet", "--image", &image, &bundle].map(String::from)
}

/// `unpack --quiet --image IMG:t BUNDLE`.
fn unpack_result(img: &Path, bundle: &Path) -> std::process::Output {
    let args = unpack_args(img, bundle);
    run(&args.each_ref().map(String::as_str))
}

/// The same, expecting failure: its one-line error.
fn unpack_error(img: &Path, bundle: &Path) -> String {
    let args = unpack_args(img, bundle);
    run_fail(&args.each_ref().map(String::as_str))
}

/// A successful unpack (the error on stderr otherwise).
fn assert_unpacked(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
}

/// Layers of `layers` in a layout at `s/<name>`, tagged `t`.
fn image(s: &Scratch, name: &str, layers: &[(Comp, Vec<u8>)]) -> std::path::PathBuf {
    let dir = s.join(name);
    Layout::single(&dir, "t", layers, cmd());
    dir
}

/// `..` and absolute names are resolved inside the rootfs.
#[test]
fn dotdot_and_absolute_names_stay_inside() {
    let host = Sentinel::new();
    let s = Scratch::new("dotdot");
    let rel_up = format!("../../../../../../..{}/dotdot", host.path());
    let layer = Tar::new()
        .file(&rel_up, b"x", attrs(0o644))
        .file(&format!("{}/absolute", host.path()), b"y", attrs(0o644))
        .file(
            &format!("{}/secret", host.path()),
            b"overwritten?",
            attrs(0o644),
        )
        .finish();
    image(&s, "img", &[(Comp::Gzip, layer)]);
    let bundle = s.join("bundle");
    let out = unpack_result(&s.join("img"), &bundle);
    assert_unpacked(&out);
    host.assert_untouched();
    let inside = bundle
        .join("rootfs")
        .join(host.path().trim_start_matches('/'));
    assert_eq!(fs::read(inside.join("dotdot")).unwrap(), b"x");
    assert_eq!(fs::read(inside.join("absolute")).unwrap(), b"y");
    assert_eq!(fs::read(inside.join("secret")).unwrap(), b"overwritten?");
}

/// `etc -> /etc`-style symlinks planted by a lower layer are followed as
/// if the rootfs were `/`: writes land inside it.
#[test]
fn writes_through_planted_symlinks_resolve_inside() {
    let host = Sentinel::new();
    let s = Scratch::new("symlink-in");
    let inside_dir = host.path().trim_start_matches('/').to_string();
    let lower = Tar::new()
        .dir(&format!("{inside_dir}/"), attrs(0o755))
        .symlink("abs", host.path())
        .symlink("rel", &format!("../../../../../../..{}", host.path()))
        .symlink("secretlink", &format!("{}/secret", host.path()))
        .finish();
    let upper = Tar::new()
        .file("abs/via-absolute", b"a", attrs(0o644))
        .file("rel/via-relative", b"r", attrs(0o644))
        .hardlink("hl", &format!("{}/secret", host.path()))
        .whiteout("abs", "secret")
        .finish();
    image(&s, "img", &[(Comp::None, lower), (Comp::Gzip, upper)]);
    let bundle = s.join("bundle");
    let out = unpack_result(&s.join("img"), &bundle);
    // The hard link names a file that only exists on the host: rejected.
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("entry \"hl\"") && err.contains("layer sha256:"),
        "{err}"
    );
    host.assert_untouched();
    assert!(!bundle.exists());

    // Without the bad hard link the same image unpacks, entirely inside.
    let upper = Tar::new()
        .file("abs/via-absolute", b"a", attrs(0o644))
        .file("rel/via-relative", b"r", attrs(0o644))
        .file(
            "secretlink",
            b"replaces the link, not its target",
            attrs(0o644),
        )
        .finish();
    let lower = Tar::new()
        .dir(&format!("{inside_dir}/"), attrs(0o755))
        .file(&format!("{inside_dir}/secret"), b"inner", attrs(0o644))
        .symlink("abs", host.path())
        .symlink("rel", &format!("../../../../../../..{}", host.path()))
        .symlink("secretlink", &format!("{}/secret", host.path()))
        .finish();
    image(&s, "img2", &[(Comp::None, lower), (Comp::Gzip, upper)]);
    let out = unpack_result(&s.join("img2"), &bundle);
    assert_unpacked(&out);
    host.assert_untouched();
    let inside = bundle.join("rootfs").join(&inside_dir);
    assert_eq!(fs::read(inside.join("via-absolute")).unwrap(), b"a");
    assert_eq!(fs::read(inside.join("via-relative")).unwrap(), b"r");
    assert_eq!(fs::read(inside.join("secret")).unwrap(), b"inner");
    assert!(fs::symlink_metadata(bundle.join("rootfs/secretlink"))
        .unwrap()
        .is_file());
}

/// A symlink to a host directory that does not exist inside the rootfs
/// cannot be written through: rejected, host untouched, nothing left.
#[test]
fn dangling_escape_symlink_is_rejected() {
    let host = Sentinel::new();
    let s = Scratch::new("symlink-out");
    let lower = Tar::new().symlink("etc", host.path()).finish();
    let upper = Tar::new()
        .file("etc/pwned", b"pwned", attrs(0o644))
        .finish();
    image(&s, "img", &[(Comp::Gzip, lower), (Comp::Gzip, upper)]);
    let bundle = s.join("bundle");
    let out = unpack_result(&s.join("img"), &bundle);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1);
    assert!(err.contains("entry \"etc/pwned\""), "{err}");
    host.assert_untouched();
    assert_eq!(leftovers(&s.0, &["img"]), Vec::<String>::new());
}

/// Whiteouts cannot delete outside the rootfs either.
#[test]
fn whiteouts_through_symlinks_stay_inside() {
    let host = Sentinel::new();
    let s = Scratch::new("wh-out");
    let lower = Tar::new()
        .symlink("h", host.path())
        .file("keep", b"k", attrs(0o644))
        .finish();
    let upper = Tar::new()
        .whiteout("h", "secret")
        .opaque("h")
        .whiteout("../../..", "keep2")
        .finish();
    image(&s, "img", &[(Comp::Gzip, lower), (Comp::Gzip, upper)]);
    let out = unpack_result(&s.join("img"), &s.join("bundle"));
    assert_unpacked(&out);
    host.assert_untouched();
    assert!(s.join("bundle/rootfs/keep").is_file());
}

// ------------------------------------------------------------ bad input

struct Broken {
    s: Scratch,
    layout: Layout,
    layer: Blob,
    manifest: Value,
}

fn good_image(tag: &str) -> Broken {
    let s = Scratch::new(tag);
    let layer = Tar::new()
        .file("f", &vec![7u8; 100_000], attrs(0o644))
        .finish();
    let mut layout = Layout::create(&s.join("img"));
    let (manifest, mut blobs) = layout.image(&[(Comp::Gzip, layer)], cmd());
    layout.tag(manifest.clone(), Some("t"));
    Broken {
        layer: blobs.remove(0),
        s,
        layout,
        manifest,
    }
}

impl Broken {
    /// The image's manifest as it is stored.
    fn manifest(&self) -> Value {
        let path = self
            .layout
            .blob_path(self.manifest["digest"].as_str().unwrap());
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    /// Stores `bytes` as a new manifest blob and points tag `t` at it.
    fn retag(&self, bytes: &[u8]) -> Blob {
        let m = self.layout.blob(bytes);
        let mut layout = Layout::create(&self.layout.dir);
        let descriptor = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": m.digest, "size": m.size});
        layout.tag(descriptor, Some("t"));
        m
    }

    /// Unpacks, expecting failure; checks the common guarantees and returns the error.
    fn fail(&self) -> String {
        let bundle = self.s.join("bundle");
        let err = unpack_error(&self.layout.dir, &bundle);
        assert!(!bundle.exists(), "no bundle after failure");
        assert_eq!(
            leftovers(&self.s.0, &["img"]),
            Vec::<String>::new(),
            "no temporary dir left"
        );
        err
    }
}

#[test]
fn truncated_layer_blob() {
    let b = good_image("trunc");
    let p = b.layout.blob_path(&b.layer.digest);
    let data = fs::read(&p).unwrap();
    fs::write(&p, &data[..data.len() / 2]).unwrap();
    let err = b.fail();
    assert!(
        err.contains(&b.layer.digest) && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn wrong_layer_digest() {
    let b = good_image("digest");
    let p = b.layout.blob_path(&b.layer.digest);
    // Same size and still valid gzip of the same tar: only the digest differs
    // (the gzip header's OS byte is not covered by the CRC).
    let mut data = fs::read(&p).unwrap();
    data[9] ^= 0x01;
    fs::write(&p, &data).unwrap();
    let err = b.fail();
    assert!(
        err.contains(&b.layer.digest) && err.contains("digest mismatch"),
        "{err}"
    );
}

#[test]
fn missing_layer_blob() {
    let b = good_image("missing");
    fs::remove_file(b.layout.blob_path(&b.layer.digest)).unwrap();
    let err = b.fail();
    assert!(
        err.contains(&b.layer.digest) && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn unknown_layer_media_type() {
    let b = good_image("mediatype");
    let mut manifest = b.manifest();
    manifest["layers"][0]["mediaType"] = json!("application/x-weird");
    b.retag(&serde_json::to_vec(&manifest).unwrap());
    let err = b.fail();
    assert!(
        err.contains(&b.layer.digest) && err.contains("application/x-weird"),
        "{err}"
    );
}

#[test]
fn manifest_that_is_not_json() {
    let b = good_image("notjson");
    let m = b.retag(b"this is not { json");
    let err = b.fail();
    assert!(
        err.contains(&format!("manifest {}", m.digest))
            && err.contains("not a valid image manifest"),
        "{err}"
    );
}

#[test]
fn layer_that_is_not_a_tar() {
    let s = Scratch::new("nottar");
    let junk = b"definitely not a tar archive, just some text that is long enough ".repeat(20);
    let img = image(&s, "img", &[(Comp::Gzip, junk)]);
    let bundle = s.join("bundle");
    let err = unpack_error(&img, &bundle);
    assert!(
        err.contains("layer sha256:") && err.contains("tar"),
        "{err}"
    );
    assert!(!bundle.exists());
    assert_eq!(leftovers(&s.0, &["img"]), Vec::<String>::new());
}

#[test]
fn corrupt_gzip_stream() {
    let b = good_image("gzip");
    let p = b.layout.blob_path(&b.layer.digest);
    let mut data = fs::read(&p).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&p, &data).unwrap();
    let err = b.fail();
    assert!(err.contains(&b.layer.digest), "{err}");
}

#[test]
fn diff_id_mismatch() {
    let b = good_image("diffid");
    let mut manifest = b.manifest();
    let cpath = b
        .layout
        .blob_path(manifest["config"]["digest"].as_str().unwrap());
    let mut config: Value = serde_json::from_slice(&fs::read(&cpath).unwrap()).unwrap();
    config["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    let c = b.layout.blob(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(c.digest);
    manifest["config"]["size"] = json!(c.size);
    b.retag(&serde_json::to_vec(&manifest).unwrap());
    let err = b.fail();
    assert!(
        err.contains(&b.layer.digest) && err.contains("diff_id"),
        "{err}"
    );
}

#[test]
fn existing_bundle_is_refused() {
    let b = good_image("exists");
    let bundle = b.s.join("bundle");
    fs::create_dir(&bundle).unwrap();
    fs::write(bundle.join("keep"), b"mine").unwrap();
    let err = unpack_error(&b.layout.dir, &bundle);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(fs::read(bundle.join("keep")).unwrap(), b"mine");
    let file = b.s.join("file");
    fs::write(&file, b"").unwrap();
    let err = unpack_error(&b.layout.dir, &file);
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(
        leftovers(&b.s.0, &["img", "bundle", "file"]),
        Vec::<String>::new()
    );
}

// ------------------------------------------- host users and the unpacked image
//
// The image's content is the container's, not the host's: a setuid-root
// program or a device node in a rootfs must not serve host users who are
// not root. Each attack below runs as host user nobody and has a control:
// the same attack with the path opened the way the old code left it
// (0755), which must succeed, so a pass cannot come from a nosuid or nodev
// mount or a missing tool.

/// An image with a setuid-root program (the host's `id`, which prints the
/// effective uid) and, when given, device nodes with mode 0666.
fn rootme_image(s: &Scratch, nodes: &[(&str, tar::EntryType, (u32, u32))]) -> std::path::PathBuf {
    let id = fs::read("/usr/bin/id").expect("/usr/bin/id (coreutils)");
    let mut layer = Tar::new()
        .dir("bin/", attrs(0o755))
        .file("bin/rootme", &id, attrs(0o4755))
        .dir("dev/", attrs(0o755));
    for (name, kind, dev) in nodes {
        layer = layer.node(name, *kind, *dev, attrs(0o666));
    }
    // The scratch dir follows the umask: open it so that only the
    // bundle's (or cache's) own mode can stand in the attacker's way.
    chmod(&s.0, 0o755);
    image(s, "img", &[(Comp::Gzip, layer.finish())])
}

/// The host's /dev/kmsg (char, opened for writing) and a block device of
/// the host (opened for reading): nodes nobody cannot open at their real
/// paths (checked for kmsg; block nodes in /dev are never world-readable).
fn host_devices() -> Vec<(&'static str, tar::EntryType, (u32, u32), bool)> {
    let kmsg = fs::metadata("/dev/kmsg").expect("/dev/kmsg").rdev();
    let mut nodes = vec![(
        "dev/kmsg",
        tar::EntryType::Char,
        (libc::major(kmsg), libc::minor(kmsg)),
        true,
    )];
    match openable_block_device() {
        Some(dev) => {
            eprintln!("host_devices: block device {}:{}", dev.0, dev.1);
            nodes.push(("dev/hostdisk", tar::EntryType::Block, dev, false))
        }
        None => eprintln!(
            "host_devices: no block device that root may open here; only the char node is tested"
        ),
    }
    nodes
}

/// The disk under `/` if root may open it (a VM sandbox can forbid even
/// that), else the first block device in /sys/dev/block that root may open.
fn openable_block_device() -> Option<(u32, u32)> {
    let root = fs::metadata("/").unwrap().dev();
    let mut candidates = vec![(libc::major(root), libc::minor(root))];
    let mut listed: Vec<(u32, u32)> = fs::read_dir("/sys/dev/block")
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let (a, b) = name.split_once(':')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect()
        })
        .unwrap_or_default();
    listed.sort();
    candidates.extend(listed);
    let probe = Scratch::new("blockprobe");
    let node = probe.join("node");
    candidates
        .into_iter()
        .filter(|&(major, _)| major != 0)
        .find(|&(major, minor)| {
            let made = nix::sys::stat::mknod(
                &node,
                nix::sys::stat::SFlag::S_IFBLK,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                libc::makedev(major, minor),
            );
            let ok = made.is_ok() && fs::File::open(&node).is_ok();
            let _ = fs::remove_file(&node);
            ok
        })
}

fn as_entries(
    nodes: &[(&'static str, tar::EntryType, (u32, u32), bool)],
) -> Vec<(&'static str, tar::EntryType, (u32, u32))> {
    nodes.iter().map(|(n, k, d, _)| (*n, *k, *d)).collect()
}

fn unpack_with(img: &Path, bundle: &Path, extra: &[&str]) -> std::process::Output {
    let image = format!("{}:t", img.display());
    let mut args = vec!["unpack", "--quiet", "--image", &image];
    args.extend_from_slice(extra);
    args.push(bundle.to_str().unwrap());
    run(&args)
}

/// A host user runs a setuid-root program from a freshly unpacked bundle.
#[test]
fn host_user_cannot_run_setuid_root_program_from_bundle() {
    let s = Scratch::new("suid");
    let img = rootme_image(&s, &[]);
    let bundle = s.join("bundle");
    assert_unpacked(&unpack_with(&img, &bundle, &[]));
    let rootme = bundle.join("rootfs/bin/rootme");
    let err = nobody_runs(&rootme).expect_err("nobody ran the image's setuid program");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(mode_owner(&bundle), (0o700, 0, 0), "bundle is root's, 0700");
    assert_eq!(
        mode_owner(&rootme).0,
        0o4755,
        "the image keeps its setuid bit"
    );

    // Control: with the bundle as open as the old code made it, the same
    // program gives nobody euid 0.
    chmod(&bundle, 0o755);
    assert_eq!(nobody_runs(&rootme).as_deref(), Ok("0\n"));
}

/// A host user opens device nodes the image carries (the host's kmsg for
/// writing, the host's root disk for reading). Left out by default, so no
/// bundle mode matters (beyond umoci, which creates them as root does).
#[test]
fn host_user_cannot_open_device_nodes_from_bundle() {
    let nodes = host_devices();
    let err = nobody_opens(Path::new("/dev/kmsg"), true).expect_err("nobody writes /dev/kmsg");
    assert!(err.contains("Permission denied"), "precondition: {err}");
    let s = Scratch::new("devs");
    let img = rootme_image(&s, &as_entries(&nodes));

    let bundle = s.join("bundle");
    let out = unpack_with(&img, &bundle, &[]);
    assert_unpacked(&out);
    // Opening the bundle up (the old mode) changes nothing: the nodes are
    // not there at all.
    chmod(&bundle, 0o755);
    for (name, _, _, write) in &nodes {
        let path = bundle.join("rootfs").join(name);
        // Reading: no such file; writing: nobody may not create one.
        nobody_opens(&path, *write).expect_err(name);
        assert!(fs::symlink_metadata(&path).is_err(), "{name} was created");
    }
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("warning: left out")
            && warning.contains("dev/kmsg")
            && warning.contains("--allow-devices"),
        "{warning}"
    );
}

/// With --allow-devices the nodes are made as the image says; the bundle's
/// mode alone keeps host users from them.
#[test]
fn allowed_device_nodes_stay_out_of_host_users_reach() {
    let nodes = host_devices();
    let s = Scratch::new("devs-allowed");
    let img = rootme_image(&s, &as_entries(&nodes));
    let bundle = s.join("bundle");
    let out = unpack_with(&img, &bundle, &["--allow-devices"]);
    assert_unpacked(&out);
    assert!(out.stderr.is_empty(), "no warning when devices are allowed");
    assert_eq!(mode_owner(&bundle), (0o700, 0, 0));
    for (name, kind, (major, minor), write) in &nodes {
        let path = bundle.join("rootfs").join(name);
        let md = fs::symlink_metadata(&path).unwrap();
        let is_kind = match kind {
            tar::EntryType::Char => md.file_type().is_char_device(),
            _ => md.file_type().is_block_device(),
        };
        assert!(is_kind, "{name} is a device node");
        assert_eq!(md.rdev(), libc::makedev(*major, *minor), "{name}");
        let err = nobody_opens(&path, *write).expect_err(name);
        assert!(err.contains("Permission denied"), "{name}: {err}");
    }
    // Control: as the old code left the bundle, nobody gets in.
    chmod(&bundle, 0o755);
    for (name, _, _, write) in &nodes {
        let path = bundle.join("rootfs").join(name);
        assert_eq!(nobody_opens(&path, *write), Ok(()), "control: {name}");
    }
}

/// The layer cache holds what bundles hold: with --allow-devices a device
/// node and always the setuid program. `DIR/layers` is closed like a bundle
/// (beyond umoci, which has no cache).
#[test]
fn host_user_cannot_reach_the_layer_cache() {
    let nodes = host_devices();
    let s = Scratch::new("cache-reach");
    let img = rootme_image(&s, &as_entries(&nodes));
    let cache = s.join("cache");
    let c = cache.to_str().unwrap();
    let layers = cache.join("layers");
    let diffs = || -> Vec<std::path::PathBuf> {
        fs::read_dir(&layers)
            .unwrap()
            .map(|e| e.unwrap().path().join("diff"))
            .collect()
    };
    assert_unpacked(&unpack_with(&img, &s.join("b0"), &["--cache", c]));
    for d in diffs() {
        let err = nobody_runs(&d.join("bin/rootme")).expect_err("setuid program in the cache");
        assert!(err.contains("Permission denied"), "{err}");
    }
    assert_unpacked(&unpack_with(
        &img,
        &s.join("b1"),
        &["--cache", c, "--allow-devices"],
    ));
    assert_eq!(mode_owner(&layers), (0o700, 0, 0));
    // Two key directories: the layer without its devices and with them.
    assert_eq!(diffs().len(), 2);
    let faithful = diffs()
        .into_iter()
        .find(|d| fs::symlink_metadata(d.join("dev/kmsg")).is_ok_and(|m| m.mode() & 0o777 == 0o666))
        .expect("a cached layer with the device node");
    let err = nobody_opens(&faithful.join("dev/kmsg"), true).expect_err("kmsg in the cache");
    assert!(err.contains("Permission denied"), "{err}");

    // Control: the cache as the old code left it (0755) gives both away.
    chmod(&layers, 0o755);
    assert_eq!(
        nobody_runs(&faithful.join("bin/rootme")).as_deref(),
        Ok("0\n")
    );
    assert_eq!(nobody_opens(&faithful.join("dev/kmsg"), true), Ok(()));
    // ... and the next unpack closes such a cache again.
    assert_unpacked(&unpack_with(&img, &s.join("b2"), &["--cache", c]));
    assert_eq!(mode_owner(&layers).0, 0o700);
}

/// A `layers` directory that another user owns may hold layers that user
/// wrote: refused, not trusted (beyond umoci, which has no cache).
#[test]
fn cache_owned_by_another_user_is_refused() {
    let s = Scratch::new("cache-owner");
    let img = rootme_image(&s, &[]);
    let layers = s.join("cache/layers");
    fs::create_dir_all(&layers).unwrap();
    nix::unistd::chown(&layers, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let bundle = s.join("bundle");
    let image = format!("{}:t", img.display());
    let cache = s.join("cache");
    let err = run_fail(&[
        "unpack",
        "--image",
        &image,
        "--cache",
        cache.to_str().unwrap(),
        bundle.to_str().unwrap(),
    ]);
    assert!(
        err.contains("cache/layers") && err.contains("owned by uid 65534"),
        "{err}"
    );
    assert!(!bundle.exists());
    assert_eq!(mode_owner(&layers), (0o755, NOBODY, 0), "left as it was");
}

/// An existing empty directory, even one nobody owns and anyone may write,
/// is replaced by the bundle, not reused (beyond umoci, which chmods it in
/// place and so leaves it to its owner).
#[test]
fn existing_empty_directory_is_replaced_by_a_closed_bundle() {
    let s = Scratch::new("empty-target");
    let img = rootme_image(&s, &[]);
    let bundle = s.join("bundle");
    fs::create_dir(&bundle).unwrap();
    chmod(&bundle, 0o777);
    nix::unistd::chown(
        &bundle,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    assert_unpacked(&unpack_with(&img, &bundle, &[]));
    assert_eq!(mode_owner(&bundle), (0o700, 0, 0));
    let err = nobody_runs(&bundle.join("rootfs/bin/rootme")).expect_err("nobody ran rootme");
    assert!(err.contains("Permission denied"), "{err}");
    // Nobody, who owned the directory, cannot open it back up.
    let out = as_nobody("chmod 755 \"$1\"", &[&bundle]);
    assert!(!out.status.success());
    assert_eq!(mode_owner(&bundle).0, 0o700);
    assert_eq!(leftovers(&s.0, &["img", "bundle"]), Vec::<String>::new());
}
