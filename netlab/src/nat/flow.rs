//! One translation of the source NAT, decoded, in either family: its
//! protocol and TCP state as the datapath records them, its timeout, and
//! what the IPv4 table (`nat_orig`/`nat_reply`) and the NAT66 one
//! (`nat6_orig`/`nat6_reply`) differ in ([`Family`]), so that the table
//! code (`table`) reads, joins, expires and deletes both with one copy of
//! the rules.

use std::{
    fmt,
    hash::Hash,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    time::Duration,
};

use netlab_common::{
    nat::{
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_ORIG_MAP, NAT_REPLY_MAP, NAT_STATE_TCP_CLOSING,
        NAT_STATE_TCP_ESTABLISHED, NAT_STATE_TCP_SYN, NatEntry, NatKey,
    },
    nat6::{IPPROTO_ICMPV6, NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Entry, Nat6Key},
};

use crate::plan::NatTimeouts;

/// The flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    /// ICMPv6 (NAT66: echo by identifier, like ICMP).
    Icmpv6,
    Other(u8),
}

impl Proto {
    pub fn from_number(n: u8) -> Self {
        match n {
            IPPROTO_TCP => Proto::Tcp,
            IPPROTO_UDP => Proto::Udp,
            IPPROTO_ICMP => Proto::Icmp,
            IPPROTO_ICMPV6 => Proto::Icmpv6,
            n => Proto::Other(n),
        }
    }

    /// The IP protocol number (the inverse of [`Proto::from_number`]).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
            Proto::Icmp => IPPROTO_ICMP,
            Proto::Icmpv6 => IPPROTO_ICMPV6,
            Proto::Other(n) => n,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proto::Tcp => f.write_str("tcp"),
            Proto::Udp => f.write_str("udp"),
            Proto::Icmp => f.write_str("icmp"),
            Proto::Icmpv6 => f.write_str("icmpv6"),
            Proto::Other(n) => write!(f, "proto-{n}"),
        }
    }
}

/// The flow's state as the datapath recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlowState {
    /// UDP, ICMP: no state machine.
    None,
    /// TCP: SYN sent, no answer yet.
    SynSent,
    Established,
    /// TCP: FIN or RST seen.
    Closing,
}

/// The idle timeout of a flow of `proto` in `state` (beside the types it
/// reads, so the table and the expiry both ask it without importing each
/// other).
pub fn timeout_for(proto: Proto, state: FlowState, t: &NatTimeouts) -> Duration {
    Duration::from_secs(match (proto, state) {
        (Proto::Tcp, FlowState::SynSent) => t.tcp_syn,
        (Proto::Tcp, FlowState::Closing) => t.tcp_closing,
        (Proto::Tcp, _) => t.tcp_established,
        (Proto::Udp, _) => t.udp,
        // ICMPv6 echo lives as long as ICMP echo: one rule for both.
        (Proto::Icmp | Proto::Icmpv6, _) => t.icmp,
        // Never created by the datapath; treat like UDP.
        (Proto::Other(_), _) => t.udp,
    })
}

impl FlowState {
    pub fn from_raw(state: u8) -> Self {
        match state {
            NAT_STATE_TCP_SYN => FlowState::SynSent,
            NAT_STATE_TCP_ESTABLISHED => FlowState::Established,
            NAT_STATE_TCP_CLOSING => FlowState::Closing,
            _ => FlowState::None,
        }
    }
}

