//! `pull`: registry -> local layout (the store) -> bundle. The layers
//! unpack while they download (`registry/follow.rs`); index.json names the
//! image only once every blob is in. The store keeps the blobs, so a second
//! pull of the same image downloads nothing, and the image stays there for
//! `unpack --image STORE:REF`, `inspect` and `list`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use oci_spec::image::{ImageIndexBuilder, MediaType};

use crate::image::Source;
use crate::layout::DirStore;
use crate::progress::Progress;
use crate::registry::follow::FollowStore;
use crate::registry::{self, blob, Client, CopyOptions, Reference, Tracks};
use crate::store::LayoutWriter;
use crate::unpack::{check_bundle, unpack_opened, Report, UnpackOptions};

/// Where `pull` keeps images unless `--store` says otherwise:
/// `$XDG_CACHE_HOME/patina-imagetool/images`, else
/// `/var/cache/patina-imagetool/images` for root and
/// `~/.cache/patina-imagetool/images` for other users.
pub fn default_store() -> PathBuf {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ if nix::unistd::geteuid().is_root() => PathBuf::from("/var/cache"),
        _ => match std::env::var_os("HOME") {
            Some(h) => Path::new(&h).join(".cache"),
            None => PathBuf::from("/var/cache"),
        },
    };
    base.join("patina-imagetool/images")
}

pub fn pull(
    image: &str,
    bundle: &Path,
    store: &Path,
    copy_opts: &CopyOptions,
    unpack_opts: &UnpackOptions,
) -> Result<Report> {
    let reference = Reference::parse(image)?;
    let name = reference.to_string();
    // A bundle path in the way fails now, not after the download.
    check_bundle(bundle)?;
    let layout = LayoutWriter::create(store, true)?;
    let progress = Progress::new(unpack_opts.quiet);
    let client = Client::connect(&reference, &copy_opts.client)?;
    let plan = registry::resolve(&client, &reference, copy_opts)?;
    // Manifest and config first: resolving the image for unpack reads them.
    let (config, size, kind) = &plan.blobs[0];
    let bar = progress.layer(config.short(), *size);
    let how = blob::fetch(&client, &layout, config, *size, &bar, None)?;
    progress.fetched(kind, config.short(), *size, &how);
    let config_bytes = match how {
        blob::Fetched::Present => 0,
        blob::Fetched::Downloaded { resumed_from } => size - resumed_from,
    };
    plan.store_manifest(&layout)?;

    let layers = &plan.blobs[1..];
    let tracks = Arc::new(Tracks::new(layers.iter().map(|b| &b.0)));
    let follow = FollowStore {
        dir: DirStore::open_layout(store)?,
        tracks: tracks.clone(),
        root: layout.root().to_path_buf(),
    };
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![plan.descriptor(Some(&name))?])
        .build()
        .context("building the pull's index")?;
    let source = Source::with_index(store, Arc::new(follow), index);

    let (downloaded, report) = std::thread::scope(|s| {
        let downloads = s.spawn(|| {
            registry::fetch_all(
                &client,
                &layout,
                layers,
                copy_opts.jobs,
                &progress,
                Some(&tracks),
            )
        });
        let report = unpack_opened(source, Some(&name), &name, bundle, unpack_opts);
        // Downloads run to their end even when the unpack failed: a corrupt
        // layer often breaks decompression before its digest can be
        // checked, and the digest is the error to report; blobs that do
        // check out stay in the store for the next pull.
        let downloaded = downloads.join().expect("download thread panicked");
        (downloaded, report)
    });
    let downloaded = downloaded? + config_bytes;
    let report = report?;
    layout.set_ref(plan.descriptor(None)?, Some(&name))?;
    layout.tidy();
    progress.line(&format!(
        "pulled {name} ({}, {} layers, {} bytes, {} downloaded) into {}",
        plan.manifest_digest(),
        plan.layer_count(),
        plan.layer_bytes(),
        downloaded,
        store.display()
    ));
    Ok(report)
}
