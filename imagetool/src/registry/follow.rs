//! Unpacking while the layers download: a blob store whose layer readers
//! follow the ingest file as the download thread appends to it, so
//! decompression starts with the first bytes rather than after the last.
//!
//! A reader sees only bytes the downloader has written, and reaches EOF
//! only once the download has checked the digest of those bytes, so the
//! unpack (layer.rs) does not hash them a second time (`open_checked`);
//! the ingest file is ours alone (0700 store, locked by its downloader).
//! Blobs read after their download ended are hashed by the unpack as
//! usual. A download
//! that resumes a partial file is not followed: its kept bytes may turn out
//! bad and be fetched again, so its reader waits for the finished blob.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use crate::digest::Digest;
use crate::layout::{BlobStore, DirStore};
use crate::store::LayoutWriter;

#[derive(Default)]
struct State {
    /// The download has started from byte 0 into its ingest file.
    streaming: bool,
    /// Bytes of the ingest file that are written and may be read.
    written: u64,
    /// The outcome: the blob is in `blobs/` (Ok) or will not be (Err).
    done: Option<Result<(), String>>,
}

/// One blob's download, as its reader and its downloader share it.
#[derive(Default)]
pub struct Track {
    state: Mutex<State>,
    changed: Condvar,
}

impl Track {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().expect("track"));
        self.changed.notify_all();
    }

    /// The downloader writes the blob from byte 0: readers may follow.
    pub fn streaming(&self) {
        self.update(|s| {
            s.streaming = true;
            s.written = 0;
        });
    }

    pub fn wrote(&self, total: u64) {
        self.update(|s| s.written = total);
    }

    pub fn finish(&self, result: Result<(), String>) {
        self.update(|s| {
            s.done.get_or_insert(result);
        });
    }

    fn wait<T>(&self, mut ready: impl FnMut(&State) -> Option<T>) -> T {
        let mut s = self.state.lock().expect("track");
        loop {
            if let Some(v) = ready(&s) {
                return v;
            }
            s = self.changed.wait(s).expect("track");
        }
    }
}

/// The tracks of the blobs one pull downloads.
#[derive(Default)]
pub struct Tracks(HashMap<Digest, Arc<Track>>);

impl Tracks {
    pub fn new<'a>(digests: impl IntoIterator<Item = &'a Digest>) -> Self {
        Self(
            digests
                .into_iter()
                .map(|d| (d.clone(), Arc::default()))
                .collect(),
        )
    }

    pub fn get(&self, d: &Digest) -> Option<&Track> {
        self.0.get(d).map(|t| &**t)
    }

    /// Ends the tracks of blobs that were never downloaded (an earlier one
    /// failed), so no reader waits for them forever.
    pub fn finish_rest(&self, why: &str) {
        for t in self.0.values() {
            t.finish(Err(why.to_string()));
        }
    }
}

/// The store's blobs, with tracked ones read as they arrive.
pub struct FollowStore {
    pub dir: DirStore,
    pub tracks: Arc<Tracks>,
    /// The layout's root, where `ingest/sha256-HEX` files grow.
    pub root: PathBuf,
}

impl BlobStore for FollowStore {
    fn open_path(&self, rel: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        match self.tracked(rel) {
            // The size is the descriptor's; the caller checks it.
            Some((track, digest)) => Ok((self.follow(track, &digest)?.0, 0)),
            None => self.dir.open_path(rel),
        }
    }

    fn open_checked(&self, rel: &str) -> io::Result<(Box<dyn Read + Send>, bool)> {
        match self.tracked(rel) {
            Some((track, digest)) => self.follow(track, &digest),
            None => Ok((self.dir.open_path(rel)?.0, false)),
        }
    }

    fn exists(&self, rel: &str) -> bool {
        self.dir.exists(rel)
    }
}

impl FollowStore {
    fn tracked(&self, rel: &str) -> Option<(&Arc<Track>, Digest)> {
        let d = Digest::from_hex(rel.strip_prefix("blobs/sha256/")?).ok()?;
        Some((self.tracks.0.get(&d)?, d))
    }

