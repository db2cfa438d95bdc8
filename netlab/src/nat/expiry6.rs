//! Expiry and flushing of NAT66's translations (`nat6_orig`,
//! `nat6_reply`) and fragment entries (`nat6_frags`): the IPv4 rules
//! (`expiry`, `frags`) with the same timeouts, on the IPv6 maps. A flow is
//! a `nat6_orig` entry and its `nat6_reply` partner; either alone (LRU
//! eviction, an interrupted sweep) is still a flow, so it expires too.

use std::{collections::HashMap, path::Path};

use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use netlab_common::{
    nat::IPPROTO_ICMP,
    nat6::{
        IPPROTO_ICMPV6, NAT6_FRAGS_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Entry, Nat6FragEntry,
        Nat6FragKey, Nat6Key,
    },
};

use super::{
    NatError,
    frags::FRAG_TIMEOUT,
    maps::{open_pinned, read_hash},
    table::{FlowState, Proto, timeout_for},
};
use crate::plan::NatTimeouts;

/// One NAT66 translation: its two entries' keys (None: that half is
/// missing), protocol, TCP state and the later last-seen time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow6 {
    pub orig_key: Option<Nat6Key>,
    pub reply_key: Option<Nat6Key>,
    pub proto: u8,
    pub state: u8,
    pub orig_seen_ns: Option<u64>,
    pub reply_seen_ns: Option<u64>,
}

impl Flow6 {
    fn last_seen_ns(&self) -> u64 {
        self.orig_seen_ns
            .unwrap_or(0)
            .max(self.reply_seen_ns.unwrap_or(0))
    }

    /// Whether the flow has been idle for its protocol's (TCP: its
    /// state's) timeout at `now_ns`, ICMPv6 taking ICMP's.
    pub fn is_expired(&self, now_ns: u64, t: &NatTimeouts) -> bool {
        let proto = if self.proto == IPPROTO_ICMPV6 {
            IPPROTO_ICMP
        } else {
            self.proto
        };
        let timeout = timeout_for(
            Proto::from_number(proto),
            FlowState::from_raw(self.state),
            t,
        );
        now_ns.saturating_sub(self.last_seen_ns()) >= timeout.as_nanos() as u64
    }
}

/// Pairs the entries of the two maps into flows.
pub fn join6(orig: &[(Nat6Key, Nat6Entry)], reply: &[(Nat6Key, Nat6Entry)]) -> Vec<Flow6> {
    let mut replies: HashMap<Nat6Key, Nat6Entry> = reply.iter().copied().collect();
    let mut flows = Vec::with_capacity(orig.len());
    for (k, v) in orig {
        let rk = k.reply_key(v);
        let partner = replies.remove(&rk);
        flows.push(Flow6 {
            orig_key: Some(*k),
            reply_key: partner.map(|_| rk),
            proto: k.proto,
            state: v.state,
            orig_seen_ns: Some(v.last_seen_ns),
            reply_seen_ns: partner.map(|r| r.last_seen_ns),
        });
    }
    for (rk, rv) in replies {
        flows.push(Flow6 {
            orig_key: None,
            reply_key: Some(rk),
            proto: rk.proto,
            state: rv.state,
            orig_seen_ns: None,
            reply_seen_ns: Some(rv.last_seen_ns),
        });
    }
    flows
}

/// The two translation maps; `None` when the lab's pins predate NAT66.
struct Maps6 {
    orig: Map,
    reply: Map,
}

