//! The switch port program (`netlab_port`) for the fuzzer: a made-up lab of
//! ports, frames entering on them, and what the program must do with each
//! frame, from the design (netlab/doc/ARCHITECTURE.md §3.1) and the rules
//! the switch documents for short and foreign frames:
//!
//! * a frame entering on an endpoint's port must carry the endpoint's MAC,
//!   and for IPv4 its address (ARP: sender MAC and address, 0.0.0.0 probes
//!   allowed); otherwise it is dropped and counted `drop_spoofed`;
//! * an ARP frame without a whole Ethernet/IPv4 ARP body is dropped
//!   (`drop_truncated`); a request for an address the switch knows, behind
//!   another port, is answered in place and sent back where it came from;
//! * known unicast goes to its port (`redirect_peer` / `to_host`), back to
//!   its own port is dropped (`drop_hairpin`), anything else is flooded to
//!   every other port and the original dropped;
//! * an IPv4 frame from an endpoint that would reach the host stack —
//!   unicast to the gateway port, or flooded — whose destination is one of
//!   the host's other addresses listed in `host_addrs` is dropped
//!   (`drop_host_access`); with the map empty (host access allowed) nothing
//!   is;
//! * a frame from an endpoint that still carries a VLAN tag (TPID 0x8100
//!   or 0x88a8; test_run strips nothing, a real port strips one tag
//!   first) has the IPv4 source / ARP sender behind up to two tags checked
//!   like an untagged one (short headers: `drop_truncated`; a third tag:
//!   `drop_too_many_tags`), and never reaches the host stack: unicast to
//!   the gateway port is dropped (`drop_tagged_to_host`), a flood skips
//!   the gateway port;
//! * IPv6 from an endpoint follows the IPv6 first-hop rules
//!   ([`super::switch_model6`]: source check, RA guard, ND responder and
//!   spoofing, malformed headers, host access); IPv6 is not an "other
//!   EtherType";
//! * a frame on a device that is not a port passes untouched;
//! * learning (when on) records unknown unicast source MACs, never moving a
//!   static entry; dropped (spoofed, truncated) frames teach nothing.

use std::net::Ipv4Addr;

use netlab_common::{
    counters::Counter,
    switch::{FDB_FLAG_STATIC, FdbEntry, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY},
};

use super::switch_model6::{V6Tables, V6Verdict};
use super::{Rng, mutate};
use crate::packets::*;

/// A port of the fuzzer's switch. `ifindex`/`deliver` are filled in by the
/// harness from the devices it creates.
#[derive(Clone, Copy, Debug)]
pub struct SwPort {
    pub dev: &'static str,
    pub kind: u8,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub slot: u32,
    pub ifindex: u32,
    /// Where frames for this port go (itself, or `vbridge` for the gateway).
    pub deliver: u32,
}

const fn port(dev: &'static str, kind: u8, last: u8, slot: u32) -> SwPort {
    SwPort {
        dev,
        kind,
        mac: [0x02, 0x4e, 10, 78, 201, last],
        ip: Ipv4Addr::new(10, 78, 201, last),
        slot,
        ifindex: 0,
        deliver: 0,
    }
}

/// Three endpoint ports and the gateway port (10.78.201.0/24).
pub const PORTS: [SwPort; 4] = [
    port("fzp1", PORT_KIND_ENDPOINT, 1, 0),
    port("fzp2", PORT_KIND_ENDPOINT, 2, 1),
    port("fzp3", PORT_KIND_ENDPOINT, 3, 2),
    port("fzgw", PORT_KIND_GATEWAY, 5, 3),
];
/// The device standing in for `vbridge` (the gateway port delivers there).
pub const VBRIDGE_DEV: &str = "fzvb";
/// An ifindex that is no port.
pub const NOT_A_PORT: u32 = 0x7fff_0000;

