//! A seeded, reproducible packet fuzzer for the BPF programs
//! (tests/tests/fuzz_programs.rs, `cargo xtask fuzz`).
//!
//! * [`Rng`]: a small xorshift64* generator. Every case gets its own
//!   generator derived from (run seed, program, case index), so a case's
//!   frame depends on nothing but those three numbers.
//! * [`frames`]: valid frames the programs meet in the lab (ARP, IPv4
//!   TCP/UDP/ICMP echo, ICMP errors quoting a translated flow, IPv6) and
//!   random bytes of every length up to 1514; [`frames6`]: the IPv6 ones
//!   (ND, RA guard's prey, DHCPv6, ICMPv6 echo and errors, extension
//!   header chains, fragments).
//! * [`mutate6`]: the IPv6 fields' mutations (payload length, next header,
//!   hop limit, addresses, ICMPv6 type, inserted extension headers).
//! * [`nat6_model`], [`switch_model6`], [`verify6`]: the IPv6 halves of
//!   the models and checksum checks below.
//! * [`mutate`]: what goes wrong on a wire or in a hostile sender:
//!   truncation, flipped bits, bad lengths, IP options, IHL < 5, fragments,
//!   VLAN tags, IPv6, bad checksums, odd protocols, addresses and types.
//! * [`nat_model`]: what the NAT programs must do with a frame, written
//!   from the design (netlab/doc/ARCHITECTURE.md §3.2-§3.3), not from the
//!   programs' code.
//! * [`switch_model`]: the same for the switch port program, with a
//!   made-up lab of ports and the frames that enter on them.
//! * [`verify`]: checks on a rewritten frame, from scratch: checksums
//!   (valid in, valid out; otherwise the error is carried over unchanged),
//!   and that only the fields a translation may touch changed.

#[cfg(test)]
mod coverage6;
pub mod frames;
pub mod frames6;
pub mod mutate;
pub mod mutate6;
pub mod nat6_model;
pub mod nat_model;
pub mod switch_frames6;
pub mod switch_model;
pub mod switch_model6;
pub mod verify;
pub mod verify6;
pub mod xdp_model;

/// xorshift64* (Vigna): tiny, fast, and good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

/// splitmix64's finaliser: turns nearby seeds into unrelated states.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let s = splitmix(seed);
        Self {
            state: if s == 0 { 0x2545_f491_4f6c_dd1d } else { s },
        }
    }

    /// The generator of case `index` of `stream` (a program) in run `seed`.
    pub fn for_case(seed: u64, stream: u64, index: u64) -> Self {
        Self::new(splitmix(
            seed ^ splitmix(stream.wrapping_add(1) << 40 ^ index),
        ))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    pub fn u8(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        ((self.next_u64() >> 11) % n as u64) as usize
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// Parses a seed given as decimal or 0x-prefixed hex.
pub fn parse_seed(text: &str) -> Option<u64> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Hex dump of a frame for failure reports (one line).
pub fn hex(frame: &[u8]) -> String {
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_case(7, 1, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::for_case(7, 1, 3).next_u64(),
            Rng::for_case(7, 1, 4).next_u64()
        );
        assert_ne!(
            Rng::for_case(7, 1, 3).next_u64(),
            Rng::for_case(7, 2, 3).next_u64()
        );
        assert_ne!(
            Rng::for_case(7, 1, 3).next_u64(),
            Rng::for_case(8, 1, 3).next_u64()
        );
    }

    #[test]
    fn below_covers_the_range() {
        let mut r = Rng::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            seen[r.below(7)] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(parse_seed("0x10"), Some(16));
        assert_eq!(parse_seed("16"), Some(16));
        assert_eq!(parse_seed("x"), None);
    }
}
