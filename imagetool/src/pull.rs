//! `pull`: registry -> local layout (the store) -> bundle. The store keeps
//! the blobs, so a second pull of the same image downloads nothing, and the
//! image stays there for `unpack --image STORE:REF`, `inspect` and `list`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::progress::Progress;
use crate::registry::{self, CopyOptions, Reference};
use crate::store::LayoutWriter;
use crate::unpack::{unpack_source, Report, UnpackOptions};

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
    let layout = LayoutWriter::create(store, true)?;
    let progress = Progress::new(unpack_opts.quiet);
    let copied = registry::copy(&reference, &layout, Some(&name), copy_opts, &progress)?;
    progress.line(&format!(
        "pulled {name} ({}, {} layers, {} bytes, {} downloaded) into {}",
        copied.manifest,
        copied.layers,
        copied.bytes,
        copied.downloaded,
        store.display()
    ));
    unpack_source(store, Some(&name), &name, bundle, unpack_opts)
}
