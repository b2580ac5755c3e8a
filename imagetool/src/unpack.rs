//! `unpack`: image -> bundle (rootfs/ + config.json), all or nothing.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::{fchown, Gid, Uid};

use crate::cache::Cache;
use crate::config::{self, BundleOptions, OverlayRoot, UserDb};
use crate::copy::Method;
use crate::devices::Devices;
use crate::extract::{self, ExtractOptions};
use crate::idmap::{IdMap, Ownership};
use crate::image::{split_source_ref, Layer, Source};
use crate::layer::{self, apply_one, short_label, LayerStream};
use crate::layout::BlobStore;
use crate::platform::Platform;
use crate::progress::Progress;
use crate::safepath::{self, open_host_dir as open_dir};
use crate::whiteout::Mode as WhiteoutMode;

pub struct UnpackOptions {
    pub platform: Platform,
    pub quiet: bool,
    pub rootless: bool,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    pub cache: Option<PathBuf>,
    pub overlay: bool,
    pub cache_method: Method,
    pub devices: Devices,
}

/// What a successful unpack has to tell beyond success.
#[derive(Default)]
pub struct Report {
    /// Device entries of the layers that were left out (`Devices::LeaveOut`);
    /// layers taken from the cache as they are report nothing.
    pub devices_left_out: Vec<PathBuf>,
}

/// Layers decompressing ahead of the one being applied. Each holds at most
/// a bounded queue of decompressed chunks, so memory stays bounded.
const LOOKAHEAD: usize = 2;

pub fn unpack(image_spec: &str, bundle: &Path, opts: &UnpackOptions) -> Result<Report> {
    let (src, reference) = split_source_ref(image_spec);
    unpack_source(&src, reference.as_deref(), image_spec, bundle, opts)
}

/// Unpacks the image `reference` names in the source at `src`; `image_spec`
/// is how the summary line names it.
pub fn unpack_source(
    src: &Path,
    reference: Option<&str>,
    image_spec: &str,
    bundle: &Path,
    opts: &UnpackOptions,
) -> Result<Report> {
    unpack_opened(Source::open(src)?, reference, image_spec, bundle, opts)
}

/// Unpacks from an opened source (`pull` passes one that follows downloads).
pub fn unpack_opened(
    source: Source,
    reference: Option<&str>,
    image_spec: &str,
    bundle: &Path,
    opts: &UnpackOptions,
) -> Result<Report> {
    let image = source.resolve(reference, &opts.platform)?;
    if opts.overlay && opts.cache.is_none() {
        bail!("--overlay needs --cache DIR: the overlay's lower layers live in the cache");
    }
    let mapped = !(opts.uid_map.is_empty() && opts.gid_map.is_empty());
    if opts.overlay && mapped && !opts.rootless {
        bail!(
            "--overlay with --uid-map/--gid-map: the runtime mounts the overlay from inside \
             the user namespace, whose root cannot enter the cache (0700); use --cache without --overlay"
        );
    }
    let bundle = absolute(bundle)?;
    check_target(&bundle)?;
    let tmp = TempDir::create_beside(&bundle)?;
    let rootfs = tmp.path.join("rootfs");
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&rootfs)
        .with_context(|| format!("mkdir {}", rootfs.display()))?;
    let rootfs_fd = open_dir(&rootfs)?;
    let ownership = Ownership {
        uid_map: opts.uid_map.clone(),
        gid_map: opts.gid_map.clone(),
        skip_chown: opts.rootless,
    };
    own_rootfs(&rootfs_fd, &ownership)?;
    let progress = Progress::new(opts.quiet);

    let mut bundle_opts = BundleOptions {
        rootless: opts.rootless,
        uid_map: opts.uid_map.clone(),
        gid_map: opts.gid_map.clone(),
        overlay: None,
    };
    let mut report = Report::default();
    let users = match &opts.cache {
        None => {
            report.devices_left_out = apply_layers(
                &source.store,
                &image.layers,
                &rootfs_fd,
                &ownership,
                opts.devices,
                &progress,
            )?;
            read_user_db(&[rootfs_fd])
        }
        Some(dir) => {
            let cache = Cache::open(dir)?;
            let (layers, left_out) =
                cache.ensure(&source, &image, &ownership, opts.devices, &progress)?;
            report.devices_left_out = left_out;
            let lowers: Vec<OwnedFd> = layers
                .iter()
                .rev()
                .map(|p| open_dir(p))
                .collect::<Result<_>>()?;
            let users = read_user_db(&lowers);
            if opts.overlay {
                for d in ["upper", "work"] {
                    fs::DirBuilder::new().mode(0o755).create(tmp.path.join(d))?;
                }
                bundle_opts.overlay = Some(OverlayRoot {
                    lower: layers.iter().rev().cloned().collect(),
                    upper: bundle.join("upper"),
                    work: bundle.join("work"),
                });
            } else {
                crate::cache::materialize(&layers, &rootfs_fd, opts.cache_method)?;
            }
            users
        }
    };
    let spec = config::generate(&image.config, &users, &bundle_opts)?;
    let text = serde_json::to_string_pretty(&spec)?;
    fs::write(tmp.path.join("config.json"), text).context("writing config.json")?;
    tmp.commit(&bundle, container_root_group(&ownership))?;
    progress.line(&format!(
        "unpacked {image_spec} ({} layers, {} bytes) into {}",
        image.layers.len(),
        image.layers.iter().map(|l| l.size).sum::<u64>(),
        bundle.display()
    ));
    Ok(report)
}

