//! Generating the bundle's config.json from the image config, following
//! image-spec conversion.md on top of runc-compatible defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::idmap::IdMap;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Annotation listing Config.Volumes. conversion.md leaves volumes to the
/// implementation (mounts); we record them so a runtime or user can act.
pub const VOLUMES_ANNOTATION: &str = "dev.patina.image.volumes";

pub struct BundleOptions {
    pub rootless: bool,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    /// Set when the rootfs is an overlay of cached layers that the runtime mounts.
    pub overlay: Option<OverlayRoot>,
}

pub struct OverlayRoot {
    /// Lower directories, topmost first (overlayfs order).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// The user/group databases of the unpacked image, for resolving names.
#[derive(Default)]
pub struct UserDb {
    pub passwd: String,
    pub group: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

pub fn generate(image: &ImageConfiguration, db: &UserDb, opts: &BundleOptions) -> Result<Value> {
    let base = if opts.rootless {
        Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        Spec::default()
    };
    let mut spec = serde_json::to_value(&base).context("serialising default spec")?;
    spec["hostname"] = json!("patina");
    spec["root"] = json!({"path": "rootfs", "readonly": false});
    // runc's default carries a deny-all device cgroup rule; patina refuses
    // `linux.resources` until its cgroup support lands, and /dev holds only the
    // default devices anyway, so the bundle leaves it out (as `patina spec` does).
    if let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) {
        linux.remove("resources");
    }

    let cfg = image.config().clone().unwrap_or_default();
    let mut args: Vec<String> = cfg.entrypoint().clone().unwrap_or_default();
    args.extend(cfg.cmd().clone().unwrap_or_default());
    let process = &mut spec["process"];
    // An image without Entrypoint and Cmd keeps the default `sh`.
    if !args.is_empty() {
        process["args"] = json!(args);
    }
    process["env"] = json!(environment(cfg.env().as_deref().unwrap_or_default()));
    process["cwd"] = json!(cfg
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into()));
    process["terminal"] = json!(false);
    let user = resolve_user(cfg.user().as_deref().unwrap_or(""), db)?;
    process["user"] = if user.additional_gids.is_empty() {
        json!({"uid": user.uid, "gid": user.gid})
    } else {
        json!({"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids})
    };

    spec["annotations"] = json!(annotations(image));
    apply_id_maps(&mut spec, opts);
    if let Some(ov) = &opts.overlay {
        add_overlay_root(&mut spec, ov)?;
    }
    Ok(spec)
}

/// Image Env plus a default PATH when the image sets none (runc's default).
fn environment(env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = env.to_vec();
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    out
}

/// conversion.md "Annotation Fields": labels first, then the fields that
/// conversion.md names explicitly, which win over a label of the same key.
fn annotations(image: &ImageConfiguration) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let cfg = image.config().clone().unwrap_or_default();
    for (k, v) in cfg.labels().clone().unwrap_or_default() {
        out.insert(k, v);
    }
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.insert(format!("org.opencontainers.image.{k}"), v);
        }
    };
    put("os", Some(image.os().to_string()));
    put("architecture", Some(image.architecture().to_string()));
    put("variant", image.variant().clone());
    put("os.version", image.os_version().clone());
    put(
        "os.features",
        image.os_features().as_ref().map(|f| f.join(",")),
    );
    put("author", image.author().clone());
    put("created", image.created().clone());
    put("stopSignal", cfg.stop_signal().clone());
    put(
        "exposedPorts",
        cfg.exposed_ports().as_ref().map(|p| sorted_join(p)),
    );
    if let Some(vols) = cfg.volumes().as_ref().filter(|v| !v.is_empty()) {
        out.insert(VOLUMES_ANNOTATION.to_string(), sorted_join(vols));
    }
    out
}

fn sorted_join(items: &[String]) -> String {
    let mut v = items.to_vec();
    v.sort();
    v.join(",")
}

