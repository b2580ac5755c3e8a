//! Shared test helpers: scratch dirs on tmpfs, a hand-rolled image-layout
//! writer, layer tar builders and a tree snapshot for comparisons.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub mod registry;

pub const BIN: &str = env!("CARGO_BIN_EXE_patina-imagetool");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique directory under /dev/shm, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = PathBuf::from(format!(
            "/dev/shm/patina-imagetool-test-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running patina-imagetool")
}

pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Progress lines (stderr is not a terminal in tests), not errors.
pub fn is_progress(line: &str) -> bool {
    [
        "applied layer ",
        "fetched ",
        "pulled ",
        "unpacked ",
        "copied ",
    ]
    .iter()
    .any(|p| line.starts_with(&format!("patina-imagetool: {p}")))
}

/// Runs a command that must fail with exit 1 and a one-line error; returns it.
pub fn run_fail(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = String::from_utf8(out.stderr).unwrap();
    // Progress lines (stderr is not a terminal here) may come before the error.
    let err: String = all
        .lines()
        .filter(|l| !is_progress(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error must be one line: {all:?}"
    );
    assert!(err.starts_with("patina-imagetool: "), "{err}");
    eprintln!("expected failure: {}", err.trim_end());
    err
}

pub fn unpack(image: &str, bundle: &Path, extra: &[&str]) {
    let mut args = vec!["unpack", "--quiet", "--image", image];
    args.extend_from_slice(extra);
    let b = bundle.to_str().unwrap();
    args.push(b);
    run_ok(&args);
}

pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------- runtime

/// The OCI runtime the end-to-end tests run bundles with.
pub fn runtime() -> PathBuf {
    if let Some(r) = std::env::var_os("PATINA_RUNTIME") {
        return PathBuf::from(r);
    }
    // target/debug/deps/e2e-<hash> -> target/debug/patina
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("patina")
}

/// Runs the container to completion and returns its stdout.
pub fn run_container(bundle: &Path, id: &str) -> String {
    let rt = runtime();
    assert!(
        rt.exists(),
        "runtime {} not found (build it, or set PATINA_RUNTIME)",
        rt.display()
    );
    let state = Scratch::new("runtime-root");
    let mut child = Command::new(&rt)
        .args([
            "--root",
            state.0.to_str().unwrap(),
            "run",
            "-b",
            bundle.to_str().unwrap(),
            id,
        ])
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let _ = Command::new(&rt)
                .args(["--root", state.0.to_str().unwrap(), "delete", "--force", id])
                .status();
            panic!("container {id} did not finish within 60s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} run failed: {}",
        rt.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------- layers

#[derive(Clone, Copy)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

impl Comp {
    pub fn media_type(self) -> &'static str {
        match self {
            Comp::None => "application/vnd.oci.image.layer.v1.tar",
            Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Comp::None => data.to_vec(),
            Comp::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Comp::Zstd => zstd::encode_all(data, 3).unwrap(),
        }
    }
}

/// Builds a layer tar entry by entry; names are written raw, so hostile
/// names (`..`, absolute) can be produced.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

pub struct Attrs {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(&'static str, Vec<u8>)>,
}

pub fn attrs(mode: u32) -> Attrs {
    Attrs {
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: vec![],
    }
}

impl Attrs {
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, t: u64) -> Self {
        self.mtime = t;
        self
    }
    pub fn xattr(mut self, k: &'static str, v: &[u8]) -> Self {
        self.xattrs.push((k, v.to_vec()));
        self
    }
}

impl Default for Tar {
    fn default() -> Self {
        Self::new()
    }
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn put(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        a: &Attrs,
        link: Option<&str>,
        dev: (u32, u32),
        data: &[u8],
    ) {
        if !a.xattrs.is_empty() {
            let pax: Vec<(String, &[u8])> = a
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect();
            self.b
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        // Raw name bytes: tar::Header::set_path would refuse `..`.
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "test names must fit ustar");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(l) = link {
            let lb = l.as_bytes();
            h.as_old_mut().linkname[..lb.len()].copy_from_slice(lb);
        }
        h.set_entry_type(kind);
        h.set_mode(a.mode);
        h.set_uid(a.uid);
        h.set_gid(a.gid);
        h.set_mtime(a.mtime);
        h.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(dev.0).unwrap();
            h.set_device_minor(dev.1).unwrap();
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
    }

    pub fn dir(mut self, name: &str, a: Attrs) -> Self {
        self.put(name, tar::EntryType::Directory, &a, None, (0, 0), b"");
        self
    }
    pub fn file(mut self, name: &str, data: &[u8], a: Attrs) -> Self {
        self.put(name, tar::EntryType::Regular, &a, None, (0, 0), data);
        self
    }
    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.put(
            name,
            tar::EntryType::Symlink,
            &attrs(0o777),
            Some(target),
            (0, 0),
            b"",
        );
        self
    }
    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.put(
            name,
            tar::EntryType::Link,
            &attrs(0o644),
            Some(target),
            (0, 0),
            b"",
        );
        self
    }
    pub fn node(mut self, name: &str, kind: tar::EntryType, dev: (u32, u32), a: Attrs) -> Self {
        self.put(name, kind, &a, None, dev, b"");
        self
    }
    pub fn whiteout(self, dir: &str, name: &str) -> Self {
        let p = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&p, b"", attrs(0o644))
    }
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"", attrs(0o644))
    }
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

// ---------------------------------------------------------------- layouts

