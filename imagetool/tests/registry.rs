//! `pull` and `copy` against a real registry (Debian's docker-registry on
//! 127.0.0.1, images pushed by skopeo): plain HTTP, TLS with a test-made CA,
//! htpasswd Basic auth, the bearer-token flow, platform selection from an
//! index, a corrupt blob, a killed download resumed, a tampered partial.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::{self as reg, Alter, Config, Proxy, Registry, TokenServer};
use common::*;
use serde_json::{json, Value};

/// The README's image: Debian's static busybox as a one-layer OCI layout.
fn busybox_layout(s: &Scratch) -> PathBuf {
    let dir = s.join("image");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/busybox-image.sh");
    sh(script.to_str().unwrap(), &[dir.to_str().unwrap()]);
    dir
}

/// The image's manifest, and its one layer's digest hex.
fn layer_hex(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(&m[7..])).unwrap())
            .unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap()[7..].to_string()
}

/// busybox pushed to a plain-HTTP registry, reached through a proxy that can
/// alter or stall a blob and records every request.
struct Proxied {
    layout: PathBuf,
    hex: String,
    proxy: Proxy,
    image: String,
    registry: Registry,
}

fn proxied_busybox(s: &Scratch) -> Proxied {
    let layout = busybox_layout(s);
    let hex = layer_hex(&layout);
    let registry = Registry::start(s, &Config::default());
    registry.push(&layout, "busybox:latest", &["--dest-tls-verify=false"]);
    let proxy = Proxy::start(registry.port);
    let image = format!("docker://{}/busybox:latest", proxy.host());
    Proxied {
        layout,
        hex,
        proxy,
        image,
        registry,
    }
}

/// patina-imagetool with a clean environment: HOME in the scratch dir (no
/// credentials of the machine's), no auth-file variables.
fn tool(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = s.join("home");
    fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(BIN);
    c.args(args)
        .env("HOME", &home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("SSL_CERT_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = tool(s, args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed: {err}");
    err
}

/// Must fail with exit 1 and one error line (progress lines aside).
fn fails(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = tool(s, args, env);
    let all = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {all}");
    let errs: Vec<&str> = all.lines().filter(|l| !is_progress(l)).collect();
    assert_eq!(errs.len(), 1, "one error line expected: {all}");
    assert!(errs[0].starts_with("patina-imagetool: "), "{all}");
    eprintln!("expected failure: {}", errs[0]);
    errs[0].to_string()
}

/// pull IMAGE into `bundle` with the test's own store.
fn pull_args<'a>(image: &'a str, bundle: &'a Path, store: &'a str) -> Vec<&'a str> {
    vec!["pull", "--store", store, image, bundle.to_str().unwrap()]
}

/// The pulled bundle runs: its shell reports our marker and uid 0.
fn assert_runs(bundle: &Path, id: &str) {
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["args"] = json!(["sh", "-c", "echo pulled-$(id -u)"]);
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let out = run_container(bundle, id);
    assert_eq!(out.trim(), "pulled-0", "container output");
}

fn unique(tag: &str) -> String {
    format!("pull-{tag}-{}", std::process::id())
}