fn apply_id_maps(spec: &mut Value, opts: &BundleOptions) {
    let to_json = |maps: &[IdMap]| -> Value {
        maps.iter()
            .map(|m| json!({"containerID": m.container, "hostID": m.host, "size": m.size}))
            .collect()
    };
    if opts.uid_map.is_empty() && opts.gid_map.is_empty() {
        return;
    }
    let linux = &mut spec["linux"];
    if !opts.uid_map.is_empty() {
        linux["uidMappings"] = to_json(&opts.uid_map);
    }
    if !opts.gid_map.is_empty() {
        linux["gidMappings"] = to_json(&opts.gid_map);
    }
    let namespaces = linux["namespaces"].as_array_mut();
    if let Some(ns) = namespaces {
        if !ns.iter().any(|n| n["type"] == "user") {
            ns.push(json!({"type": "user"}));
        }
    }
}

/// The runtime mounts the overlay as the container's root before pivoting.
fn add_overlay_root(spec: &mut Value, ov: &OverlayRoot) -> Result<()> {
    let join = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    for p in ov.lower.iter().chain([&ov.upper, &ov.work]) {
        let s = p.display().to_string();
        if s.contains(',') || s.contains(':') {
            bail!("overlay path {s:?} contains ',' or ':', which mount options cannot express");
        }
    }
    let mount = json!({
        "destination": "/",
        "type": "overlay",
        "source": "overlay",
        "options": [
            format!("lowerdir={}", join(&ov.lower)),
            format!("upperdir={}", ov.upper.display()),
            format!("workdir={}", ov.work.display()),
        ],
    });
    let mounts = spec["mounts"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("default spec has no mounts"))?;
    mounts.insert(0, mount);
    Ok(())
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

/// (name, gid, members) from /etc/group.
fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves Config.User (`user`, `uid`, `user:group`, `uid:gid`, ...) per
/// config.md: without a group, the user's primary group from /etc/passwd
/// and its supplementary groups from /etc/group apply.
pub fn resolve_user(spec: &str, db: &UserDb) -> Result<ResolvedUser> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = if user_part.is_empty() {
        passwd_entries(&db.passwd).find(|e| e.uid == 0)
    } else if let Ok(uid) = user_part.parse::<u32>() {
        passwd_entries(&db.passwd).find(|e| e.uid == uid)
    } else {
        Some(
            passwd_entries(&db.passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| {
                    anyhow!(
                        "config User {spec:?}: no user {user_part:?} in the image's /etc/passwd"
                    )
                })?,
        )
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.as_ref().map_or(0, |e| e.uid),
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        let gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(&db.group)
                .find(|(name, _, _)| *name == g)
                .map(|(_, gid, _)| gid)
                .ok_or_else(|| {
                    anyhow!("config User {spec:?}: no group {g:?} in the image's /etc/group")
                })?,
        };
        return Ok(ResolvedUser {
            uid,
            gid,
            additional_gids: Vec::new(),
        });
    }
    let gid = entry.as_ref().map_or(0, |e| e.gid);
    let mut additional_gids: Vec<u32> = match &entry {
        Some(e) => group_entries(&db.group)
            .filter(|(_, g, members)| *g != gid && members.contains(&e.name))
            .map(|(_, g, _)| g)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> UserDb {
        UserDb {
            passwd: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n".into(),
            group: "root:x:0:\nwheel:x:10:app,other\napp:x:1001:\naudio:x:29:app\n".into(),
        }
    }

    #[test]
    fn resolves_user_forms() {
        let r = |s| resolve_user(s, &db()).unwrap();
        assert_eq!(
            r("app"),
            ResolvedUser {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10, 29]
            }
        );
        assert_eq!(
            r("app:wheel"),
            ResolvedUser {
                uid: 1000,
                gid: 10,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("1000"),
            ResolvedUser {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10, 29]
            }
        );
        assert_eq!(
            r("4242:7"),
            ResolvedUser {
                uid: 4242,
                gid: 7,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("4242"),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r(""),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert!(resolve_user("nobody", &db()).is_err());
        assert!(resolve_user("app:nogroup", &db()).is_err());
    }
}
