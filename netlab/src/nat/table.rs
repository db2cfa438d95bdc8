//! A typed view of the translation tables (`netlab nat list`, expiry):
//! the IPv4 one (`nat_orig`/`nat_reply`) and the NAT66 one
//! (`nat6_orig`/`nat6_reply`), read by the same code through
//! [`Family`] (`flow`).
//!
//! A flow is an orig entry and its reply partner. Either may be
//! missing (LRU eviction of one of them, or a sweep interrupted between the
//! two deletes); such a half flow is still listed, so it can be expired.

use std::{collections::HashMap, path::Path};

use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use netlab_common::nat::NAT_ENTRY_DNAT;

pub use super::flow::{
    AnyFlow, Family, Flow, FlowAddrs, FlowState, Nat6Flow, NatFlow, Proto, V4, V6, timeout_for,
};
use super::{
    NatError,
    maps::{open_pinned, read_hash},
};

/// Joins the two directions' entries into flows, sorted by protocol and
/// original source.
pub fn decode<F: Family>(
    orig: impl IntoIterator<Item = (F::Key, F::Entry)>,
    reply: impl IntoIterator<Item = (F::Key, F::Entry)>,
) -> Vec<Flow<F>> {
    let mut flows = join::<F>(orig, reply);
    sort_for_display(&mut flows);
    flows
}

/// Sorts by protocol name, then original source, then remote.
fn sort_for_display<F: Family>(flows: &mut [Flow<F>]) {
    // The key is built once per flow (the protocol's name allocates).
    flows.sort_by_cached_key(|f| (f.proto.to_string(), f.orig_src, f.remote));
}

/// Joins the two directions' entries into flows, in no particular order.
fn join<F: Family>(
    orig: impl IntoIterator<Item = (F::Key, F::Entry)>,
    reply: impl IntoIterator<Item = (F::Key, F::Entry)>,
) -> Vec<Flow<F>> {
    let orig = orig.into_iter();
    let mut replies: HashMap<F::Key, F::Entry> = reply.into_iter().collect();
    let mut flows = Vec::with_capacity(orig.size_hint().0 + replies.len() / 8);
    for (okey, oval) in orig {
        let rkey = F::reply_key(&okey, &oval);
        let rval = replies.remove(&rkey);
        let (ostate, oflags, oseen) = F::meta(&oval);
        let rmeta = rval.as_ref().map(F::meta);
        let (state, last_seen_ns) = match rmeta {
            // States are mirrored; if they differ, the more recent wins.
            Some((rstate, _, rseen)) if rseen > oseen => (rstate, rseen),
            _ => (ostate, oseen),
        };
        let (orig_src, remote) = F::ends(&okey);
        flows.push(Flow {
            proto: Proto::from_number(F::proto(&okey)),
            orig_src,
            remote,
            translated: F::target(&oval),
            state: FlowState::from_raw(state),
            dnat: oflags & NAT_ENTRY_DNAT != 0,
            last_seen_ns,
            orig_key: Some(okey),
            reply_key: rval.map(|_| rkey),
            orig_seen_ns: Some(oseen),
            reply_seen_ns: rmeta.map(|(_, _, seen)| seen),
        });
    }
    // Reply entries whose original-direction partner is gone.
    for (rkey, rval) in replies {
        let (remote, translated) = F::ends(&rkey);
        let (state, flags, seen) = F::meta(&rval);
        flows.push(Flow {
            proto: Proto::from_number(F::proto(&rkey)),
            orig_src: F::target(&rval),
            remote,
            translated,
            state: FlowState::from_raw(state),
            dnat: flags & NAT_ENTRY_DNAT != 0,
            last_seen_ns: seen,
            orig_key: None,
            reply_key: Some(rkey),
            orig_seen_ns: None,
            reply_seen_ns: Some(seen),
        });
    }
    flows
}

/// The translation table of one family of a lab, read from its pinned
/// maps. [`NatTable`] for IPv4, [`Nat6Table`] for NAT66.
pub struct Table<F: Family> {
    orig: Map,
    reply: Map,
    family: std::marker::PhantomData<F>,
}

