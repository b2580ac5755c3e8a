//! Runtime options: containerd's runc `Options` (`containerd.runc.v1.Options`, what CRI
//! sends for runc-type runtimes) and `runtimeoptions.v1.Options` (what `ctr
//! --runtime-config-path` and CRI send for other runtimes: a TOML file or body with the
//! same keys as runc's options, e.g. `BinaryName = "/usr/sbin/runc"`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proto::{Any, Message, RuncOptions, RuntimeOptions};

/// What the shim needs to drive the runtime; saved in the bundle so that `delete` after a
/// lost shim drives the same binary with the same root.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Options {
    /// the runtime binary (runc's CLI); empty: `patina` next to the shim, else on PATH
    pub binary_name: String,
    /// the runtime's --root; empty: `<containerd state>/patina/<namespace>`
    pub root: String,
    pub systemd_cgroup: bool,
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    pub shim_cgroup: String,
    pub io_uid: u32,
    pub io_gid: u32,
}

/// The TOML form: runc's Options field names, as containerd's runc shim reads them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct TomlOptions {
    binary_name: String,
    root: String,
    systemd_cgroup: bool,
    no_pivot_root: bool,
    no_new_keyring: bool,
    shim_cgroup: String,
    io_uid: u32,
    io_gid: u32,
}

/// toml's errors span several lines (the source line and a caret): keep the message, the
/// key of the line it points at, and the line number, on one line.
fn one_line(e: &toml::de::Error, body: &str) -> String {
    let message = e.message().trim();
    let Some(start) = e.span().map(|s| s.start.min(body.len())) else {
        return message.to_owned();
    };
    let line_no = body[..start].matches('\n').count() + 1;
    let line = body.lines().nth(line_no - 1).unwrap_or_default();
    match line.split_once('=').map(|(k, _)| k.trim()) {
        Some(key) if !key.is_empty() && !key.starts_with('[') => {
            format!("{key} (line {line_no}): {message}")
        }
        _ => format!("line {line_no}: {message}"),
    }
}

pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
pub const RUNTIME_OPTIONS: &str = "runtimeoptions.v1.Options";

