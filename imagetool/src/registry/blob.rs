//! Downloading one blob into the layout: hashed while it streams, resumed
//! from a partial ingest file with an HTTP Range request. The partial's bytes
//! are hashed again before the rest is appended and the whole must match the
//! digest; if a resumed blob does not, it is fetched once more from byte 0.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use nix::fcntl::{Flock, FlockArg};

use super::client::{describe_failure, Client};
use super::follow::Track;
use crate::digest::{Digest, Hasher};
use crate::store::LayoutWriter;

const BUF: usize = 256 << 10;

/// How a blob came to be in the layout.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Already there (an earlier pull, or a concurrent one that won).
    Present,
    /// Downloaded; `resumed_from` > 0 when a partial download was continued.
    Downloaded { resumed_from: u64 },
}

pub fn fetch(
    client: &Client,
    store: &LayoutWriter,
    digest: &Digest,
    size: u64,
    bar: &ProgressBar,
    track: Option<&Track>,
) -> Result<Fetched> {
    if store.has_blob(digest, size) {
        bar.inc(size);
        return Ok(Fetched::Present);
    }
    let path = store.ingest_path(digest);
    // Another pull into this layout may have just removed the (empty)
    // ingest directory as it finished.
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("blob {digest}: mkdir {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("blob {digest}: {}", path.display()))?;
    // One writer per ingest file; a second pull of the same blob waits here
    // and then finds it in blobs/.
    let mut file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| {
        anyhow!(
            "blob {digest}: lock {}: {}",
            path.display(),
            io::Error::from(e)
        )
    })?;
    if store.has_blob(digest, size) {
        remove_if_ours(&file, &path);
        bar.inc(size);
        return Ok(Fetched::Present);
    }
    let mut first = true;
    loop {
        let have = file.metadata()?.len();
        let resumed_from = if have > size { 0 } else { have };
        match attempt(client, &mut file, digest, size, resumed_from, bar, track)? {
            Ok(()) => {
                store.commit_ingest(digest)?;
                return Ok(Fetched::Downloaded { resumed_from });
            }
            Err(got) if resumed_from > 0 && first => {
                // The kept bytes were bad (a corrupt disk, a different
                // server): never trusted, so start over once.
                eprintln!(
                    "patina-imagetool: blob {digest}: resumed download hashes to {got}; \
                     fetching it again from the start"
                );
                file.set_len(0)?;
                first = false;
            }
            Err(got) => {
                file.set_len(0)?;
                let _ = std::fs::remove_file(&path);
                bail!(
                    "blob {digest}: digest mismatch: the registry served {size} bytes hashing to {got}; discarded"
                );
            }
        }
    }
}

/// One request from byte `from`; `Ok(Err(got))` is a complete blob with the
/// wrong digest. Network errors keep the partial for a later resume.
fn attempt(
    client: &Client,
    file: &mut File,
    digest: &Digest,
    size: u64,
    from: u64,
    bar: &ProgressBar,
    track: Option<&Track>,
) -> Result<std::result::Result<(), Digest>> {
    file.set_len(from)?;
    let mut hasher = Hasher::default();
    hash_prefix(file, from, &mut hasher)
        .with_context(|| format!("blob {digest}: reading the partial download"))?;
    bar.set_position(from);
    if from == size {
        return Ok(check(hasher, digest));
    }
    let (mut resp, from) = request(client, digest, from)?;
    if from == 0 {
        file.set_len(0)?;
        hasher = Hasher::default();
        bar.set_position(0);
        if let Some(t) = track {
            t.streaming();
        }
    }
    file.seek(SeekFrom::Start(from))?;
    let mut body = resp.body_mut().as_reader();
    let mut seen = from;
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => bail!(
                "blob {digest}: download broke off after {seen} of {size} bytes: {e} \
                 (kept; running the command again resumes it)"
            ),
        };
        seen += n as u64;
        if seen > size {
            file.set_len(0)?;
            bail!(
                "blob {digest}: registry sent more than the descriptor's {size} bytes; discarded"
            );
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .with_context(|| format!("blob {digest}: writing the download"))?;
        bar.inc(n as u64);
        if let Some(t) = track {
            t.wrote(seen);
        }
    }
    if seen != size {
        bail!(
            "blob {digest}: download broke off after {seen} of {size} bytes \
             (kept; running the command again resumes it)"
        );
    }
    Ok(check(hasher, digest))
}

fn check(hasher: Hasher, want: &Digest) -> std::result::Result<(), Digest> {
    let got = hasher.finish();
    if &got == want {
        Ok(())
    } else {
        Err(got)
    }
}

fn hash_prefix(file: &mut File, len: u64, hasher: &mut Hasher) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut r = (&*file).take(len);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// GET the blob from byte `from`. Returns the response and where its body
/// starts: a registry may ignore the Range (200) or refuse it (416), and the
/// download then starts over at 0.
fn request(
    client: &Client,
    digest: &Digest,
    from: u64,
) -> Result<(ureq::http::Response<ureq::Body>, u64)> {
    let path = format!("blobs/{digest}");
    if from > 0 {
        let resp = client.get(&path, &[("Range", format!("bytes={from}-"))])?;
        match resp.status().as_u16() {
            206 if content_range_start(&resp) == Some(from) => return Ok((resp, from)),
            200 => return Ok((resp, 0)),
            _ => {}
        }
    }
    let mut resp = client.get(&path, &[])?;
    if resp.status() != 200 {
        bail!(
            "blob {digest}: registry {} answered {}",
            client.registry(),
            describe_failure(&mut resp)
        );
    }
    Ok((resp, 0))
}

/// `Content-Range: bytes START-END/TOTAL` -> START.
fn content_range_start(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("content-range")?.to_str().ok()?;
    v.strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// After waiting for another pull that finished the blob: our handle may be
/// a fresh empty ingest file (remove it) or the blob itself (leave it).
fn remove_if_ours(file: &File, path: &std::path::Path) {
    if let (Ok(a), Ok(b)) = (file.metadata(), std::fs::metadata(path)) {
        if a.ino() == b.ino() && a.len() == 0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
