//! Opening an image source and resolving one image in it:
//! index -> (nested index by platform) -> manifest -> config -> layers.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::archive::{self, DockerManifestEntry, TarStore};
use crate::digest::{self, Digest};
use crate::layout::{self, BlobStore, DirStore};
use crate::platform::Platform;

/// Manifests, indexes and configs are small; anything bigger is hostile.
const JSON_BLOB_LIMIT: u64 = 16 << 20;

/// image-spec annotations.md: the ref name of a manifest in an index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// docker save layers carry no media type: sniff the magic bytes.
    Detect,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "tar+gzip",
            Compression::Zstd => "tar+zstd",
            Compression::Detect => "tar(?)",
        }
    }
}

/// Maps a layer media type to its compression (image-spec layer.md and
/// the docker schema2 equivalents); unknown types are an error, never a guess.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    Some(match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Compression::None,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// One layer to apply: where its blob is and how to check it.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Path of the blob inside the source (`blobs/sha256/...`, or a docker member).
    pub blob: String,
    /// Digest of the blob as stored; None only for legacy docker members
    /// whose name is not a digest (then `diff_id` still protects it).
    pub digest: Option<Digest>,
    pub size: u64,
    pub compression: Compression,
    pub media_type: String,
    /// rootfs.diff_ids entry: digest of the uncompressed tar (config.md).
    pub diff_id: Digest,
}

impl Layer {
    /// Name used in errors and progress bars.
    pub fn label(&self) -> String {
        match &self.digest {
            Some(d) => format!("layer {d}"),
            None => format!("layer {}", self.blob),
        }
    }
}

pub struct ResolvedImage {
    pub source: String,
    pub reference: Option<String>,
    pub manifest_digest: Option<Digest>,
    pub manifest_media_type: String,
    pub manifest_size: u64,
    pub config_digest: Digest,
    pub config_size: u64,
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

enum Kind {
    Oci(Box<ImageIndex>),
    Docker(Vec<DockerManifestEntry>),
}

pub struct Source {
    pub path: PathBuf,
    pub store: Arc<dyn BlobStore>,
    kind: Kind,
}

/// Splits `SRC[:REF]`. A path may itself contain ':', so the longest prefix
/// that exists on disk is the source and the rest is the reference.
pub fn split_source_ref(spec: &str) -> (PathBuf, Option<String>) {
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), None);
    }
    for (i, _) in spec
        .match_indices(':')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let (path, reference) = (&spec[..i], &spec[i + 1..]);
        if !path.is_empty() && Path::new(path).exists() {
            return (PathBuf::from(path), Some(reference.to_string()));
        }
    }
    (PathBuf::from(spec), None)
}

