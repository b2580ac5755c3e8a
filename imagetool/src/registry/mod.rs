//! Fetching an image from a registry (OCI distribution-spec, pull side) into
//! a local OCI image layout, which `unpack` then reads like any other source.
//!
//! reference -> manifest (an index chooses the platform) -> config and layer
//! blobs, downloaded in parallel on plain threads -> index.json entry.

pub mod auth;
pub mod blob;
pub mod client;
pub mod follow;
pub mod reference;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageManifest, MediaType, Platform as OciPlatform,
};

use crate::digest::Digest;
use crate::image::layer_compression;
use crate::platform::Platform;
use crate::progress::Progress;
use crate::store::LayoutWriter;
pub use blob::Fetched;
pub use client::{Client, ClientOptions};
pub use follow::{Track, Tracks};
pub use reference::Reference;

/// Manifests and configs are small; anything bigger is hostile.
const JSON_LIMIT: u64 = 16 << 20;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub struct CopyOptions {
    pub client: ClientOptions,
    pub platform: Platform,
    /// Blobs downloading at once.
    pub jobs: usize,
}

/// What a copy did, for the summary line.
pub struct Copied {
    pub manifest: Digest,
    pub layers: usize,
    /// Bytes of the image's layers, and of those that came over the network.
    pub bytes: u64,
    pub downloaded: u64,
}

/// An image resolved on the registry: its manifest (kept to store as is)
/// and the blobs it needs.
pub struct Plan {
    manifest: Manifest,
    platform: OciPlatform,
    /// The config first, then the layers in order.
    pub blobs: Vec<(Digest, u64, &'static str)>,
}

impl Plan {
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest.digest
    }

    pub fn layer_count(&self) -> usize {
        self.blobs.len() - 1
    }

    pub fn layer_bytes(&self) -> u64 {
        self.blobs[1..].iter().map(|b| b.1).sum()
    }

    /// The manifest's descriptor for index.json, named `name`.
    pub fn descriptor(&self, name: Option<&str>) -> Result<Descriptor> {
        let mut desc = DescriptorBuilder::default()
            .media_type(MediaType::from(self.manifest.media_type.as_str()))
            .digest(oci_spec::image::Digest::try_from(
                self.manifest.digest.to_string(),
            )?)
            .size(self.manifest.data.len() as u64)
            .platform(self.platform.clone())
            .build()
            .context("building the manifest descriptor")?;
        if let Some(n) = name {
            let mut ann = std::collections::HashMap::new();
            ann.insert(crate::image::REF_NAME.to_string(), n.to_string());
            desc.set_annotations(Some(ann));
        }
        Ok(desc)
    }

    /// Stores the manifest blob (index.json is the caller's last step).
    pub fn store_manifest(&self, store: &LayoutWriter) -> Result<()> {
        store.put_verified(&self.manifest.digest, &self.manifest.data)
    }
}

/// Resolves `reference` to the host platform's image (or `opts.platform`'s).
pub fn resolve(client: &Client, reference: &Reference, opts: &CopyOptions) -> Result<Plan> {
    let wanted = reference.digest.as_ref();
    let mut m = fetch_manifest(client, &reference.manifest_ref(), wanted, None)?;
    let mut platform = None;
    for _depth in 0..4 {
        if !is_index(&m.media_type) {
            break;
        }
        let index: ImageIndex = serde_json::from_slice(&m.data)
            .map_err(|e| anyhow!("index {}: not a valid image index: {e}", m.digest))?;
        let descs: Vec<&Descriptor> = index.manifests().iter().collect();
        let chosen = opts
            .platform
            .choose(&descs)
            .with_context(|| format!("{reference}: index {}", m.digest))?;
        platform = chosen.platform().clone();
        let d = Digest::parse(chosen.digest().as_ref())?;
        m = fetch_manifest(client, &d.to_string(), Some(&d), Some(chosen.size()))?;
    }
    if !is_manifest(&m.media_type) {
        bail!(
            "{reference}: manifest {}: unsupported media type {:?}",
            m.digest,
            m.media_type
        );
    }
    let manifest: ImageManifest = serde_json::from_slice(&m.data)
        .map_err(|e| anyhow!("manifest {}: not a valid image manifest: {e}", m.digest))?;
    let config = manifest.config();
    let config_digest = Digest::parse(config.digest().as_ref())?;
    if config.size() > JSON_LIMIT {
        bail!(
            "config {config_digest}: {} bytes, over the {JSON_LIMIT} limit",
            config.size()
        );
    }
    let mut blobs = vec![(config_digest, config.size(), "config")];
    for l in manifest.layers() {
        let d = Digest::parse(l.digest().as_ref())?;
        let mt = l.media_type().to_string();
        if layer_compression(&mt).is_none() {
            bail!("layer {d}: unsupported media type {mt:?}");
        }
        blobs.push((d, l.size(), "layer"));
    }
    Ok(Plan {
        manifest: m,
        platform: platform.unwrap_or_else(|| host_platform(&opts.platform)),
        blobs,
    })
}

