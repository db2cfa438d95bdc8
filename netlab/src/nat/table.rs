//! A typed view of the translation table (`netlab nat list`, expiry).
//!
//! A flow is a `nat_orig` entry and its `nat_reply` partner. Either may be
//! missing (LRU eviction of one of them, or a sweep interrupted between the
//! two deletes); such a half flow is still listed, so it can be expired.

use std::{
    collections::HashMap,
    fmt,
    net::{Ipv4Addr, SocketAddrV4},
    path::Path,
    time::Duration,
};

use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use netlab_common::nat::{
    IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_ORIG_MAP, NAT_REPLY_MAP, NAT_STATE_TCP_CLOSING,
    NAT_STATE_TCP_ESTABLISHED, NAT_STATE_TCP_SYN, NatEntry, NatKey,
};

use super::{
    NatError,
    maps::{open_pinned, read_hash},
};
use crate::plan::NatTimeouts;

/// The flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Other(u8),
}

impl Proto {
    pub fn from_number(n: u8) -> Self {
        match n {
            IPPROTO_TCP => Proto::Tcp,
            IPPROTO_UDP => Proto::Udp,
            IPPROTO_ICMP => Proto::Icmp,
            n => Proto::Other(n),
        }
    }

    /// The IP protocol number (the inverse of [`Proto::from_number`]).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
            Proto::Icmp => IPPROTO_ICMP,
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
        (Proto::Icmp, _) => t.icmp,
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

/// One translation, decoded. For ICMP the "ports" are the echo id (the
/// remote side's is 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatFlow {
    pub proto: Proto,
    /// Lab endpoint's address and port/id, as sent.
    pub orig_src: SocketAddrV4,
    /// The remote peer.
    pub remote: SocketAddrV4,
    /// What the remote sees: the external address and translated port/id.
    pub translated: SocketAddrV4,
    pub state: FlowState,
    /// A published port's translation (created by the client's packet
    /// arriving on the uplink), not a masqueraded one.
    pub dnat: bool,
    /// Later of the two directions' last-seen times (CLOCK_MONOTONIC ns).
    pub last_seen_ns: u64,
    /// The map keys, for deletion. `None` when that direction's entry is missing.
    pub orig_key: Option<NatKey>,
    pub reply_key: Option<NatKey>,
    /// Last-seen times of each entry as read (a sweep deletes only entries
    /// that did not change since).
    pub orig_seen_ns: Option<u64>,
    pub reply_seen_ns: Option<u64>,
}

fn sock(addr: u32, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(u32::from_be(addr)), u16::from_be(port))
}