/// The IPv4 translation table (`nat_orig`, `nat_reply`).
pub type NatTable = Table<V4>;
/// The NAT66 translation table (`nat6_orig`, `nat6_reply`).
pub type Nat6Table = Table<V6>;

/// One direction's entries as read.
type Entries<F> = Vec<(<F as Family>::Key, <F as Family>::Entry)>;
type View<'a, F> = BpfHashMap<&'a MapData, <F as Family>::Key, <F as Family>::Entry>;
type ViewMut<'a, F> = BpfHashMap<&'a mut MapData, <F as Family>::Key, <F as Family>::Entry>;

fn map_error(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> NatError {
    move |source| NatError::Map { name, source }
}

impl<F: Family> Table<F> {
    /// Opens the pinned orig and reply maps under `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, NatError> {
        let table = Self {
            orig: open_pinned(pin_dir, F::ORIG_MAP)?,
            reply: open_pinned(pin_dir, F::REPLY_MAP)?,
            family: std::marker::PhantomData,
        };
        // A map of the wrong type or layout is reported now, not at first use.
        table.view(false)?;
        table.view(true)?;
        Ok(table)
    }

    /// [`Table::open`], or `None` when the lab has no such table pinned
    /// (a lab without NAT66, or pinned by a netlab before it).
    pub fn open_if_pinned(pin_dir: &Path) -> Result<Option<Self>, NatError> {
        if !pin_dir.join(F::ORIG_MAP).exists() {
            return Ok(None);
        }
        Self::open(pin_dir).map(Some)
    }

    fn map(&self, reply: bool) -> (&Map, &'static str) {
        if reply {
            (&self.reply, F::REPLY_MAP)
        } else {
            (&self.orig, F::ORIG_MAP)
        }
    }

    fn view(&self, reply: bool) -> Result<View<'_, F>, NatError> {
        let (map, name) = self.map(reply);
        View::<F>::try_from(map).map_err(map_error(name))
    }

    fn view_mut(&mut self, reply: bool) -> Result<ViewMut<'_, F>, NatError> {
        let (map, name) = if reply {
            (&mut self.reply, F::REPLY_MAP)
        } else {
            (&mut self.orig, F::ORIG_MAP)
        };
        ViewMut::<F>::try_from(map).map_err(map_error(name))
    }

    /// One direction's entries, read in batches.
    fn entries(&self, reply: bool) -> Result<Entries<F>, NatError> {
        let (map, name) = self.map(reply);
        read_hash(map, name)
    }

    /// Every flow, decoded, sorted for display.
    pub fn flows(&self) -> Result<Vec<Flow<F>>, NatError> {
        let mut flows = self.flows_unordered()?;
        sort_for_display(&mut flows);
        Ok(flows)
    }

    /// Every flow, decoded, in no particular order (what expiry needs).
    pub fn flows_unordered(&self) -> Result<Vec<Flow<F>>, NatError> {
        Ok(join::<F>(self.entries(false)?, self.entries(true)?))
    }

    pub(super) fn orig_seen(&self, key: &F::Key) -> Option<u64> {
        self.view(false)
            .ok()?
            .get(key, 0)
            .ok()
            .map(|e| F::meta(&e).2)
    }

    pub(super) fn reply_seen(&self, key: &F::Key) -> Option<u64> {
        self.view(true)
            .ok()?
            .get(key, 0)
            .ok()
            .map(|e| F::meta(&e).2)
    }

    /// Deletes both directions' entries of `flow`: the original direction
    /// first, so that once its port is free (the reply entry gone) no
    /// packet can still be translated with it. Safe while traffic flows: a
    /// packet of the flow arriving after this creates a new translation.
    /// Returns whether anything was there to delete.
    pub fn remove_flow(&mut self, flow: &Flow<F>) -> Result<bool, NatError> {
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
    pub(super) fn remove(&mut self, key: &F::Key, reply: bool) -> Result<bool, NatError> {
        let name = self.map(reply).1;
        crate::bpf::maps::remove_key(&mut self.view_mut(reply)?, key)
            .map_err(|source| NatError::Map { name, source })
    }
}

/// The lab's translation tables of both families, as one (`nat list`,
/// `nat flush/delete`, the metrics). The NAT66 one is `None` in a lab
/// without `nat6_orig` pinned.
pub struct NatTables {
    pub v4: NatTable,
    pub v6: Option<Nat6Table>,
}