    /// The blob's reader, and whether the download checks its bytes.
    fn follow(
        &self,
        track: &Arc<Track>,
        digest: &Digest,
    ) -> io::Result<(Box<dyn Read + Send>, bool)> {
        // Stream when the download is writing from byte 0; otherwise
        // (present, resumed, failed) wait for the outcome.
        let streaming = track.wait(|s| match (&s.done, s.streaming) {
            (Some(Err(e)), _) => Some(Err(io::Error::other(e.clone()))),
            (Some(Ok(())), _) => Some(Ok(false)),
            (None, true) => Some(Ok(true)),
            (None, false) => None,
        })?;
        if streaming {
            if let Ok(file) = File::open(LayoutWriter::ingest_path_in(&self.root, digest)) {
                let reader = Follow {
                    file,
                    track: track.clone(),
                    pos: 0,
                };
                return Ok((Box::new(reader), true));
            }
            // Renamed into blobs/ already, or gone after a failure.
            track.wait(|s| s.done.clone()).map_err(io::Error::other)?;
        }
        Ok((self.dir.open(digest)?.0, false))
    }
}

/// Reads an ingest file up to what the downloader has written.
struct Follow {
    file: File,
    track: Arc<Track>,
    pos: u64,
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.pos;
        let avail = self.track.wait(|s| {
            if s.written > pos {
                return Some(Ok(s.written - pos));
            }
            match &s.done {
                Some(Ok(())) => Some(Ok(0)),
                Some(Err(e)) => Some(Err(e.clone())),
                None => None,
            }
        });
        let avail = avail.map_err(io::Error::other)?;
        if avail == 0 {
            return Ok(0);
        }
        let want = buf.len().min(avail as usize);
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn store(tag: &str, digest: &Digest) -> (PathBuf, FollowStore) {
        let root = std::env::temp_dir().join(format!("patina-follow-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let layout = LayoutWriter::create(&root, true).unwrap();
        drop(layout);
        let s = FollowStore {
            dir: DirStore::open_layout(&root).unwrap(),
            tracks: Arc::new(Tracks::new([digest])),
            root: root.clone(),
        };
        (root, s)
    }

    /// The reader gets what the writer appends, waits for more, and ends
    /// only when the download says the blob is done.
    #[test]
    fn reader_follows_a_growing_download() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::of_bytes(&data);
        let (root, s) = store("grow", &d);
        let tracks = s.tracks.clone();
        let ingest = LayoutWriter::ingest_path_in(&root, &d);
        let (data2, d2) = (data.clone(), d.clone());
        let writer = std::thread::spawn(move || {
            let t = tracks.get(&d2).unwrap();
            let mut f = File::create(&ingest).unwrap();
            t.streaming();
            for (i, chunk) in data2.chunks(70_000).enumerate() {
                f.write_all(chunk).unwrap();
                t.wrote((i * 70_000 + chunk.len()) as u64);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            std::fs::rename(&ingest, root_blob(&ingest, &d2)).unwrap();
            t.finish(Ok(()));
        });
        let (mut r, checked) = s.open_checked(&crate::layout::blob_path(&d)).unwrap();
        // The download hashes what this reader gets: the unpack need not.
        assert!(checked);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, data);
        // Once in blobs/, a blob is read like any other, and hashed by its reader.
        let (_, checked) = s.open_checked(&crate::layout::blob_path(&d)).unwrap();
        assert!(!checked);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A failed download ends its reader with the download's error.
    #[test]
    fn reader_gets_the_download_error() {
        let d = Digest::of_bytes(b"x");
        let (root, s) = store("fail", &d);
        let ingest = LayoutWriter::ingest_path_in(&root, &d);
        std::fs::write(&ingest, b"partial").unwrap();
        let t = s.tracks.get(&d).unwrap();
        t.streaming();
        t.wrote(7);
        let (mut r, _) = s.open_path(&crate::layout::blob_path(&d)).unwrap();
        let mut buf = [0u8; 7];
        r.read_exact(&mut buf).unwrap();
        t.finish(Err("blob sha256:x: digest mismatch".into()));
        let e = r.read(&mut buf).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        // Tracks of blobs never started end too.
        let d2 = Digest::of_bytes(b"y");
        let tracks = Tracks::new([&d2]);
        tracks.finish_rest("not downloaded");
        assert!(tracks.get(&d2).unwrap().wait(|s| s.done.clone()).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    fn root_blob(ingest: &std::path::Path, d: &Digest) -> PathBuf {
        let root = ingest.parent().unwrap().parent().unwrap();
        root.join(crate::layout::blob_path(d))
    }
}
