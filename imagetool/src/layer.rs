//! Turning a layer blob into a verified, decompressed tar stream.
//!
//! Each layer is decompressed on its own thread into a bounded channel, so
//! later layers decompress while earlier ones are still being applied (in
//! order) by the caller. The compressed blob is checked against its
//! descriptor (digest and size) and the uncompressed stream against the
//! config's diff_id; either mismatch surfaces as a read error at the end of
//! the stream, before the layer counts as applied.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread;

use indicatif::ProgressBar;

use crate::digest::{invalid, Digest, Hasher, VerifyingReader};
use crate::image::{Compression, Layer};
use crate::layout::BlobStore;

const CHUNK: usize = 1 << 20;
/// Chunks buffered per layer: bounds memory to ~64 MiB per layer in flight
/// while letting small upper layers finish decompressing early.
const QUEUE: usize = 64;

type Chunk = io::Result<Vec<u8>>;

/// Read side of a layer's decompression thread.
pub struct LayerStream {
    rx: Receiver<Chunk>,
    /// Chunks read go back to the decompressor for reuse: a fresh 1 MiB
    /// buffer per chunk cost a memset and page faults each time.
    spent: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    finished: bool,
    /// The first error the decompression side reported, kept so the caller
    /// can name the real cause (digest mismatch, corrupt gzip) rather than
    /// the tar parser's view of it.
    error: Option<String>,
    /// The diff_id is hashed here, on the consuming thread, rather than in
    /// the decompressor: decompression is the critical path, and the
    /// applying thread has time to spare.
    diff_id: Option<(Hasher, Digest)>,
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.finished {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => {
                    self.finished = true;
                    self.check_diff_id()?;
                }
                Ok(Ok(chunk)) => {
                    if let Some((h, _)) = self.diff_id.as_mut() {
                        h.update(&chunk);
                    }
                    let old = std::mem::replace(&mut self.cur, chunk);
                    // The decompressor may have finished already.
                    let _ = self.spent.send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.error.get_or_insert_with(|| e.to_string());
                    return Err(e);
                }
                Err(_) => return Err(io::Error::other("decompression thread vanished")),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl LayerStream {
    /// Reads whatever the tar parser left (end-of-archive padding, trailing
    /// data) so the digest checks at the end of the stream still run.
    pub fn finish(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    fn check_diff_id(&mut self) -> io::Result<()> {
        if let Some((h, want)) = self.diff_id.take() {
            let got = h.finish();
            if got != want {
                let e = invalid(format!(
                    "uncompressed content hashes to {got}, config diff_id says {want}"
                ));
                self.error.get_or_insert_with(|| e.to_string());
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Starts decompressing `layer` on a new thread.
pub fn spawn(store: Arc<dyn BlobStore>, layer: Layer, progress: ProgressBar) -> LayerStream {
    let (tx, rx) = sync_channel(QUEUE);
    let (spent, spent_rx) = channel();
    let diff_id = Some((Hasher::default(), layer.diff_id.clone()));
    thread::Builder::new()
        .name("layer-decompress".into())
        .spawn(move || {
            let result = pump(&*store, &layer, &progress, &tx, &spent_rx);
            progress.finish();
            // The receiver may be gone if extraction already failed.
            let _ = tx.send(result.map(|()| Vec::new()));
        })
        .expect("spawning a thread");
    LayerStream {
        rx,
        spent,
        cur: Vec::new(),
        pos: 0,
        finished: false,
        error: None,
        diff_id,
    }
}

fn pump(
    store: &dyn BlobStore,
    layer: &Layer,
    progress: &ProgressBar,
    tx: &SyncSender<Chunk>,
    spent: &Receiver<Vec<u8>>,
) -> io::Result<()> {
    let (raw, checked) = store
        .open_checked(&layer.blob)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open blob: {e}")))?;
    let counted = progress.wrap_read(raw);
    // A blob the store checks as it reads (a pull's download) is hashed
    // once, there; its size is still checked here.
    let digest = if checked { None } else { layer.digest.clone() };
    let verified = VerifyingReader::new(counted, digest, Some(layer.size));
    let (decoder, _) = sniff(
        &layer.compression,
        BufReader::with_capacity(CHUNK, verified),
    )?;
    let mut reader = DecodeErrors(decoder);
    loop {
        let mut chunk = spent.try_recv().unwrap_or_default();
        // A reused chunk is already CHUNK long (only the last one is
        // shorter), so this zeroes fresh buffers only.
        chunk.resize(CHUNK, 0);
        let n = read_full(&mut reader, &mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        if tx.send(Ok(chunk)).is_err() {
            return Ok(());
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decompressor that, once the compressed stream ends, drains the raw blob
/// to EOF so its VerifyingReader sees every byte.
pub enum Decoder<R: BufRead> {
    Plain(R),
    Gzip(Option<Box<flate2::bufread::MultiGzDecoder<R>>>),
    Zstd(Option<zstd::stream::read::Decoder<'static, R>>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self {
            Decoder::Plain(r) => r.read(buf)?,
            Decoder::Gzip(Some(d)) => d.read(buf)?,
            Decoder::Zstd(Some(d)) => d.read(buf)?,
            Decoder::Gzip(None) | Decoder::Zstd(None) => return Ok(0),
        };
        if n == 0 {
            self.drain_raw()?;
        }
        Ok(n)
    }
}

impl<R: BufRead> Decoder<R> {
    fn drain_raw(&mut self) -> io::Result<()> {
        let mut inner = match self {
            Decoder::Plain(_) => return Ok(()),
            Decoder::Gzip(d) => match d.take() {
                Some(d) => (*d).into_inner(),
                None => return Ok(()),
            },
            Decoder::Zstd(d) => match d.take() {
                Some(d) => d.finish(),
                None => return Ok(()),
            },
        };
        let trailing = io::copy(&mut inner, &mut io::sink())?;
        if trailing > 0 {
            return Err(invalid(format!(
                "{trailing} bytes of garbage after the compressed stream"
            )));
        }
        Ok(())
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Builds the decoder for a declared compression; `Detect` looks at the
/// first bytes (docker save layers carry no media type).
pub fn sniff<R: BufRead>(
    declared: &Compression,
    mut r: R,
) -> io::Result<(Decoder<R>, Compression)> {
    let compression = match declared {
        Compression::Detect => {
            let head = r.fill_buf()?;
            if head.starts_with(GZIP_MAGIC) {
                Compression::Gzip
            } else if head.starts_with(ZSTD_MAGIC) {
                Compression::Zstd
            } else {
                Compression::None
            }
        }
        c => *c,
    };
    let decoder = match compression {
        Compression::Gzip => Decoder::Gzip(Some(Box::new(flate2::bufread::MultiGzDecoder::new(r)))),
        Compression::Zstd => Decoder::Zstd(Some(
            zstd::stream::read::Decoder::with_buffer(r)
                .map_err(|e| io::Error::new(e.kind(), format!("zstd: {e}")))?,
        )),
        _ => Decoder::Plain(r),
    };
    Ok((decoder, compression))
}

/// Adds context to decoder errors.
struct DecodeErrors<R>(R);

impl<R: Read> Read for DecodeErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(describe_decode_error)
    }
}

/// flate2 and zstd report corrupt input tersely ("corrupt deflate stream");
/// say which stage failed.
fn describe_decode_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidInput || e.kind() == io::ErrorKind::Other {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("decompression failed: {e}"),
        )
    } else {
        e
    }
}

/// Runs `apply` over a layer stream and drains it so its checksums are
/// verified; names the layer and the root cause on failure.
pub fn apply_one<T>(
    stream: &mut LayerStream,
    layer: &Layer,
    apply: impl FnOnce(&mut LayerStream) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let result =
        apply(stream).and_then(|v| stream.finish().map(|()| v).map_err(|e| anyhow::anyhow!(e)));
    result.map_err(|e| match stream.take_error() {
        Some(cause) => anyhow::anyhow!("{}: {cause}", layer.label()),
        None => e.context(layer.label()),
    })
}

pub fn short_label(layer: &Layer) -> String {
    match &layer.digest {
        Some(d) => d.short().to_string(),
        None => layer.blob.chars().take(12).collect(),
    }
}
