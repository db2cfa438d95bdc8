//! Port / echo-id allocation for a new translation.
//!
//! Like iptables MASQUERADE, the original source port is kept when it lies
//! in the range and is free. Otherwise candidates are probed, a bounded
//! number of times, at places derived from a hash of the flow and a random
//! number: [`STRIDE`] ports apart, not consecutive,
//! because kept ports form long runs (a client's ephemeral ports are
//! consecutive) and 32 consecutive probes that start inside such a run all
//! fail (`bench --micro` found this: one new flow in ~600 dropped with
//! `nat_drop_no_port` while the range was 95% free). A range no larger
//! than the probe count is still probed port by port, so every free port
//! in it is found. A candidate is *claimed* by inserting its reply key into
//! `nat_reply` with BPF_NOEXIST: the kernel makes that insert atomic, so two
//! CPUs can never hand out the same (remote, external port) pair. Only then
//! is the original-direction entry written (again NOEXIST: if another CPU
//! translated the same flow meanwhile, its translation wins and our claim is
//! released). Nothing is half-created on failure, and a packet that found no
//! port is dropped, never sent untranslated.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_prandom_u32};
use netlab_common::{
    counters::Counter,
    nat::{NatConfig, NatEntry, NatKey},
};

use crate::maps::{NAT_ORIG, NAT_REPLY};

/// Candidates tried before giving up (as Cilium's SNAT_COLLISION_RETRIES
/// without large-program support): bounds the work per packet.
pub(super) const PROBES: u32 = 32;
pub(super) const EEXIST: i32 = 17;
/// Distance between probes in a range larger than [`PROBES`]: runs of taken
/// ports shorter than this are jumped over; a prime, so it is coprime with
/// any range it does not divide and one flow's probes never repeat a port.
const STRIDE: u32 = 4099;

/// murmur3's 32-bit finaliser: spreads the tuple over the range.
#[inline(always)]
pub(super) fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[inline(always)]
fn flow_hash(key: &NatKey) -> u32 {
    let h = mix(key.saddr ^ mix(key.daddr));
    let h = mix(h ^ ((key.sport as u32) << 16 | key.dport as u32) ^ key.proto as u32);
    // SAFETY: helper without arguments.
    h ^ unsafe { bpf_get_prandom_u32() }
}

/// The outcome of [`create`].
/// (`E`: the family's entry type.)
pub enum Created<E = NatEntry> {
    /// A new translation; both entries are in the maps.
    New(E),
    /// Another CPU translated the same flow first; this is its translation.
    Raced(E),
}

/// The candidate ports of one new translation, one rule for both
/// families: the original port first when it lies in the range, then
/// [`PROBES`] places derived from the flow's hash, [`STRIDE`] apart.
pub(super) struct Probes {
    min: u32,
    range: u32,
    stride: u32,
    start: u32,
    /// The original port (host order) when it lies in the range.
    keep: Option<u32>,
}

impl Probes {
    /// `None`: an empty range (nothing can be handed out). `orig_port` in
    /// network order, `hash` the flow's (already salted with a random
    /// number).
    #[inline(always)]
    pub(super) fn new(port_min: u16, port_max: u16, orig_port: u16, hash: u32) -> Option<Self> {
        if port_max < port_min {
            return None;
        }
        let min = port_min as u32;
        let range = port_max as u32 - min + 1;
        let orig = u16::from_be(orig_port) as u32;
        // Port by port in a small range (every port is probed) or one that
        // STRIDE divides (its multiples would all land on the start).
        let stride = if range <= PROBES || range.is_multiple_of(STRIDE) {
            1
        } else {
            STRIDE
        };
        Some(Probes {
            min,
            range,
            stride,
            start: hash,
            keep: (orig >= min && orig <= port_max as u32).then_some(orig),
        })
    }

    /// The `i`th candidate (`i < PROBES`), network order.
    #[inline(always)]
    pub(super) fn port(&self, i: u32) -> u16 {
        let port = match self.keep {
            Some(orig) if i == 0 => orig,
            _ => self.min + self.start.wrapping_add(i.wrapping_mul(self.stride)) % self.range,
        };
        (port as u16).to_be()
    }
}

/// Creates the translation of the flow `key` (original tuple), returning
/// the translated source, or the drop reason.
#[inline(always)]
pub fn create(key: &NatKey, cfg: &NatConfig, now: u64, state: u8) -> Result<Created, Counter> {
    let Some(probes) = Probes::new(cfg.port_min, cfg.port_max, key.sport, flow_hash(key)) else {
        return Err(Counter::NatDropNoPort);
    };

    let mut xlat = NatEntry {
        addr: cfg.external,
        port: 0,
        state,
        flags: 0,
        last_seen_ns: now,
    };
    let back = NatEntry {
        addr: key.saddr,
        port: key.sport,
        state,
        flags: 0,
        last_seen_ns: now,
    };
    let mut i: u32 = 0;
    while i < PROBES {
        xlat.port = probes.port(i);
        let reply = key.reply_key(&xlat);
        match NAT_REPLY.insert(reply, back, BPF_NOEXIST as u64) {
            Ok(()) => {
                return match NAT_ORIG.insert(key, xlat, BPF_NOEXIST as u64) {
                    Ok(()) => Ok(Created::New(xlat)),
                    Err(_) => {
                        let _ = NAT_REPLY.remove(reply);
                        // SAFETY: copied out at once.
                        match unsafe { NAT_ORIG.get(key) } {
                            Some(winner) => Ok(Created::Raced(*winner)),
                            None => Err(Counter::NatDropMapFull),
                        }
                    }
                };
            }
            Err(e) if e == -EEXIST => {}
            Err(_) => return Err(Counter::NatDropMapFull),
        }
        i += 1;
    }
    Err(Counter::NatDropNoPort)
}
