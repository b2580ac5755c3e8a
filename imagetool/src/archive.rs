//! Tar archives used as image sources: `oci-archive` (a tar of an image
//! layout) and `docker save` output. Blobs are read in place: one pass over
//! the tar headers records each member's data offset, and opening a blob
//! seeks there, so nothing is copied out first.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::layout::BlobStore;

pub struct TarStore {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

impl TarStore {
    pub fn scan(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("{}", path.display()))?;
        let mut archive = tar::Archive::new(io::BufReader::new(file));
        let mut members = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .with_context(|| format!("{}: not a tar archive", path.display()))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("{}: corrupt tar archive", path.display()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = normalize_member(&entry.path()?.to_string_lossy());
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            members,
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }
}

/// Archive members are named `./blobs/...`, `blobs/...` or even
/// `/blobs/...` depending on the producer; compare them without that prefix.
pub fn normalize_member(name: &str) -> String {
    name.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

impl BlobStore for TarStore {
    fn open_path(&self, rel: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let Some(&(offset, size)) = self.members.get(&normalize_member(rel)) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{rel} not in archive"),
            ));
        };
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok((Box::new(f.take(size)), size))
    }

    fn exists(&self, rel: &str) -> bool {
        self.has(&normalize_member(rel))
    }
}

/// One entry of a `docker save` manifest.json.
#[derive(serde::Deserialize, Debug, Clone)]
pub struct DockerManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

pub fn parse_docker_manifest(data: &[u8]) -> Result<Vec<DockerManifestEntry>> {
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(data).context("manifest.json is not a docker save manifest")?;
    if entries.is_empty() {
        bail!("manifest.json lists no images");
    }
    Ok(entries)
}

/// Docker names blobs after their sha256 (`<hex>.json`, `<hex>.tar`,
/// `blobs/sha256/<hex>`); older saves use `<v1-id>/layer.tar`, where the
/// name says nothing about the content. Returns the digest when the name
/// carries one.
pub fn digest_from_member_name(name: &str) -> Option<crate::digest::Digest> {
    let base = name.rsplit('/').next()?;
    let stem = base
        .strip_suffix(".json")
        .or_else(|| base.strip_suffix(".tar"))
        .unwrap_or(base);
    crate::digest::Digest::from_hex(stem).ok()
}