#[test]
fn pull_over_plain_http_runs_and_reuses_blobs() {
    if !reg::available("pull_over_plain_http_runs_and_reuses_blobs") {
        return;
    }
    let s = Scratch::new("reg-plain");
    let layout = busybox_layout(&s);
    let r = Registry::start(&s, &Config::default());
    r.push(&layout, "busybox:latest", &["--dest-tls-verify=false"]);
    let store = s.join("store");
    let (st, b1) = (store.to_str().unwrap(), s.join("b1"));
    let image = format!("docker://{}/busybox:latest", r.host());

    let err = ok(&s, &pull_args(&image, &b1, st), &[]);
    assert!(
        err.contains(&format!("fetched layer {}", &layer_hex(&layout)[..12])),
        "{err}"
    );
    assert_runs(&b1, &unique("plain"));
    // The store is a private OCI layout that unpack, list and inspect read.
    assert_eq!(mode_owner(&store).0 & 0o777, 0o700);
    let refs = run_ok(&["list", st]);
    assert_eq!(refs.trim(), format!("{}/busybox:latest", r.host()));
    assert!(leftovers(&store, &["oci-layout", "index.json", "blobs"]).is_empty());

    // Again: nothing comes over the network.
    let err = ok(&s, &pull_args(&image, &s.join("b2"), st), &[]);
    assert!(err.contains(" 0 downloaded)"), "{err}");

    // By digest, without docker://.
    let index: Value =
        serde_json::from_slice(&fs::read(store.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let by_digest = format!("{}/busybox@{digest}", r.host());
    ok(&s, &pull_args(&by_digest, &s.join("b3"), st), &[]);
    assert_same_tree(
        &snapshot(&s.join("b2/rootfs")),
        &snapshot(&s.join("b3/rootfs")),
        "pulled by tag and by digest",
    );

    // copy writes the same manifest skopeo copy does.
    let ours = s.join("copy-ours");
    ok(
        &s,
        &["copy", &image, &format!("oci:{}:v1", ours.display())],
        &[],
    );
    let theirs = s.join("copy-skopeo");
    sh(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &image,
            &format!("oci:{}:v1", theirs.display()),
        ],
    );
    let manifest_of = |dir: &Path| -> String {
        let i: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            i["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "v1"
        );
        i["manifests"][0]["digest"].as_str().unwrap().to_string()
    };
    assert_eq!(manifest_of(&ours), manifest_of(&theirs));
    assert!(leftovers(&ours, &["oci-layout", "index.json", "blobs"]).is_empty());
    unpack(&format!("{}:v1", ours.display()), &s.join("b4"), &[]);

    // Into the layer cache, the rootfs an overlay of it (a fresh store, so
    // the layer streams into the cache as it downloads).
    let cache = s.join("cache");
    let st2 = s.join("store-for-cache");
    ok(
        &s,
        &[
            "pull",
            "--store",
            st2.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--overlay",
            &image,
            s.join("b-overlay").to_str().unwrap(),
        ],
        &[],
    );
    let cfg: Value =
        serde_json::from_slice(&fs::read(s.join("b-overlay/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["mounts"][0]["type"], "overlay", "{}", cfg["mounts"][0]);
    let cached = fs::read_dir(cache.join("layers")).unwrap().count();
    assert_eq!(cached, 1, "one layer in the cache");

    // A bundle path in the way is refused before anything is fetched.
    fs::create_dir_all(s.join("full/x")).unwrap();
    let other_store = s.join("store-unused");
    let err = fails(
        &s,
        &pull_args(&image, &s.join("full"), other_store.to_str().unwrap()),
        &[],
    );
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert!(!other_store.exists());

    let missing = format!("docker://{}/busybox:nosuch", r.host());
    let err = fails(&s, &pull_args(&missing, &s.join("b5"), st), &[]);
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
    assert!(!s.join("b5").exists());
}

#[test]
fn pull_over_tls_needs_the_ca_or_tls_verify_false() {
    if !reg::available("pull_over_tls_needs_the_ca_or_tls_verify_false") {
        return;
    }
    let s = Scratch::new("reg-tls");
    let layout = busybox_layout(&s);
    let (cert, key) = reg::self_signed(&s.join("tls"), "patina-test-registry");
    let certs = s.join("certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let r = Registry::start(
        &s,
        &Config {
            tls: Some((cert, key)),
            ..Default::default()
        },
    );
    r.push(
        &layout,
        "busybox:latest",
        &["--dest-cert-dir", certs.to_str().unwrap()],
    );
    let image = format!("docker://{}/busybox:latest", r.host());
    let st = s.join("store");
    let st = st.to_str().unwrap();

    let err = fails(&s, &pull_args(&image, &s.join("b0"), st), &[]);
    assert!(err.contains("certificate"), "{err}");
    assert!(!s.join("b0").exists());
    // A CA that did not sign the registry's certificate is no better.
    let (other, _) = reg::self_signed(&s.join("other"), "someone-else");
    let wrong = s.join("wrong-certs");
    fs::create_dir_all(&wrong).unwrap();
    fs::copy(&other, wrong.join("ca.crt")).unwrap();
    let (b1, b2) = (s.join("b1"), s.join("b2"));
    let with = |flag: &[&str], b: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["pull", "--store", st]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(flag.iter().map(|x| x.to_string()));
        a.extend([image.clone(), b.display().to_string()]);
        a
    };
    let args = with(&["--cert-dir", wrong.to_str().unwrap()], &b1);
    let err = fails(
        &s,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert!(err.contains("certificate"), "{err}");

    let args = with(&["--cert-dir", certs.to_str().unwrap()], &b1);
    ok(
        &s,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_runs(&b1, &unique("tls"));
    let args = with(&["--tls-verify=false"], &b2);
    ok(
        &s,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert!(b2.join("rootfs/bin/busybox").exists());
}

#[test]
fn pull_with_htpasswd_basic_auth() {
    if !reg::available("pull_with_htpasswd_basic_auth") {
        return;
    }
    let s = Scratch::new("reg-basic");
    let layout = busybox_layout(&s);
    let htpasswd = s.join("htpasswd");
    let line = sh("htpasswd", &["-Bbn", "tester", "s3cret"]);
    fs::write(&htpasswd, line.trim()).unwrap();
    let r = Registry::start(
        &s,
        &Config {
            htpasswd: Some(htpasswd),
            ..Default::default()
        },
    );
    r.push(
        &layout,
        "busybox:latest",
        &["--dest-tls-verify=false", "--dest-creds", "tester:s3cret"],
    );
    let image = format!("docker://{}/busybox:latest", r.host());
    let st = s.join("store");
    let st = st.to_str().unwrap();

    let err = fails(&s, &pull_args(&image, &s.join("b0"), st), &[]);
    assert!(
        err.contains("authentication required and no credentials"),
        "{err}"
    );
    let bad = s.join("bad.json");
    reg::auth_file(&bad, &r.host(), "tester", "wrong");
    let err = fails(
        &s,
        &pull_args(&image, &s.join("b0"), st),
        &[("REGISTRY_AUTH_FILE", bad.to_str().unwrap())],
    );
    assert!(err.contains("401"), "{err}");
    assert!(!s.join("b0").exists());

    let good = s.join("good.json");
    reg::auth_file(&good, &r.host(), "tester", "s3cret");
    ok(
        &s,
        &pull_args(&image, &s.join("b1"), st),
        &[("REGISTRY_AUTH_FILE", good.to_str().unwrap())],
    );
    assert_runs(&s.join("b1"), &unique("basic"));
    // docker's file under $HOME, and --creds.
    fs::create_dir_all(s.join("home/.docker")).unwrap();
    reg::auth_file(
        &s.join("home/.docker/config.json"),
        &r.host(),
        "tester",
        "s3cret",
    );
    let fresh = s.join("store2");
    ok(
        &s,
        &pull_args(&image, &s.join("b2"), fresh.to_str().unwrap()),
        &[],
    );
    fs::remove_file(s.join("home/.docker/config.json")).unwrap();
    let fresh = s.join("store3");
    ok(
        &s,
        &[
            "pull",
            "--store",
            fresh.to_str().unwrap(),
            "--creds",
            "tester:s3cret",
            &image,
            s.join("b3").to_str().unwrap(),
        ],
        &[],
    );
}

#[test]
fn pull_with_a_bearer_token_from_the_token_endpoint() {
    if !reg::available("pull_with_a_bearer_token_from_the_token_endpoint") {
        return;
    }
    let s = Scratch::new("reg-token");
    let layout = busybox_layout(&s);
    let (cert, key) = reg::self_signed(&s.join("signer"), "patina-test-token-signer");
    let tokens = TokenServer::start(&cert, &key, "tester", "t0ken-pw");
    let r = Registry::start(
        &s,
        &Config {
            token: Some((tokens.realm(), cert)),
            ..Default::default()
        },
    );
    r.push(
        &layout,
        "busybox:latest",
        &["--dest-tls-verify=false", "--dest-creds", "tester:t0ken-pw"],
    );
    let image = format!("docker://{}/busybox:latest", r.host());
    let st = s.join("store");
    let st = st.to_str().unwrap();
    tokens.log.lock().unwrap().clear();

    let err = fails(&s, &pull_args(&image, &s.join("b0"), st), &[]);
    assert!(
        err.contains("token endpoint") && err.contains("401"),
        "{err}"
    );
    let auth = s.join("auth.json");
    reg::auth_file(&auth, &r.host(), "tester", "t0ken-pw");
    ok(
        &s,
        &pull_args(&image, &s.join("b1"), st),
        &[("REGISTRY_AUTH_FILE", auth.to_str().unwrap())],
    );
    assert_runs(&s.join("b1"), &unique("token"));
    let log = tokens.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l
            == &format!(
                "scope=repository:busybox:pull service={} authorized=true",
                reg::SERVICE
            )),
        "token requests: {log:?}"
    );
}

/// Three pulls of one image into one store at once: one downloads each
/// blob, the others wait for it (flock on the ingest file) and use it.
#[test]
fn concurrent_pulls_share_one_store() {
    if !reg::available("concurrent_pulls_share_one_store") {
        return;
    }
    let s = Scratch::new("reg-concurrent");
    let p = proxied_busybox(&s);
    let store = s.join("store");
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(BIN)
                .args(["pull", "--store", store.to_str().unwrap(), &p.image])
                .arg(s.join(&format!("b{i}")))
                .env("HOME", s.join("home"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for i in 0..3 {
        assert!(s.join(&format!("b{i}/rootfs/bin/busybox")).exists());
    }
    let blob = fs::read(p.layout.join("blobs/sha256").join(&p.hex)).unwrap();
    assert_eq!(
        fs::read(store.join("blobs/sha256").join(&p.hex)).unwrap(),
        blob
    );
    assert!(leftovers(&store, &["oci-layout", "index.json", "blobs"]).is_empty());
    let index: Value =
        serde_json::from_slice(&fs::read(store.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    // One download in all: whoever waited on the lock, or came later,
    // found the blob in place.
    let layer_gets = p
        .proxy
        .requests()
        .iter()
        .filter(|l| l.contains(&p.hex))
        .count();
    assert_eq!(layer_gets, 1, "{:?}", p.proxy.requests());
}

/// A TLS registry whose token endpoint is plain HTTP: the credentials are
/// not sent there (beyond docker and skopeo, which send them).
#[test]
fn credentials_never_go_to_a_plain_http_token_endpoint() {
    if !reg::available("credentials_never_go_to_a_plain_http_token_endpoint") {
        return;
    }
    let s = Scratch::new("reg-realm");
    let (signer, signer_key) = reg::self_signed(&s.join("signer"), "patina-test-token-signer");
    let tokens = TokenServer::start(&signer, &signer_key, "tester", "t0ken-pw");
    let (cert, key) = reg::self_signed(&s.join("tls"), "patina-test-registry");
    let certs = s.join("certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let r = Registry::start(
        &s,
        &Config {
            tls: Some((cert, key)),
            token: Some((tokens.realm(), signer)),
            ..Default::default()
        },
    );
    let image = format!("docker://{}/busybox:latest", r.host());
    let st = s.join("store");
    let err = fails(
        &s,
        &[
            "pull",
            "--store",
            st.to_str().unwrap(),
            "--cert-dir",
            certs.to_str().unwrap(),
            "--creds",
            "tester:t0ken-pw",
            &image,
            s.join("b0").to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        err.contains("is not HTTPS: not sending credentials"),
        "{err}"
    );
    assert!(
        tokens.log.lock().unwrap().is_empty(),
        "the endpoint was asked"
    );
    // Beyond skopeo 1.9.3: it hands the same credentials to that endpoint.
    let _ = Command::new("skopeo")
        .args([
            "inspect",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--creds",
            "tester:t0ken-pw",
            &image,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let log = tokens.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.ends_with("authorized=true")),
        "skopeo: {log:?}"
    );
}

/// A store another user owns is refused before anything is fetched: its
/// blobs and index could be that user's.
#[test]
fn store_owned_by_another_user_is_refused() {
    let s = Scratch::new("reg-store-owner");
    let st = s.join("store");
    fs::create_dir_all(&st).unwrap();
    nix::unistd::chown(&st, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let err = fails(
        &s,
        &pull_args(
            "docker://127.0.0.1:1/busybox:latest",
            &s.join("b0"),
            st.to_str().unwrap(),
        ),
        &[],
    );
    assert!(
        err.contains("owned by uid 65534, not by this user"),
        "{err}"
    );
    assert!(!s.join("b0").exists());
}

/// An index with the host's image and another platform's: the host's by
/// default, `--platform` for the other.
#[test]
fn pull_picks_the_platform_from_an_index() {
    if !reg::available("pull_picks_the_platform_from_an_index") {
        return;
    }
    let s = Scratch::new("reg-platform");
    let mut l = Layout::create(&s.join("image"));
    let image_with = |l: &Layout, which: &[u8]| {
        l.image(
            &[(
                Comp::Gzip,
                Tar::new().file("which", which, attrs(0o644)).finish(),
            )],
            json!({"Cmd": ["sh"]}),
        )
        .0
    };
    let mut host = image_with(&l, b"host");
    let mut other = image_with(&l, b"other");
    let other_arch = if host_arch() == "arm64" {
        "riscv64"
    } else {
        "arm64"
    };
    host["platform"] = json!({"os": "linux", "architecture": host_arch()});
    other["platform"] = json!({"os": "linux", "architecture": other_arch});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [other, host]});
    let ib = l.blob(&serde_json::to_vec(&index).unwrap());
    l.tag(json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": ib.digest, "size": ib.size}), Some("latest"));
    let r = Registry::start(&s, &Config::default());
    r.push(
        &l.dir,
        "multi:latest",
        &["--all", "--dest-tls-verify=false"],
    );
    let image = format!("docker://{}/multi:latest", r.host());
    let st = s.join("store");
    let st = st.to_str().unwrap();

    ok(&s, &pull_args(&image, &s.join("b1"), st), &[]);
    assert_eq!(fs::read(s.join("b1/rootfs/which")).unwrap(), b"host");
    let plat = format!("linux/{other_arch}");
    ok(
        &s,
        &[
            "pull",
            "--store",
            st,
            "--platform",
            &plat,
            &image,
            s.join("b2").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(fs::read(s.join("b2/rootfs/which")).unwrap(), b"other");
    let err = fails(
        &s,
        &[
            "pull",
            "--store",
            st,
            "--platform",
            "linux/s390x",
            &image,
            s.join("b3").to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
}

/// A proxy flips one byte of the layer: refused, naming the digest, and
/// nothing of it kept.
#[test]
fn corrupt_blob_is_refused_naming_its_digest() {
    if !reg::available("corrupt_blob_is_refused_naming_its_digest") {
        return;
    }
    let s = Scratch::new("reg-corrupt");
    let p = proxied_busybox(&s);
    p.proxy.set(&p.hex, Alter::Flip(4242));
    let store = s.join("store");

    let err = fails(
        &s,
        &pull_args(&p.image, &s.join("b0"), store.to_str().unwrap()),
        &[],
    );
    assert!(
        err.contains(&format!("blob sha256:{}: digest mismatch", p.hex)),
        "{err}"
    );
    assert!(!s.join("b0").exists());
    assert!(!store.join("blobs/sha256").join(&p.hex).exists());
    assert!(
        leftovers(&store.join("ingest"), &[]).is_empty(),
        "partial of a corrupt blob kept"
    );

    // The registry's own stored copy corrupted: the same refusal.
    let data_file = p.registry.blob_file(&p.hex);
    let mut data = fs::read(&data_file).unwrap();
    data[100] ^= 0x55;
    fs::write(&data_file, data).unwrap();
    let direct = format!("docker://{}/busybox:latest", p.registry.host());
    let err = fails(
        &s,
        &pull_args(&direct, &s.join("b1"), store.to_str().unwrap()),
        &[],
    );
    assert!(
        err.contains(&format!("blob sha256:{}: digest mismatch", p.hex)),
        "{err}"
    );
}

/// The download is killed mid-blob; the next pull asks for the rest with a
/// Range request, re-hashes the kept bytes, and the bundle runs.
#[test]
fn killed_download_resumes_with_a_range_request() {
    if !reg::available("killed_download_resumes_with_a_range_request") {
        return;
    }
    let s = Scratch::new("reg-resume");
    let p = proxied_busybox(&s);
    // Of the 1088025-byte layer: enough that its decompressed part passes
    // the 1 MiB chunk the layer thread hands on, so extraction has begun.
    const CUT: usize = 700_000;
    p.proxy.set(&p.hex, Alter::StallAfter(CUT));
    let store = s.join("store");
    let bundle = s.join("b1");
    let partial = store.join("ingest").join(format!("sha256-{}", p.hex));

    let mut child = Command::new(BIN)
        .args([
            "pull",
            "--store",
            store.to_str().unwrap(),
            &p.image,
            bundle.to_str().unwrap(),
        ])
        .env("HOME", s.join("home"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fs::metadata(&partial).map_or(0, |m| m.len()) < CUT as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "download never reached {CUT} bytes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "pull ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The unpack follows the download: files of the layer's first bytes
    // are in the bundle being built before the rest has arrived.
    let building = || -> usize {
        fs::read_dir(&s.0)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".b1.unpack-"))
            .map(|e| fs::read_dir(e.path().join("rootfs")).map_or(0, |d| d.count()))
            .sum()
    };
    while building() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "unpack did not start on the partial layer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // our child, by PID
    child.wait().unwrap();
    assert!(!bundle.exists());
    assert_eq!(fs::metadata(&partial).unwrap().len(), CUT as u64);

    p.proxy.set(&p.hex, Alter::Pass);
    let err = ok(
        &s,
        &pull_args(&p.image, &bundle, store.to_str().unwrap()),
        &[],
    );
    assert!(err.contains(&format!("resumed at byte {CUT}")), "{err}");
    let asked = p.proxy.requests();
    assert!(
        asked
            .iter()
            .any(|l| l.contains(&p.hex) && l.ends_with(&format!("[bytes={CUT}-]"))),
        "no Range request for the rest: {asked:?}"
    );
    assert!(!partial.exists());
    assert_runs(&bundle, &unique("resume"));
}

/// A partial download whose bytes were altered on disk is not trusted: the
/// resumed blob fails its digest and is fetched again from byte 0.
#[test]
fn tampered_partial_is_fetched_again() {
    if !reg::available("tampered_partial_is_fetched_again") {
        return;
    }
    let s = Scratch::new("reg-tamper");
    let p = proxied_busybox(&s);
    let store = s.join("store");
    fs::create_dir_all(store.join("ingest")).unwrap();
    chmod(&store, 0o700);
    let blob = fs::read(p.layout.join("blobs/sha256").join(&p.hex)).unwrap();
    let mut kept = blob[..200_000].to_vec();
    kept[1234] ^= 1;
    fs::write(store.join("ingest").join(format!("sha256-{}", p.hex)), kept).unwrap();

    let err = ok(
        &s,
        &pull_args(&p.image, &s.join("b1"), store.to_str().unwrap()),
        &[],
    );
    assert!(err.contains("fetching it again from the start"), "{err}");
    let asked: Vec<String> = p
        .proxy
        .requests()
        .into_iter()
        .filter(|l| l.contains(&p.hex))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].ends_with("[bytes=200000-]"), "{asked:?}");
    assert!(!asked[1].contains("[bytes="), "{asked:?}");
    assert_eq!(
        fs::read(store.join("blobs/sha256").join(&p.hex)).unwrap(),
        blob
    );
}
