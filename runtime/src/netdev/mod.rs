//! `linux.netDevices` (config-linux.md "Network Devices"): existing interfaces of the
//! runtime's network namespace moved into the container's, optionally renamed, with
//! their permanent global addresses, and up.
//!
//! What the spec asks and this follows: the move and the rename are one RTM_NEWLINK
//! (IFLA_NET_NS_FD + IFLA_IFNAME); a name already taken in the container's namespace is
//! an error unless it is a `%d` template (checked before the move: the kernel moves a
//! device under its old name when that is free there and renames it afterwards, so a
//! clash would only show once it moved); addresses flagged IFA_F_PERMANENT with global
//! scope are re-added (the kernel drops every address on a move); the device is set up.
//! At delete the runtime does nothing: the interface lives and dies with the network
//! namespace (a virtual one is destroyed with it, a physical one goes back to the
//! initial namespace), as the spec's "Namespace Lifecycle" says and runc 1.3 does.
//! A create that fails after a move puts the interfaces back where and as they were
//! (beyond runc, which leaves that to the namespace's end): nothing is left behind.
//! Only a device that still looks as it did right after the move goes back: in a
//! namespace joined by `path` another process may have put one of its own there.

mod rtnl;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, LinuxNetDevice};

use crate::bail;
use crate::error::{Context, Error, Result};
use rtnl::{Link, Rtnl};

/// IFNAMSIZ less the terminating NUL: the kernel's longest interface name.
const NAME_MAX: usize = 15;

/// Static checks of `linux.netDevices` (spec.rs): the container needs a network
/// namespace of its own (new, or one given by `path`); every host name and new name is
/// one the kernel accepts; no two devices end up with the same name.
pub fn validate(linux: &Linux, own_net_ns: bool) -> Result<()> {
    let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    if !own_net_ns {
        bail!(
            InvalidConfig,
            "linux.netDevices: needs a network namespace of the container's own (linux.namespaces has no \"network\"); moving devices into the runtime's namespace would be a no-op"
        );
    }
    let mut targets = HashSet::new();
    for (host, device) in sorted(devices) {
        check_name(host, false).map_err(|why| {
            Error::new(
                crate::Kind::InvalidConfig,
                format!("linux.netDevices[{host:?}]: invalid interface name: {why}"),
            )
        })?;
        let target = target_name(host, device);
        check_name(target, true).map_err(|why| {
            Error::new(
                crate::Kind::InvalidConfig,
                format!("linux.netDevices[{host}].name {target:?}: invalid interface name: {why}"),
            )
        })?;
        // A `%d` template is made unique by the kernel.
        if !target.contains('%') && !targets.insert(target) {
            bail!(
                InvalidConfig,
                "linux.netDevices[{host}]: name {target:?} is given to another device too"
            );
        }
    }
    Ok(())
}

/// dev_valid_name() of the kernel, and its template rule (one `%d`) for new names.
fn check_name(name: &str, template_ok: bool) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > NAME_MAX {
        return Err("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("\".\" and \"..\" are not interface names");
    }
    if name.contains(['/', ':']) || name.chars().any(|c| c.is_ascii_whitespace()) {
        return Err("contains '/', ':' or white space");
    }
    if let Some(at) = name.find('%') {
        if !template_ok {
            return Err("contains '%'");
        }
        if !name[at..].starts_with("%d") || name[at + 2..].contains('%') {
            return Err("'%' is only allowed as one \"%d\" template");
        }
    }
    Ok(())
}

fn target_name<'a>(host: &'a str, device: &'a LinuxNetDevice) -> &'a str {
    device
        .name()
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(host)
}

/// Devices in name order, so errors and moves do not depend on hash order.
fn sorted(devices: &HashMap<String, LinuxNetDevice>) -> BTreeMap<&str, &LinuxNetDevice> {
    devices.iter().map(|(k, v)| (k.as_str(), v)).collect()
}

/// What `create` checked before making anything, and moves once init exists.
pub struct Plan {
    devices: Vec<(String, String)>,
    /// The runtime's own network namespace: where devices come from, and go back to.
    home: OwnedFd,
}

