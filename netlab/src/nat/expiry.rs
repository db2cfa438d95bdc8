//! Expiry of idle translations.
//!
//! The datapath stamps each entry with `bpf_ktime_get_ns` (CLOCK_MONOTONIC)
//! on every packet; the control plane periodically removes flows idle for
//! longer than their protocol's timeout (TCP by state, so a closed
//! connection goes after `tcp_closing` rather than `tcp_established`). LRU
//! eviction is only the last resort when the maps fill up.

use std::path::Path;

use super::{
    NatError,
    table::{AnyFlow, Family, Flow, Nat6Table, NatTable, Table},
};
use crate::plan::NatTimeouts;

/// The flows to remove at `now_ns`.
pub fn select_expired<'a, F: Family>(
    flows: &'a [Flow<F>],
    now_ns: u64,
    t: &NatTimeouts,
) -> Vec<&'a Flow<F>> {
    flows.iter().filter(|f| f.is_expired(now_ns, t)).collect()
}

/// CLOCK_MONOTONIC now, in nanoseconds: the datapath's clock.
pub fn monotonic_now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Flows examined.
    pub flows: usize,
    /// Flows removed (both directions' entries).
    pub expired: usize,
    /// Expired-looking flows left alone because a packet refreshed them
    /// while the sweep ran.
    pub refreshed: usize,
    /// Fragment-tracking entries removed (datagrams older than the
    /// reassembly timeout, see `frags`).
    pub fragments_expired: usize,
}

/// Removes the expired flows of the lab whose maps are pinned in `pin_dir`,
/// and its expired fragment-tracking entries. `now_ns` is
/// [`monotonic_now_ns`] (a parameter so callers and tests control it).
///
/// Cost: the table is read in batches (a few syscalls per map, see
/// `bpf::bulk`), then two syscalls per expired entry (check, delete).
pub fn sweep(pin_dir: &Path, timeouts: &NatTimeouts, now_ns: u64) -> Result<SweepStats, NatError> {
    sweep_reporting(pin_dir, timeouts, now_ns, &mut |_| {})
}

/// [`sweep`], calling `expired` with each flow it removed (`netlab
/// monitor` shows expiries as events). Both families: the IPv4 table and,
/// when pinned, the NAT66 one (the same timeouts, one rule).
pub fn sweep_reporting(
    pin_dir: &Path,
    timeouts: &NatTimeouts,
    now_ns: u64,
    expired: &mut dyn FnMut(AnyFlow),
) -> Result<SweepStats, NatError> {
    let mut stats = SweepStats::default();
    sweep_table(
        &mut NatTable::open(pin_dir)?,
        timeouts,
        now_ns,
        &mut stats,
        expired,
    )?;
    if let Some(mut v6) = Nat6Table::open_if_pinned(pin_dir)? {
        sweep_table(&mut v6, timeouts, now_ns, &mut stats, expired)?;
    }
    stats.fragments_expired = super::frags::sweep_fragments(pin_dir, now_ns)?;
    Ok(stats)
}

/// Removes the expired flows of one table, adding to `stats`.
fn sweep_table<F: Family>(
    table: &mut Table<F>,
    timeouts: &NatTimeouts,
    now_ns: u64,
    stats: &mut SweepStats,
    expired: &mut dyn FnMut(AnyFlow),
) -> Result<(), NatError> {
    let flows = table.flows_unordered()?;
    stats.flows += flows.len();
    for flow in select_expired(&flows, now_ns, timeouts) {
        // A packet may have arrived since the table was read: delete only
        // entries whose last-seen time is still the one we judged.
        let unchanged = |seen: Option<u64>, key: Option<F::Key>, reply: bool| match key {
            None => true,
            Some(k) => {
                let now_seen = if reply {
                    table.reply_seen(&k)
                } else {
                    table.orig_seen(&k)
                };
                now_seen.is_none() || now_seen == seen
            }
        };
        if !unchanged(flow.orig_seen_ns, flow.orig_key, false)
            || !unchanged(flow.reply_seen_ns, flow.reply_key, true)
        {
            stats.refreshed += 1;
            continue;
        }
        // Original direction first: once it is gone no packet can use the
        // translation, and only then is its port released for reuse.
        if let Some(k) = flow.orig_key {
            table.remove(&k, false)?;
        }
        if let Some(k) = flow.reply_key {
            table.remove(&k, true)?;
        }
        stats.expired += 1;
        expired(F::any(flow.clone()));
    }
    Ok(())
}

/// Removes every flow translated to an address other than `external` (the
/// uplink's address changed: replies to the old one cannot arrive, and the
/// ports they hold are released). Returns how many flows went.
pub fn flush_other_addresses(
    pin_dir: &Path,
    external: std::net::Ipv4Addr,
) -> Result<usize, NatError> {
    let mut table = NatTable::open(pin_dir)?;
    let mut flushed = 0;
    for flow in table.flows_unordered()? {
        if *flow.translated.ip() == external {
            continue;
        }
        table.remove_flow(&flow)?;
        flushed += 1;
    }
    Ok(flushed)
}