impl FlowState {
    /// As conntrack spells it (`-` for no TCP state).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::None => "-",
            FlowState::SynSent => "SYN_SENT",
            FlowState::Established => "ESTABLISHED",
            FlowState::Closing => "CLOSING",
        }
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the IPv4 and the NAT66 tables differ in: the key and entry types,
/// the socket address type, the map names and how a reply key is formed.
/// Everything else (joining, expiry, deletion) is written once.
pub trait Family: Clone + Copy + fmt::Debug + PartialEq + Eq + 'static {
    type Key: aya::Pod + Copy + Eq + Hash + fmt::Debug;
    type Entry: aya::Pod + Copy + fmt::Debug;
    /// `SocketAddrV4` or `SocketAddrV6`.
    type Sock: Copy + Ord + Eq + fmt::Debug + fmt::Display + Into<SocketAddr>;
    /// `ipv4` or `ipv6` (`nat list --json`'s `family`, the metrics' label).
    const NAME: &'static str;
    const ORIG_MAP: &'static str;
    const REPLY_MAP: &'static str;
    /// The reply key of a translation whose original tuple is `key`.
    fn reply_key(key: &Self::Key, xlat: &Self::Entry) -> Self::Key;
    fn proto(key: &Self::Key) -> u8;
    /// The key's source and destination.
    fn ends(key: &Self::Key) -> (Self::Sock, Self::Sock);
    /// The entry's address and port.
    fn target(entry: &Self::Entry) -> Self::Sock;
    /// State, entry flags and last-seen time.
    fn meta(entry: &Self::Entry) -> (u8, u8, u64);
    /// The flow as either family's.
    fn any(flow: Flow<Self>) -> AnyFlow;
}

/// The IPv4 NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4;

/// NAT66.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6;

impl Family for V4 {
    type Key = NatKey;
    type Entry = NatEntry;
    type Sock = SocketAddrV4;
    const NAME: &'static str = "ipv4";
    const ORIG_MAP: &'static str = NAT_ORIG_MAP;
    const REPLY_MAP: &'static str = NAT_REPLY_MAP;
    fn reply_key(key: &NatKey, xlat: &NatEntry) -> NatKey {
        key.reply_key(xlat)
    }
    fn proto(key: &NatKey) -> u8 {
        key.proto
    }
    fn ends(k: &NatKey) -> (SocketAddrV4, SocketAddrV4) {
        (sock(k.saddr, k.sport), sock(k.daddr, k.dport))
    }
    fn target(e: &NatEntry) -> SocketAddrV4 {
        sock(e.addr, e.port)
    }
    fn meta(e: &NatEntry) -> (u8, u8, u64) {
        (e.state, e.flags, e.last_seen_ns)
    }
    fn any(flow: NatFlow) -> AnyFlow {
        AnyFlow::V4(flow)
    }
}

impl Family for V6 {
    type Key = Nat6Key;
    type Entry = Nat6Entry;
    type Sock = SocketAddrV6;
    const NAME: &'static str = "ipv6";
    const ORIG_MAP: &'static str = NAT6_ORIG_MAP;
    const REPLY_MAP: &'static str = NAT6_REPLY_MAP;
    fn reply_key(key: &Nat6Key, xlat: &Nat6Entry) -> Nat6Key {
        key.reply_key(xlat)
    }
    fn proto(key: &Nat6Key) -> u8 {
        key.proto
    }
    fn ends(k: &Nat6Key) -> (SocketAddrV6, SocketAddrV6) {
        (sock6(&k.saddr, k.sport), sock6(&k.daddr, k.dport))
    }
    fn target(e: &Nat6Entry) -> SocketAddrV6 {
        sock6(&e.addr, e.port)
    }
    fn meta(e: &Nat6Entry) -> (u8, u8, u64) {
        (e.state, e.flags, e.last_seen_ns)
    }
    fn any(flow: Nat6Flow) -> AnyFlow {
        AnyFlow::V6(flow)
    }
}

/// One translation, decoded. For ICMP the "ports" are the echo id (the
/// remote side's is 0). [`NatFlow`] for IPv4, [`Nat6Flow`] for NAT66.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow<F: Family> {
    pub proto: Proto,
    /// Lab endpoint's address and port/id, as sent.
    pub orig_src: F::Sock,
    /// The remote peer.
    pub remote: F::Sock,
    /// What the remote sees: the external address and translated port/id.
    pub translated: F::Sock,
    pub state: FlowState,
    /// A published port's translation (created by the client's packet
    /// arriving on the uplink), not a masqueraded one.
    pub dnat: bool,
    /// Later of the two directions' last-seen times (CLOCK_MONOTONIC ns).
    pub last_seen_ns: u64,
    /// The map keys, for deletion. `None` when that direction's entry is missing.
    pub orig_key: Option<F::Key>,
    pub reply_key: Option<F::Key>,
    /// Last-seen times of each entry as read (a sweep deletes only entries
    /// that did not change since).
    pub orig_seen_ns: Option<u64>,
    pub reply_seen_ns: Option<u64>,
}

