//! `mounts[].options` (config.md "Mounts"): each string to a mount(2) flag, a propagation
//! change, a recursive attribute (mount_setattr(2), `rro` and the other `r*` forms), a
//! bind, an idmap, or filesystem data. Checked before the container is made: on a bind
//! mount, which takes no filesystem data, an option patina does not know is refused by
//! name instead of being dropped; on other mounts it goes to the filesystem as data
//! (tmpfs `mode=1777,size=65536k`, overlay `lowerdir=`), which refuses what it does not
//! know itself.

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::bail;
use crate::error::{Error, Result};
use crate::mount_api::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
};

/// The option names patina gives a meaning to (others go to the filesystem as data);
/// `features` reports them.
pub const KNOWN_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// Attributes for mount_setattr(2) on a mount and every mount below it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecursiveAttr {
    pub set: u64,
    pub clear: u64,
}

/// The access-time mode of mount_setattr(2): an enum in three bits, not flags.
const ATIME_MASK: u64 = 0x70;
const ATIME_RELATIME: u64 = 0x00;
const ATIME_NOATIME: u64 = 0x10;
const ATIME_STRICTATIME: u64 = 0x20;

impl RecursiveAttr {
    fn set(attr: u64) -> RecursiveAttr {
        RecursiveAttr {
            set: attr,
            clear: 0,
        }
    }
    fn clear(attr: u64) -> RecursiveAttr {
        RecursiveAttr {
            set: 0,
            clear: attr,
        }
    }
    /// A new access-time mode replaces the old one (the kernel wants the whole mask cleared).
    fn atime(mode: u64) -> RecursiveAttr {
        RecursiveAttr {
            set: mode,
            clear: ATIME_MASK,
        }
    }
    pub fn is_empty(&self) -> bool {
        *self == RecursiveAttr::default()
    }
    /// `later` applied after `self`: what it sets or clears wins.
    fn then(self, later: RecursiveAttr) -> RecursiveAttr {
        let replaced = later.set | later.clear;
        RecursiveAttr {
            set: (self.set & !replaced) | later.set,
            clear: (self.clear & !replaced) | later.clear,
        }
    }
}

/// One entry of `mounts[].options`, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOption {
    /// Sets (true) or clears (false) a mount flag.
    Flag(bool, MsFlags),
    /// A propagation change, applied with its own mount(2) call after the mount.
    Propagation(MsFlags),
    /// `bind` or `rbind`.
    Bind { recursive: bool },
    /// `idmap` or `ridmap` (every mount of an `rbind`): idmapped, with the entry's
    /// mappings or else the container's (idmap.rs).
    Idmap { recursive: bool },
    /// `rro`, `rnosuid`, ...: an attribute for every mount of the tree, after the mount.
    Recursive(RecursiveAttr),
    /// Anything else goes to the filesystem as data (`size=64k`, `mode=755`, `newinstance`).
    Data(String),
}