/// Checks that `bundle` can be created, as the unpack will: `pull` asks
/// before it downloads anything.
pub fn check_bundle(bundle: &Path) -> Result<()> {
    check_target(&absolute(bundle)?)
}

/// The bundle path must be free, or an empty directory for the finished
/// bundle to replace: rename(2) swaps in the new directory, so the old
/// one's owner and mode (perhaps another user's, or 0777) do not survive.
fn check_target(bundle: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(bundle) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("bundle {}: {e}", bundle.display()),
        Ok(m) => m,
    };
    if !meta.is_dir() {
        bail!(
            "bundle {} already exists and is not a directory",
            bundle.display()
        );
    }
    let mut entries =
        fs::read_dir(bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    if entries.next().is_some() {
        bail!(
            "bundle {} already exists and is not empty",
            bundle.display()
        );
    }
    Ok(())
}

/// With id maps the rootfs directory belongs to the container's root, like
/// every file the layers make: an image without a `./` entry would leave it
/// to the host's root, who is nobody inside the user namespace.
fn own_rootfs(rootfs: &OwnedFd, own: &Ownership) -> Result<()> {
    if own.skip_chown || (own.uid_map.is_empty() && own.gid_map.is_empty()) {
        return Ok(());
    }
    let uid = own.host_uid(0).ok().map(Uid::from_raw);
    let gid = own.host_gid(0).ok().map(Gid::from_raw);
    fchown(rootfs, uid, gid).map_err(|e| {
        anyhow!(
            "chown rootfs to the container's root: {}",
            std::io::Error::from(e)
        )
    })
}

/// The host group of the container's root when a gid map makes it another
/// group than root's: the runtime binds the rootfs from inside the user
/// namespace, so that group must be able to pass through the bundle
/// directory. Nobody else needs to.
fn container_root_group(own: &Ownership) -> Option<Gid> {
    if own.skip_chown || own.gid_map.is_empty() {
        return None;
    }
    own.host_gid(0).ok().filter(|&g| g != 0).map(Gid::from_raw)
}

/// Applies layers in order, each decompressing on its own thread up to
/// LOOKAHEAD layers ahead of the one being written.
/// Returns the device entries left out.
fn apply_layers(
    store: &Arc<dyn BlobStore>,
    layers: &[Layer],
    rootfs: &OwnedFd,
    ownership: &Ownership,
    devices: Devices,
    progress: &Progress,
) -> Result<Vec<PathBuf>> {
    let opts = ExtractOptions {
        whiteouts: WhiteoutMode::Apply,
        ownership: ownership.clone(),
        devices,
    };
    let mut left_out = Vec::new();
    let mut pending: VecDeque<LayerStream> = VecDeque::new();
    let mut spawned = 0;
    for layer in layers {
        while spawned < layers.len() && pending.len() <= LOOKAHEAD {
            let l = &layers[spawned];
            pending.push_back(layer::spawn(
                store.clone(),
                l.clone(),
                progress.layer(&short_label(l), l.size),
            ));
            spawned += 1;
        }
        let mut stream = pending
            .pop_front()
            .expect("a stream was spawned for this layer");
        let applied = apply_one(&mut stream, layer, |s| {
            extract::apply_layer(rootfs, s, &opts, &[])
        })?;
        progress.layer_done(&short_label(layer), layer.size);
        left_out.extend(applied.devices_left_out);
    }
    Ok(left_out)
}

/// /etc/passwd and /etc/group of the image, read inside the first root
/// (topmost layer first) that has them; links resolve inside that root.
fn read_user_db(roots: &[OwnedFd]) -> UserDb {
    let read = |name: &str| -> String {
        for root in roots {
            if let Ok(fd) = safepath::open_file(root, Path::new(name)) {
                let mut text = String::new();
                let _ = fs::File::from(fd).take(4 << 20).read_to_string(&mut text);
                return text;
            }
        }
        String::new()
    };
    UserDb {
        passwd: read("etc/passwd"),
        group: read("etc/group"),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    let name = p
        .file_name()
        .ok_or_else(|| anyhow!("bundle path {} has no final component", p.display()))?;
    let parent = match p.parent() {
        Some(par) if !par.as_os_str().is_empty() => par.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent =
        fs::canonicalize(&parent).with_context(|| format!("bundle parent {}", parent.display()))?;
    Ok(parent.join(name))
}

/// A directory beside the bundle that becomes the bundle by rename, or is
/// removed if anything fails first.
struct TempDir {
    path: PathBuf,
    done: bool,
}

impl TempDir {
    fn create_beside(target: &Path) -> Result<Self> {
        let parent = target.parent().unwrap_or(Path::new("."));
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = parent.join(format!(".{name}.unpack-{}-{nanos}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("mkdir {}", path.display()))?;
        Ok(Self { path, done: false })
    }

    /// Renames the bundle into place, entered by its owner only (0700, as
    /// umoci makes bundles): setuid-root programs and device nodes of the
    /// rootfs are out of other host users' reach. With `group`, 0710: that
    /// group may pass through (to the rootfs), not list or change it.
    fn commit(mut self, target: &Path, group: Option<Gid>) -> Result<()> {
        let mode = match group {
            None => 0o700,
            Some(g) => {
                nix::unistd::chown(&self.path, None, Some(g))
                    .map_err(|e| anyhow!("chgrp bundle to gid {g}: {}", std::io::Error::from(e)))?;
                0o710
            }
        };
        fs::set_permissions(
            &self.path,
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )?;
        fs::rename(&self.path, target)
            .with_context(|| format!("rename to {}", target.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.done {
            // std's remove_dir_all never follows symlinks.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
