//! The checks of one IPv6 NAT case against the NAT66 model: verdict,
//! counters, map growth, fragments, and the rewritten frame field by
//! field with every checksum from scratch.

use crate::{common::*, nat_lab::*};

/// What one IPv6 case did to the maps and counters.
pub(crate) struct Observed6 {
    pub(crate) result: Result<(u32, Vec<u8>), String>,
    pub(crate) counter_delta: Vec<i64>,
    pub(crate) orig_delta: i64,
    pub(crate) reply_delta: i64,
    pub(crate) frag_delta: i64,
    pub(crate) frag_before: Option<Nat6FragEntry>,
    pub(crate) frag_after: Option<Nat6FragEntry>,
}

/// The reason the TC ingress gives for what the XDP filter drops for
/// `reason`, or None when the filter has no such IPv6 reason.
fn tc_reason(reason: Counter) -> Option<Counter> {
    Some(match reason {
        Counter::XdpDropMalformed => Counter::NatDropMalformed,
        Counter::XdpDropLabSource => Counter::NatDropLabSource,
        Counter::XdpDropUnsolicited => Counter::NatDropUnsolicited,
        _ => return None,
    })
}

/// The uplink XDP filter on an inbound IPv6 frame. The NAT66 rules leave
/// it one duty: never drop what the TC ingress would not drop for the
/// same reason (a drop there only saves the skb), and pass the rest
/// untouched, counted.
pub(crate) fn check_xdp6(
    lab: &NatLab,
    frame: &[u8],
    tc: &Expect6,
    counters: &mut Vec<u64>,
    tally: &mut Tally,
) -> Vec<String> {
    let mut p = Vec::new();
    let result = lab.run_xdp(frame);
    let after = lab.counters();
    let moved: Vec<(Counter, i64)> = Counter::ALL
        .iter()
        .zip(after.iter().zip(counters.iter()))
        .filter(|(_, (a, b))| a != b)
        .map(|(c, (a, b))| (*c, *a as i64 - *b as i64))
        .collect();
    *counters = after;
    let (verdict, out) = match result {
        Err(e) if frame.len() < 14 => {
            tally.refused += 1;
            return if e.contains("Invalid argument") {
                p
            } else {
                vec![format!("XDP test run refused with {e}")]
            };
        }
        Err(e) => return vec![format!("XDP test run failed: {e}")],
        Ok((v, out)) => (v, out),
    };
    *tally.verdicts.entry(verdict).or_default() += 1;
    if out != frame {
        p.push("XDP changed the frame".into());
    }
    match (verdict, moved.as_slice()) {
        (XDP_PASS, [(Counter::XdpPass, 1)]) => {}
        (XDP_DROP, [(reason, 1)]) => match (tc_reason(*reason), tc) {
            (Some(want), Expect6::Drop(got)) if want == *got => {}
            // Too short for its IPv6 header: the kernel does not even run
            // the TC program on it.
            (Some(Counter::NatDropMalformed), Expect6::Refused) => {}
            _ => p.push(format!(
                "XDP drops for {} but the TC ingress expects {tc:?}",
                reason.name()
            )),
        },
        _ => p.push(format!(
            "XDP verdict {verdict} with counters {moved:?}: expected a pass (xdp_pass) or an agreed drop"
        )),
    }
    p
}

/// Why a new IPv6 flow may be refused (see `allowed_new_flow_drops`).
fn allowed_new_flow_drops6(lab: &NatLab, key: &Nat6Key) -> Vec<Counter> {
    let orig = lab.entries6(NAT6_ORIG_MAP);
    let same_reply_side = orig
        .iter()
        .filter(|(k, _)| {
            k.proto == key.proto
                && k.daddr == key.daddr
                && (k.proto == packets::PROTO_ICMPV6 || k.dport == key.dport)
        })
        .count();
    let range = (frames::PORT_MAX - frames::PORT_MIN) as usize + 1;
    let mut allowed = Vec::new();
    if same_reply_side >= ALLOC_PROBES.min(range) {
        allowed.push(Counter::NatDropNoPort);
    }
    let max = nat_plan().max_entries as usize;
    if orig.len() >= max || lab.entries6(NAT6_REPLY_MAP).len() >= max {
        allowed.push(Counter::NatDropMapFull);
    }
    allowed
}