impl NatFlow {
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

/// Joins the two directions' entries into flows, sorted by protocol and
/// original source.
pub fn decode(
    orig: impl IntoIterator<Item = (NatKey, NatEntry)>,
    reply: impl IntoIterator<Item = (NatKey, NatEntry)>,
) -> Vec<NatFlow> {
    let mut flows = join(orig, reply);
    sort_for_display(&mut flows);
    flows
}

/// Sorts by protocol name, then original source, then remote.
fn sort_for_display(flows: &mut [NatFlow]) {
    // The key is built once per flow (the protocol's name allocates).
    flows.sort_by_cached_key(|f| (f.proto.to_string(), f.orig_src, f.remote));
}

/// Joins the two directions' entries into flows, in no particular order.
fn join(
    orig: impl IntoIterator<Item = (NatKey, NatEntry)>,
    reply: impl IntoIterator<Item = (NatKey, NatEntry)>,
) -> Vec<NatFlow> {
    let orig = orig.into_iter();
    let mut replies: HashMap<NatKey, NatEntry> = reply.into_iter().collect();
    let mut flows = Vec::with_capacity(orig.size_hint().0 + replies.len() / 8);
    for (okey, oval) in orig {
        let rkey = okey.reply_key(&oval);
        let rval = replies.remove(&rkey);
        let (state, last_seen_ns) = match rval {
            // States are mirrored; if they differ, the more recent wins.
            Some(r) if r.last_seen_ns > oval.last_seen_ns => (r.state, r.last_seen_ns),
            _ => (oval.state, oval.last_seen_ns),
        };
        flows.push(NatFlow {
            proto: Proto::from_number(okey.proto),
            orig_src: sock(okey.saddr, okey.sport),
            remote: sock(okey.daddr, okey.dport),
            translated: sock(oval.addr, oval.port),
            state: FlowState::from_raw(state),
            dnat: oval.flags & netlab_common::nat::NAT_ENTRY_DNAT != 0,
            last_seen_ns,
            orig_key: Some(okey),
            reply_key: rval.map(|_| rkey),
            orig_seen_ns: Some(oval.last_seen_ns),
            reply_seen_ns: rval.map(|r| r.last_seen_ns),
        });
    }
    // Reply entries whose original-direction partner is gone.
    for (rkey, rval) in replies {
        flows.push(NatFlow {
            proto: Proto::from_number(rkey.proto),
            orig_src: sock(rval.addr, rval.port),
            remote: sock(rkey.saddr, rkey.sport),
            translated: sock(rkey.daddr, rkey.dport),
            state: FlowState::from_raw(rval.state),
            dnat: rval.flags & netlab_common::nat::NAT_ENTRY_DNAT != 0,
            last_seen_ns: rval.last_seen_ns,
            orig_key: None,
            reply_key: Some(rkey),
            orig_seen_ns: None,
            reply_seen_ns: Some(rval.last_seen_ns),
        });
    }
    flows
}

/// The NAT table of a lab, read from its pinned maps.
pub struct NatTable {
    orig: Map,
    reply: Map,
}

type View<'a> = BpfHashMap<&'a MapData, NatKey, NatEntry>;
type ViewMut<'a> = BpfHashMap<&'a mut MapData, NatKey, NatEntry>;

fn map_error(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> NatError {
    move |source| NatError::Map { name, source }
}

impl NatTable {
    /// Opens the pinned `nat_orig` and `nat_reply` under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, NatError> {
        let table = Self {
            orig: open_pinned(pin_dir, NAT_ORIG_MAP)?,
            reply: open_pinned(pin_dir, NAT_REPLY_MAP)?,
        };
        // A map of the wrong type or layout is reported now, not at first use.
        table.view(false)?;
        table.view(true)?;
        Ok(table)
    }

    fn map(&self, reply: bool) -> (&Map, &'static str) {
        if reply {
            (&self.reply, NAT_REPLY_MAP)
        } else {
            (&self.orig, NAT_ORIG_MAP)
        }
    }

    fn view(&self, reply: bool) -> Result<View<'_>, NatError> {
        let (map, name) = self.map(reply);
        View::try_from(map).map_err(map_error(name))
    }