impl NatTables {
    pub fn open(pin_dir: &Path) -> Result<Self, NatError> {
        Ok(Self {
            v4: NatTable::open(pin_dir)?,
            v6: Nat6Table::open_if_pinned(pin_dir)?,
        })
    }

    /// Every flow of both families, IPv4 first, each family sorted for
    /// display.
    pub fn flows(&self) -> Result<Vec<AnyFlow>, NatError> {
        let mut all: Vec<AnyFlow> = self.v4.flows()?.into_iter().map(AnyFlow::V4).collect();
        if let Some(v6) = &self.v6 {
            all.extend(v6.flows()?.into_iter().map(AnyFlow::V6));
        }
        Ok(all)
    }

    /// Deletes `flow` from its family's table.
    pub fn remove_flow(&mut self, flow: &AnyFlow) -> Result<bool, NatError> {
        match (flow, &mut self.v6) {
            (AnyFlow::V4(f), _) => self.v4.remove_flow(f),
            (AnyFlow::V6(f), Some(v6)) => v6.remove_flow(f),
            (AnyFlow::V6(_), None) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::NatTimeouts;
    use netlab_common::{
        nat::{
            IPPROTO_TCP, IPPROTO_UDP, NAT_STATE_TCP_CLOSING, NAT_STATE_TCP_ESTABLISHED,
            NAT_STATE_TCP_SYN, NatEntry, NatKey,
        },
        nat6::{IPPROTO_ICMPV6, Nat6Entry, Nat6Key},
    };
    use std::time::Duration;

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
        let flows = decode::<V4>([o], [r]);
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
        let flows = decode::<V4>([o1], [r2]);
        assert_eq!(flows.len(), 2);
        let only_orig = flows.iter().find(|f| f.orig_src.port() == 5000).unwrap();
        assert!(only_orig.reply_key.is_none());
        let only_reply = flows.iter().find(|f| f.orig_src.port() == 5001).unwrap();
        assert!(only_reply.orig_key.is_none());
        assert_eq!(only_reply.translated, "203.0.113.1:40002".parse().unwrap());
        assert_eq!(only_reply.remote, "203.0.113.2:80".parse().unwrap());
        assert_eq!(only_reply.state, FlowState::SynSent);
    }

    /// NAT66 flows pair up and expire by the IPv4 rules: ICMPv6 by ICMP's
    /// timeout, TCP by state; a flow missing its reply entry is still one.
    #[test]
    fn nat66_flows_pair_up_and_expire_by_protocol_and_state() {
        use netlab_common::nat::NAT_STATE_NONE;
        const S: u64 = 1_000_000_000;
        let flow = |proto: u8, sport: u16, state: u8, seen: u64| {
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
        };
        let t = NatTimeouts {
            tcp_established: 1000,
            tcp_closing: 10,
            tcp_syn: 20,
            udp: 30,
            icmp: 5,
        };
        let now = 10_000 * S;
        let all = [
            flow(IPPROTO_UDP, 1, NAT_STATE_NONE, now - 31 * S),
            flow(IPPROTO_UDP, 2, NAT_STATE_NONE, now - 29 * S),
            flow(IPPROTO_TCP, 3, NAT_STATE_TCP_CLOSING, now - 11 * S),
            flow(IPPROTO_ICMPV6, 4, NAT_STATE_NONE, now - 6 * S),
        ];
        // One reply entry missing: a half flow, still listed.
        let flows = decode::<V6>(all.iter().map(|f| f[0]), all[..3].iter().map(|f| f[1]));
        assert_eq!(flows.len(), 4);
        assert_eq!(flows.iter().filter(|f| f.reply_key.is_some()).count(), 3);
        let icmp = flows.iter().find(|f| f.proto == Proto::Icmpv6).unwrap();
        assert_eq!(icmp.translated.port(), 40004);
        assert_eq!(icmp.remote.port(), 0);
        let mut expired: Vec<u16> = flows
            .iter()
            .filter(|f| f.is_expired(now, &t))
            .map(|f| f.orig_src.port())
            .collect();
        expired.sort();
        assert_eq!(expired, [1, 3, 4]);
    }
}