/// Checks one IPv6 case of a NAT program; returns the problems found.
pub(crate) fn check_nat6_case(
    lab: &NatLab,
    dir: Dir,
    frame: &[u8],
    expect: Expect6,
    found: Option<Nat6Entry>,
    seen: &Observed6,
    tally: &mut Tally,
) -> Vec<String> {
    let mut p = Vec::new();
    let (verdict, out) = match (&seen.result, expect) {
        (Err(e), Expect6::Refused) => {
            if !e.contains("Invalid argument") && !e.contains(&format!("{EINVAL}")) {
                p.push(format!("test run refused with an unexpected error: {e}"));
            }
            tally.refused += 1;
            return p;
        }
        (Err(e), _) => return vec![format!("test run failed ({e}); expected {expect:?}")],
        (Ok(_), Expect6::Refused) => {
            return vec!["the kernel ran a frame the model expects it to refuse".into()];
        }
        (Ok((v, out)), _) => (*v, out.as_slice()),
    };
    *tally.verdicts.entry(verdict).or_default() += 1;
    if out.len() != frame.len() {
        return vec![format!(
            "frame length changed from {} to {}",
            frame.len(),
            out.len()
        )];
    }
    let fast = Counter::NatFastPath as usize;
    let moved: Vec<Counter> = Counter::ALL
        .iter()
        .filter(|c| **c as usize != fast && seen.counter_delta[**c as usize] != 0)
        .copied()
        .collect();
    let moved_ok = |allowed: &[Counter]| {
        moved.len() == 1
            && seen.counter_delta[moved[0] as usize] == 1
            && allowed.contains(&moved[0])
    };
    let mut want_new_flow = false;
    let untouched = |what: &str, counter: Counter, p: &mut Vec<String>| {
        if verdict != TCX_NEXT || out != frame {
            p.push(format!(
                "{what} must pass untouched (verdict {verdict}, changed: {})",
                out != frame
            ));
        }
        if !moved_ok(&[counter]) {
            p.push(format!("counted {moved:?}, expected {counter:?}"));
        }
        false
    };
    let rewrite = match expect {
        Expect6::Refused => unreachable!(),
        Expect6::Pass => untouched("the host's packet", Counter::NatPassHost, &mut p),
        Expect6::NeverTranslated => {
            let passed = verdict == TCX_NEXT && moved_ok(&[Counter::NatPassHost]);
            let dropped = verdict == TC_ACT_SHOT && moved.len() == 1;
            if out != frame || !(passed || dropped) {
                p.push(format!(
                    "a lab packet to a link-local or multicast destination must not be translated \
                     (verdict {verdict}, changed: {}, counted {moved:?})",
                    out != frame
                ));
            }
            false
        }
        Expect6::PassUntracked => untouched(
            "an untracked later fragment",
            Counter::NatFragUntracked,
            &mut p,
        ),
        Expect6::LaterFragment { .. } => {
            if verdict == TC_ACT_SHOT {
                p.push("dropped a later fragment of a known datagram".into());
            }
            if !moved_ok(&[Counter::NatFragTranslated]) {
                p.push(format!("counted {moved:?}, expected NatFragTranslated"));
            }
            tally.fragments += 1;
            true
        }
        Expect6::Drop(reason) => {
            if verdict != TC_ACT_SHOT {
                p.push(format!("verdict {verdict}, expected a drop ({reason:?})"));
            }
            if !moved_ok(&[reason]) {
                p.push(format!("counted {moved:?}, expected {reason:?}"));
            }
            false
        }
        Expect6::Translate { key, .. } => {
            if found.is_some() {
                if verdict != TC_ACT_OK || !moved_ok(&[Counter::NatHit]) {
                    p.push(format!(
                        "a known flow: verdict {verdict}, counted {moved:?}, expected TC_ACT_OK and NatHit"
                    ));
                }
                true
            } else if verdict == TC_ACT_SHOT {
                let allowed = allowed_new_flow_drops6(lab, &key);
                if !moved_ok(&allowed) {
                    p.push(format!(
                        "dropped a new flow, counted {moved:?}; the model allows {allowed:?}"
                    ));
                }
                false
            } else {
                want_new_flow = true;
                if verdict != TC_ACT_OK || !moved_ok(&[Counter::NatCreated]) {
                    p.push(format!(
                        "a new flow: verdict {verdict}, counted {moved:?}, expected TC_ACT_OK and NatCreated"
                    ));
                }
                true
            }
        }
        Expect6::Reverse { .. } | Expect6::IcmpError { .. } => {
            let want = if matches!(expect, Expect6::Reverse { .. }) {
                Counter::NatReversed
            } else {
                Counter::NatIcmpError
            };
            if verdict == TC_ACT_SHOT {
                p.push(format!("dropped a packet of a known flow ({expect:?})"));
            }
            if !moved_ok(&[want]) {
                p.push(format!("counted {moved:?}, expected {want:?}"));
            }
            true
        }
    };
    let fast_moved = seen.counter_delta[fast];
    if fast_moved != (verdict == TC_ACT_REDIRECT) as i64 {
        p.push(format!(
            "nat_fast_path moved by {fast_moved} with verdict {verdict}"
        ));
    }
    let want = want_new_flow as i64;
    if (seen.orig_delta, seen.reply_delta) != (want, want) {
        p.push(format!(
            "NAT66 maps changed by {}/{} entries (orig/reply), expected {want}/{want}",
            seen.orig_delta, seen.reply_delta
        ));
    }
    if want_new_flow {
        tally.created += 1;
    }
    let records = match expect {
        Expect6::Translate { key, frag, .. } if rewrite && verdict != TC_ACT_SHOT => {
            frag.map(|k| {
                let xlat = found.or_else(|| lab.lookup6(NAT6_ORIG_MAP, &key));
                (k, xlat.map(|e| e.addr))
            })
        }
        Expect6::Reverse { frag, .. } if rewrite && verdict != TC_ACT_SHOT => {
            frag.map(|k| (k, found.map(|e| e.addr)))
        }
        _ => None,
    };
    match records {
        Some((k, addr)) => {
            if seen.frag_after.map(|e| e.addr) != addr || addr.is_none() {
                p.push(format!(
                    "a translated first fragment must record {k:?} -> {addr:?}, nat6_frags holds {:?}",
                    seen.frag_after
                ));
            }
            let want = seen.frag_before.is_none() as i64;
            if seen.frag_delta != want {
                p.push(format!(
                    "nat6_frags changed by {} entries, expected {want}",
                    seen.frag_delta
                ));
            }
        }
        None => {
            if seen.frag_delta != 0
                || seen.frag_after.map(|e| e.addr) != seen.frag_before.map(|e| e.addr)
            {
                p.push(format!(
                    "nat6_frags changed by {} entries ({:?} -> {:?}), expected no change",
                    seen.frag_delta, seen.frag_before, seen.frag_after
                ));
            }
        }
    }
    if rewrite && verdict != TC_ACT_SHOT {
        tally.rewritten += 1;
        p.extend(check_rewrite6(lab, dir, frame, out, expect, found, verdict));
    }
    p
}