impl Plan {
    /// Up-front checks against the host, before the state dir exists: a rootless
    /// runtime may not move devices (as runc); a namespace given by `path` is not the
    /// runtime's own; each device exists here. None without devices.
    pub fn new(
        linux: Option<&Linux>,
        net_path: Option<BorrowedFd<'_>>,
        rootless: bool,
    ) -> Result<Option<Plan>> {
        let Some(devices) = linux
            .and_then(|l| l.net_devices().as_ref())
            .filter(|d| !d.is_empty())
        else {
            return Ok(None);
        };
        if rootless {
            bail!(
                Unsupported,
                "linux.netDevices: not supported for rootless containers (moving an interface takes CAP_NET_ADMIN over the host's network)"
            );
        }
        let home = open_home()?;
        if let Some(ns) = net_path {
            if same_namespace(ns, home.as_fd())? {
                bail!(
                    InvalidConfig,
                    "linux.netDevices: the network namespace given by path is the runtime's own; the devices would not move"
                );
            }
        }
        let mut rtnl =
            Rtnl::new().map_err(|e| Error::os(e, "linux.netDevices: open a netlink socket"))?;
        let mut planned = Vec::new();
        for (host, device) in sorted(devices) {
            rtnl.link_by_name(host).map_err(|e| {
                Error::os(e, format!("linux.netDevices[{host}]: find the interface in the runtime's network namespace"))
            })?;
            planned.push((host.to_owned(), target_name(host, device).to_owned()));
        }
        Ok(Some(Plan {
            devices: planned,
            home,
        }))
    }

