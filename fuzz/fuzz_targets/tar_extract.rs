//! Layer extraction as `patina-imagetool unpack` does it: a layer blob (plain tar, or
//! gzip/zstd by its magic, `layer::sniff`) applied by `extract::apply_layer` to a root
//! directory, in either whiteout mode, with or without an id map, in overlay mode with
//! a lower layer to copy hard-link targets from.
//!
//! Everything lives on a private size-limited tmpfs at /dev/shm (`patina_fuzz::scratch`):
//! `extract/root` is the root; beside it `extract/canary` (a file, a directory, a
//! symlink) and `extract/lower` (the lower layer) stand for the host. After each input
//! the canary, the lower layer and everything around the root must be exactly as before
//! (names, types, modes, owners, sizes, link counts, times, contents, link targets,
//! xattrs): an entry that wrote, linked, chmod'ed or removed anything outside the root
//! crashes the target. Then the root is emptied for the next input.

#![no_main]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::{BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use patina_imagetool::devices::Devices;
use patina_imagetool::extract::{apply_layer, ExtractOptions};
use patina_imagetool::idmap::{IdMap, Ownership};
use patina_imagetool::image::Compression;
use patina_imagetool::layer::sniff;
use patina_imagetool::whiteout::Mode as Whiteouts;

struct Sandbox {
    root: PathBuf,
    lower: PathBuf,
}

/// Path (relative to /dev/shm) -> everything observable about it.
type Snapshot = BTreeMap<PathBuf, String>;

fn sandbox() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| {
        let base = patina_fuzz::scratch().join("extract");
        let (root, canary, lower) = (base.join("root"), base.join("canary"), base.join("lower"));
        for d in [&root, &canary.join("dir"), &lower.join("usr/bin")] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(canary.join("file"), b"canary\n").unwrap();
        fs::write(canary.join("dir/inner"), b"inner\n").unwrap();
        symlink("file", canary.join("link")).unwrap();
        fs::write(lower.join("usr/bin/tool"), b"lower layer file\n").unwrap();
        fs::write(lower.join("etc-passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        Sandbox { root, lower }
    })
}

/// Everything under /dev/shm except inside the root.
fn snapshot() -> Snapshot {
    let top = patina_fuzz::scratch();
    let root = top.join("extract/root");
    let mut out = Snapshot::new();
    let mut todo = vec![top.to_path_buf()];
    while let Some(p) = todo.pop() {
        if p == root {
            // Its own metadata is the layer's to set (a `./` entry).
            out.insert(p.strip_prefix(top).unwrap().to_path_buf(), "root".into());
            continue;
        }
        let m = fs::symlink_metadata(&p).unwrap();
        let mut desc = format!(
            "mode {:o} uid {} gid {} size {} nlink {} mtime {}.{} ctime {}.{}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.nlink(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        );
        desc += &format!(" xattrs {:?}", xattr_names(&p));
        if m.file_type().is_symlink() {
            desc += &format!(" -> {:?}", fs::read_link(&p).unwrap());
        } else if m.is_file() {
            desc += &format!(" content {:?}", fs::read(&p).unwrap());
        } else if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
        out.insert(p.strip_prefix(top).unwrap().to_path_buf(), desc);
    }
    out
}

fn xattr_names(p: &Path) -> Vec<u8> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: c is a NUL-terminated path, buf a writable buffer of the length passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(usize::try_from(n).unwrap_or(0));
    buf
}

fn open_dir(p: &Path) -> OwnedFd {
    open(
        p,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let s = sandbox();
    let Some((&sel, blob)) = data.split_first() else {
        return;
    };
    let before = snapshot();
    let overlay = sel & 1 != 0;
    let map = |m: &str| vec![IdMap::parse(m).unwrap()];
    let ownership = match (sel >> 1) & 3 {
        0 => Ownership::default(),
        1 => Ownership {
            skip_chown: true,
            ..Default::default()
        },
        _ => Ownership {
            uid_map: map("0:100000:65536"),
            gid_map: map("0:100000:65536"),
            skip_chown: false,
        },
    };
    let opts = ExtractOptions {
        whiteouts: if overlay {
            Whiteouts::Overlay
        } else {
            Whiteouts::Apply
        },
        ownership,
        // Device entries are what an image may not bring to the host (left out by
        // default); with the creating mode the nodes would land in the tmpfs root.
        devices: if sel & 16 != 0 {
            Devices::Create
        } else {
            Devices::LeaveOut
        },
    };
    let lowers = if overlay && sel & 8 != 0 {
        vec![open_dir(&s.lower)]
    } else {
        Vec::new()
    };
    let root = open_dir(&s.root);
    if let Ok((mut decoder, _)) = sniff(&Compression::Detect, BufReader::new(blob)) {
        // As unpack does: apply, then drain the stream so trailing garbage is seen.
        if apply_layer(&root, &mut decoder, &opts, &lowers).is_ok() {
            let _ = std::io::copy(&mut decoder.by_ref(), &mut std::io::sink());
        }
    }
    drop((root, lowers));
    let after = snapshot();
    if after != before {
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .map(|(k, v)| format!("{k:?}: {v}"))
            .chain(
                before
                    .keys()
                    .filter(|k| !after.contains_key(*k))
                    .map(|k| format!("{k:?}: gone")),
            )
            .collect();
        panic!(
            "the layer changed things outside the root:\n{}",
            changed.join("\n")
        );
    }
    // The next input starts from an empty root again.
    fs::remove_dir_all(&s.root).unwrap();
    fs::create_dir(&s.root).unwrap();
});
