//! Applying one layer tar stream to a directory.
//!
//! All paths go through `safepath`: parents are opened with
//! openat2(RESOLVE_IN_ROOT) and the final component is created with *at()
//! calls that never follow it, so no entry can reach outside the root.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use crate::devices::{self, Devices};
use crate::idmap::Ownership;
use crate::safepath;
use crate::whiteout::{self, Mode as WhiteoutMode, Whiteout};
use crate::xattr;

pub struct ExtractOptions {
    pub whiteouts: WhiteoutMode,
    pub ownership: Ownership,
    pub devices: Devices,
}

/// What a layer's extraction reports beyond success.
#[derive(Default)]
pub struct Applied {
    /// Device entries left out (`Devices::LeaveOut`), in tar order.
    pub devices_left_out: Vec<PathBuf>,
}

/// Metadata carried by a tar header plus its PAX records.
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Applies the tar stream `reader` onto the directory `root`. `lowers` are
/// the already-extracted lower layer directories (top first), consulted only
/// in overlay mode for hard links into lower layers.
pub fn apply_layer(
    root: &OwnedFd,
    reader: impl Read,
    opts: &ExtractOptions,
    lowers: &[OwnedFd],
) -> Result<Applied> {
    let mut ex = Extractor {
        root,
        opts,
        lowers,
        layer_paths: HashSet::new(),
        dir_times: Vec::new(),
        parent_cache: None,
        buf: vec![0u8; 256 << 10],
        applied: Applied::default(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| anyhow!("not a tar archive: {}", brief(&e)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| anyhow!("not a valid tar stream: {}", brief(&e)))?;
        let name = entry.path().map(|p| p.into_owned()).unwrap_or_default();
        ex.apply_entry(&mut entry)
            .with_context(|| format!("entry {:?}", name.display().to_string()))?;
    }
    ex.set_dir_times()?;
    Ok(ex.applied)
}

struct Extractor<'a> {
    root: &'a OwnedFd,
    opts: &'a ExtractOptions,
    lowers: &'a [OwnedFd],
    /// Everything this layer has created, so its own whiteouts spare it.
    layer_paths: HashSet<PathBuf>,
    /// Directory mtimes are set last: creating children would bump them.
    dir_times: Vec<(PathBuf, TimeSpec)>,
    /// Entries come grouped by directory; keep the last parent open.
    parent_cache: Option<(PathBuf, Rc<OwnedFd>)>,
    buf: Vec<u8>,
    applied: Applied,
}

fn os_err(what: &str, e: Errno) -> anyhow::Error {
    anyhow!("{what}: {}", io::Error::from(e))
}