impl Options {
    /// Decode the options containerd sent (None/empty: defaults).
    pub fn from_any(any: Option<&Any>) -> Result<Options, String> {
        let Some(any) = any.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
            return Ok(Options::default());
        };
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        match name {
            RUNC_OPTIONS => {
                let o =
                    RuncOptions::decode(&any.value).map_err(|e| format!("decode {name}: {e}"))?;
                Ok(Options {
                    binary_name: o.binary_name,
                    root: o.root,
                    systemd_cgroup: o.systemd_cgroup,
                    no_pivot_root: o.no_pivot_root,
                    no_new_keyring: o.no_new_keyring,
                    shim_cgroup: o.shim_cgroup,
                    io_uid: o.io_uid,
                    io_gid: o.io_gid,
                })
            }
            RUNTIME_OPTIONS => {
                let o = RuntimeOptions::decode(&any.value)
                    .map_err(|e| format!("decode {name}: {e}"))?;
                let body = if !o.config_body.is_empty() {
                    String::from_utf8_lossy(&o.config_body).into_owned()
                } else if !o.config_path.is_empty() {
                    std::fs::read_to_string(&o.config_path)
                        .map_err(|e| format!("read runtime config {}: {e}", o.config_path))?
                } else {
                    String::new()
                };
                Options::from_toml(&body)
            }
            other => Err(format!("unsupported runtime options type {other:?}")),
        }
    }

    /// runc's option keys at the top level of a TOML document (what `ctr
    /// --runtime-config-path` and CRI's ConfigPath name); other keys and tables are
    /// ignored, a key of the wrong type is an error naming it (`SystemdCgroup = "true"`).
    pub fn from_toml(body: &str) -> Result<Options, String> {
        let t: TomlOptions =
            toml::from_str(body).map_err(|e| format!("runtime config: {}", one_line(&e, body)))?;
        Ok(Options {
            binary_name: t.binary_name,
            root: t.root,
            systemd_cgroup: t.systemd_cgroup,
            no_pivot_root: t.no_pivot_root,
            no_new_keyring: t.no_new_keyring,
            shim_cgroup: t.shim_cgroup,
            io_uid: t.io_uid,
            io_gid: t.io_gid,
        })
    }

    /// IoUid/IoGid as the owner of the stdio pipes; None for 0:0, the default, which
    /// leaves them as created (the shim runs as root).
    pub fn io_owner(&self) -> Option<(u32, u32)> {
        (self.io_uid != 0 || self.io_gid != 0).then_some((self.io_uid, self.io_gid))
    }

    /// The runtime binary to run.
    pub fn binary(&self) -> PathBuf {
        if !self.binary_name.is_empty() {
            return PathBuf::from(&self.binary_name);
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .as_deref()
            .and_then(Path::parent)
        {
            let next = dir.join("patina");
            if next.exists() {
                return next;
            }
        }
        PathBuf::from("patina")
    }

    /// The runtime's --root: `Root/<ns>` as runc's shim does, else beside containerd's
    /// task state (`<state>/io.containerd.runtime.v2.task/<ns>/<id>` is the bundle).
    pub fn root_dir(&self, bundle: &Path, namespace: &str) -> PathBuf {
        if !self.root.is_empty() {
            return Path::new(&self.root).join(namespace);
        }
        match bundle.ancestors().nth(3) {
            Some(state)
                if bundle
                    .ancestors()
                    .nth(2)
                    .is_some_and(|p| p.ends_with("io.containerd.runtime.v2.task")) =>
            {
                state.join("patina").join(namespace)
            }
            _ => Path::new("/run/containerd/patina").join(namespace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimeoptions_toml() {
        let body = "# c\nBinaryName = \"/usr/sbin/r#nc\" # a comment\nSystemdCgroup = true\nRoot='/r'\n[x]\nRoot='/other'\n";
        let ro = RuntimeOptions {
            config_body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        let any = Any::pack("runtimeoptions.v1.Options", &ro);
        let o = Options::from_any(Some(&any)).unwrap();
        // '#' inside quotes is part of the value; keys of other tables stay there.
        assert_eq!(o.binary_name, "/usr/sbin/r#nc");
        assert!(o.systemd_cgroup);
        assert_eq!(o.root, "/r");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = Options::from_toml("SystemdCgroup = \"true\"").unwrap_err();
        assert!(err.contains("SystemdCgroup (line 1)"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = Options::from_toml("IoUid = \"x\"").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(Options::from_toml("Root = ").is_err());
    }

    #[test]
    fn runc_options() {
        let ro = RuncOptions {
            binary_name: "runc".into(),
            root: "/x".into(),
            ..Default::default()
        };
        let any = Any::pack("containerd.runc.v1.Options", &ro);
        assert_eq!(Options::from_any(Some(&any)).unwrap().binary_name, "runc");
        assert!(Options::from_any(Some(&Any::pack("foo.Bar", &ro))).is_err());
    }

    #[test]
    fn io_owner_only_when_set() {
        let mut o = Options::default();
        assert_eq!(o.io_owner(), None);
        o.io_gid = 1000;
        assert_eq!(o.io_owner(), Some((0, 1000)));
        let o = Options::from_toml("IoUid = 1000\nIoGid = 1001\nShimCgroup = \"/pod\"").unwrap();
        assert_eq!(
            (o.io_owner(), o.shim_cgroup.as_str()),
            (Some((1000, 1001)), "/pod")
        );
    }

    #[test]
    fn root_beside_state() {
        let b = Path::new("/s/io.containerd.runtime.v2.task/default/c1");
        assert_eq!(
            Options::default().root_dir(b, "default"),
            Path::new("/s/patina/default")
        );
    }
}
