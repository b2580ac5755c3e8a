//! Device nodes carried by layers.
//!
//! A character or block device in a rootfs is a door into the host's
//! kernel for whoever can reach it on the host: no device cgroup guards a
//! path opened outside the container. The runtime makes the container's
//! `/dev` from its config anyway, so images need none of theirs; unless
//! the user allows them, device entries are left out (what podman, docker
//! and containerd do whenever they cannot trust themselves with mknod:
//! inside a user namespace). FIFOs carry no privilege and are kept; tar has
//! no entry type for sockets.

use std::path::PathBuf;

use tar::EntryType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Devices {
    /// Device entries become nothing: the path they name is emptied.
    LeaveOut,
    /// mknod as the layer says (`--allow-devices`).
    Create,
}

/// A 0:0 character device is overlayfs' whiteout, not a device: opening it
/// gives ENXIO. Layers in overlay form carry it, so it is kept.
pub fn is_whiteout_node(kind: EntryType, major: u32, minor: u32) -> bool {
    kind == EntryType::Char && major == 0 && minor == 0
}

/// The warning for device entries left out, naming the first few.
pub fn left_out_warning(paths: &[PathBuf]) -> Option<String> {
    const SHOWN: usize = 3;
    if paths.is_empty() {
        return None;
    }
    let names: Vec<String> = paths
        .iter()
        .take(SHOWN)
        .map(|p| p.display().to_string())
        .collect();
    let more = match paths.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "left out {} device node(s) ({}{more}); --allow-devices creates them",
        paths.len(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_names_the_first_three() {
        assert_eq!(left_out_warning(&[]), None);
        let paths: Vec<PathBuf> = ["dev/a", "dev/b", "dev/c", "dev/d"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            left_out_warning(&paths).unwrap(),
            "left out 4 device node(s) (dev/a, dev/b, dev/c and 1 more); --allow-devices creates them"
        );
        assert!(is_whiteout_node(EntryType::Char, 0, 0));
        assert!(!is_whiteout_node(EntryType::Block, 0, 0));
        assert!(!is_whiteout_node(EntryType::Char, 1, 3));
    }
}