impl MountOption {
    /// Errors say what is wrong with the option; the caller names the field.
    pub fn parse(option: &str) -> Result<MountOption> {
        if let Some(flag) = flag(option) {
            return Ok(flag);
        }
        if let Some(attr) = recursive_attr(option) {
            return Ok(MountOption::Recursive(attr));
        }
        use MountOption::*;
        Ok(match option {
            "" => bail!(InvalidConfig, "empty option"),
            "bind" => Bind { recursive: false },
            "rbind" => Bind { recursive: true },
            "private" => Propagation(MsFlags::MS_PRIVATE),
            "rprivate" => Propagation(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => Propagation(MsFlags::MS_SHARED),
            "rshared" => Propagation(MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => Propagation(MsFlags::MS_SLAVE),
            "rslave" => Propagation(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => Propagation(MsFlags::MS_UNBINDABLE),
            "runbindable" => Propagation(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            "idmap" => Idmap { recursive: false },
            "ridmap" => Idmap { recursive: true },
            "tmpcopyup" => bail!(Unsupported, "not supported by patina yet"),
            o if o.starts_with("idmap=") || o.starts_with("ridmap=") => bail!(Unsupported,
                "mappings in the option are not supported: give the entry's uidMappings and gidMappings"
            ),
            other => Data(other.to_owned()),
        })
    }
}

/// The options that set or clear a mount(2) flag.
fn flag(option: &str) -> Option<MountOption> {
    let (set, flag) = match option {
        "defaults" => (false, MsFlags::empty()),
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "atime" => (false, MsFlags::MS_NOATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "silent" => (true, MsFlags::MS_SILENT),
        "loud" => (false, MsFlags::MS_SILENT),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "acl" => (true, MsFlags::MS_POSIXACL),
        "noacl" => (false, MsFlags::MS_POSIXACL),
        "iversion" => (true, MsFlags::MS_I_VERSION),
        "noiversion" => (false, MsFlags::MS_I_VERSION),
        "lazytime" => (true, MsFlags::MS_LAZYTIME),
        "nolazytime" => (false, MsFlags::MS_LAZYTIME),
        "nosymfollow" => (true, MS_NOSYMFOLLOW),
        "symfollow" => (false, MS_NOSYMFOLLOW),
        _ => return None,
    };
    Some(MountOption::Flag(set, flag))
}

/// The recursive forms (`rro`, `rnosuid`, ...) as mount_setattr(2) attributes.
fn recursive_attr(option: &str) -> Option<RecursiveAttr> {
    let set = RecursiveAttr::set;
    let clear = RecursiveAttr::clear;
    Some(match option {
        "rro" => set(MOUNT_ATTR_RDONLY),
        "rrw" => clear(MOUNT_ATTR_RDONLY),
        "rnosuid" => set(MOUNT_ATTR_NOSUID),
        "rsuid" => clear(MOUNT_ATTR_NOSUID),
        "rnodev" => set(MOUNT_ATTR_NODEV),
        "rdev" => clear(MOUNT_ATTR_NODEV),
        "rnoexec" => set(MOUNT_ATTR_NOEXEC),
        "rexec" => clear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => set(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => clear(MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => set(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => clear(MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => RecursiveAttr::atime(ATIME_NOATIME),
        "rstrictatime" => RecursiveAttr::atime(ATIME_STRICTATIME),
        // Not noatime / not strictatime / not relatime all mean the kernel's default,
        // which is relatime (mount(8)).
        "rrelatime" | "ratime" | "rnostrictatime" | "rnorelatime" => {
            RecursiveAttr::atime(ATIME_RELATIME)
        }
        _ => return None,
    })
}

/// Everything mount(2) needs for one config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: String,
    pub bind: Option<bool>,
    pub recursive: RecursiveAttr,
}

impl MountPlan {
    /// The plan for `options`, whatever the mount; an error names the option.
    pub fn from_options(options: &[String]) -> Result<MountPlan> {
        MountPlan::parse(options, "")
    }

    /// `options`, errors starting with `prefix` and the option.
    fn parse(options: &[String], prefix: &str) -> Result<MountPlan> {
        let mut plan = MountPlan {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: None,
            recursive: RecursiveAttr::default(),
        };
        for option in options {
            let parsed = MountOption::parse(option)
                .map_err(|e| Error::msg(format!("{prefix}{option:?}: {e}")))?;
            plan.add(parsed);
        }
        Ok(plan)
    }

    /// The plan for `mounts[index]`, checked: errors name `mounts[N].options` and the
    /// option. A bind mount takes no filesystem data: there a word that is not a mount
    /// option (a typo, `Z`) is refused, since it would be dropped without a word; a
    /// `key=value` (`mode=755`, which configs written for runc put on binds and runc hands
    /// to a kernel that ignores it) is dropped with a warning.
    pub fn for_entry(index: usize, m: &Mount) -> Result<MountPlan> {
        let options = m.options().as_deref().unwrap_or_default();
        let field = format!("mounts[{index}].options");
        let mut plan = MountPlan::parse(options, &format!("{field} "))?;
        if plan.is_bind(m) {
            let data: Vec<&str> = plan.data.split(',').filter(|d| !d.is_empty()).collect();
            if let Some(unknown) = data.iter().find(|d| !d.contains('=')) {
                bail!(InvalidConfig, "{field} {unknown:?}: not a mount option patina knows (a bind mount takes no filesystem data)");
            }
            if !data.is_empty() {
                crate::logging::warn(&format!(
                    "{field} {:?}: filesystem data on a bind mount, which the kernel ignores",
                    data.join(",")
                ));
            }
            plan.data.clear();
        }
        Ok(plan)
    }

    fn add(&mut self, option: MountOption) {
        match option {
            MountOption::Flag(true, f) => self.flags |= f,
            MountOption::Flag(false, f) => self.flags &= !f,
            MountOption::Propagation(p) => self.propagation.push(p),
            MountOption::Bind { recursive } => {
                self.bind = Some(recursive || self.bind == Some(true))
            }
            // Made by the runtime before the clone (idmap.rs), not by mount(2).
            MountOption::Idmap { .. } => {}
            MountOption::Recursive(attr) => self.recursive = self.recursive.then(attr),
            MountOption::Data(d) => {
                if !self.data.is_empty() {
                    self.data.push(',');
                }
                self.data.push_str(&d);
            }
        }
    }

    /// A `bind`/`rbind` option, or type `bind`.
    pub fn is_bind(&self, m: &Mount) -> bool {
        self.bind.is_some() || m.typ().as_deref() == Some("bind")
    }

    /// MS_BIND, and MS_REC for `rbind`.
    pub fn bind_flags(&self) -> MsFlags {
        match self.bind {
            Some(true) => MsFlags::MS_BIND | MsFlags::MS_REC,
            _ => MsFlags::MS_BIND,
        }
    }

    /// Flags a bind mount can only take in a second, remounting call (the per-mount
    /// ones: a bind shares its source's superblock, whose options it cannot change).
    pub fn bind_remount_flags(&self) -> MsFlags {
        self.flags
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME
                | MS_NOSYMFOLLOW)
    }
}

/// The flags to make a mount point's propagation as `rootfsPropagation` says.
pub fn root_propagation(value: Option<&str>) -> Result<MsFlags> {
    Ok(match value {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => match MountOption::parse(p) {
            Ok(MountOption::Propagation(flags)) => flags | MsFlags::MS_REC,
            _ => bail!(
                InvalidConfig,
                "linux.rootfsPropagation {p:?}: not a propagation mode"
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(options: &[&str]) -> MountPlan {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        MountPlan::from_options(&options).unwrap()
    }

    fn entry(value: serde_json::Value) -> Mount {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let p = plan(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(p.bind, None);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let p = plan(&["ro", "rw", "noexec"]);
        assert_eq!(p.flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn rbind_is_recursive_bind() {
        assert_eq!(plan(&["rbind", "ro"]).bind, Some(true));
        assert_eq!(plan(&["bind"]).bind, Some(false));
        assert_eq!(
            plan(&["bind", "ro", "nodev", "nosymfollow"]).bind_remount_flags(),
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MS_NOSYMFOLLOW
        );
    }

    #[test]
    fn devpts_options_reach_the_filesystem() {
        let p = plan(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(p.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn every_known_option_has_a_meaning() {
        for option in KNOWN_OPTIONS {
            let parsed = MountOption::parse(option).unwrap();
            assert!(
                !matches!(parsed, MountOption::Data(_)),
                "{option} falls through to data"
            );
        }
    }

    #[test]
    fn recursive_attributes_combine_as_given() {
        let p = plan(&["rbind", "rro", "rnosuid", "rnoatime", "rsuid"]);
        assert_eq!(
            p.recursive,
            RecursiveAttr {
                set: MOUNT_ATTR_RDONLY | ATIME_NOATIME,
                clear: ATIME_MASK | MOUNT_ATTR_NOSUID,
            }
        );
        assert!(p.data.is_empty() && p.flags.is_empty());
        let p = plan(&["rro", "rrw", "rstrictatime", "ratime"]);
        assert_eq!(
            p.recursive,
            RecursiveAttr {
                set: ATIME_RELATIME,
                clear: MOUNT_ATTR_RDONLY | ATIME_MASK,
            }
        );
    }

    #[test]
    fn what_engines_send_is_accepted() {
        // docker, podman, containerd's CRI and the kubelet (through CRI).
        let binds = [
            json!(["rbind", "rprivate"]),
            json!(["rbind", "rshared", "ro"]),
            json!(["rbind", "rslave", "nosuid", "noexec", "nodev"]),
            json!(["bind", "private", "rw", "relatime"]),
            json!(["bind", "slave", "strictatime", "noatime", "nodiratime"]),
            json!(["bind", "shared", "unbindable"]),
            json!([
                "rbind",
                "rro",
                "rnosuid",
                "rnodev",
                "rnoexec",
                "runbindable"
            ]),
            json!(["rbind", "idmap"]),
            json!(["rbind", "ridmap", "ro"]),
        ];
        for options in binds {
            let m = entry(json!({"destination": "/v", "source": "/s", "options": options}));
            let p = MountPlan::for_entry(0, &m).unwrap_or_else(|e| panic!("{options}: {e}"));
            assert!(p.data.is_empty(), "{options}");
        }
        let tmpfs = entry(
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=65536k", "uid=1000", "gid=1000"]}),
        );
        let p = MountPlan::for_entry(0, &tmpfs).unwrap();
        assert_eq!(p.data, "mode=1777,size=65536k,uid=1000,gid=1000");
        let overlay = entry(
            json!({"destination": "/o", "type": "overlay", "source": "overlay",
            "options": ["lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w", "index=off"]}),
        );
        let p = MountPlan::for_entry(0, &overlay).unwrap();
        assert_eq!(p.data, "lowerdir=/l1:/l2,upperdir=/u,workdir=/w,index=off");
    }

    #[test]
    fn an_unknown_option_on_a_bind_is_refused_by_name() {
        // Data (key=value) on a bind is dropped (with a warning), as the kernel drops it.
        let m = json!({"destination": "/v", "source": "/s", "options": ["bind", "ro", "mode=755"]});
        assert_eq!(MountPlan::for_entry(3, &entry(m)).unwrap().data, "");
        for (typ, options) in [
            (Some("bind"), json!(["rbind", "bogus"])),
            (None, json!(["bind", "ro", "nosuid", "exec2"])),
            (Some("none"), json!(["rbind", "Z"])),
        ] {
            let mut m = json!({"destination": "/v", "source": "/s", "options": options});
            if let Some(t) = typ {
                m["type"] = json!(t);
            }
            let err = MountPlan::for_entry(3, &entry(m)).unwrap_err().to_string();
            let unknown = options
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap();
            assert_eq!(
                err,
                format!("mounts[3].options {unknown:?}: not a mount option patina knows (a bind mount takes no filesystem data)")
            );
        }
    }

    #[test]
    fn refused_options_name_the_field() {
        for (option, why) in [
            ("", "empty option"),
            ("tmpcopyup", "not supported by patina yet"),
            (
                "idmap=uids=0-1-10;gids=0-1-10",
                "give the entry's uidMappings",
            ),
        ] {
            let m = entry(json!({"destination": "/t", "type": "tmpfs", "options": [option]}));
            let err = MountPlan::for_entry(1, &m).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("mounts[1].options {option:?}: ")) && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn root_propagation_defaults_to_rslave() {
        assert_eq!(
            root_propagation(None).unwrap(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        );
        assert_eq!(
            root_propagation(Some("shared")).unwrap(),
            MsFlags::MS_SHARED | MsFlags::MS_REC
        );
        assert!(root_propagation(Some("ro")).is_err());
    }
}