impl Source {
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            let store = DirStore::open_layout(path)?;
            let index = read_index(&store, path)?;
            return Ok(Self {
                path: path.into(),
                store: Arc::new(store),
                kind: Kind::Oci(Box::new(index)),
            });
        }
        let store = TarStore::scan(path)?;
        if store.has("oci-layout") && store.has("index.json") {
            let (mut r, _) = store.open_path("oci-layout")?;
            let mut text = String::new();
            r.read_to_string(&mut text)?;
            layout::check_layout_marker(&text)
                .with_context(|| format!("{}: oci-layout", path.display()))?;
            let index = read_index(&store, path)?;
            return Ok(Self {
                path: path.into(),
                store: Arc::new(store),
                kind: Kind::Oci(Box::new(index)),
            });
        }
        if store.has("manifest.json") {
            let (r, _) = store.open_path("manifest.json")?;
            let data =
                read_limited(r).with_context(|| format!("{}: manifest.json", path.display()))?;
            let entries = archive::parse_docker_manifest(&data)
                .with_context(|| format!("{}", path.display()))?;
            return Ok(Self {
                path: path.into(),
                store: Arc::new(store),
                kind: Kind::Docker(entries),
            });
        }
        bail!(
            "{}: neither an OCI layout, an oci-archive nor a docker save archive",
            path.display()
        )
    }

    /// A layout whose index.json is not written yet (a pull in progress):
    /// `index` stands in for it.
    pub fn with_index(path: &Path, store: Arc<dyn BlobStore>, index: ImageIndex) -> Self {
        Self {
            path: path.into(),
            store,
            kind: Kind::Oci(Box::new(index)),
        }
    }

    /// The references this source offers, in order.
    pub fn refs(&self) -> Vec<String> {
        match &self.kind {
            Kind::Oci(index) => index
                .manifests()
                .iter()
                .filter_map(ref_name)
                .map(str::to_string)
                .collect(),
            Kind::Docker(entries) => entries
                .iter()
                .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                .collect(),
        }
    }

    pub fn resolve(&self, reference: Option<&str>, platform: &Platform) -> Result<ResolvedImage> {
        match &self.kind {
            Kind::Oci(index) => self.resolve_oci(index, reference, platform),
            Kind::Docker(entries) => self.resolve_docker(entries, reference),
        }
    }

    fn source_name(&self) -> String {
        self.path.display().to_string()
    }

    fn resolve_oci(
        &self,
        index: &ImageIndex,
        reference: Option<&str>,
        platform: &Platform,
    ) -> Result<ResolvedImage> {
        let candidates: Vec<&Descriptor> = match reference {
            Some(r) => index
                .manifests()
                .iter()
                .filter(|d| ref_name(d) == Some(r))
                .collect(),
            None => index.manifests().iter().collect(),
        };
        if candidates.is_empty() {
            match reference {
                Some(r) => bail!(
                    "{}: no image with ref {r:?} (refs: {})",
                    self.source_name(),
                    self.refs().join(", ")
                ),
                None => bail!("{}: index.json lists no manifests", self.source_name()),
            }
        }
        let top = if candidates.len() == 1 {
            candidates[0]
        } else if reference.is_none() && distinct_refs(&candidates) > 1 {
            bail!(
                "{}: holds several images, choose one with SRC:REF (refs: {})",
                self.source_name(),
                self.refs().join(", ")
            );
        } else {
            platform
                .choose(&candidates)
                .with_context(|| format!("{}: index.json", self.source_name()))?
        };
        let manifest_desc = self.descend_indexes(top, platform)?;
        let digest = oci_digest(&manifest_desc)?;
        let data = self.read_json_blob(&digest, Some(manifest_desc.size()), "manifest")?;
        let manifest: ImageManifest = serde_json::from_slice(&data)
            .map_err(|e| anyhow!("manifest {digest}: not a valid image manifest: {e}"))?;
        let config_digest = oci_digest(manifest.config())?;
        let config_data =
            self.read_json_blob(&config_digest, Some(manifest.config().size()), "config")?;
        let config = parse_config(&config_data, &config_digest)?;
        let diff_ids = diff_ids(&config, &config_digest)?;
        if diff_ids.len() != manifest.layers().len() {
            bail!(
                "config {config_digest}: {} diff_ids for {} manifest layers",
                diff_ids.len(),
                manifest.layers().len()
            );
        }
        let mut layers = Vec::new();
        for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let d = oci_digest(desc)?;
            let media_type = desc.media_type().to_string();
            let compression = layer_compression(&media_type)
                .ok_or_else(|| anyhow!("layer {d}: unsupported media type {media_type:?}"))?;
            layers.push(Layer {
                blob: layout::blob_path(&d),
                digest: Some(d),
                size: desc.size(),
                compression,
                media_type,
                diff_id,
            });
        }
        Ok(ResolvedImage {
            source: self.source_name(),
            reference: reference
                .map(str::to_string)
                .or_else(|| ref_name(top).map(str::to_string)),
            manifest_digest: Some(digest),
            manifest_media_type: manifest_desc.media_type().to_string(),
            manifest_size: manifest_desc.size(),
            config_digest,
            config_size: manifest.config().size(),
            config,
            layers,
        })
    }

    /// Follows nested indexes (image-index.md) down to an image manifest,
    /// choosing the entry for the wanted platform at each level.
    fn descend_indexes(&self, top: &Descriptor, platform: &Platform) -> Result<Descriptor> {
        let mut desc = top.clone();
        for _depth in 0..8 {
            let mt = desc.media_type().to_string();
            if is_manifest(&mt) {
                return Ok(desc);
            }
            if !is_index(&mt) {
                bail!("manifest {}: unsupported media type {mt:?}", desc.digest());
            }
            let digest = oci_digest(&desc)?;
            let data = self.read_json_blob(&digest, Some(desc.size()), "index")?;
            let index: ImageIndex = serde_json::from_slice(&data)
                .map_err(|e| anyhow!("index {digest}: not a valid image index: {e}"))?;
            let refs: Vec<&Descriptor> = index.manifests().iter().collect();
            desc = platform
                .choose(&refs)
                .with_context(|| format!("index {digest}"))?
                .clone();
        }
        bail!("{}: indexes nested too deeply", self.source_name())
    }

    fn read_json_blob(&self, digest: &Digest, size: Option<u64>, what: &str) -> Result<Vec<u8>> {
        let (r, _) = self
            .store
            .open(digest)
            .map_err(|e| anyhow!("{what} {digest}: cannot open blob: {e}"))?;
        digest::read_verified(r, digest, size, JSON_BLOB_LIMIT)
            .map_err(|e| anyhow!("{what} {digest}: {e}"))
    }

    fn resolve_docker(
        &self,
        entries: &[DockerManifestEntry],
        reference: Option<&str>,
    ) -> Result<ResolvedImage> {
        let entry = match reference {
            Some(r) => entries
                .iter()
                .find(|e| {
                    e.repo_tags
                        .iter()
                        .flatten()
                        .any(|t| docker_tag_matches(t, r))
                })
                .ok_or_else(|| {
                    anyhow!(
                        "{}: no image tagged {r:?} (tags: {})",
                        self.source_name(),
                        self.refs().join(", ")
                    )
                })?,
            None if entries.len() == 1 => &entries[0],
            None => bail!(
                "{}: holds several images, choose one with SRC:REF (tags: {})",
                self.source_name(),
                self.refs().join(", ")
            ),
        };
        let config_name = archive::normalize_member(&entry.config);
        let (r, config_size) = self
            .store
            .open_path(&config_name)
            .map_err(|e| anyhow!("config {config_name}: cannot open: {e}"))?;
        let named = archive::digest_from_member_name(&config_name);
        let config_data = match &named {
            Some(d) => digest::read_verified(r, d, Some(config_size), JSON_BLOB_LIMIT)
                .map_err(|e| anyhow!("config {config_name}: {e}"))?,
            None => read_limited(r).with_context(|| format!("config {config_name}"))?,
        };
        let config_digest = Digest::of_bytes(&config_data);
        let config = parse_config(&config_data, &config_digest)?;
        let diff_ids = diff_ids(&config, &config_digest)?;
        if diff_ids.len() != entry.layers.len() {
            bail!(
                "config {config_digest}: {} diff_ids for {} layers",
                diff_ids.len(),
                entry.layers.len()
            );
        }
        let mut layers = Vec::new();
        for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
            let name = archive::normalize_member(name);
            let (_, size) = self
                .store
                .open_path(&name)
                .map_err(|e| anyhow!("layer {name}: cannot open blob: {e}"))?;
            layers.push(Layer {
                digest: archive::digest_from_member_name(&name),
                blob: name,
                size,
                compression: Compression::Detect,
                media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                diff_id,
            });
        }
        Ok(ResolvedImage {
            source: self.source_name(),
            reference: reference
                .map(str::to_string)
                .or_else(|| entry.repo_tags.as_ref()?.first().cloned()),
            manifest_digest: None,
            manifest_media_type: "docker-save manifest.json".into(),
            manifest_size: 0,
            config_digest,
            config_size,
            config,
            layers,
        })
    }
}