/// The host side's other addresses the harness lists in `host_addrs`
/// while host access is not allowed: the sandbox uplink's address and its
/// subnet's broadcast address.
pub const HOST_ADDRS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(203, 0, 113, 255),
];
/// Beyond the host: the internet server (routed, never blocked).
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

const STRANGER_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 9];
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 201, 99);
const MULTICAST_MACS: [[u8; 6]; 2] = [[0x01, 0, 0x5e, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1]];

/// The ARP body (28 bytes) for Ethernet/IPv4.
pub fn arp_body(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// A frame entering the switch: the ingress ifindex, the frame, what it is.
pub struct SwCase {
    pub ingress: u32,
    pub frame: Vec<u8>,
    pub origin: String,
}

/// A frame entering on a random port (sometimes on no port at all): mostly
/// what the lab sends, some of it spoofed, some random bytes, much of it
/// mutated.
pub fn switch_case(rng: &mut Rng, ports: &[SwPort]) -> SwCase {
    let from = *rng.pick(ports);
    let to = *rng.pick(ports);
    let ingress = if rng.chance(3) {
        NOT_A_PORT
    } else {
        from.ifindex
    };
    if rng.chance(12) {
        let (frame, origin) = super::frames::random_frame(rng);
        return SwCase {
            ingress,
            frame,
            origin,
        };
    }
    // The sender's MAC and IPv4: its own, mostly.
    let (mut src_mac, mut src_ip) = (from.mac, from.ip);
    let mut what = Vec::new();
    if from.kind == PORT_KIND_GATEWAY {
        // Routed traffic from the host carries other addresses.
        src_ip = *rng.pick(&[from.ip, Ipv4Addr::new(203, 0, 113, 2)]);
    }
    if rng.chance(10) {
        src_mac = *rng.pick(&[to.mac, STRANGER_MAC, BROADCAST]);
        what.push("foreign source MAC");
    }
    if rng.chance(10) {
        src_ip = *rng.pick(&[to.ip, STRANGER_IP, Ipv4Addr::UNSPECIFIED]);
        what.push("foreign source IPv4");
    }
    let dst_mac = match rng.below(10) {
        0 => BROADCAST,
        1 => *rng.pick(&MULTICAST_MACS),
        2 => STRANGER_MAC,
        3 => from.mac,
        _ => to.mac,
    };
    let kind = rng.below(12);
    let mut what_owned = String::new();
    let mut frame = match kind {
        0..=2 => {
            // ARP: requests for a port's address, unknown ones, probes,
            // gratuitous announcements, replies.
            let tpa = *rng.pick(&[to.ip, to.ip, STRANGER_IP, src_ip]);
            let spa = if rng.chance(10) {
                Ipv4Addr::UNSPECIFIED
            } else {
                src_ip
            };
            let op = *rng.pick(&[1u16, 1, 1, 2, 3]);
            let (eth_dst, tha) = if op == 1 {
                (BROADCAST, [0; 6])
            } else {
                (to.mac, to.mac)
            };
            what.push("ARP");
            ethernet(
                if rng.chance(80) { eth_dst } else { dst_mac },
                src_mac,
                ETH_P_ARP,
                &arp_body(op, src_mac, spa, tha, tpa),
            )
        }
        3..=7 => {
            let proto = *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMP]);
            let dst_ip = if rng.chance(25) {
                // The host's other addresses, and beyond the host.
                *rng.pick(&[HOST_ADDRS[0], HOST_ADDRS[1], OUTSIDE_IP])
            } else if dst_mac == BROADCAST {
                Ipv4Addr::new(10, 78, 201, 255)
            } else {
                to.ip
            };
            let p = super::frames::l4_packet(rng, proto, src_ip, rng_port(kind), dst_ip, 80, true);
            what.push("IPv4");
            ethernet(dst_mac, src_mac, ETH_P_IP, &p)
        }
        8 if rng.chance(15) => {
            what.push("IPv6");
            let mut f = super::frames::ipv6_frame(rng);
            f[0..6].copy_from_slice(&dst_mac);
            f[6..12].copy_from_slice(&src_mac);
            f
        }
        8 | 10 | 11 => {
            let (f, kind) = super::switch_frames6::ipv6_case(rng, &from, &to, src_mac);
            what.push("IPv6");
            what_owned = kind;
            f
        }
        _ => {
            what.push("other EtherType");
            let t = *rng.pick(&[0x88ccu16, 0x8100, 0x88a8, 0x0842, 0x05dc]);
            let n = rng.range(0, 100);
            let body = rng.bytes(n);
            ethernet(dst_mac, src_mac, t, &body)
        }
    };
    if rng.chance(8) && frame.len() >= 14 {
        // Behind VLAN tags (one to three; VLAN id 0 mostly: priority tags
        // the receiving stack strips).
        let tags = rng.range(1, 3);
        for _ in 0..tags {
            let tpid = *rng.pick(&[0x8100u16, 0x88a8]);
            let vid = *rng.pick(&[0u16, 0, 0, 10]);
            let mut tag = tpid.to_be_bytes().to_vec();
            tag.extend_from_slice(&vid.to_be_bytes());
            frame.splice(12..12, tag);
        }
        what.push("VLAN-tagged");
    }
    let mut origin = format!(
        "{} {what_owned} from {} to {:02x?}",
        what.join(" "),
        from.dev,
        &frame[..6.min(frame.len())]
    );
    if rng.chance(40) {
        let m = mutate::mutate(rng, &mut frame);
        origin = format!("{origin}; {m}");
    }
    SwCase {
        ingress,
        frame,
        origin,
    }
}

