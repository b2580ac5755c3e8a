//! Hostile layers and broken images: the host stays untouched, errors are
//! one line naming the blob, exit status 1, and no bundle is left behind.

mod common;

use std::fs;
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
    fs::create_dir(b.s.join("bundle")).unwrap();
    let err = unpack_error(&b.layout.dir, &b.s.join("bundle"));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(leftovers(&b.s.0, &["img", "bundle"]), Vec::<String>::new());
}
