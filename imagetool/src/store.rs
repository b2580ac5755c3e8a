//! Writing an OCI image layout (image-layout.md): blobs arrive through an
//! ingest file that is renamed into `blobs/` only once its digest checks out,
//! and `index.json` is rewritten under a lock, so concurrent pulls into one
//! layout neither mix bytes nor lose each other's entries.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder};

use crate::digest::Digest;
use crate::image::{ref_name, REF_NAME};
use crate::layout;

/// Partial downloads live here, beside `blobs/`, named by the digest they will have.
const INGEST: &str = "ingest";

pub struct LayoutWriter {
    root: PathBuf,
}

impl LayoutWriter {
    /// Opens or creates the layout at `root`. A `private` layout (the pull
    /// store, which may hold images fetched with credentials) is 0700 and
    /// must belong to this user, as the layer cache is.
    pub fn create(root: &Path, private: bool) -> Result<Self> {
        let mode = if private { 0o700 } else { 0o755 };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(root)
            .with_context(|| format!("layout {}", root.display()))?;
        if private {
            close_to_others(root)?;
        }
        let marker = root.join("oci-layout");
        if marker.exists() {
            layout::DirStore::open_layout(root)?;
        } else {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        for d in ["blobs/sha256", INGEST] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(root.join(d))
                .with_context(|| format!("layout {}: mkdir {d}", root.display()))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join(layout::blob_path(d))
    }

    pub fn ingest_path(&self, d: &Digest) -> PathBuf {
        Self::ingest_path_in(&self.root, d)
    }

    pub fn ingest_path_in(root: &Path, d: &Digest) -> PathBuf {
        root.join(INGEST).join(format!("sha256-{}", d.hex()))
    }

    /// A blob counts as present when it has the descriptor's size: blobs
    /// reach `blobs/` only after their digest was checked, and every reader
    /// checks it again.
    pub fn has_blob(&self, d: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(d)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Stores a small blob whose digest the caller has checked.
    pub fn put_verified(&self, d: &Digest, data: &[u8]) -> Result<()> {
        if self.has_blob(d, data.len() as u64) {
            return Ok(());
        }
        write_atomic(&self.blob_path(d), data)
    }

    /// Moves a checked ingest file into `blobs/`.
    pub fn commit_ingest(&self, d: &Digest) -> Result<()> {
        fs::rename(self.ingest_path(d), self.blob_path(d))
            .with_context(|| format!("blob {d}: rename into blobs/"))
    }

    /// Records `desc` in index.json under `name` (replacing what the name
    /// pointed at), or without a name (replacing an unnamed entry of the
    /// same digest).
    pub fn set_ref(&self, mut desc: Descriptor, name: Option<&str>) -> Result<()> {
        let _lock = self.lock()?;
        let path = self.root.join("index.json");
        let mut manifests = match fs::read(&path) {
            Ok(data) => serde_json::from_slice::<ImageIndex>(&data)
                .map_err(|e| anyhow!("{}: not a valid image index: {e}", path.display()))?
                .manifests()
                .clone(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => bail!("{}: {e}", path.display()),
        };
        manifests.retain(|m| match name {
            Some(n) => ref_name(m) != Some(n),
            None => !(ref_name(m).is_none() && m.digest() == desc.digest()),
        });
        if let Some(n) = name {
            let mut ann = desc.annotations().clone().unwrap_or_default();
            ann.insert(REF_NAME.to_string(), n.to_string());
            desc.set_annotations(Some(ann));
        }
        manifests.push(desc);
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(oci_spec::image::MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .context("building index.json")?;
        write_atomic(&path, serde_json::to_string(&index)?.as_bytes())
    }

    /// Removes the ingest directory if nothing is left in it (a layout
    /// given to `copy` should look like one skopeo wrote).
    pub fn tidy(&self) {
        let _ = fs::remove_dir(self.root.join(INGEST));
    }

    fn lock(&self) -> Result<Flock<File>> {
        let f = File::open(&self.root)
            .with_context(|| format!("layout {}: open for locking", self.root.display()))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| {
            anyhow!(
                "layout {}: lock: {}",
                self.root.display(),
                std::io::Error::from(e)
            )
        })
    }
}

/// Writes `path` through a temporary file and a rename: readers see the old
/// content or the new, never half of it.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// The store must be this user's own (another user could have planted blobs
/// and index entries in it), and is kept 0700.
fn close_to_others(root: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("store {}", root.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() {
        bail!("store {}: not a directory", root.display());
    }
    if meta.uid() != me {
        bail!(
            "store {}: owned by uid {}, not by this user (uid {me}): refusing images another user could have written",
            root.display(),
            meta.uid()
        );
    }
    fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("store {}: chmod 0700", root.display()))
}