fn rng_port(kind: usize) -> u16 {
    1000 + kind as u16
}

/// The verdict-deciding outcome for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwOutcome {
    /// BPF_PROG_TEST_RUN refuses the frame (too short for its EtherType).
    Refused,
    /// Entered on a device that is not a port: TC_ACT_OK, untouched.
    NotAPort,
    Drop(Counter),
    /// An ARP request answered in place by `port` (the owner of the address).
    ArpAnswered {
        owner: usize,
    },
    /// A neighbour solicitation answered in place with the NA of the
    /// target's owner, whose MAC is `mac` (`endpoints6`).
    NdAnswered {
        mac: [u8; 6],
        router: bool,
    },
    /// Redirected to `port`.
    Unicast {
        to: usize,
    },
    /// Copied to `copies` ports, the original dropped; `host`: the
    /// gateway port (other than the ingress) is among them.
    Flood {
        copies: u32,
        host: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwExpect {
    pub outcome: SwOutcome,
    /// The frame is neither ARP nor IPv4 (`other_ethertype` counts it).
    pub other_ethertype: bool,
    /// Learning sees the source MAC (the FDB may gain or move an entry).
    pub learns: bool,
}

fn is_group(mac: &[u8]) -> bool {
    mac[0] & 1 != 0
}

fn is_tag(ethertype: u16) -> bool {
    ethertype == 0x8100 || ethertype == 0x88a8
}

/// The source check of a VLAN-tagged frame from an endpoint `port`: the
/// header behind up to two tags.
fn check_tagged(port: &SwPort, frame: &[u8], v6: &V6Tables) -> Result<(), Counter> {
    let type_at = |off: usize| {
        frame
            .get(off..off + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(Counter::DropTruncated)
    };
    let mut l3 = 18;
    let mut inner = type_at(16)?;
    if is_tag(inner) {
        inner = type_at(20)?;
        l3 = 22;
        if is_tag(inner) {
            return Err(Counter::DropTooManyTags);
        }
    }
    match inner {
        ETH_P_IP => {
            let ip = frame.get(l3..l3 + 20).ok_or(Counter::DropTruncated)?;
            if ip[12..16] != port.ip.octets() {
                return Err(Counter::DropSpoofed);
            }
        }
        // IPv6 behind tags meets the IPv6 rules' drops (the tagged frame
        // is switched, never answered).
        ETH_P_IPV6 => {
            if let V6Verdict::Drop(c) = super::switch_model6::expect6(port, frame, l3, v6) {
                return Err(c);
            }
        }
        ETH_P_ARP => {
            let a = frame.get(l3..l3 + 28).ok_or(Counter::DropTruncated)?;
            if a[..6] != [0, 1, 0x08, 0x00, 6, 4] {
                return Err(Counter::DropTruncated);
            }
            let (sha, spa) = (&a[8..14], &a[14..18]);
            if sha != port.mac || (spa != port.ip.octets() && spa != [0; 4]) {
                return Err(Counter::DropSpoofed);
            }
        }
        _ => {}
    }
    Ok(())
}

/// What the port program must do with `frame` entering on `ingress`.
/// `fdb` looks a MAC up in the FDB as it is before the frame; `host_addrs`
/// is what the `host_addrs` map lists (empty: host access allowed).
pub fn expect(
    ports: &[SwPort],
    ingress: u32,
    frame: &[u8],
    learning: bool,
    fdb: &dyn Fn([u8; 6]) -> Option<FdbEntry>,
    host_addrs: &[Ipv4Addr],
    v6: &V6Tables,
) -> SwExpect {
    let done = |outcome| SwExpect {
        outcome,
        other_ethertype: false,
        learns: false,
    };
    if frame.len() < 14 {
        return done(SwOutcome::Refused);
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if (ethertype == ETH_P_IP && frame.len() < 34) || (ethertype == ETH_P_IPV6 && frame.len() < 54)
    {
        return done(SwOutcome::Refused);
    }
    let Some(pi) = ports.iter().position(|p| p.ifindex == ingress) else {
        return done(SwOutcome::NotAPort);
    };
    let port = ports[pi];
    let dst: [u8; 6] = frame[0..6].try_into().unwrap();
    let src: [u8; 6] = frame[6..12].try_into().unwrap();
    let endpoint = port.kind == PORT_KIND_ENDPOINT;
    if endpoint && src != port.mac {
        return done(SwOutcome::Drop(Counter::DropSpoofed));
    }
    let mut other_ethertype = false;
    // IPv4 from an endpoint to a listed host address: dropped if it would
    // reach the host stack.
    let mut to_host_addr = false;
    // A tagged frame from an endpoint never reaches the host stack.
    let mut tagged = false;
    match ethertype {
        ETH_P_ARP => {
            if frame.len() < 42 || frame[14..20] != [0, 1, 0x08, 0x00, 6, 4] {
                return done(SwOutcome::Drop(Counter::DropTruncated));
            }
            let a = &frame[14..42];
            let op = u16::from_be_bytes([a[6], a[7]]);
            let (sha, spa, tpa) = (&a[8..14], &a[14..18], &a[24..28]);
            if endpoint && (sha != port.mac || (spa != port.ip.octets() && spa != [0; 4])) {
                return done(SwOutcome::Drop(Counter::DropSpoofed));
            }
            if op == 1
                && spa != tpa
                && let Some(owner) = ports.iter().position(|p| p.ip.octets() == tpa)
                && ports[owner].ifindex != ingress
            {
                return done(SwOutcome::ArpAnswered { owner });
            }
        }
        ETH_P_IP => {
            if endpoint && frame[26..30] != port.ip.octets() {
                return done(SwOutcome::Drop(Counter::DropSpoofed));
            }
            to_host_addr = endpoint && host_addrs.iter().any(|a| frame[30..34] == a.octets());
        }
        ETH_P_IPV6 => match super::switch_model6::expect6(&port, frame, 14, v6) {
            V6Verdict::Drop(c) => return done(SwOutcome::Drop(c)),
            V6Verdict::Answer { mac, router } => {
                return done(SwOutcome::NdAnswered { mac, router });
            }
            V6Verdict::Forward { to_host_addr: t } => to_host_addr = t,
        },
        t if endpoint && is_tag(t) => {
            if let Err(c) = check_tagged(&port, frame, v6) {
                return done(SwOutcome::Drop(c));
            }
            tagged = true;
            other_ethertype = true;
        }
        _ => other_ethertype = true,
    }
    let learns = learning && !is_group(&src);
    let with = |outcome| SwExpect {
        outcome,
        other_ethertype,
        learns,
    };
    if !is_group(&dst) {
        // Learning runs before forwarding: a frame to its own source MAC
        // finds what learning just left there.
        let mut entry = fdb(dst);
        if learns && dst == src && entry.is_none_or(|e| e.flags & FDB_FLAG_STATIC == 0) {
            entry = Some(FdbEntry {
                port_ifindex: ingress,
                kind: port.kind,
                flags: 0,
                slot: port.slot as u16,
            });
        }
        if let Some(e) = entry {
            if e.port_ifindex == ingress {
                return with(SwOutcome::Drop(Counter::DropHairpin));
            }
            // An entry names its port twice (ifindex and slot); it is used
            // only while both agree, else the frame is unknown unicast.
            if let Some(to) = ports
                .iter()
                .position(|p| p.ifindex == e.port_ifindex && p.slot == u32::from(e.slot))
            {
                if ports[to].kind == PORT_KIND_GATEWAY && tagged {
                    return with(SwOutcome::Drop(Counter::DropTaggedToHost));
                }
                if ports[to].kind == PORT_KIND_GATEWAY && to_host_addr {
                    return with(SwOutcome::Drop(Counter::DropHostAccess));
                }
                return with(SwOutcome::Unicast { to });
            }
        }
    }
    if to_host_addr {
        // Flooding would hand a copy to the host stack.
        return with(SwOutcome::Drop(Counter::DropHostAccess));
    }
    let receives = |p: &&SwPort| p.ifindex != ingress && !(tagged && p.kind == PORT_KIND_GATEWAY);
    with(SwOutcome::Flood {
        copies: ports.iter().filter(receives).count() as u32,
        host: ports
            .iter()
            .filter(receives)
            .any(|p| p.kind == PORT_KIND_GATEWAY),
    })
}

/// The counter that tells what happened to a frame that reached a port.
pub fn outcome_counter(ports: &[SwPort], o: SwOutcome) -> Option<Counter> {
    Some(match o {
        SwOutcome::Refused => return None,
        SwOutcome::NotAPort => Counter::DropUnknownPort,
        SwOutcome::Drop(c) => c,
        SwOutcome::ArpAnswered { .. } => Counter::ArpAnswered,
        SwOutcome::NdAnswered { .. } => Counter::NdAnswered,
        SwOutcome::Unicast { to } if ports[to].kind == PORT_KIND_GATEWAY => Counter::ToHost,
        SwOutcome::Unicast { .. } => Counter::RedirectPeer,
        SwOutcome::Flood { .. } => Counter::Flooded,
    })
}

/// The ARP reply the owner of the requested address would have sent, built
/// from the request (padding kept).
pub fn arp_reply(request: &[u8], owner_mac: [u8; 6]) -> Vec<u8> {
    let mut r = request.to_vec();
    let sha: [u8; 6] = request[22..28].try_into().unwrap();
    let spa: [u8; 4] = request[28..32].try_into().unwrap();
    let tpa: [u8; 4] = request[38..42].try_into().unwrap();
    r[0..6].copy_from_slice(&sha);
    r[6..12].copy_from_slice(&owner_mac);
    r[20..22].copy_from_slice(&2u16.to_be_bytes());
    r[22..28].copy_from_slice(&owner_mac);
    r[28..32].copy_from_slice(&tpa);
    r[32..38].copy_from_slice(&sha);
    r[38..42].copy_from_slice(&spa);
    r
}
