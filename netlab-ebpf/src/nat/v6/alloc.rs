//! Port / echo-id allocation for a new NAT66 translation: the IPv4
//! allocator's rule (`nat::alloc`: the original port when free, else
//! spread probes, each candidate claimed by a `BPF_NOEXIST` insert of its
//! reply key into `nat6_reply`), on the IPv6 maps.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_prandom_u32};
use netlab_common::{
    counters::Counter,
    nat6::{Nat6Config, Nat6Entry, Nat6Key},
};

use crate::{
    maps::{NAT6_ORIG, NAT6_REPLY},
    nat::alloc::{Created, EEXIST, PROBES, Probes, mix},
};

/// Where the probes start: a random number. (The IPv4 allocator mixes
/// the flow's hash into one, which leaves it just as uniform; reading the
/// 32 address bytes for that costs the IPv6 half stack it does not have.)
#[inline(always)]
fn start() -> u32 {
    // SAFETY: helper without arguments.
    mix(unsafe { bpf_get_prandom_u32() })
}

/// Creates the translation of the flow `key` (original tuple).
#[inline(always)]
pub fn create(
    key: &Nat6Key,
    cfg: &Nat6Config,
    now: u64,
    state: u8,
) -> Result<Created<Nat6Entry>, Counter> {
    let Some(probes) = Probes::new(cfg.port_min, cfg.port_max, key.sport, start()) else {
        return Err(Counter::NatDropNoPort);
    };
    let mut xlat = Nat6Entry {
        addr: cfg.external,
        port: 0,
        state,
        flags: 0,
        _pad: 0,
        last_seen_ns: now,
    };
    let back = Nat6Entry {
        addr: key.saddr,
        port: key.sport,
        state,
        flags: 0,
        _pad: 0,
        last_seen_ns: now,
    };
    let mut i: u32 = 0;
    while i < PROBES {
        xlat.port = probes.port(i);
        let reply = key.reply_key(&xlat);
        match NAT6_REPLY.insert(reply, back, BPF_NOEXIST as u64) {
            Ok(()) => {
                return match NAT6_ORIG.insert(key, xlat, BPF_NOEXIST as u64) {
                    Ok(()) => Ok(Created::New(xlat)),
                    Err(_) => {
                        let _ = NAT6_REPLY.remove(reply);
                        // SAFETY: copied out at once.
                        match unsafe { NAT6_ORIG.get(key) } {
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