pub struct Layout {
    pub dir: PathBuf,
    pub manifests: Vec<Value>,
}

pub struct Blob {
    pub digest: String,
    pub size: u64,
}

impl Blob {
    pub fn hex(&self) -> &str {
        &self.digest["sha256:".len()..]
    }
}

pub fn config_json(diff_ids: &[String], config: Value) -> Value {
    json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": host_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl Layout {
    pub fn create(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = Layout {
            dir: dir.to_path_buf(),
            manifests: vec![],
        };
        l.write_index();
        l
    }

    pub fn blob(&self, data: &[u8]) -> Blob {
        let hex = sha256_hex(data);
        fs::write(self.dir.join("blobs/sha256").join(&hex), data).unwrap();
        Blob {
            digest: format!("sha256:{hex}"),
            size: data.len() as u64,
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..])
    }

    /// Writes layers, config and manifest; returns the manifest descriptor
    /// (not yet in index.json).
    pub fn image(&self, layers: &[(Comp, Vec<u8>)], config: Value) -> (Value, Vec<Blob>) {
        let mut descs = vec![];
        let mut diff_ids = vec![];
        let mut blobs = vec![];
        for (comp, tar) in layers {
            diff_ids.push(format!("sha256:{}", sha256_hex(tar)));
            let b = self.blob(&comp.compress(tar));
            descs.push(json!({"mediaType": comp.media_type(), "digest": b.digest, "size": b.size}));
            blobs.push(b);
        }
        let cfg = self.blob(
            serde_json::to_vec(&config_json(&diff_ids, config))
                .unwrap()
                .as_slice(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.digest, "size": cfg.size},
            "layers": descs,
        });
        let m = self.blob(serde_json::to_vec(&manifest).unwrap().as_slice());
        let desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.digest, "size": m.size});
        (desc, blobs)
    }

    /// Adds a descriptor to index.json under `ref_name`.
    pub fn tag(&mut self, mut desc: Value, ref_name: Option<&str>) {
        if let Some(r) = ref_name {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": r});
        }
        self.manifests.push(desc);
        self.write_index();
    }

    pub fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.manifests});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }

    /// One-call helper: a single tagged image.
    pub fn single(
        dir: &Path,
        tag: &str,
        layers: &[(Comp, Vec<u8>)],
        config: Value,
    ) -> (Layout, Vec<Blob>) {
        let mut l = Layout::create(dir);
        let (desc, blobs) = l.image(layers, config);
        l.tag(desc, Some(tag));
        (l, blobs)
    }
}

// ---------------------------------------------------------------- snapshots

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub link: Option<String>,
    pub rdev: u64,
    pub content: Option<String>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

pub fn lxattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: c is NUL-terminated, names is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for name in names.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let cn = CString::new(name).unwrap();
        let mut val = vec![0u8; 4096];
        // SAFETY: as above.
        let m =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        assert!(m >= 0);
        val.truncate(m as usize);
        out.insert(String::from_utf8_lossy(name).into_owned(), val);
    }
    out
}

pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            's'
        };
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        out.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                link: (kind == 'l')
                    .then(|| fs::read_link(&p).unwrap().to_string_lossy().into_owned()),
                rdev: if kind == 'c' || kind == 'b' {
                    md.rdev()
                } else {
                    0
                },
                content: (kind == 'f').then(|| sha256_hex(&fs::read(&p).unwrap())),
                xattrs: lxattrs(&p),
            },
        );
        if kind == 'd' {
            walk(root, &p, out);
        }
    }
}

/// Asserts two trees are equal, reporting the first differing paths.
pub fn assert_same_tree(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>, what: &str) {
    let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "{what}: only in first: {only_a:?}; only in second: {only_b:?}"
    );
    for (k, v) in a {
        assert_eq!(v, &b[k], "{what}: {k} differs");
    }
}

/// Entries in `dir` other than `except`, to prove nothing was left behind.
pub fn leftovers(dir: &Path, except: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !except.contains(&n.as_str()))
        .collect()
}

// ---------------------------------------------------------------- attackers

/// The unprivileged host user the attacker tests act as.
pub const NOBODY: u32 = 65534;

/// Runs `sh -c script` (paths as `$1`, `$2`...) as host user nobody with no
/// supplementary groups, through setpriv (util-linux): the attacker.
pub fn as_nobody(script: &str, paths: &[&Path]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .args(paths)
        .output()
        .expect("running setpriv (util-linux)")
}

/// Nobody executes `prog -u`; Ok(its stdout) if it ran, else Err(stderr).
/// A setuid-root `id` prints `0`.
pub fn nobody_runs(prog: &Path) -> Result<String, String> {
    outcome(as_nobody("exec \"$1\" -u", &[prog]))
}

/// Nobody opens `path` for reading, or for writing (appending: nothing is
/// truncated, nothing written); Ok(()) if the open succeeded, else Err(stderr).
pub fn nobody_opens(path: &Path, write: bool) -> Result<(), String> {
    let script = if write {
        "exec 3>>\"$1\""
    } else {
        "exec 3<\"$1\""
    };
    outcome(as_nobody(script, &[path])).map(|_| ())
}

fn outcome(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
    }
}

/// Sets `path`'s permission bits.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Mode bits, owner and group of `path` (not following a symlink).
pub fn mode_owner(path: &Path) -> (u32, u32, u32) {
    let md = fs::symlink_metadata(path).unwrap();
    (md.mode() & 0o7777, md.uid(), md.gid())
}