/// Copies `reference` into the layout, naming it `name` in index.json.
pub fn copy(
    reference: &Reference,
    store: &LayoutWriter,
    name: Option<&str>,
    opts: &CopyOptions,
    progress: &Progress,
) -> Result<Copied> {
    let client = Client::connect(reference, &opts.client)?;
    let plan = resolve(&client, reference, opts)?;
    let downloaded = fetch_all(&client, store, &plan.blobs, opts.jobs, progress, None)?;
    plan.store_manifest(store)?;
    store.set_ref(plan.descriptor(None)?, name)?;
    store.tidy();
    Ok(Copied {
        manifest: plan.manifest.digest.clone(),
        layers: plan.layer_count(),
        bytes: plan.layer_bytes(),
        downloaded,
    })
}

/// The platform an image without an index is recorded under: the one asked for.
fn host_platform(p: &Platform) -> OciPlatform {
    let mut out = OciPlatform::default();
    out.set_os(p.os.as_str().into());
    out.set_architecture(p.arch.as_str().into());
    out.set_variant(p.variant.clone());
    out
}

struct Manifest {
    data: Vec<u8>,
    media_type: String,
    digest: Digest,
}

fn fetch_manifest(
    client: &Client,
    reference: &str,
    want: Option<&Digest>,
    size: Option<u64>,
) -> Result<Manifest> {
    let accept = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
    let mut resp = client.get(&format!("manifests/{reference}"), &[("Accept", accept)])?;
    if resp.status() != 200 {
        bail!(
            "registry {}: manifest {reference}: {}",
            client.registry(),
            client::describe_failure(&mut resp)
        );
    }
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
    };
    let content_type = header("content-type");
    let served_digest = header("docker-content-digest");
    let data = resp
        .body_mut()
        .with_config()
        .limit(JSON_LIMIT)
        .read_to_vec()
        .map_err(|e| anyhow!("registry {}: manifest {reference}: {e}", client.registry()))?;
    let digest = Digest::of_bytes(&data);
    if let Some(w) = want {
        if &digest != w {
            bail!("manifest {w}: digest mismatch: the registry served content hashing to {digest}");
        }
    }
    if let Some(s) = size {
        if data.len() as u64 != s {
            bail!(
                "manifest {digest}: {} bytes, its descriptor says {s}",
                data.len()
            );
        }
    }
    if let Some(h) = served_digest.filter(|h| h.starts_with("sha256:")) {
        if h != digest.to_string() {
            bail!("manifest {reference}: the registry says {h} but the content hashes to {digest}");
        }
    }
    let media_type = serde_json::from_slice::<serde_json::Value>(&data)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
        .or(content_type)
        .unwrap_or_default();
    Ok(Manifest {
        data,
        media_type,
        digest,
    })
}

/// Downloads the blobs with `jobs` threads; the first failure (in blob
/// order) is returned once running downloads have stopped. Returns the
/// bytes that came over the network.
pub fn fetch_all(
    client: &Client,
    store: &LayoutWriter,
    blobs: &[(Digest, u64, &'static str)],
    jobs: usize,
    progress: &Progress,
    tracks: Option<&Tracks>,
) -> Result<u64> {
    let jobs = jobs.max(1);
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..blobs.len()).collect());
    let results: Mutex<Vec<Option<Result<u64>>>> =
        Mutex::new((0..blobs.len()).map(|_| None).collect());
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(blobs.len()) {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let Some(i) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let (d, size, kind) = &blobs[i];
                let bar = progress.layer(d.short(), *size);
                let track = tracks.and_then(|t| t.get(d));
                let r = blob::fetch(client, store, d, *size, &bar, track).map(|f| {
                    bar.finish();
                    progress.fetched(kind, d.short(), *size, &f);
                    match f {
                        Fetched::Present => 0,
                        Fetched::Downloaded { resumed_from } => size - resumed_from,
                    }
                });
                if let Some(t) = track {
                    t.finish(r.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
                }
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                results.lock().expect("results")[i] = Some(r);
            });
        }
    });
    if let Some(t) = tracks {
        t.finish_rest("not downloaded: another blob failed first");
    }
    let mut total = 0;
    for r in results.into_inner().expect("results").into_iter().flatten() {
        total += r?;
    }
    Ok(total)
}

fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

fn is_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}