    fn view_mut(&mut self, reply: bool) -> Result<ViewMut<'_>, NatError> {
        let (map, name) = if reply {
            (&mut self.reply, NAT_REPLY_MAP)
        } else {
            (&mut self.orig, NAT_ORIG_MAP)
        };
        ViewMut::try_from(map).map_err(map_error(name))
    }

    /// One direction's entries, read in batches.
    fn entries(&self, reply: bool) -> Result<Vec<(NatKey, NatEntry)>, NatError> {
        let (map, name) = self.map(reply);
        read_hash(map, name)
    }

    /// Every flow, decoded, sorted for display.
    pub fn flows(&self) -> Result<Vec<NatFlow>, NatError> {
        let mut flows = self.flows_unordered()?;
        sort_for_display(&mut flows);
        Ok(flows)
    }

    /// Every flow, decoded, in no particular order (what expiry needs).
    pub fn flows_unordered(&self) -> Result<Vec<NatFlow>, NatError> {
        Ok(join(self.entries(false)?, self.entries(true)?))
    }

    pub(super) fn orig_seen(&self, key: &NatKey) -> Option<u64> {
        self.view(false)
            .ok()?
            .get(key, 0)
            .ok()
            .map(|e| e.last_seen_ns)
    }

    pub(super) fn reply_seen(&self, key: &NatKey) -> Option<u64> {
        self.view(true)
            .ok()?
            .get(key, 0)
            .ok()
            .map(|e| e.last_seen_ns)
    }

    /// Deletes both directions' entries of `flow`: the original direction
    /// first, so that once its port is free (the reply entry gone) no
    /// packet can still be translated with it. Safe while traffic flows: a
    /// packet of the flow arriving after this creates a new translation.
    /// Returns whether anything was there to delete.
    pub fn remove_flow(&mut self, flow: &NatFlow) -> Result<bool, NatError> {
        let mut removed = false;
        if let Some(k) = flow.orig_key {
            removed |= self.remove(&k, false)?;
        }
        if let Some(k) = flow.reply_key {
            removed |= self.remove(&k, true)?;
        }
        Ok(removed)
    }

    /// Deletes one direction's entry; a missing entry is not an error.
    pub(super) fn remove(&mut self, key: &NatKey, reply: bool) -> Result<bool, NatError> {
        let name = self.map(reply).1;
        match self.view_mut(reply)?.remove(key) {
            Ok(()) => Ok(true),
            Err(aya::maps::MapError::KeyNotFound) => Ok(false),
            Err(aya::maps::MapError::SyscallError(s))
                if s.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(false)
            }
            Err(source) => Err(NatError::Map { name, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn be(a: [u8; 4]) -> u32 {
        u32::from_ne_bytes(a)
    }

    pub(crate) fn tcp_flow(
        sport: u16,
        xport: u16,
        seen: u64,
        state: u8,
    ) -> [(NatKey, NatEntry); 2] {
        let okey = NatKey {
            saddr: be([192, 168, 28, 1]),
            daddr: be([203, 0, 113, 2]),
            sport: sport.to_be(),
            dport: 80u16.to_be(),
            proto: IPPROTO_TCP,
            _pad: [0; 3],
        };
        let oval = NatEntry {
            addr: be([203, 0, 113, 1]),
            port: xport.to_be(),
            state,
            flags: 0,
            last_seen_ns: seen,
        };
        let rkey = okey.reply_key(&oval);
        let rval = NatEntry {
            addr: okey.saddr,
            port: okey.sport,
            state,
            flags: 0,
            last_seen_ns: seen,
        };
        [(okey, oval), (rkey, rval)]
    }

    #[test]
    fn decodes_joined_flows_in_host_order() {
        let [o, mut r] = tcp_flow(5000, 40001, 100, NAT_STATE_TCP_ESTABLISHED);
        r.1.last_seen_ns = 250;
        let flows = decode([o], [r]);
        assert_eq!(flows.len(), 1);
        let f = &flows[0];
        assert_eq!(f.proto, Proto::Tcp);
        assert_eq!(f.orig_src, "192.168.28.1:5000".parse().unwrap());
        assert_eq!(f.remote, "203.0.113.2:80".parse().unwrap());
        assert_eq!(f.translated, "203.0.113.1:40001".parse().unwrap());
        assert_eq!(f.state, FlowState::Established);
        assert_eq!(f.last_seen_ns, 250, "the later direction counts");
        assert_eq!(f.orig_key, Some(o.0));
        assert_eq!(f.reply_key, Some(r.0));
        assert_eq!(f.age(1_250), Duration::from_nanos(1_000));
        assert_eq!(f.age(10), Duration::ZERO, "never negative");
    }

    #[test]
    fn half_flows_are_listed() {
        let [o1, _] = tcp_flow(5000, 40001, 100, NAT_STATE_TCP_SYN);
        let [_, r2] = tcp_flow(5001, 40002, 100, NAT_STATE_TCP_SYN);
        let flows = decode([o1], [r2]);
        assert_eq!(flows.len(), 2);
        let only_orig = flows.iter().find(|f| f.orig_src.port() == 5000).unwrap();
        assert!(only_orig.reply_key.is_none());
        let only_reply = flows.iter().find(|f| f.orig_src.port() == 5001).unwrap();
        assert!(only_reply.orig_key.is_none());
        assert_eq!(only_reply.translated, "203.0.113.1:40002".parse().unwrap());
        assert_eq!(only_reply.remote, "203.0.113.2:80".parse().unwrap());
        assert_eq!(only_reply.state, FlowState::SynSent);
    }
}
