//! Whiteouts (image-spec layer.md#whiteouts).
//!
//! `.wh.NAME` hides NAME of lower layers; `.wh..wh..opq` hides every lower
//! child of its directory. Whiteouts only affect lower layers, never
//! entries of the layer that carries them, whatever their order in the tar.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

pub const PREFIX: &str = ".wh.";
pub const OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Hide this sibling name.
    Hide(&'a OsStr),
    /// Hide all lower children of the containing directory.
    Opaque,
    /// Other `.wh..wh.` names are aufs bookkeeping (e.g. `.wh..wh.plnk`):
    /// not content, skipped.
    Meta,
}

/// Classifies a final path component; None for ordinary names.
pub fn classify(name: &OsStr) -> Option<Whiteout<'_>> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE.as_bytes() {
        return Some(Whiteout::Opaque);
    }
    let rest = bytes.strip_prefix(PREFIX.as_bytes())?;
    if rest.starts_with(PREFIX.as_bytes()) {
        return Some(Whiteout::Meta);
    }
    // `.wh.` alone or `.wh..` would name the directory itself or its parent.
    if rest.is_empty() || rest == b"." || rest == b".." {
        return Some(Whiteout::Meta);
    }
    Some(Whiteout::Hide(OsStr::from_bytes(rest)))
}

/// How whiteouts are materialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Delete hidden lower content from the single rootfs being built.
    Apply,
    /// Record them the way overlayfs expects in a per-layer directory:
    /// a 0:0 character device, and `trusted.overlay.opaque=y`.
    Overlay,
}

pub const OVERLAY_OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_names() {
        assert_eq!(
            classify(OsStr::new(".wh.foo")),
            Some(Whiteout::Hide(OsStr::new("foo")))
        );
        assert_eq!(classify(OsStr::new(".wh..wh..opq")), Some(Whiteout::Opaque));
        assert_eq!(classify(OsStr::new(".wh..wh.plnk")), Some(Whiteout::Meta));
        assert_eq!(classify(OsStr::new(".wh..")), Some(Whiteout::Meta));
        assert_eq!(classify(OsStr::new("foo.wh.")), None);
    }
}