impl Maps6 {
    fn open(pin_dir: &Path) -> Result<Option<Self>, NatError> {
        let orig = match open_pinned(pin_dir, NAT6_ORIG_MAP) {
            Ok(m) => m,
            Err(NatError::MissingMap { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let reply = open_pinned(pin_dir, NAT6_REPLY_MAP)?;
        Ok(Some(Self { orig, reply }))
    }

    fn flows(&self) -> Result<Vec<Flow6>, NatError> {
        let orig: Vec<(Nat6Key, Nat6Entry)> = read_hash(&self.orig, NAT6_ORIG_MAP)?;
        let reply: Vec<(Nat6Key, Nat6Entry)> = read_hash(&self.reply, NAT6_REPLY_MAP)?;
        Ok(join6(&orig, &reply))
    }

    fn view(
        &mut self,
        reply: bool,
    ) -> Result<BpfHashMap<&mut MapData, Nat6Key, Nat6Entry>, NatError> {
        let (map, name) = if reply {
            (&mut self.reply, NAT6_REPLY_MAP)
        } else {
            (&mut self.orig, NAT6_ORIG_MAP)
        };
        BpfHashMap::try_from(map).map_err(|source| NatError::Map { name, source })
    }

    fn seen(&mut self, key: &Nat6Key, reply: bool) -> Result<Option<u64>, NatError> {
        Ok(self.view(reply)?.get(key, 0).ok().map(|e| e.last_seen_ns))
    }

    /// Removes one entry; an entry already gone is not an error.
    fn remove(&mut self, key: &Nat6Key, reply: bool) -> Result<(), NatError> {
        let name = if reply { NAT6_REPLY_MAP } else { NAT6_ORIG_MAP };
        match self.view(reply)?.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(aya::maps::MapError::SyscallError(s))
                if s.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            Err(source) => Err(NatError::Map { name, source }),
        }
    }

    /// Original direction first (as in IPv4): once it is gone no packet
    /// uses the translation, and only then is its port released.
    fn remove_flow(&mut self, flow: &Flow6) -> Result<(), NatError> {
        if let Some(k) = flow.orig_key {
            self.remove(&k, false)?;
        }
        if let Some(k) = flow.reply_key {
            self.remove(&k, true)?;
        }
        Ok(())
    }
}

/// What a NAT66 sweep did: (flows examined, removed, left alone because a
/// packet refreshed them meanwhile, fragment entries removed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep6 {
    pub flows: usize,
    pub expired: usize,
    pub refreshed: usize,
    pub fragments_expired: usize,
}

/// Removes the expired NAT66 flows and fragment entries of the lab pinned
/// in `pin_dir` at `now_ns` (the IPv4 sweep's rules and timeouts).
pub fn sweep6(pin_dir: &Path, timeouts: &NatTimeouts, now_ns: u64) -> Result<Sweep6, NatError> {
    let mut stats = Sweep6 {
        fragments_expired: sweep_fragments6(pin_dir, now_ns)?,
        ..Sweep6::default()
    };
    let Some(mut maps) = Maps6::open(pin_dir)? else {
        return Ok(stats);
    };
    let flows = maps.flows()?;
    stats.flows = flows.len();
    for flow in flows.iter().filter(|f| f.is_expired(now_ns, timeouts)) {
        // Delete only entries whose last-seen time is still the one judged.
        let mut unchanged = true;
        for (key, seen, reply) in [
            (flow.orig_key, flow.orig_seen_ns, false),
            (flow.reply_key, flow.reply_seen_ns, true),
        ] {
            if let Some(k) = key {
                let now_seen = maps.seen(&k, reply)?;
                unchanged &= now_seen.is_none() || now_seen == seen;
            }
        }
        if !unchanged {
            stats.refreshed += 1;
            continue;
        }
        maps.remove_flow(flow)?;
        stats.expired += 1;
    }
    Ok(stats)
}

/// Removes every NAT66 flow (of protocol `proto` when given; ICMP means
/// ICMPv6 here). Returns how many went.
pub fn flush6(pin_dir: &Path, proto: Option<u8>) -> Result<usize, NatError> {
    let Some(mut maps) = Maps6::open(pin_dir)? else {
        return Ok(0);
    };
    let proto = proto.map(|p| if p == IPPROTO_ICMP { IPPROTO_ICMPV6 } else { p });
    let mut flushed = 0;
    for flow in maps.flows()? {
        if proto.is_some_and(|p| p != flow.proto) {
            continue;
        }
        maps.remove_flow(&flow)?;
        flushed += 1;
    }
    Ok(flushed)
}

/// Removes the `nat6_frags` entries older than the reassembly timeout.
pub fn sweep_fragments6(pin_dir: &Path, now_ns: u64) -> Result<usize, NatError> {
    let mut map = match open_pinned(pin_dir, NAT6_FRAGS_MAP) {
        Ok(map) => map,
        Err(NatError::MissingMap { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let name = NAT6_FRAGS_MAP;
    let entries: Vec<(Nat6FragKey, Nat6FragEntry)> = read_hash(&map, name)?;
    let timeout = FRAG_TIMEOUT.as_nanos() as u64;
    let mut frags: BpfHashMap<&mut MapData, Nat6FragKey, Nat6FragEntry> =
        BpfHashMap::try_from(&mut map).map_err(|source| NatError::Map { name, source })?;
    let mut removed = 0;
    for (key, _) in entries
        .iter()
        .filter(|(_, e)| now_ns.saturating_sub(e.last_seen_ns) >= timeout)
    {
        // A fragment may have refreshed the entry since it was read.
        match frags.get(key, 0) {
            Ok(e) if now_ns.saturating_sub(e.last_seen_ns) < timeout => continue,
            Ok(_) => {}
            Err(_) => continue,
        }
        if frags.remove(key).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlab_common::nat::{IPPROTO_TCP, IPPROTO_UDP, NAT_STATE_NONE, NAT_STATE_TCP_CLOSING};

    const S: u64 = 1_000_000_000;

    fn flow(proto: u8, sport: u16, state: u8, seen: u64) -> [(Nat6Key, Nat6Entry); 2] {
        let key = Nat6Key {
            saddr: [0xfd; 16],
            daddr: [0x20; 16],
            sport: sport.to_be(),
            dport: if proto == IPPROTO_ICMPV6 {
                0
            } else {
                80u16.to_be()
            },
            proto,
            _pad: [0; 3],
        };
        let xlat = Nat6Entry {
            addr: [0x21; 16],
            port: (40000 + sport).to_be(),
            state,
            last_seen_ns: seen,
            ..Default::default()
        };
        let back = Nat6Entry {
            addr: key.saddr,
            port: key.sport,
            ..xlat
        };
        [(key, xlat), (key.reply_key(&xlat), back)]
    }

    #[test]
    fn flows_pair_up_and_expire_by_protocol_and_state() {
        let t = NatTimeouts {
            tcp_established: 1000,
            tcp_closing: 10,
            tcp_syn: 20,
            udp: 30,
            icmp: 5,
        };
        let now = 10_000 * S;
        let udp_old = flow(IPPROTO_UDP, 1, NAT_STATE_NONE, now - 31 * S);
        let udp_fresh = flow(IPPROTO_UDP, 2, NAT_STATE_NONE, now - 29 * S);
        let closing_old = flow(IPPROTO_TCP, 3, NAT_STATE_TCP_CLOSING, now - 11 * S);
        let icmp_old = flow(IPPROTO_ICMPV6, 4, NAT_STATE_NONE, now - 6 * S);
        let all = [udp_old, udp_fresh, closing_old, icmp_old];
        let orig: Vec<_> = all.iter().map(|f| f[0]).collect();
        // One reply entry missing: a half flow, still listed.
        let reply: Vec<_> = all[..3].iter().map(|f| f[1]).collect();
        let flows = join6(&orig, &reply);
        assert_eq!(flows.len(), 4);
        assert_eq!(
            flows.iter().filter(|f| f.reply_key.is_some()).count(),
            3,
            "{flows:?}"
        );
        let expired: Vec<u16> = flows
            .iter()
            .filter(|f| f.is_expired(now, &t))
            .map(|f| u16::from_be(f.orig_key.unwrap().sport))
            .collect();
        assert_eq!(expired, [1, 3, 4]);
    }
}
