//! ShimCgroup: the shim moves itself into an existing cgroup, as containerd's runc shim
//! does when the runc Options name one (so that a pod's shims are accounted with the pod
//! instead of with containerd). The cgroup is only joined, never created: it belongs to
//! whoever configured it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Move this process (all its threads) into `path`, a cgroup path from the hierarchies'
/// root: on cgroup v2 the one hierarchy; on v1/hybrid every hierarchy mounted under
/// /sys/fs/cgroup where the directory exists (the cgroup2 mount of a hybrid host
/// included). Returns the directories joined; an error when the cgroup exists nowhere.
pub fn join(path: &str) -> Result<Vec<PathBuf>, String> {
    let rel = relative(path)?;
    let dirs = existing_dirs(Path::new(ROOT), &rel, crate::stats::unified());
    if dirs.is_empty() {
        return Err(format!(
            "ShimCgroup {path:?}: no such cgroup under {ROOT} (the shim joins it, never creates it)"
        ));
    }
    let pid = std::process::id().to_string();
    for dir in &dirs {
        let procs = dir.join("cgroup.procs");
        // Opened without O_CREAT: a cgroup that vanished meanwhile is an error, not a file.
        OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut f| f.write_all(pid.as_bytes()))
            .map_err(|e| format!("ShimCgroup {path:?}: join {}: {e}", procs.display()))?;
    }
    Ok(dirs)
}

/// The path below each hierarchy's root; `..` is refused so that it cannot leave it.
fn relative(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("ShimCgroup {path:?}: must not contain \"..\""));
    }
    Ok(p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect())
}

/// A cgroup directory: one with `cgroup.procs` (a plain directory under /sys/fs/cgroup
/// is not a hierarchy, and writing there would create a file).
fn is_cgroup(dir: &Path) -> bool {
    dir.join("cgroup.procs").is_file()
}

/// `root/<rel>` on a cgroup v2 host; else `root/<hierarchy>/<rel>` for each hierarchy
/// where that cgroup exists. Symlinks (`cpu` -> `cpu,cpuacct`) are skipped: they name a
/// hierarchy that is also listed under its own name.
fn existing_dirs(root: &Path, rel: &Path, unified: bool) -> Vec<PathBuf> {
    if unified {
        let dir = root.join(rel);
        return if is_cgroup(&dir) {
            vec![dir]
        } else {
            Vec::new()
        };
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(rel))
        .filter(|d| is_cgroup(d))
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative("/a/b").unwrap(), Path::new("a/b"));
        assert_eq!(relative("a/./b/").unwrap(), Path::new("a/b"));
        assert!(relative("/a/../b").unwrap_err().contains("ShimCgroup"));
        assert_eq!(relative("/").unwrap(), Path::new(""));
    }

    #[test]
    fn hierarchies_where_the_cgroup_exists() {
        let root = std::env::temp_dir().join(format!("shim-cg-{}", std::process::id()));
        for d in ["cpu/pod/x", "memory/pod/x", "pids/other", "unified/pod/x"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("cgroup.procs"), "").unwrap();
        }
        // A directory that is no cgroup does not count.
        std::fs::create_dir_all(root.join("plain/pod/x")).unwrap();
        std::os::unix::fs::symlink(root.join("cpu"), root.join("cpuacct")).unwrap();
        let got = existing_dirs(&root, Path::new("pod/x"), false);
        let want: Vec<PathBuf> = ["cpu/pod/x", "memory/pod/x", "unified/pod/x"]
            .iter()
            .map(|d| root.join(d))
            .collect();
        assert_eq!(got, want);
        assert!(existing_dirs(&root, Path::new("nope"), false).is_empty());
        assert_eq!(
            existing_dirs(&root.join("cpu"), Path::new("pod/x"), true),
            [root.join("cpu/pod/x")]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_cgroup_is_named() {
        let e = join("/patina-no-such-cgroup/x").unwrap_err();
        assert!(
            e.starts_with("ShimCgroup \"/patina-no-such-cgroup/x\""),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}
