//! A blocking rtnetlink client: one NETLINK_ROUTE socket, one request at a time, the
//! messages of netlink-packet-route. Only what `linux.netDevices` needs: look a link up,
//! list its addresses, move/rename it, add an address, bring it up.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};

/// A link as the kernel reports it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub up: bool,
    /// What tells this device from another one given its name and index: see
    /// [`identity_of`].
    pub identity: Vec<LinkAttribute>,
}

/// A route socket bound to the network namespace it was made in (a socket keeps its
/// namespace for life, whatever the thread does later).
pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in the caller's network namespace.
    pub fn new() -> Result<Rtnl, Errno> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(errno_of)?;
        socket.bind_auto().map_err(errno_of)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(errno_of)?;
        Ok(Rtnl { socket, seq: 0 })
    }

    /// A socket in the network namespace `ns`: the thread enters it for the socket(2)
    /// call only and returns to `home` (the runtime is single-threaded during create,
    /// and nothing else runs in between).
    pub fn in_namespace(ns: BorrowedFd<'_>, home: BorrowedFd<'_>) -> Result<Rtnl, Errno> {
        setns(ns, CloneFlags::CLONE_NEWNET)?;
        let made = Rtnl::new();
        // Not being able to come back would leave the runtime in the container's
        // network: fatal for this create, said as such.
        setns(home, CloneFlags::CLONE_NEWNET)?;
        made
    }

    /// The link called `name`.
    pub fn link_by_name(&mut self, name: &str) -> Result<Link, Errno> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.one_link(msg)
    }

    /// The link with index `index`.
    pub fn link_by_index(&mut self, index: u32) -> Result<Link, Errno> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.one_link(msg)
    }

    /// The one link a GetLink request selects (ENODEV: none).
    fn one_link(&mut self, msg: LinkMessage) -> Result<Link, Errno> {
        let replies = self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK)?;
        let link = links_in(&replies).next();
        link.ok_or(Errno::ENODEV)
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, Errno> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(links_in(&replies).collect())
    }

    /// The addresses of link `index`, as dumped (the kernel dumps every link's).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<AddressMessage>, Errno> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
                _ => None,
            })
            .collect())
    }

    /// Move link `index` into the network namespace `ns` under `name`, in one
    /// RTM_NEWLINK: the kernel renames it as it moves it, so the old name never
    /// collides in the target and the new one never exists in the source.
    pub fn move_to(&mut self, index: u32, ns: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
    }

    /// Bring link `index` up (or down).
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<(), Errno> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .map(drop)
    }

    /// Add `address` (as dumped from another link) to link `index`: its family, prefix,
    /// scope, local/peer address, broadcast and the flags a user sets (`nodad`,
    /// `noprefixroute`, ...; the kernel's own state flags are its to set). The label is
    /// left out: it carries the old link name, and the kernel gives the address the new one.
    pub fn add_address(&mut self, index: u32, address: &AddressMessage) -> Result<(), Errno> {
        let settable = AddressFlags::Nodad
            | AddressFlags::Homeaddress
            | AddressFlags::Managetempaddr
            | AddressFlags::Noprefixroute
            | AddressFlags::Mcautojoin;
        let mut msg = AddressMessage::default();
        msg.header.family = address.header.family;
        msg.header.prefix_len = address.header.prefix_len;
        msg.header.scope = address.header.scope;
        msg.header.index = index;
        msg.attributes = address
            .attributes
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    AddressAttribute::Address(_)
                        | AddressAttribute::Local(_)
                        | AddressAttribute::Broadcast(_)
                )
            })
            .cloned()
            .collect();
        let flags = address
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Flags(f) => Some(*f & settable),
                _ => None,
            })
            .unwrap_or(
                AddressFlags::from_bits_retain(u32::from(address.header.flags.bits())) & settable,
            );
        if !flags.is_empty() {
            msg.attributes.push(AddressAttribute::Flags(flags));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Send one request and gather its answers: until the ACK (or error) for a plain
    /// request, until NLMSG_DONE for a dump.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Errno> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(message));
        req.finalize();
        let mut buf = vec![0; req.header.length as usize];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(errno_of)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(errno_of)?;
            let mut offset = 0;
            while offset < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|_| Errno::EBADMSG)?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == self.seq {
                    match msg.payload {
                        NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(replies),
                                Some(code) => Err(Errno::from_raw(-code.get())),
                            }
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

/// The links among a request's replies.
fn links_in(replies: &[RouteNetlinkMessage]) -> impl Iterator<Item = Link> + '_ {
    replies.iter().filter_map(|m| match m {
        RouteNetlinkMessage::NewLink(l) => Some(link_of(l)),
        _ => None,
    })
}

fn link_of(msg: &LinkMessage) -> Link {
    Link {
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        identity: identity_of(msg),
    }
}

/// The attributes a process that can only create devices in a namespace cannot give a
/// device of its own to match another one there, short of owning the other end: the
/// parent device (bus and name: a NIC's PCI slot), the other end of a veth or the
/// lower device of a macvlan/vlan (IFLA_LINK, and the namespace it is in as this one
/// numbers it), the kind, the permanent MAC. Name, index and MAC can be chosen at will
/// (the MAC is left out: a hook may set it legitimately).
fn identity_of(msg: &LinkMessage) -> Vec<LinkAttribute> {
    msg.attributes
        .iter()
        .filter_map(|a| match a {
            LinkAttribute::ParentDevName(_)
            | LinkAttribute::ParentDevBusName(_)
            | LinkAttribute::Link(_)
            | LinkAttribute::LinkNetNsId(_)
            | LinkAttribute::PermAddress(_) => Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                let kind = infos.iter().find(|i| matches!(i, LinkInfo::Kind(_)))?;
                Some(LinkAttribute::LinkInfo(vec![kind.clone()]))
            }
            _ => None,
        })
        .collect()
}

fn errno_of(e: std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}
