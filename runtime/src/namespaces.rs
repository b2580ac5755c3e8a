//! linux.namespaces of config-linux.md: which namespaces init is cloned into, which it
//! joins by path, and the id maps of a new user namespace.
//!
//! pid and time namespaces only apply to children of the caller, so the runtime itself
//! enters those (for its children) before cloning init; every other `path` is joined by
//! init. New namespaces are created by the clone itself, in one syscall; the cgroup
//! namespace is unshared later by init, once it is in its cgroup, so that cgroup becomes
//! its root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::error::{Context, Error, Result};

pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened early so a bad path fails before anything is created.
#[derive(Debug)]
pub struct JoinNs {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace plan of one container.
#[derive(Debug)]
pub struct Plan {
    /// Created by the clone of init.
    pub clone_flags: CloneFlags,
    /// Created by init after the runtime has placed it (cgroup).
    pub unshare_later: CloneFlags,
    /// Entered by the runtime for its children before the clone (pid, time).
    pub join_before_clone: Vec<JoinNs>,
    /// Entered by init, user namespace first.
    pub join_in_init: Vec<JoinNs>,
    /// A new time namespace, whose offsets the runtime writes before the clone.
    pub new_time: bool,
    pub new_user: bool,
}

impl Plan {
    pub fn from_spec(linux: Option<&Linux>) -> Result<Plan> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            unshare_later: CloneFlags::empty(),
            join_before_clone: Vec::new(),
            join_in_init: Vec::new(),
            new_time: false,
            new_user: false,
        };
        let namespaces = linux
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default();
        for (i, ns) in namespaces.iter().enumerate() {
            let typ = ns.typ();
            match ns.path() {
                Some(path) => {
                    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                        .with_context(|| {
                            format!(
                                "linux.namespaces[{i}] ({typ}): open path {:?}",
                                path.display()
                            )
                        })?;
                    let join = JoinNs {
                        typ,
                        path: path.clone(),
                        fd,
                    };
                    if matches!(typ, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                        plan.join_before_clone.push(join);
                    } else {
                        plan.join_in_init.push(join);
                    }
                }
                None => match typ {
                    LinuxNamespaceType::Cgroup => plan.unshare_later |= clone_flag(typ),
                    LinuxNamespaceType::Time => plan.new_time = true,
                    _ => plan.clone_flags |= clone_flag(typ),
                },
            }
        }
        plan.new_user = plan.clone_flags.contains(CloneFlags::CLONE_NEWUSER);
        // setns into a user namespace must come first: it decides what the others may do.
        plan.join_in_init
            .sort_by_key(|j| j.typ != LinuxNamespaceType::User);
        Ok(plan)
    }

    pub fn has_own(&self, typ: LinuxNamespaceType) -> bool {
        let flag = clone_flag(typ);
        self.clone_flags.contains(flag)
            || self.unshare_later.contains(flag)
            || (typ == LinuxNamespaceType::Time && self.new_time)
            || self
                .join_before_clone
                .iter()
                .chain(&self.join_in_init)
                .any(|j| j.typ == typ)
    }

    /// The handle of a namespace of type `typ` given by `path`, if any.
    pub fn joined(&self, typ: LinuxNamespaceType) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.join_before_clone
            .iter()
            .chain(&self.join_in_init)
            .find(|j| j.typ == typ)
            .map(|j| j.fd.as_fd())
    }

    pub fn mount_ns(&self) -> bool {
        self.has_own(LinuxNamespaceType::Mount)
    }
}

/// Enter a namespace given by an open handle.
pub fn join(ns: &JoinNs) -> Result<()> {
    setns(ns.fd.as_fd(), clone_flag(ns.typ))
        .with_context(|| format!("join {} namespace {:?}", ns.typ, ns.path.display()))
}

/// A new time namespace for the runtime's future children, with the configured offsets
/// (they can only be written before any process lives in it).
pub fn unshare_time(linux: Option<&Linux>) -> Result<()> {
    unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)).context("unshare time namespace")?;
    let Some(offsets) = linux.and_then(|l| l.time_offsets().as_ref()) else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, offset) in offsets {
        let clock = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => {
                return Err(Error::new(
                    crate::Kind::InvalidConfig,
                    format!("linux.timeOffsets: unknown clock {other:?}"),
                ))
            }
        };
        text.push_str(&format!(
            "{clock} {} {}\n",
            offset.secs().unwrap_or(0),
            offset.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).context("write /proc/self/timens_offsets")
}

/// A new network namespace starts with `lo` down; runc brings it up, and programs
/// expect 127.0.0.1 to work.
pub fn bring_up_loopback() -> Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket to configure lo")?;
    // SAFETY: ifreq is plain old data; an all-zero value is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        nix::errno::Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))
            .context("get lo flags")?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        nix::errno::Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))
            .context("bring lo up")?;
    }
    Ok(())
}

/// "CONTAINER HOST SIZE" lines of /proc/PID/uid_map.
pub fn format_id_map(mappings: &[LinuxIdMapping]) -> String {
    mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn new_namespaces_go_to_clone_and_cgroup_waits() {
        let l = linux(
            r#"{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"cgroup"},{"type":"user"}]}"#,
        );
        let plan = Plan::from_spec(Some(&l)).unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER
        );
        assert_eq!(plan.unshare_later, CloneFlags::CLONE_NEWCGROUP);
        assert!(plan.new_user && plan.mount_ns());
    }

    #[test]
    fn missing_namespace_path_is_named() {
        let l = linux(r#"{"namespaces":[{"type":"network","path":"/nonexistent/netns"}]}"#);
        let err = Plan::from_spec(Some(&l)).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/netns") && err.contains("ENOENT"),
            "{err}"
        );
    }

    #[test]
    fn joined_user_namespace_comes_first() {
        let l = linux(
            r#"{"namespaces":[{"type":"uts","path":"/proc/self/ns/uts"},{"type":"user","path":"/proc/self/ns/user"}]}"#,
        );
        let plan = Plan::from_spec(Some(&l)).unwrap();
        assert_eq!(plan.join_in_init[0].typ, LinuxNamespaceType::User);
    }

    #[test]
    fn id_maps_are_container_host_size() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(format_id_map(&m), "0 100000 65536\n");
    }
}
