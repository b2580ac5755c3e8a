//! cgroupsPath `slice:prefix:name` -> the transient unit systemd makes for the
//! container, and where its cgroup lies (runc's naming).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::Result;

/// The unit that owns the container's cgroup, as recorded in state.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `docker-<id>.scope` (or a `.slice` given as the name).
    pub name: String,
    /// The slice it goes in: `system.slice`.
    pub slice: String,
    /// Whose systemd: the system manager (root), or the user's manager (rootless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
}

impl Unit {
    /// Parse `linux.cgroupsPath` under `--systemd-cgroup`. Unset: `<slice>:patina:<id>`
    /// (runc uses its own name as the prefix likewise). `uid` is `Some` for rootless,
    /// whose default slice is user.slice of the user's manager.
    pub fn from_cgroups_path(path: Option<&str>, id: &str, uid: Option<u32>) -> Result<Unit> {
        let default_slice = if uid.is_some() {
            "user.slice"
        } else {
            "system.slice"
        };
        let (slice, prefix, name) = match path.filter(|p| !p.is_empty()) {
            None => (default_slice, "patina", id),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                let [slice, prefix, name] = parts[..] else {
                    bail!("linux.cgroupsPath {p:?}: --systemd-cgroup needs the form \"slice:prefix:name\" (e.g. \"system.slice:docker:<id>\")");
                };
                if name.is_empty() {
                    bail!("linux.cgroupsPath {p:?}: the name (after the second ':') is empty");
                }
                let slice = if slice.is_empty() {
                    default_slice
                } else {
                    slice
                };
                (slice, prefix, name)
            }
        };
        expand_slice(slice)?;
        let name = if name.ends_with(".slice") {
            // runc: a name that is a slice puts the container in that slice itself.
            expand_slice(name)?;
            name.to_owned()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        check_unit_name(&name)?;
        Ok(Unit {
            name,
            slice: slice.to_owned(),
            user: uid,
        })
    }

    /// The unit's cgroup below the cgroup2 mount. For the user's manager this is the
    /// usual place; the real one is read back from the container's init once systemd
    /// has put it there.
    pub fn cgroup_dir(&self, mount: &std::path::Path) -> PathBuf {
        let mut dir = mount.to_path_buf();
        if let Some(uid) = self.user {
            dir.push(format!("user.slice/user-{uid}.slice/user@{uid}.service"));
        }
        let slice = expand_slice(&self.slice).expect("checked at parse");
        dir.push(slice.trim_start_matches('/'));
        if self.name.ends_with(".slice") {
            let own = expand_slice(&self.name).expect("checked at parse");
            // A nested slice is a child of its parent slice already (a-b.slice is in
            // a.slice), whatever `slice` says; runc places it the same way.
            return mount.join(own.trim_start_matches('/'));
        }
        dir.push(&self.name);
        dir
    }
}

/// systemd's slice nesting: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`, and
/// `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = |why: &str| -> Result<String> {
        bail!("linux.cgroupsPath: slice {slice:?} {why}");
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad("does not end in \".slice\"");
    };
    if slice.contains('/') {
        return bad("contains '/'");
    }
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return bad("is not a valid slice name (empty part between '-')");
    }
    check_unit_name(slice)?;
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// systemd's unit name alphabet (unit_name_is_valid): ASCII letters, digits and
/// `:-_.\@`, at most 255 bytes.
fn check_unit_name(name: &str) -> Result<()> {
    if name.len() > 255 {
        bail!("linux.cgroupsPath: unit name {name:?} is longer than systemd's 255 bytes");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        bail!("linux.cgroupsPath: unit name {name:?}: systemd does not allow {c:?} in it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn unit(p: &str) -> Unit {
        Unit::from_cgroups_path(Some(p), "id1", None).unwrap()
    }

    #[test]
    fn runc_names() {
        let u = unit("system.slice:docker:abc");
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("docker-abc.scope", "system.slice")
        );
        assert_eq!(
            u.cgroup_dir(Path::new("/sys/fs/cgroup")),
            Path::new("/sys/fs/cgroup/system.slice/docker-abc.scope")
        );
        assert_eq!(unit(":libpod:x").slice, "system.slice");
        assert_eq!(unit("machine.slice::x").name, "x.scope");
        let d = Unit::from_cgroups_path(None, "c9", None).unwrap();
        assert_eq!(d.name, "patina-c9.scope");
        let kube = unit("kubepods-besteffort-pod12.slice:cri-containerd:ff");
        assert_eq!(
            kube.cgroup_dir(Path::new("/sys/fs/cgroup")),
            Path::new("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-ff.scope")
        );
        let own_slice = unit("system.slice:x:a-b.slice");
        assert_eq!(own_slice.name, "a-b.slice");
        assert_eq!(
            own_slice.cgroup_dir(Path::new("/c")),
            Path::new("/c/a.slice/a-b.slice")
        );
    }

    #[test]
    fn rootless_goes_under_the_users_manager() {
        let u = Unit::from_cgroups_path(Some("user.slice:libpod:x"), "x", Some(1000)).unwrap();
        assert_eq!(
            u.cgroup_dir(Path::new("/sys/fs/cgroup")),
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-x.scope")
        );
        let d = Unit::from_cgroups_path(Some(":p:x"), "x", Some(1000)).unwrap();
        assert_eq!(d.slice, "user.slice");
    }

    #[test]
    fn slices_expand_as_systemd_does() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        for bad in [
            "a",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            ".slice",
            "a/b.slice",
            "a b.slice",
        ] {
            let err = expand_slice(bad).unwrap_err().to_string();
            assert!(
                err.contains("linux.cgroupsPath") && err.contains(bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn bad_paths_are_named() {
        for (p, what) in [
            ("/sys/fs/cgroup/x", "slice:prefix:name"),
            ("a:b", "slice:prefix:name"),
            ("a:b:c:d", "slice:prefix:name"),
            ("system.slice:docker:", "name"),
            ("system:docker:x", "\".slice\""),
            ("system.slice:do/cker:x", "'/'"),
            ("bad--x.slice:d:x", "valid slice"),
        ] {
            let err = Unit::from_cgroups_path(Some(p), "i", None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("linux.cgroupsPath") && err.contains(what),
                "{p}: {err}"
            );
        }
    }
}