impl Extractor<'_> {
    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let path = safepath::clean(&entry.path()?);
        let meta = read_meta(entry)?;
        let Some(name) = path.file_name() else {
            // `./` itself: the root directory's own metadata.
            if kind == EntryType::Directory {
                let fd = self.open_dir_rw(Path::new(""))?;
                self.set_fd_meta(&fd, &meta, true)?;
                self.dir_times.push((PathBuf::new(), meta.mtime));
            }
            return Ok(());
        };
        if let Some(w) = whiteout::classify(name) {
            let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
            return match w {
                Whiteout::Hide(hidden) => self.hide(&dir, hidden),
                Whiteout::Opaque => self.opaque(&dir),
                Whiteout::Meta => Ok(()),
            };
        }
        match kind {
            EntryType::Directory => self.make_dir(&path, &meta)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_file(&path, &meta, entry)?
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| anyhow!("symlink without target"))?
                    .into_owned();
                self.make_symlink(&path, &target, &meta)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| anyhow!("hard link without target"))?
                    .into_owned();
                self.make_hardlink(&path, &safepath::clean(&target))?;
            }
            EntryType::Char | EntryType::Block => {
                let h = entry.header();
                let major = h.device_major()?.unwrap_or(0);
                let minor = h.device_minor()?.unwrap_or(0);
                if self.opts.devices == Devices::LeaveOut
                    && !devices::is_whiteout_node(kind, major, minor)
                {
                    return self.leave_out_device(&path);
                }
                self.make_node(&path, kind, major, minor, &meta)?;
            }
            // FIFOs carry no device numbers (the fields may be blank).
            EntryType::Fifo => self.make_node(&path, kind, 0, 0, &meta)?,
            other => bail!("unsupported tar entry type {other:?}"),
        }
        self.layer_paths.insert(path);
        Ok(())
    }

    /// Parent directory of `path` (created if missing) and its last name.
    fn parent(&mut self, path: &Path) -> Result<(Rc<OwnedFd>, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("empty path"))?
            .to_os_string();
        let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some((cached, fd)) = &self.parent_cache {
            if *cached == parent {
                return Ok((fd.clone(), name));
            }
        }
        let fd = match safepath::open_dir(self.root, &parent) {
            Err(Errno::ENOENT) => {
                let made = safepath::mkdir_all(self.root, &parent)
                    .map_err(|e| os_err(&format!("creating parent {}", parent.display()), e))?;
                self.layer_paths.extend(made);
                safepath::open_dir(self.root, &parent)
            }
            other => other,
        }
        .map_err(|e| os_err(&format!("opening parent {}", parent.display()), e))?;
        let fd = Rc::new(fd);
        self.parent_cache = Some((parent, fd.clone()));
        Ok((fd, name))
    }

    /// Makes room for a new entry: a directory stays if the new entry is a
    /// directory too (tar semantics merge them), anything else goes.
    fn clear_for(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        new_is_dir: bool,
    ) -> Result<Option<SFlag>> {
        let existing = safepath::kind_at(dir, name).map_err(|e| os_err("stat", e))?;
        match existing {
            None => {}
            Some(SFlag::S_IFDIR) if new_is_dir => {}
            Some(SFlag::S_IFDIR) => {
                self.parent_cache = None;
                safepath::remove_all(dir, name)
                    .map_err(|e| os_err("removing directory in the way", e))?;
            }
            Some(_) => {
                unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| os_err("removing old entry", e))?;
            }
        }
        Ok(existing)
    }

    fn make_dir(&mut self, path: &Path, meta: &Meta) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        let existing = self.clear_for(&dir, &name, true)?;
        if existing != Some(SFlag::S_IFDIR) {
            nix::sys::stat::mkdirat(
                dir.as_fd(),
                name.as_os_str(),
                Mode::from_bits_truncate(0o700),
            )
            .map_err(|e| os_err("mkdir", e))?;
        }
        let fd = openat(
            dir.as_fd(),
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os_err("open directory", e))?;
        self.set_fd_meta(&fd, meta, true)?;
        self.dir_times.push((path.to_path_buf(), meta.mtime));
        Ok(())
    }

    fn make_file<R: Read>(&mut self, path: &Path, meta: &Meta, data: &mut R) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        let create = || {
            openat(
                dir.as_fd(),
                name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        };
        // Most names are new: create first (O_EXCL follows nothing) and
        // clear the way only when something is there, saving a stat per file.
        let fd = match create() {
            Err(Errno::EEXIST) => {
                self.clear_for(&dir, &name, false)?;
                create()
            }
            other => other,
        }
        .map_err(|e| os_err("create", e))?;
        let mut file = File::from(fd);
        copy_with(&mut self.buf, data, &mut file)?;
        self.set_fd_meta(&file, meta, false)?;
        Ok(())
    }

    fn make_symlink(&mut self, path: &Path, target: &Path, meta: &Meta) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        self.clear_for(&dir, &name, false)?;
        // A new symlink may redirect a path whose parent we hold open.
        self.parent_cache = None;
        symlinkat(target, dir.as_fd(), name.as_os_str()).map_err(|e| os_err("symlink", e))?;
        self.set_path_meta(&dir, &name, meta, true)
    }

    fn make_node(
        &mut self,
        path: &Path,
        kind: EntryType,
        major: u32,
        minor: u32,
        meta: &Meta,
    ) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        self.clear_for(&dir, &name, false)?;
        let sflag = match kind {
            EntryType::Char => SFlag::S_IFCHR,
            EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        let dev = libc::makedev(major, minor);
        match mknodat(
            dir.as_fd(),
            name.as_os_str(),
            sflag,
            Mode::from_bits_truncate(0o600),
            dev,
        ) {
            Ok(()) => {}
            // Without CAP_MKNOD (rootless) device nodes cannot exist; the
            // runtime bind-mounts /dev anyway.
            Err(Errno::EPERM) if self.opts.ownership.skip_chown && sflag != SFlag::S_IFIFO => {
                return Ok(())
            }
            Err(e) => return Err(os_err("mknod", e)),
        }
        self.set_path_meta(&dir, &name, meta, false)
    }

    /// A device entry the user did not allow: it still replaces whatever
    /// its path held, but nothing takes that place. In overlay form a
    /// whiteout records the removal, so lower layers stay hidden there too.
    fn leave_out_device(&mut self, path: &Path) -> Result<()> {
        let (dir, name) = self.parent(path)?;
        self.clear_for(&dir, &name, false)?;
        if self.opts.whiteouts == WhiteoutMode::Overlay {
            mknodat(
                dir.as_fd(),
                name.as_os_str(),
                SFlag::S_IFCHR,
                Mode::empty(),
                0,
            )
            .map_err(|e| os_err("creating overlay whiteout", e))?;
        }
        self.layer_paths.insert(path.to_path_buf());
        self.applied.devices_left_out.push(path.to_path_buf());
        Ok(())
    }

    fn make_hardlink(&mut self, path: &Path, target: &Path) -> Result<()> {
        if path == target {
            return Ok(());
        }
        // Another name for a device left out is left out with it.
        if self.applied.devices_left_out.iter().any(|p| p == target) {
            return self.leave_out_device(path);
        }
        let (tdir, tname) = match safepath::parent_of(self.root, target, false) {
            Ok(found) => found,
            Err(Errno::ENOENT) if !self.lowers.is_empty() => {
                return self.copy_from_lower(path, target)
            }
            Err(e) => return Err(os_err(&format!("hard link target {}", target.display()), e)),
        };
        match safepath::kind_at(&tdir, &tname).map_err(|e| os_err("stat link target", e))? {
            None if !self.lowers.is_empty() => return self.copy_from_lower(path, target),
            None => bail!("hard link target {} does not exist", target.display()),
            Some(SFlag::S_IFDIR) => bail!("hard link target {} is a directory", target.display()),
            Some(_) => {}
        }
        let (dir, name) = self.parent(path)?;
        self.clear_for(&dir, &name, false)?;
        linkat(
            tdir.as_fd(),
            tname.as_os_str(),
            dir.as_fd(),
            name.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| os_err(&format!("link to {}", target.display()), e))
    }

    /// Overlay mode: a hard link into a lower layer cannot be a link across
    /// directories that overlayfs stacks, so the file is copied up, as
    /// overlayfs itself would on write.
    fn copy_from_lower(&mut self, path: &Path, target: &Path) -> Result<()> {
        for lower in self.lowers {
            let Ok((ldir, lname)) = safepath::parent_of(lower, target, false) else {
                continue;
            };
            match safepath::kind_at(&ldir, &lname) {
                Ok(Some(SFlag::S_IFREG)) => {}
                Ok(None) => continue,
                // A whiteout or anything else hides what lies below.
                _ => break,
            }
            let src = openat(
                ldir.as_fd(),
                lname.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| os_err("open lower link target", e))?;
            let (dir, name) = self.parent(path)?;
            self.clear_for(&dir, &name, false)?;
            return crate::copy::copy_file_at(&src, &dir, &name, crate::copy::Method::Copy)
                .with_context(|| {
                    format!(
                        "copying hard link target {} from a lower layer",
                        target.display()
                    )
                });
        }
        bail!("hard link target {} does not exist", target.display())
    }

    fn hide(&mut self, dir: &Path, hidden: &OsStr) -> Result<()> {
        let path = dir.join(hidden);
        if self.layer_paths.contains(&path) {
            return Ok(());
        }
        self.parent_cache = None;
        match self.opts.whiteouts {
            WhiteoutMode::Apply => match safepath::parent_of(self.root, &path, false) {
                Ok((d, n)) => {
                    safepath::remove_all(&d, &n).map_err(|e| os_err("applying whiteout", e))
                }
                // Nothing below to hide.
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(()),
                Err(e) => Err(os_err("applying whiteout", e)),
            },
            WhiteoutMode::Overlay => {
                let (d, n) = self.parent(&path)?;
                self.clear_for(&d, &n, false)?;
                mknodat(d.as_fd(), n.as_os_str(), SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| os_err("creating overlay whiteout", e))?;
                self.layer_paths.insert(path);
                Ok(())
            }
        }
    }

    fn opaque(&mut self, dir: &Path) -> Result<()> {
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                let fd = match safepath::open_dir(self.root, dir) {
                    Ok(_) => self.open_dir_rw(dir)?,
                    Err(Errno::ENOENT) => return Ok(()),
                    Err(e) => return Err(os_err("opaque whiteout", e)),
                };
                self.parent_cache = None;
                let keep = |child: &OsStr| self.layer_paths.contains(&dir.join(child));
                for child in
                    safepath::list_dir(&fd).map_err(|e| os_err("listing for opaque whiteout", e))?
                {
                    if !keep(&child) {
                        safepath::remove_all(&fd, &child)
                            .map_err(|e| os_err("applying opaque whiteout", e))?;
                    }
                }
                Ok(())
            }
            WhiteoutMode::Overlay => {
                if !dir.as_os_str().is_empty() {
                    let (d, n) = self.parent(dir)?;
                    if safepath::kind_at(&d, &n)
                        .map_err(|e| os_err("stat", e))?
                        .is_none()
                    {
                        nix::sys::stat::mkdirat(
                            d.as_fd(),
                            n.as_os_str(),
                            Mode::from_bits_truncate(0o755),
                        )
                        .map_err(|e| os_err("mkdir", e))?;
                        self.layer_paths.insert(dir.to_path_buf());
                    }
                }
                let fd = self.open_dir_rw(dir)?;
                xattr::fset(&fd, whiteout::OVERLAY_OPAQUE_XATTR, b"y")
                    .context("setting overlay opaque xattr")
            }
        }
    }

    /// Opens a directory inside the root for reading (not O_PATH), as
    /// needed for listing it and for f*() metadata calls.
    fn open_dir_rw(&self, rel: &Path) -> Result<OwnedFd> {
        let p = safepath::open_dir(self.root, rel).map_err(|e| os_err("open directory", e))?;
        openat(
            p.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os_err("open directory", e))
    }

    /// Owner, then mode (chown clears setuid bits), then xattrs (chown also
    /// drops security.capability), then times.
    fn set_fd_meta(&self, fd: &impl AsFd, meta: &Meta, is_dir: bool) -> Result<()> {
        if let Some((uid, gid)) = self.host_ids(meta)? {
            fchown(fd.as_fd(), Some(uid), Some(gid)).map_err(|e| os_err("chown", e))?;
        }
        fchmod(fd.as_fd(), Mode::from_bits_truncate(meta.mode)).map_err(|e| os_err("chmod", e))?;
        for (k, v) in &meta.xattrs {
            xattr::fset(fd, k, v)
                .with_context(|| format!("setting xattr {}", xattr::display(k)))?;
        }
        if !is_dir {
            futimens(fd.as_fd(), &meta.mtime, &meta.mtime).map_err(|e| os_err("set times", e))?;
        }
        Ok(())
    }

    fn set_path_meta(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        is_symlink: bool,
    ) -> Result<()> {
        if let Some((uid, gid)) = self.host_ids(meta)? {
            fchownat(
                dir.as_fd(),
                name,
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| os_err("chown", e))?;
        }
        if !is_symlink {
            // Not a symlink (checked by the caller's mknod), so following is moot.
            fchmodat(
                dir.as_fd(),
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| os_err("chmod", e))?;
        }
        for (k, v) in &meta.xattrs {
            xattr::lset(&safepath::proc_path(dir, name), k, v)
                .with_context(|| format!("setting xattr {}", xattr::display(k)))?;
        }
        utimensat(
            dir.as_fd(),
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| os_err("set times", e))
    }

    fn host_ids(&self, meta: &Meta) -> Result<Option<(Uid, Gid)>> {
        let own = &self.opts.ownership;
        if own.skip_chown {
            return Ok(None);
        }
        let uid = own.host_uid(meta.uid)?;
        let gid = own.host_gid(meta.gid)?;
        Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid))))
    }

    fn set_dir_times(&self) -> Result<()> {
        for (path, t) in self.dir_times.iter().rev() {
            let res = if path.as_os_str().is_empty() {
                utimensat(
                    self.root.as_fd(),
                    ".",
                    t,
                    t,
                    UtimensatFlags::NoFollowSymlink,
                )
            } else {
                match safepath::parent_of(self.root, path, false) {
                    Ok((d, n)) => match safepath::kind_at(&d, &n) {
                        Ok(Some(SFlag::S_IFDIR)) => utimensat(
                            d.as_fd(),
                            n.as_os_str(),
                            t,
                            t,
                            UtimensatFlags::NoFollowSymlink,
                        ),
                        // Replaced or removed later in the layer.
                        _ => Ok(()),
                    },
                    Err(_) => Ok(()),
                }
            };
            res.map_err(|e| os_err(&format!("set times on {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// The tar crate quotes raw header bytes in its messages; keep errors to
/// one short printable line.
fn brief(e: &io::Error) -> String {
    let text: String = e
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

fn copy_with(buf: &mut [u8], src: &mut impl Read, dst: &mut File) -> Result<()> {
    loop {
        let n = match src.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!(e)),
        };
        dst.write_all(&buf[..n]).context("write")?;
    }
}

/// Header fields, overridden by PAX records where present (PAX carries
/// ids above 2^21, sub-second mtimes and SCHILY.xattr.* extended attributes).
fn read_meta<R: Read>(entry: &mut tar::Entry<R>) -> Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        uid: h.uid().unwrap_or(0),
        gid: h.gid().unwrap_or(0),
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        mtime: TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if !xattr::is_reserved(name.as_bytes()) {
                    meta.xattrs.push((name.as_bytes().to_vec(), value.to_vec()));
                }
                continue;
            }
            let text = std::str::from_utf8(value).unwrap_or("");
            match key {
                "uid" => meta.uid = text.parse().context("PAX uid")?,
                "gid" => meta.gid = text.parse().context("PAX gid")?,
                "mtime" => meta.mtime = parse_pax_time(text).context("PAX mtime")?,
                _ => {}
            }
        }
    }
    Ok(meta)
}

fn parse_pax_time(s: &str) -> Result<TimeSpec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse()?
    };
    Ok(if secs < 0 && nanos > 0 {
        TimeSpec::new(secs - 1, 1_000_000_000 - nanos)
    } else {
        TimeSpec::new(secs, nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (1700000000, 500_000_000));
        assert_eq!(parse_pax_time("12").unwrap().tv_sec(), 12);
        assert!(parse_pax_time("x").is_err());
    }
}