fn read_index(store: &dyn BlobStore, path: &Path) -> Result<ImageIndex> {
    let (r, _) = store
        .open_path("index.json")
        .with_context(|| format!("{}: index.json", path.display()))?;
    let data = read_limited(r).with_context(|| format!("{}: index.json", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| {
        anyhow!(
            "{}: index.json is not a valid image index: {e}",
            path.display()
        )
    })
}

fn read_limited(r: impl Read) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    r.take(JSON_BLOB_LIMIT + 1).read_to_end(&mut data)?;
    if data.len() as u64 > JSON_BLOB_LIMIT {
        bail!("larger than {JSON_BLOB_LIMIT} bytes");
    }
    Ok(data)
}

fn parse_config(data: &[u8], digest: &Digest) -> Result<ImageConfiguration> {
    serde_json::from_slice(data)
        .map_err(|e| anyhow!("config {digest}: not a valid image config: {e}"))
}

fn diff_ids(config: &ImageConfiguration, digest: &Digest) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|s| Digest::parse(s).with_context(|| format!("config {digest}: rootfs.diff_ids")))
        .collect()
}

fn oci_digest(desc: &Descriptor) -> Result<Digest> {
    Digest::parse(desc.digest().as_ref()).with_context(|| format!("descriptor {}", desc.digest()))
}

pub fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()?
        .get(REF_NAME)
        .map(String::as_str)
}

fn distinct_refs(descs: &[&Descriptor]) -> usize {
    let mut refs: Vec<Option<&str>> = descs.iter().map(|d| ref_name(d)).collect();
    refs.sort();
    refs.dedup();
    refs.len()
}

fn is_index(mt: &str) -> bool {
    mt == MediaType::ImageIndex.as_ref() || mt == DOCKER_MANIFEST_LIST
}

fn is_manifest(mt: &str) -> bool {
    mt == MediaType::ImageManifest.as_ref() || mt == DOCKER_MANIFEST
}

/// `busybox` means `busybox:latest`, and Docker Hub's implied registry
/// prefix may be present on either side.
fn docker_tag_matches(tag: &str, wanted: &str) -> bool {
    fn canonical(s: &str) -> String {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') || last.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    }
    canonical(tag) == canonical(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_tags_match_loosely() {
        assert!(docker_tag_matches("busybox:latest", "busybox"));
        assert!(docker_tag_matches(
            "docker.io/library/busybox:latest",
            "busybox:latest"
        ));
        assert!(!docker_tag_matches("busybox:1.36", "busybox"));
        assert!(docker_tag_matches(
            "localhost:5000/app:v1",
            "localhost:5000/app:v1"
        ));
    }

    #[test]
    fn media_types_map_to_compression() {
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(layer_compression("application/x-foo"), None);
    }
}