/// An IPv4 translation.
pub type NatFlow = Flow<V4>;
/// A NAT66 translation.
pub type Nat6Flow = Flow<V6>;

/// A flow of either family, for what handles both (listing, expiry
/// events, deletion by tuple).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyFlow {
    V4(NatFlow),
    V6(Nat6Flow),
}

/// A flow's addresses in either family: the original source, the remote
/// and the translated source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowAddrs {
    pub orig_src: SocketAddr,
    pub remote: SocketAddr,
    pub translated: SocketAddr,
}

impl<F: Family> Flow<F> {
    /// The flow's socket addresses, family-neutral.
    pub fn addrs(&self) -> FlowAddrs {
        FlowAddrs {
            orig_src: self.orig_src.into(),
            remote: self.remote.into(),
            translated: self.translated.into(),
        }
    }

    /// `ipv4` or `ipv6`.
    pub fn family(&self) -> &'static str {
        F::NAME
    }
}

impl AnyFlow {
    /// The fields both families share, without the keys.
    pub fn proto(&self) -> Proto {
        match self {
            AnyFlow::V4(f) => f.proto,
            AnyFlow::V6(f) => f.proto,
        }
    }

    pub fn addrs(&self) -> FlowAddrs {
        match self {
            AnyFlow::V4(f) => f.addrs(),
            AnyFlow::V6(f) => f.addrs(),
        }
    }

    pub fn family(&self) -> &'static str {
        match self {
            AnyFlow::V4(f) => f.family(),
            AnyFlow::V6(f) => f.family(),
        }
    }

    pub fn state(&self) -> FlowState {
        match self {
            AnyFlow::V4(f) => f.state,
            AnyFlow::V6(f) => f.state,
        }
    }

    pub fn dnat(&self) -> bool {
        match self {
            AnyFlow::V4(f) => f.dnat,
            AnyFlow::V6(f) => f.dnat,
        }
    }

    /// Whether both directions' entries were there.
    pub fn complete(&self) -> bool {
        match self {
            AnyFlow::V4(f) => f.orig_key.is_some() && f.reply_key.is_some(),
            AnyFlow::V6(f) => f.orig_key.is_some() && f.reply_key.is_some(),
        }
    }

    pub fn age(&self, now_ns: u64) -> Duration {
        match self {
            AnyFlow::V4(f) => f.age(now_ns),
            AnyFlow::V6(f) => f.age(now_ns),
        }
    }

    pub fn expires_in(&self, now_ns: u64, timeouts: &NatTimeouts) -> Duration {
        match self {
            AnyFlow::V4(f) => f.expires_in(now_ns, timeouts),
            AnyFlow::V6(f) => f.expires_in(now_ns, timeouts),
        }
    }
}

fn sock(addr: u32, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(u32::from_be(addr)), u16::from_be(port))
}

fn sock6(addr: &[u8; 16], port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::from(*addr), u16::from_be(port), 0, 0)
}

impl<F: Family> Flow<F> {
    /// Time since the last packet in either direction.
    pub fn age(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.last_seen_ns))
    }

    /// The timeout that applies to this flow.
    pub fn timeout(&self, timeouts: &NatTimeouts) -> Duration {
        timeout_for(self.proto, self.state, timeouts)
    }

    /// Time left before the flow expires (zero when expired).
    pub fn expires_in(&self, now_ns: u64, timeouts: &NatTimeouts) -> Duration {
        self.timeout(timeouts).saturating_sub(self.age(now_ns))
    }

    pub fn is_expired(&self, now_ns: u64, timeouts: &NatTimeouts) -> bool {
        self.age(now_ns) >= self.timeout(timeouts)
    }
}