fn addr_at(f: &[u8], at: usize) -> [u8; 16] {
    f[at..at + 16].try_into().unwrap()
}

/// Checks a translated IPv6 frame: values, scope of the changes, checksums.
fn check_rewrite6(
    lab: &NatLab,
    dir: Dir,
    frame: &[u8],
    out: &[u8],
    expect: Expect6,
    found: Option<Nat6Entry>,
    verdict: u32,
) -> Vec<String> {
    let mut p = Vec::new();
    let entry = match (expect, found) {
        (_, Some(e)) => e,
        (Expect6::Translate { key, .. }, None) => match lab.lookup6(NAT6_ORIG_MAP, &key) {
            Some(e) => {
                let port = u16::from_be(e.port);
                if !(frames::PORT_MIN..=frames::PORT_MAX).contains(&port) {
                    p.push(format!(
                        "new translation uses port {port}, outside the range"
                    ));
                }
                if e.addr != frames6::EXTERNAL6.octets() {
                    p.push("new translation does not use the external address".into());
                }
                let reply = nat6_model::reply_key6(&nat6_model::translation_of6(&key, e.port));
                match lab.lookup6(NAT6_REPLY_MAP, &reply) {
                    Some(back) if back.addr == key.saddr && back.port == key.sport => {}
                    other => p.push(format!(
                        "the reply entry of a new translation is wrong: {other:?} under {reply:?} for {key:?}"
                    )),
                }
                e
            }
            None => return vec![format!("translated with no nat6_orig entry for {key:?}")],
        },
        _ => unreachable!("reverse translations come from a found entry"),
    };
    let ip = 14;
    let outer = if dir == Dir::Egress { ip + 8 } else { ip + 24 };
    let port_ok = |at: usize| raw_port(out, at) == entry.port;
    match expect {
        Expect6::Translate { port_at, .. } | Expect6::Reverse { port_at, .. } => {
            if addr_at(out, outer) != entry.addr || !port_ok(port_at) {
                p.push("the translated address/port is not the entry's".into());
            }
        }
        Expect6::LaterFragment { .. } => {
            if addr_at(out, outer) != entry.addr {
                p.push("a later fragment did not get its datagram's address".into());
            }
        }
        Expect6::IcmpError { quoted: q, .. } => {
            let (inner, port_at) = match dir {
                Dir::Egress => (q.ip + 24, if q.proto == 58 { q.l4 + 4 } else { q.l4 + 2 }),
                Dir::Ingress => (q.ip + 8, if q.proto == 58 { q.l4 + 4 } else { q.l4 }),
            };
            if addr_at(out, outer) != entry.addr
                || addr_at(out, inner) != entry.addr
                || !port_ok(port_at)
            {
                p.push("the ICMPv6 error's addresses/quoted port are not the flow's".into());
            }
        }
        _ => unreachable!(),
    }
    let hop_in = frame[ip + 7];
    let fast_path =
        dir == Dir::Ingress && entry.addr == frames6::FAST_PATH_HOST6.octets() && hop_in > 1;
    if fast_path != (verdict == TC_ACT_REDIRECT) {
        p.push(format!(
            "fast path expected: {fast_path}, verdict {verdict} (hop limit {hop_in})"
        ));
    }
    if verdict == TC_ACT_REDIRECT
        && (out[0..6] != frames::FAST_PATH_MAC
            || out[6..12] != frames::GATEWAY_MAC
            || out[ip + 7] != hop_in - 1)
    {
        p.push(
            "a fast-path delivery without the endpoint's MAC, the gateway's MAC or hop limit - 1"
                .into(),
        );
    }
    let allowed = verify6::rewritable6(dir, &expect, frame.len(), verdict == TC_ACT_REDIRECT);
    let stray: Vec<usize> = (0..frame.len())
        .filter(|i| frame[*i] != out[*i] && !allowed.iter().any(|r| r.contains(i)))
        .collect();
    if !stray.is_empty() {
        p.push(format!(
            "bytes changed outside the translated fields: {stray:?}"
        ));
    }
    let (upper, quoted) = match expect {
        Expect6::Translate { l4, proto, .. } | Expect6::Reverse { l4, proto, .. } => {
            (Some((l4, proto)), None)
        }
        Expect6::IcmpError { l4, quoted, .. } => (Some((l4, packets::PROTO_ICMPV6)), Some(quoted)),
        _ => (None, None),
    };
    p.extend(verify::compare_residuals(
        &verify6::residuals6(frame, upper, quoted),
        &verify6::residuals6(out, upper, quoted),
    ));
    let exact =
        u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]) as usize + ip + 40 == frame.len();
    if exact && packets::valid_checksums6(frame) && !packets::valid_checksums6(out) {
        p.push("correct checksums in, wrong checksums out".into());
    }
    p
}
