//! Content digests (image-spec descriptor.md#digests) and a reader that
//! verifies a blob's digest and size while it streams.

use std::fmt;
use std::io::{self, Read};

use anyhow::{bail, Result};
use sha2::{Digest as _, Sha256};

/// A parsed `algorithm:encoded` digest. Only sha256 is accepted: it is the
/// one algorithm every producer writes, and sha512 blobs are vanishingly rare.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Self> {
        let Some((algo, hex)) = s.split_once(':') else {
            bail!("malformed digest {s:?}: expected algorithm:hex");
        };
        if algo != "sha256" {
            bail!("unsupported digest algorithm {algo:?} in {s:?}");
        }
        Self::from_hex(hex).map_err(|_| anyhow::anyhow!("malformed sha256 digest {s:?}"))
    }

    /// Accepts exactly 64 lowercase hex characters, as descriptor.md requires
    /// for sha256 (so a digest can never smuggle `/` or `..` into a blob path).
    pub fn from_hex(hex: &str) -> Result<Self> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            bail!("malformed sha256 hex {hex:?}");
        }
        Ok(Self {
            hex: hex.to_string(),
        })
    }

    pub fn of_bytes(data: &[u8]) -> Self {
        Self {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// First 12 hex characters, for progress bars and listings.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Incremental sha256 of everything that passes through.
#[derive(Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.0.finalize()),
        }
    }
}

/// Wraps a blob reader; hashes (when a digest is expected) and counts bytes
/// and, on reaching EOF, fails the read if the size or digest differ from
/// the descriptor. A reader that
/// sees more bytes than the descriptor's size fails at once, so an oversized
/// blob cannot make us consume unbounded input.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    seen: u64,
    /// The EOF checks ran (they run once).
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Option<Digest>, expected_size: Option<u64>) -> Self {
        Self {
            inner,
            hasher: expected.as_ref().map(|_| Hasher::default()),
            expected,
            expected_size,
            seen: 0,
            done: false,
        }
    }

    fn check_at_eof(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if let Some(size) = self.expected_size {
            if self.seen != size {
                return Err(invalid(format!(
                    "truncated: read {} bytes, descriptor says {size}",
                    self.seen
                )));
            }
        }
        if let (Some(hasher), Some(want)) = (self.hasher.take(), &self.expected) {
            let got = hasher.finish();
            if &got != want {
                return Err(invalid(format!("digest mismatch: content hashes to {got}")));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.check_at_eof()?;
            return Ok(0);
        }
        self.seen += n as u64;
        if let Some(size) = self.expected_size {
            if self.seen > size {
                return Err(invalid(format!(
                    "blob is larger than its descriptor size {size}"
                )));
            }
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

pub fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads a whole (small) blob through a [`VerifyingReader`], refusing blobs
/// over `limit` bytes so a hostile manifest cannot exhaust memory.
pub fn read_verified(
    reader: impl Read,
    digest: &Digest,
    size: Option<u64>,
    limit: u64,
) -> io::Result<Vec<u8>> {
    if size.is_some_and(|s| s > limit) {
        return Err(invalid(format!(
            "blob too large ({} bytes, limit {limit})",
            size.unwrap_or(0)
        )));
    }
    let mut out = Vec::new();
    VerifyingReader::new(reader.take(limit + 1), Some(digest.clone()), size)
        .read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(invalid(format!("blob too large (over {limit} bytes)")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_digests() {
        assert!(Digest::parse("sha256:../../etc").is_err());
        assert!(Digest::parse("md5:abcd").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{}", "a".repeat(64)));
    }

    #[test]
    fn verifying_reader_checks_size_and_digest() {
        let data = b"hello world";
        let d = Digest::of_bytes(data);
        assert_eq!(read_verified(&data[..], &d, Some(11), 100).unwrap(), data);
        let e = read_verified(&data[..5], &d, Some(11), 100).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = read_verified(&b"hello worle"[..], &d, Some(11), 100).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        let e = read_verified(&data[..], &d, Some(3), 100).unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
    }

    /// Without a digest (the store checks it) the size is still enforced.
    #[test]
    fn verifying_reader_without_digest_checks_size() {
        let read = |data: &[u8], size| {
            let mut out = Vec::new();
            VerifyingReader::new(data, None, Some(size))
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read(b"hello", 5).unwrap(), b"hello");
        let e = read(b"hell", 5).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = read(b"hello!", 5).unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
    }
}
