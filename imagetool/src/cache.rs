//! Content-addressed layer cache.
//!
//! Each layer is extracted once into `DIR/layers/<key>/diff` in overlayfs
//! format (whiteouts as 0:0 char devices, opaque dirs as
//! trusted.overlay.opaque=y). The key is the layer's ChainID
//! (config.md#layer-chainid): a layer's extracted form can depend on the
//! layers below it (hard links into them are copied up), so it is reused
//! only on top of the same stack, which is also when sharing matters.
//!
//! A bundle is then either an overlay of those directories (`--overlay`,
//! the runtime mounts it) or a merged copy of them (`materialize`).
//!
//! Extracted layers hold what bundles hold (setuid-root programs, device
//! nodes with `--allow-devices`), so `DIR/layers` is as closed as a bundle:
//! 0700, and it must belong to the user unpacking, who alone wrote it.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};

use crate::copy::{self, Method};
use crate::devices::Devices;
use crate::digest::{Digest, Hasher};
use crate::extract::{self, ExtractOptions};
use crate::idmap::Ownership;
use crate::image::{ResolvedImage, Source};
use crate::layer::{self, apply_one, short_label};
use crate::progress::Progress;
use crate::safepath::{self, open_host_dir as open_dir};
use crate::whiteout::{Mode as WhiteoutMode, OVERLAY_OPAQUE_XATTR};
use crate::xattr;

pub struct Cache {
    layers: PathBuf,
}

/// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[&Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => (*d).clone(),
            Some(prev) => {
                let mut h = Hasher::default();
                h.update(format!("{prev} {d}").as_bytes());
                h.finish()
            }
        };
        out.push(next);
    }
    out
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("cache {}", dir.display()))?;
        let layers = dir.join("layers");
        match fs::DirBuilder::new().mode(0o700).create(&layers) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(anyhow!("cache {}: {e}", layers.display()))
            }
            _ => {}
        }
        close_to_others(&layers).with_context(|| format!("cache {}", layers.display()))?;
        let layers = fs::canonicalize(&layers)?;
        Ok(Self { layers })
    }

    /// Cache key: the bare ChainID for a layer exactly as the image has it
    /// (what earlier versions stored, device nodes included), tagged when
    /// files are shifted for a user namespace or devices left out, since
    /// the same layer then differs on disk.
    fn key(chain: &Digest, own: &Ownership, devices: Devices) -> String {
        if own.uid_map.is_empty()
            && own.gid_map.is_empty()
            && !own.skip_chown
            && devices == Devices::Create
        {
            return chain.hex().to_string();
        }
        let tag = format!(
            "{:?}{:?}{}{:?}",
            own.uid_map, own.gid_map, own.skip_chown, devices
        );
        format!(
            "{}-{}",
            chain.hex(),
            &Digest::of_bytes(tag.as_bytes()).hex()[..12]
        )
    }

    /// Makes sure every layer of `image` is in the cache; returns their
    /// `diff` directories, bottom layer first, and the device entries left
    /// out of the layers extracted now.
    pub fn ensure(
        &self,
        source: &Source,
        image: &ResolvedImage,
        own: &Ownership,
        devices: Devices,
        progress: &Progress,
    ) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let diff_ids: Vec<&Digest> = image.layers.iter().map(|l| &l.diff_id).collect();
        let dirs: Vec<PathBuf> = chain_ids(&diff_ids)
            .iter()
            .map(|c| self.layers.join(Self::key(c, own, devices)))
            .collect();
        let missing: Vec<usize> = (0..dirs.len())
            .filter(|&i| !dirs[i].join("diff").is_dir())
            .collect();
        let opts = ExtractOptions {
            whiteouts: WhiteoutMode::Overlay,
            ownership: own.clone(),
            devices,
        };
        let mut left_out = Vec::new();
        let mut pending = VecDeque::new();
        let mut spawned = 0;
        for &i in &missing {
            while spawned < missing.len() && pending.len() <= 2 {
                let l = &image.layers[missing[spawned]];
                pending.push_back(layer::spawn(
                    source.store.clone(),
                    l.clone(),
                    progress.layer(&short_label(l), l.size),
                ));
                spawned += 1;
            }
            let mut stream = pending.pop_front().expect("spawned above");
            let tmp = self
                .layers
                .join(format!(".tmp-{}-{}", std::process::id(), i));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(tmp.join("diff"))
                .with_context(|| format!("mkdir {}", tmp.display()))?;
            let result = (|| {
                let root = open_dir(&tmp.join("diff"))?;
                let lowers: Vec<OwnedFd> = dirs[..i]
                    .iter()
                    .rev()
                    .map(|d| open_dir(&d.join("diff")))
                    .collect::<Result<_>>()?;
                let applied = apply_one(&mut stream, &image.layers[i], |s| {
                    extract::apply_layer(&root, s, &opts, &lowers)
                })?;
                progress.layer_done(&short_label(&image.layers[i]), image.layers[i].size);
                publish(&tmp, &dirs[i])?;
                Ok(applied.devices_left_out)
            })();
            match result {
                Ok(paths) => left_out.extend(paths),
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(e);
                }
            }
        }
        Ok((dirs.iter().map(|d| d.join("diff")).collect(), left_out))
    }
}

/// `layers` must be a directory of this user's (another user could have
/// planted content in it) and is set to 0700, also closing a cache that an
/// earlier version left open (0755).
fn close_to_others(layers: &Path) -> Result<()> {
    let fd = nix::fcntl::open(
        layers,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno("open", e))?;
    let st = fstat(fd.as_fd()).map_err(|e| errno("stat", e))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        bail!(
            "owned by uid {}, not by this user (uid {me}): refusing layers another user could have written",
            st.st_uid
        );
    }
    fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700)).map_err(|e| errno("chmod 0700", e))
}