/// Removes every flow whose original source is `source` (an endpoint left
/// the lab: its flows would otherwise live on until they expire, and
/// replies would reach whoever gets the address next). Returns how many
/// flows went.
pub fn flush_source(pin_dir: &Path, source: std::net::Ipv4Addr) -> Result<usize, NatError> {
    let mut table = NatTable::open(pin_dir)?;
    let mut flushed = 0;
    for flow in table.flows_unordered()? {
        if *flow.orig_src.ip() != source {
            continue;
        }
        if let Some(k) = flow.orig_key {
            table.remove(&k, false)?;
        }
        if let Some(k) = flow.reply_key {
            table.remove(&k, true)?;
        }
        flushed += 1;
    }
    Ok(flushed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::table::{FlowState, Proto, V4, decode, timeout_for};
    use netlab_common::nat::NatKey;
    use netlab_common::nat::{
        IPPROTO_ICMP, IPPROTO_UDP, NAT_STATE_NONE, NAT_STATE_TCP_CLOSING,
        NAT_STATE_TCP_ESTABLISHED, NAT_STATE_TCP_SYN, NatEntry,
    };
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    fn flow(proto: u8, state: u8, seen: u64) -> [(NatKey, NatEntry); 2] {
        let okey = NatKey {
            saddr: u32::from_ne_bytes([192, 168, 28, 1]),
            daddr: u32::from_ne_bytes([203, 0, 113, 2]),
            sport: (1000 + proto as u16 * 10 + state as u16).to_be(),
            dport: if proto == IPPROTO_ICMP {
                0
            } else {
                80u16.to_be()
            },
            proto,
            _pad: [0; 3],
        };
        let oval = NatEntry {
            addr: u32::from_ne_bytes([203, 0, 113, 1]),
            port: (40000 + proto as u16 * 10 + state as u16).to_be(),
            state,
            flags: 0,
            last_seen_ns: seen,
        };
        let rval = NatEntry {
            addr: okey.saddr,
            port: okey.sport,
            ..oval
        };
        [(okey, oval), (okey.reply_key(&oval), rval)]
    }

    #[test]
    fn timeouts_follow_protocol_and_tcp_state() {
        let t = NatTimeouts::default();
        assert_eq!(
            timeout_for(Proto::Tcp, FlowState::Established, &t),
            Duration::from_secs(t.tcp_established)
        );
        assert_eq!(
            timeout_for(Proto::Tcp, FlowState::SynSent, &t),
            Duration::from_secs(t.tcp_syn)
        );
        assert_eq!(
            timeout_for(Proto::Tcp, FlowState::Closing, &t),
            Duration::from_secs(t.tcp_closing)
        );
        assert_eq!(
            timeout_for(Proto::Udp, FlowState::None, &t),
            Duration::from_secs(t.udp)
        );
        assert_eq!(
            timeout_for(Proto::Icmp, FlowState::None, &t),
            Duration::from_secs(t.icmp)
        );
    }

    #[test]
    fn selection_uses_each_flows_timeout_and_the_later_direction() {
        let t = NatTimeouts {
            tcp_established: 1000,
            tcp_closing: 10,
            tcp_syn: 20,
            udp: 30,
            icmp: 5,
        };
        let now = 10_000 * S;
        let established_old = flow(6, NAT_STATE_TCP_ESTABLISHED, now - 999 * S);
        let closing_old = flow(6, NAT_STATE_TCP_CLOSING, now - 11 * S);
        let syn_fresh = flow(6, NAT_STATE_TCP_SYN, now - 19 * S);
        let udp_old = flow(IPPROTO_UDP, NAT_STATE_NONE, now - 30 * S);
        let mut icmp_refreshed_by_reply = flow(IPPROTO_ICMP, NAT_STATE_NONE, now - 100 * S);
        icmp_refreshed_by_reply[1].1.last_seen_ns = now - S;
        let all = [
            established_old,
            closing_old,
            syn_fresh,
            udp_old,
            icmp_refreshed_by_reply,
        ];
        let flows = decode::<V4>(all.iter().map(|f| f[0]), all.iter().map(|f| f[1]));
        assert_eq!(flows.len(), 5);
        let expired = select_expired(&flows, now, &t);
        let mut got: Vec<(Proto, FlowState)> = expired.iter().map(|f| (f.proto, f.state)).collect();
        got.sort_by_key(|(p, s)| (p.to_string(), *s));
        assert_eq!(
            got,
            vec![
                (Proto::Tcp, FlowState::Closing),
                (Proto::Udp, FlowState::None)
            ]
        );
        let closing = expired
            .iter()
            .find(|f| f.state == FlowState::Closing)
            .unwrap();
        assert!(closing.orig_key.is_some() && closing.reply_key.is_some());
        assert_eq!(closing.expires_in(now, &t), Duration::ZERO);
        let syn = flows
            .iter()
            .find(|f| f.state == FlowState::SynSent)
            .unwrap();
        assert_eq!(syn.expires_in(now, &t), Duration::from_secs(1));
    }

    #[test]
    fn clock_is_monotonic_and_positive() {
        let a = monotonic_now_ns();
        let b = monotonic_now_ns();
        assert!(a > 0 && b >= a);
    }
}