    /// Move every device into the network namespace `target` (init's): all of them, or
    /// none (those moved already are put back before the error returns).
    pub fn move_into(&self, target: BorrowedFd<'_>) -> Result<Moved> {
        let mut moved = Moved {
            devices: Vec::new(),
            home: self
                .home
                .try_clone()
                .context("linux.netDevices: dup namespace handle")?,
            target: target
                .try_clone_to_owned()
                .context("linux.netDevices: dup namespace handle")?,
        };
        let result = (|| {
            let mut here =
                Rtnl::new().map_err(|e| Error::os(e, "linux.netDevices: open a netlink socket"))?;
            let mut there = Rtnl::in_namespace(target, self.home.as_fd()).map_err(|e| {
                Error::os(
                    e,
                    "linux.netDevices: open a netlink socket in the container's network namespace",
                )
            })?;
            for (host, name) in &self.devices {
                move_one(
                    &mut here,
                    &mut there,
                    target,
                    (host, name),
                    &mut moved.devices,
                )?;
                let device = moved.devices.last().expect("moved");
                configure(&mut there, device, &format!("linux.netDevices[{host}]"))?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(moved),
            Err(e) => {
                moved.undo();
                Err(e)
            }
        }
    }
}

/// The runtime's network namespace, held open so a device can be sent back to it.
fn open_home() -> Result<OwnedFd> {
    open(
        "/proc/thread-self/ns/net",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("linux.netDevices: open the runtime's network namespace")
}

fn same_namespace(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<bool> {
    let (a, b) = (
        fstat(a).context("linux.netDevices: stat namespace")?,
        fstat(b).context("linux.netDevices: stat namespace")?,
    );
    Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

/// The network namespace init's clone made (CLONE_NEWNET: it exists from the clone on).
pub fn init_namespace(pid: Pid) -> Result<OwnedFd> {
    open(
        format!("/proc/{pid}/ns/net").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("linux.netDevices: open the container's network namespace")
}

/// One device moved: enough to put it back as it was.
struct MovedDevice {
    host_name: String,
    index_there: u32,
    /// What it looked like in the container's namespace just after the move: an undo
    /// moves back only a device that still looks so (rtnl.rs, `identity_of`).
    identity_there: Vec<netlink_packet_route::link::LinkAttribute>,
    was_up: bool,
    /// Its permanent addresses of every scope (those of global scope follow it in).
    addresses: Vec<AddressMessage>,
}

/// The devices a create moved, until it commits; `undo` puts them back.
pub struct Moved {
    devices: Vec<MovedDevice>,
    home: OwnedFd,
    target: OwnedFd,
}

/// Move one device in and record it in `moved` as soon as it is there, so that a later
/// failure (of this device too) moves it back.
fn move_one(
    here: &mut Rtnl,
    there: &mut Rtnl,
    target: BorrowedFd<'_>,
    (host, name): (&str, &str),
    moved: &mut Vec<MovedDevice>,
) -> Result<()> {
    let field = format!("linux.netDevices[{host}]");
    let link = here.link_by_name(host).map_err(|e| {
        Error::os(
            e,
            format!("{field}: find the interface in the runtime's network namespace"),
        )
    })?;
    let addresses = here
        .addresses(link.index)
        .map_err(|e| Error::os(e, format!("{field}: list its addresses")))?;
    // The kernel moves the device under its own name when that is free in the target
    // and renames it there afterwards: a taken new name would fail only once the device
    // has moved. Checked first; a template's result is found as the one new link.
    let before = if name.contains('%') {
        there
            .links()
            .map_err(|e| Error::os(e, format!("{field}: list the container's interfaces")))?
    } else {
        if there.link_by_name(name).is_ok() {
            return Err(Error::os(
                Errno::EEXIST,
                format!("{field}: name {name:?} is taken in the container's network namespace"),
            ));
        }
        Vec::new()
    };
    let mut device = MovedDevice {
        host_name: host.to_owned(),
        index_there: 0,
        identity_there: Vec::new(),
        was_up: link.up,
        addresses: addresses.into_iter().filter(permanent).collect(),
    };
    if let Err(e) = here.move_to(link.index, target, name) {
        // Moved but not renamed (a name taken since): it is there under its own name.
        if let Ok(l) = there.link_by_name(host) {
            device.index_there = l.index;
            device.identity_there = l.identity;
            moved.push(device);
        }
        return Err(Error::os(
            e,
            format!("{field}: move into the container's network namespace as {name:?}"),
        ));
    }
    let found = find_moved(there, name, &before).map_err(|e| {
        Error::os(
            e,
            format!("{field}: find it in the container's network namespace as {name:?}"),
        )
    })?;
    device.index_there = found.index;
    device.identity_there = found.identity;
    moved.push(device);
    Ok(())
}

/// Re-add the kept addresses and bring the device up in the container's namespace.
fn configure(there: &mut Rtnl, device: &MovedDevice, field: &str) -> Result<()> {
    for a in device.addresses.iter().filter(|a| global(a)) {
        there.add_address(device.index_there, a).map_err(|e| {
            Error::os(
                e,
                format!("{field}: add address {} in the container", show(a)),
            )
        })?;
    }
    there
        .set_up(device.index_there, true)
        .map_err(|e| Error::os(e, format!("{field}: set it up in the container")))
}

fn find_moved(there: &mut Rtnl, name: &str, before: &[Link]) -> std::result::Result<Link, Errno> {
    if !name.contains('%') {
        return there.link_by_name(name);
    }
    there
        .links()?
        .into_iter()
        .find(|l| !before.iter().any(|b| b.index == l.index))
        .ok_or(Errno::ENODEV)
}

/// The spec's addresses that follow the device are IFA_F_PERMANENT (configured, not
/// autoconfigured or leased: those depend on the old namespace) of global scope. An
/// undo restores the permanent ones of every scope.
fn permanent(a: &AddressMessage) -> bool {
    a.attributes
        .iter()
        .find_map(|attr| match attr {
            AddressAttribute::Flags(f) => Some(f.contains(AddressFlags::Permanent)),
            _ => None,
        })
        .unwrap_or(a.header.flags.contains(AddressHeaderFlags::Permanent))
}

fn global(a: &AddressMessage) -> bool {
    a.header.scope == AddressScope::Universe
}

fn show(a: &AddressMessage) -> String {
    let ip = a.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(ip.to_string()),
        _ => None,
    });
    format!("{}/{}", ip.unwrap_or_default(), a.header.prefix_len)
}

impl Moved {
    /// Put every device back into the runtime's namespace under its host name, with its
    /// addresses and up/down state: for a create that fails after the move. Best effort:
    /// the create's own error is what the caller reports.
    pub fn undo(mut self) {
        let Ok(mut there) = Rtnl::in_namespace(self.target.as_fd(), self.home.as_fd()) else {
            return;
        };
        let Ok(mut here) = Rtnl::new() else {
            return;
        };
        let home = self.home.as_fd();
        while let Some(device) = self.devices.pop() {
            undo_one(&mut there, &mut here, home, &device);
        }
    }
}

/// Move one device from the container's namespace back to `home` under its host name,
/// then restore its addresses and state there. Only the device that was moved: a
/// namespace joined by `path` may hold other processes, and one of them may have put a
/// device of its own at that index (a veth whose other end it keeps) in the meantime;
/// that one stays where it is, and so does ours, wherever it was taken (as after a
/// create that succeeded).
fn undo_one(there: &mut Rtnl, here: &mut Rtnl, home: BorrowedFd<'_>, device: &MovedDevice) {
    match there.link_by_index(device.index_there) {
        Ok(now) if now.identity == device.identity_there => {}
        _ => {
            crate::logging::warn(&format!(
                "linux.netDevices[{}]: not moved back: the device at its index in the container's network namespace is not the one moved there",
                device.host_name
            ));
            return;
        }
    }
    if there
        .move_to(device.index_there, home, &device.host_name)
        .is_err()
    {
        return;
    }
    let Ok(link) = here.link_by_name(&device.host_name) else {
        return;
    };
    for a in &device.addresses {
        let _ = here.add_address(link.index, a);
    }
    if device.was_up {
        let _ = here.set_up(link.index, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(devices: serde_json::Value) -> Linux {
        serde_json::from_value(serde_json::json!({ "netDevices": devices })).unwrap()
    }

    fn refusal(devices: serde_json::Value) -> String {
        validate(&linux(devices), true).unwrap_err().to_string()
    }

    #[test]
    fn names_follow_the_kernels_rules() {
        for ok in ["eth0", "a", "fifteen-bytes-x", "net%d", "%dnet", "x.y"] {
            check_name(ok, true).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "sixteen-bytes-xx",
            "net%s",
            "n%d%d",
            "n%",
        ] {
            assert!(check_name(bad, true).is_err(), "{bad:?} accepted");
        }
        // A host interface has a real name, never a template.
        assert!(check_name("net%d", false).is_err());
    }

    #[test]
    fn refusals_name_the_entry() {
        let e = refusal(serde_json::json!({ "a/b": {} }));
        assert!(e.starts_with("linux.netDevices[\"a/b\"]: invalid"), "{e}");
        let e = refusal(serde_json::json!({ "eth0": { "name": "x".repeat(16) } }));
        assert!(e.starts_with("linux.netDevices[eth0].name"), "{e}");
        let e = refusal(serde_json::json!({ "a0": { "name": "c0" }, "b0": { "name": "c0" } }));
        assert!(e.starts_with("linux.netDevices[b0]: name \"c0\""), "{e}");
        // A device keeping its name collides with another renamed to it.
        let e = refusal(serde_json::json!({ "a0": {}, "b0": { "name": "a0" } }));
        assert!(e.contains("\"a0\" is given to another device"), "{e}");
    }

    #[test]
    fn templates_may_repeat_and_empty_names_keep_the_host_name() {
        let l = linux(serde_json::json!({
            "a0": { "name": "c%d" }, "b0": { "name": "c%d" }, "d0": { "name": "" }
        }));
        validate(&l, true).unwrap();
        let devices = l.net_devices().as_ref().unwrap();
        assert_eq!(target_name("d0", &devices["d0"]), "d0");
    }

    fn address(flags: AddressFlags, scope: AddressScope) -> AddressMessage {
        let mut a = AddressMessage::default();
        a.header.scope = scope;
        a.attributes.push(AddressAttribute::Flags(flags));
        a
    }

    #[test]
    fn permanent_global_addresses_follow_the_device() {
        let follows = |a: &AddressMessage| permanent(a) && global(a);
        assert!(follows(&address(
            AddressFlags::Permanent,
            AddressScope::Universe
        )));
        assert!(follows(&address(
            AddressFlags::Permanent | AddressFlags::Nodad,
            AddressScope::Universe
        )));
        // Link scope stays behind (restored by an undo); a leased or autoconfigured
        // address (no IFA_F_PERMANENT) neither follows nor comes back.
        let link = address(AddressFlags::Permanent, AddressScope::Link);
        assert!(permanent(&link) && !global(&link));
        assert!(!permanent(&address(
            AddressFlags::empty(),
            AddressScope::Universe
        )));
    }

    #[test]
    fn a_network_namespace_of_its_own_is_required() {
        let e = validate(&linux(serde_json::json!({ "eth0": {} })), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("linux.netDevices: needs a network namespace"),
            "{e}"
        );
        // No devices, nothing to check.
        validate(&linux(serde_json::json!({})), false).unwrap();
    }
}