/// Renames a finished layer into place; if a concurrent unpack won the
/// race, its copy is equally good and ours is dropped.
fn publish(tmp: &Path, dir: &Path) -> Result<()> {
    match fs::rename(tmp, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.join("diff").is_dir() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "cache: rename {} to {}: {e}",
            tmp.display(),
            dir.display()
        )),
    }
}

/// Merges the cached layer directories (bottom first) into `rootfs`,
/// interpreting overlay whiteouts, the way overlayfs would show them.
pub fn materialize(layers: &[PathBuf], rootfs: &OwnedFd, method: Method) -> Result<()> {
    for dir in layers {
        let src = open_dir(dir)?;
        let mut m = Merger {
            method,
            links: HashMap::new(),
            rootfs,
        };
        m.merge_dir(&src, rootfs, Path::new(""))
            .with_context(|| format!("cache layer {}", dir.display()))?;
    }
    Ok(())
}

struct Merger<'a> {
    method: Method,
    /// Inode of a multiply-linked source file -> where its first copy went,
    /// so hard links within a layer stay hard links in the bundle.
    links: HashMap<u64, PathBuf>,
    rootfs: &'a OwnedFd,
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn errno(what: &str, e: Errno) -> anyhow::Error {
    anyhow!("{what}: {}", std::io::Error::from(e))
}

fn open_subdir(dir: &impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl Merger<'_> {
    fn merge_dir(&mut self, src: &OwnedFd, dst: &OwnedFd, rel: &Path) -> Result<()> {
        for name in safepath::list_dir(src).map_err(|e| errno("list", e))? {
            let path = rel.join(&name);
            self.merge_entry(src, dst, &name, &path)
                .with_context(|| format!("{}", path.display()))?;
        }
        Ok(())
    }

    fn merge_entry(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &OsStr,
        path: &Path,
    ) -> Result<()> {
        let st = fstatat(src.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| errno("stat", e))?;
        let k = kind(&st);
        let existing = safepath::kind_at(dst, name).map_err(|e| errno("stat", e))?;
        if k == SFlag::S_IFCHR && st.st_rdev == 0 {
            return safepath::remove_all(dst, name).map_err(|e| errno("whiteout", e));
        }
        if k == SFlag::S_IFDIR {
            let sdir = open_subdir(src, name).map_err(|e| errno("open", e))?;
            let opaque = xattr::fget(&sdir, OVERLAY_OPAQUE_XATTR).is_ok_and(|v| v == b"y");
            match existing {
                Some(SFlag::S_IFDIR) if opaque => {
                    safepath::clear_dir(dst, name, &|_| false).map_err(|e| errno("opaque", e))?
                }
                Some(SFlag::S_IFDIR) => {}
                Some(_) => {
                    safepath::remove_all(dst, name).map_err(|e| errno("remove", e))?;
                    mkdirat(dst.as_fd(), name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| errno("mkdir", e))?;
                }
                None => mkdirat(dst.as_fd(), name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| errno("mkdir", e))?,
            }
            let ddir = open_subdir(dst, name).map_err(|e| errno("open", e))?;
            self.merge_dir(&sdir, &ddir, path)?;
            return copy::copy_metadata(&sdir, &ddir);
        }
        if existing.is_some() {
            safepath::remove_all(dst, name).map_err(|e| errno("remove", e))?;
        }
        match k {
            SFlag::S_IFREG => self.place_file(src, dst, name, path, &st),
            SFlag::S_IFLNK => {
                let target = readlinkat(src.as_fd(), name).map_err(|e| errno("readlink", e))?;
                symlinkat(target.as_os_str(), dst.as_fd(), name)
                    .map_err(|e| errno("symlink", e))?;
                self.copy_path_meta(dst, name, &st, true)
            }
            _ => {
                mknodat(
                    dst.as_fd(),
                    name,
                    k,
                    Mode::from_bits_truncate(st.st_mode & 0o7777),
                    st.st_rdev,
                )
                .map_err(|e| errno("mknod", e))?;
                self.copy_path_meta(dst, name, &st, false)
            }
        }
    }

    fn place_file(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &OsStr,
        path: &Path,
        st: &FileStat,
    ) -> Result<()> {
        if self.method == Method::Hardlink {
            return linkat(src.as_fd(), name, dst.as_fd(), name, AtFlags::empty())
                .map_err(|e| errno("link", e));
        }
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&st.st_ino) {
                if let Ok((fdir, fname)) = safepath::parent_of(self.rootfs, first, false) {
                    if linkat(
                        fdir.as_fd(),
                        fname.as_os_str(),
                        dst.as_fd(),
                        name,
                        AtFlags::empty(),
                    )
                    .is_ok()
                    {
                        return Ok(());
                    }
                }
            }
            self.links.insert(st.st_ino, path.to_path_buf());
        }
        let fd = openat(
            src.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno("open", e))?;
        copy::copy_file_at(&fd, dst, name, self.method)
    }

    /// Metadata for entries that cannot be opened (symlinks, devices).
    fn copy_path_meta(
        &self,
        dst: &OwnedFd,
        name: &OsStr,
        st: &FileStat,
        symlink: bool,
    ) -> Result<()> {
        fchownat(
            dst.as_fd(),
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| errno("chown", e))?;
        if !symlink {
            fchmodat(
                dst.as_fd(),
                name,
                Mode::from_bits_truncate(st.st_mode & 0o7777),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| errno("chmod", e))?;
        }
        let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
        utimensat(
            dst.as_fd(),
            name,
            &atime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| errno("set times", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_two_layers() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let ids = chain_ids(&[&a, &b]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of_bytes(format!("{a} {b}").as_bytes()));
    }
}
