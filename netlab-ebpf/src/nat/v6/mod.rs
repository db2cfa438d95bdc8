//! NAT66: the IPv6 masquerade on the uplink (ARCHITECTURE.md §3.8), the
//! same design as the IPv4 NAT beside it with 16-byte addresses and its
//! own maps (`nat6_config`, `nat6_orig`, `nat6_reply`, `nat6_frags`):
//!
//! * [`egress`]: packets from `subnet6` leave with the uplink's global
//!   address and a port/echo id from the IPv4 NAT's range;
//! * [`ingress`]: replies, and ICMPv6 errors quoting a translated packet
//!   (Packet Too Big included: PMTU discovery works through the NAT), get
//!   the original destination back and take the fast path into the
//!   endpoint's namespace (`endpoints6`);
//! * the extension header chain is walked with a bound ([`parse`]), and a
//!   datagram's later fragments follow its first ([`frag`]).
//!
//! Only the lab's packets are touched: the uplink's own traffic,
//! link-local and multicast addresses, Neighbour Discovery (addressed to
//! the uplink's addresses or multicast, never from `subnet6`) pass to the
//! next program untouched.
//!
//! No IPv6 header checksum exists; the TCP, UDP and ICMPv6 checksums cover
//! a pseudo-header with both addresses, so every address change is an L4
//! checksum update (`csum::l4_replace_addr6`).

mod alloc;
mod egress;
mod frag;
mod icmp_error;
mod ingress;
pub(crate) mod parse;

pub use egress::egress;
pub use ingress::ingress;

use netlab_common::{nat::NAT_FLAG_ENABLED, nat6::Nat6Config};

/// A packet's flow as the translation reads it: its tuple (as it
/// arrived), where its L4 checksum and translated port/id are, its TCP
/// flags. One argument, because a BPF-to-BPF call takes five at most.
pub(crate) struct Flow {
    pub ip: parse::Ipv6,
    pub key: netlab_common::nat6::Nat6Key,
    pub check_off: usize,
    pub port_off: usize,
    /// TCP's flags (0 for UDP and ICMPv6). Not an `Option`: LLVM stores
    /// a `None`'s undefined payload byte from whatever register is at
    /// hand, a pointer included, which the verifier refuses.
    pub tcp_flags: u8,
}

impl Flow {
    /// The TCP flags for the state machine (`None`: not TCP).
    #[inline(always)]
    fn tcp(&self) -> Option<u8> {
        (self.key.proto == netlab_common::nat::IPPROTO_TCP).then_some(self.tcp_flags)
    }
}

impl Flow {
    #[inline(always)]
    fn new() -> Self {
        Flow {
            ip: parse::Ipv6 {
                hop_limit: 0,
                proto: 0,
                l4_off: 0,
                frag: None,
                later_fragment: false,
            },
            key: netlab_common::nat6::Nat6Key::default(),
            check_off: 0,
            port_off: 0,
            tcp_flags: 0,
        }
    }
}

// What a program's classifying step decided beyond a verdict (negative
// values no TC verdict takes). The steps are functions of their own
// (BPF-to-BPF calls) called one after the other from the program's IPv6
// half, so that only one of their stack frames is on the stack at a time:
// the kernel allows 512 bytes for a whole call chain.
/// `Flow` holds a TCP/UDP/echo flow to translate.
const STEP_FLOW: i32 = i32::MIN;
/// `Flow.ip` is an ICMPv6 error to translate.
const STEP_ICMP_ERROR: i32 = i32::MIN + 1;

/// The NAT66 configuration, if the control plane has enabled it.
#[inline(always)]
pub(crate) fn config() -> Option<&'static Nat6Config> {
    let cfg = crate::maps::NAT6_CONFIG.get(0)?;
    if cfg.flags & NAT_FLAG_ENABLED == 0 {
        return None;
    }
    Some(cfg)
}

/// The verdict for IPv6 while NAT66 is off (the lab has no IPv6, or the
/// uplink no global IPv6 address): the host's, counted as such while the
/// IPv4 NAT is on (as every packet not the lab's), else the next program's.
#[inline(always)]
fn off() -> i32 {
    if crate::nat::config().is_some() {
        crate::nat::pass_host()
    } else {
        crate::nat::TCX_NEXT
    }
}

/// Whether `addr` is one of the lab's (in `subnet6`).
#[inline(always)]
pub(crate) fn in_lab(cfg: &Nat6Config, addr: &[u8; 16]) -> bool {
    parse::in_prefix(addr, &cfg.subnet, cfg.prefix_len)
}
