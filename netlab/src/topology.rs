//! Topology over rtnetlink: veth pairs, bridges, MACs, addresses, routes,
//! link state. No `ip` commands.
//!
//! A [`Netlink`] talks to the network namespace of the thread that created
//! it: build one on a thread from [`crate::netns::run_in`] (or use
//! [`with_netlink`]). It wraps a single-threaded tokio runtime so callers
//! stay synchronous and never migrate between threads (which would break
//! the namespace binding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressScope,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use serde::Serialize;

use crate::names::format_mac;
use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{context}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no interface {name} in {netns}")]
    NoSuchLink { name: String, netns: String },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

type Result<T> = std::result::Result<T, TopologyError>;

fn nl(context: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> TopologyError {
    let context = context.into();
    move |source| TopologyError::Netlink { context, source }
}

/// The errno of a netlink NACK, if that is what `e` is.
pub fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// A netlink session in the calling thread's network namespace.
pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    /// For messages: which namespace this talks to.
    netns: String,
}

/// Runs `f` with a [`Netlink`] session inside namespace `ns` (None: netlab's
/// own namespace), on a dedicated thread.
pub fn with_netlink<T, F>(ns: Option<&str>, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(&Netlink) -> Result<T> + Send,
{
    netns::run_in(ns, || {
        let nl = Netlink::new(ns.unwrap_or("the root namespace"))?;
        f(&nl)
    })?
}

/// One link as `ip -d addr` would show it (IPv4 addresses, then IPv6).
#[derive(Clone, Debug, Serialize)]
pub struct LinkInfoView {
    pub name: String,
    pub ifindex: u32,
    pub mac: Option<String>,
    pub up: bool,
    pub kind: Option<String>,
    /// Ifindex of the bridge it is enslaved to.
    pub controller: Option<u32>,
    pub addresses: Vec<String>,
}

/// One route of the main table.
#[derive(Clone, Debug, Serialize)]
pub struct RouteView {
    pub destination: String,
    pub gateway: Option<IpAddr>,
    pub device: Option<String>,
}

impl Netlink {
    /// Opens a netlink socket in the calling thread's namespace.
    pub fn new(netns: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| TopologyError::Io {
                context: "cannot start the netlink runtime".into(),
                source,
            })?;
        let handle = rt.block_on(async {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|source| TopologyError::Io {
                    context: format!("cannot open a netlink socket in {netns}"),
                    source,
                })?;
            tokio::spawn(conn);
            Ok::<_, TopologyError>(handle)
        })?;
        Ok(Self {
            rt,
            handle,
            netns: netns.to_string(),
        })
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The ifindex of `name`, None when there is no such link.
    pub fn link_index(&self, name: &str) -> Result<Option<u32>> {
        self.block_on(async {
            let mut links = self
                .handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute();
            match links.try_next().await {
                Ok(Some(link)) => Ok(Some(link.header.index)),
                Ok(None) => Ok(None),
                Err(e) if errno_of(&e) == Some(libc::ENODEV) => Ok(None),
                Err(e) => Err(nl(format!("cannot look up {name} in {}", self.netns))(e)),
            }
        })
    }

    /// Like [`Self::link_index`], but a missing link is an error.
    pub fn require_link(&self, name: &str) -> Result<u32> {
        self.link_index(name)?
            .ok_or_else(|| TopologyError::NoSuchLink {
                name: name.into(),
                netns: self.netns.clone(),
            })
    }

    /// Creates a veth pair: `name` here, `peer` in the namespace `peer_netns`
    /// (None: here too), with the given MACs. Creating the peer directly in
    /// its namespace means its name never exists here, even briefly.
    pub fn create_veth(
        &self,
        name: &str,
        mac: Option<[u8; 6]>,
        peer: &str,
        peer_mac: Option<[u8; 6]>,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new().name(peer.to_string());
        if let Some(mac) = peer_mac {
            peer_msg = peer_msg.address(mac.to_vec());
        }
        if let Some(fd) = peer_netns {
            peer_msg = peer_msg.setns_by_fd(fd.as_raw_fd());
        }
        let mut msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(name.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())));
        if let Some(mac) = mac {
            msg = msg.address(mac.to_vec());
        }
        self.block_on(self.handle.link().add(msg.build()).execute())
            .map_err(nl(format!(
                "cannot create veth pair {name} <-> {peer} in {}",
                self.netns
            )))
    }

    /// Creates a Linux bridge (down; STP off, the kernel default).
    pub fn create_bridge(&self, name: &str, mac: Option<[u8; 6]>) -> Result<()> {
        let mut msg = LinkMessageBuilder::<LinkBridge>::new(name);
        if let Some(mac) = mac {
            msg = msg.address(mac.to_vec());
        }
        self.block_on(self.handle.link().add(msg.build()).execute())
            .map_err(nl(format!("cannot create bridge {name} in {}", self.netns)))
    }

    fn set(&self, what: String, msg: LinkMessage) -> Result<()> {
        self.block_on(self.handle.link().set(msg).execute())
            .map_err(nl(format!("{what} in {}", self.netns)))
    }

    pub fn set_up(&self, name: &str) -> Result<()> {
        let idx = self.require_link(name)?;
        self.set(
            format!("cannot set {name} up"),
            LinkUnspec::new_with_index(idx).up().build(),
        )
    }

    pub fn set_mac(&self, name: &str, mac: [u8; 6]) -> Result<()> {
        let idx = self.require_link(name)?;
        self.set(
            format!("cannot set the MAC of {name}"),
            LinkUnspec::new_with_index(idx)
                .address(mac.to_vec())
                .build(),
        )
    }

    /// Enslaves `port` to the bridge `bridge`.
    pub fn set_controller(&self, port: &str, bridge: &str) -> Result<()> {
        let idx = self.require_link(port)?;
        let br = self.require_link(bridge)?;
        self.set(
            format!("cannot add {port} to bridge {bridge}"),
            LinkUnspec::new_with_index(idx).controller(br).build(),
        )
    }

    pub fn add_address(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let idx = self.require_link(name)?;
        self.block_on(
            self.handle
                .address()
                .add(idx, IpAddr::V4(addr), prefix_len)
                .execute(),
        )
        .map_err(nl(format!(
            "cannot add {addr}/{prefix_len} to {name} in {}",
            self.netns
        )))
    }

    /// `ip -6 addr add ADDR/LEN dev NAME nodad`: usable at once, no
    /// duplicate address detection (the lab's addresses are planned
    /// unique, and a tentative address would fail the first packets).
    pub fn add_address6(&self, name: &str, addr: Ipv6Addr, prefix_len: u8) -> Result<()> {
        let idx = self.require_link(name)?;
        let mut req = self.handle.address().add(idx, IpAddr::V6(addr), prefix_len);
        let msg = req.message_mut();
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.block_on(req.execute()).map_err(nl(format!(
            "cannot add {addr}/{prefix_len} to {name} in {}",
            self.netns
        )))
    }

    /// `ip -6 route add default via GATEWAY`
    pub fn add_default_route6(&self, gateway: Ipv6Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .build();
        self.block_on(self.handle.route().add(route).execute())
            .map_err(nl(format!(
                "cannot add IPv6 default route via {gateway} in {}",
                self.netns
            )))
    }

    /// `ip route add default via GATEWAY`
    pub fn add_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.block_on(self.handle.route().add(route).execute())
            .map_err(nl(format!(
                "cannot add default route via {gateway} in {}",
                self.netns
            )))
    }

    /// Deletes a link; a missing link is not an error (deleting one end of a
    /// veth pair deletes both).
    pub fn delete_link(&self, name: &str) -> Result<()> {
        let Some(idx) = self.link_index(name)? else {
            return Ok(());
        };
        match self.block_on(self.handle.link().del(idx).execute()) {
            Ok(()) => Ok(()),
            Err(e) if errno_of(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(nl(format!("cannot delete {name} in {}", self.netns))(e)),
        }
    }

    /// The MAC of `name`.
    pub fn link_mac(&self, name: &str) -> Result<[u8; 6]> {
        let idx = self.require_link(name)?;
        let msg = self.block_on(async {
            let mut s = self.handle.link().get().match_index(idx).execute();
            s.try_next().await
        });
        let msg = msg.map_err(nl(format!("cannot read {name} in {}", self.netns)))?;
        msg.and_then(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(b) if b.len() == 6 => {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(b);
                    Some(mac)
                }
                _ => None,
            })
        })
        .ok_or_else(|| TopologyError::NoSuchLink {
            name: name.into(),
            netns: self.netns.clone(),
        })
    }

    /// Every link with its IPv4 addresses (for `status`).
    pub fn links(&self) -> Result<Vec<LinkInfoView>> {
        let (links, addrs) = self
            .block_on(async {
                let links: Vec<LinkMessage> =
                    self.handle.link().get().execute().try_collect().await?;
                let addrs: Vec<_> = self.handle.address().get().execute().try_collect().await?;
                Ok::<_, rtnetlink::Error>((links, addrs))
            })
            .map_err(nl(format!("cannot list links in {}", self.netns)))?;
        let mut out = Vec::new();
        for l in links {
            let mut v = LinkInfoView {
                name: String::new(),
                ifindex: l.header.index,
                mac: None,
                up: l.header.flags.contains(LinkFlags::Up),
                kind: None,
                controller: None,
                addresses: Vec::new(),
            };
            for a in &l.attributes {
                match a {
                    LinkAttribute::IfName(n) => v.name = n.clone(),
                    LinkAttribute::Address(b) => v.mac = Some(format_mac(b)),
                    LinkAttribute::Controller(c) => v.controller = Some(*c),
                    LinkAttribute::LinkInfo(infos) => {
                        for i in infos {
                            if let LinkInfo::Kind(k) = i {
                                v.kind = Some(k.to_string());
                            }
                        }
                    }
                    _ => {}
                }
            }
            // IPv4 first (as before IPv6 was shown), then IPv6.
            for family in [AddressFamily::Inet, AddressFamily::Inet6] {
                for a in addrs.iter().filter(|a| a.header.index == l.header.index) {
                    if a.header.family != family {
                        continue;
                    }
                    for attr in &a.attributes {
                        if let AddressAttribute::Address(ip) = attr {
                            v.addresses.push(format!("{ip}/{}", a.header.prefix_len));
                        }
                    }
                }
            }
            out.push(v);
        }
        Ok(out)
    }

    /// The IPv4 routes of the main table (for `status`).
    pub fn routes(&self) -> Result<Vec<RouteView>> {
        self.routes_of(RouteMessageBuilder::<Ipv4Addr>::new().build())
    }

    /// The IPv6 routes of the main table (for `status`).
    pub fn routes6(&self) -> Result<Vec<RouteView>> {
        self.routes_of(RouteMessageBuilder::<Ipv6Addr>::new().build())
    }

    /// The first global-scope IPv6 address of `dev` (not one that failed
    /// duplicate address detection); None when it has none.
    pub fn global_ipv6(&self, dev: &str) -> Result<Option<Ipv6Addr>> {
        Ok(self.global_ipv6_all(dev)?.first().map(|(a, _)| *a))
    }

    /// Every global-scope IPv6 address of `dev` with its prefix length, in
    /// the kernel's order (not those that failed duplicate address
    /// detection).
    pub fn global_ipv6_all(&self, dev: &str) -> Result<Vec<(Ipv6Addr, u8)>> {
        let idx = self.require_link(dev)?;
        let addrs: Vec<_> = self
            .block_on(
                self.handle
                    .address()
                    .get()
                    .set_link_index_filter(idx)
                    .execute()
                    .try_collect(),
            )
            .map_err(nl(format!(
                "cannot list the addresses of {dev} in {}",
                self.netns
            )))?;
        Ok(addrs
            .iter()
            .filter(|a| {
                a.header.family == AddressFamily::Inet6
                    && a.header.scope == AddressScope::Universe
                    && !a.attributes.iter().any(|x| {
                        matches!(x, AddressAttribute::Flags(f) if f.contains(AddressFlags::Dadfailed))
                    })
            })
            .filter_map(|a| {
                a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(IpAddr::V6(ip)) => Some((*ip, a.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    }

    fn routes_of(&self, query: RouteMessage) -> Result<Vec<RouteView>> {
        let links = self.links()?;
        let routes: Vec<RouteMessage> = self
            .block_on(self.handle.route().get(query).execute().try_collect())
            .map_err(nl(format!("cannot list routes in {}", self.netns)))?;
        let mut out = Vec::new();
        for r in routes {
            // RT_TABLE_MAIN; the local table's entries are noise here.
            if r.header.table != 254 {
                continue;
            }
            let mut dest = None;
            let mut gateway = None;
            let mut device = None;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                        dest = Some(IpAddr::V4(*ip))
                    }
                    RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                        dest = Some(IpAddr::V6(*ip))
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => {
                        gateway = Some(IpAddr::V4(*ip))
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => {
                        gateway = Some(IpAddr::V6(*ip))
                    }
                    RouteAttribute::Oif(i) => {
                        device = links
                            .iter()
                            .find(|l| l.ifindex == *i)
                            .map(|l| l.name.clone())
                    }
                    _ => {}
                }
            }
            let destination = match dest {
                None if r.header.destination_prefix_length == 0 => "default".to_string(),
                Some(ip) => format!("{ip}/{}", r.header.destination_prefix_length),
                None => "?".to_string(),
            };
            out.push(RouteView {
                destination,
                gateway,
                device,
            });
        }
        Ok(out)
    }
}
