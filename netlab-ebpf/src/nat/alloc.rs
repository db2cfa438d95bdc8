//! Port / echo-id allocation for a new translation.
//!
//! Like iptables MASQUERADE, the original source port is kept when it lies
//! in the range and is free. Otherwise candidates are probed from a start
//! derived from a hash of the flow and a random number, a bounded number of
//! times. A candidate is *claimed* by inserting its reply key into
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
const PROBES: u32 = 32;
const EEXIST: i32 = 17;

/// murmur3's 32-bit finaliser: spreads the tuple over the range.
#[inline(always)]
fn mix(mut h: u32) -> u32 {
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
pub enum Created {
    /// A new translation; both entries are in the maps.
    New(NatEntry),
    /// Another CPU translated the same flow first; this is its translation.
    Raced(NatEntry),
}

/// Creates the translation of the flow `key` (original tuple), returning
/// the translated source, or the drop reason.
#[inline(always)]
pub fn create(key: &NatKey, cfg: &NatConfig, now: u64, state: u8) -> Result<Created, Counter> {
    if cfg.port_max < cfg.port_min {
        return Err(Counter::NatDropNoPort);
    }
    let min = cfg.port_min as u32;
    let range = cfg.port_max as u32 - min + 1;
    let orig_port = u16::from_be(key.sport) as u32;
    let keep_original = orig_port >= min && orig_port <= cfg.port_max as u32;
    let start = flow_hash(key);

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
        let port = if i == 0 && keep_original {
            orig_port
        } else {
            min + start.wrapping_add(i) % range
        };
        xlat.port = (port as u16).to_be();
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
