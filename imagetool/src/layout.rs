//! Where blobs live: an OCI image layout directory (image-spec
//! image-layout.md) or a tar archive of one (see `archive.rs`).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::digest::Digest;

/// Opens raw (unverified) blob streams by digest. Callers wrap them in
/// `VerifyingReader`; stores only locate bytes, except as `open_checked` says.
pub trait BlobStore: Send + Sync {
    fn open_path(&self, rel: &str) -> io::Result<(Box<dyn Read + Send>, u64)>;

    /// Opens a blob for a caller that verifies it, and says whether the
    /// store already checks these very bytes against the blob's digest
    /// before the reader can reach EOF (a download hashing as it writes):
    /// then the caller checks the size only and need not hash them again.
    fn open_checked(&self, rel: &str) -> io::Result<(Box<dyn Read + Send>, bool)> {
        Ok((self.open_path(rel)?.0, false))
    }

    fn open(&self, digest: &Digest) -> io::Result<(Box<dyn Read + Send>, u64)> {
        self.open_path(&blob_path(digest))
    }

    fn exists(&self, rel: &str) -> bool;
}

/// `blobs/<alg>/<encoded>` per image-layout.md#blobs.
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn open_layout(root: &Path) -> Result<Self> {
        let marker = root.join("oci-layout");
        let text = std::fs::read_to_string(&marker)
            .with_context(|| format!("{}: not an OCI image layout", marker.display()))?;
        check_layout_marker(&text).with_context(|| format!("{}", marker.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }
}

/// image-layout.md#oci-layout-file: `{"imageLayoutVersion": "1.0.0"}`.
pub fn check_layout_marker(text: &str) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(text).context("oci-layout is not JSON")?;
    match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(ver) if ver.starts_with("1.") => Ok(()),
        Some(ver) => bail!("unsupported imageLayoutVersion {ver:?}"),
        None => bail!("oci-layout lacks imageLayoutVersion"),
    }
}

impl BlobStore for DirStore {
    fn open_path(&self, rel: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        // rel is built from a validated digest or a fixed name, never from
        // free-form input, so joining cannot escape the layout.
        let f = File::open(self.root.join(rel))?;
        let len = f.metadata()?.len();
        Ok((Box::new(f), len))
    }

    fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }
}
