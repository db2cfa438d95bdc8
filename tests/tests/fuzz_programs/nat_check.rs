//! The checks of one NAT case against the model: verdict, counters,
//! map growth, and the rewritten frame field by field.

use crate::{common::*, nat_lab::*};

/// Checks one case of a NAT program; returns the problems found.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_nat_case(
    lab: &NatLab,
    dir: Dir,
    frame: &[u8],
    expect: Expect,
    found: Option<NatEntry>,
    dnat: Dnat,
    seen: &Observed,
    tally: &mut Tally,
) -> Vec<String> {
    let mut p = Vec::new();
    let (verdict, out) = match (&seen.result, expect) {
        (Err(e), Expect::Refused) => {
            if !e.contains(&format!("{EINVAL}")) && !e.contains("Invalid argument") {
                p.push(format!("test run refused with an unexpected error: {e}"));
            }
            tally.refused += 1;
            return p;
        }
        (Err(e), _) => {
            p.push(format!("test run failed ({e}); expected {expect:?}"));
            return p;
        }
        (Ok(_), Expect::Refused) => {
            p.push("the kernel ran a frame the model expects it to refuse".into());
            return p;
        }
        (Ok((v, out)), _) => (*v, out.as_slice()),
    };
    *tally.verdicts.entry(verdict).or_default() += 1;
    if ![TC_ACT_OK, TCX_NEXT, TC_ACT_SHOT, TC_ACT_REDIRECT].contains(&verdict) {
        p.push(format!("undocumented verdict {verdict}"));
    }
    if out.len() != frame.len() {
        p.push(format!(
            "frame length changed from {} to {}",
            frame.len(),
            out.len()
        ));
        return p;
    }

    // Which reason counter must move, and what the maps must do.
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
    let rewrite = match expect {
        Expect::Refused => unreachable!(),
        Expect::Pass => {
            if verdict != TCX_NEXT || out != frame {
                p.push(format!(
                    "the host's packet must pass untouched (verdict {verdict}, changed: {})",
                    out != frame
                ));
            }
            if !moved_ok(&[Counter::NatPassHost]) {
                p.push(format!("counted {moved:?}, expected NatPassHost"));
            }
            false
        }
        Expect::PassUntracked => {
            if verdict != TCX_NEXT || out != frame {
                p.push(format!(
                    "an untracked later fragment must pass untouched (verdict {verdict}, changed: {})",
                    out != frame
                ));
            }
            if !moved_ok(&[Counter::NatFragUntracked]) {
                p.push(format!("counted {moved:?}, expected NatFragUntracked"));
            }
            false
        }
        Expect::LaterFragment { .. } => {
            if verdict == TC_ACT_SHOT {
                p.push("dropped a later fragment of a known datagram".into());
            }
            if !moved_ok(&[Counter::NatFragTranslated]) {
                p.push(format!("counted {moved:?}, expected NatFragTranslated"));
            }
            tally.fragments += 1;
            true
        }
        Expect::Drop(reason) => {
            if verdict != TC_ACT_SHOT {
                p.push(format!("verdict {verdict}, expected a drop ({reason:?})"));
            }
            if !moved_ok(&[reason]) {
                p.push(format!("counted {moved:?}, expected {reason:?}"));
            }
            false
        }
        Expect::Translate { .. } if found.is_some() => {
            if verdict != TC_ACT_OK {
                p.push(format!("verdict {verdict} for a flow with a translation"));
            }
            if !moved_ok(&[Counter::NatHit]) {
                p.push(format!("counted {moved:?}, expected NatHit"));
            }
            true
        }
        Expect::Translate { .. } => {
            if verdict == TC_ACT_SHOT {
                // Only an exhausted range or a full map may refuse it.
                let Expect::Translate { key, .. } = expect else {
                    unreachable!()
                };
                let allowed = allowed_new_flow_drops(lab, &key);
                if !moved_ok(&allowed) {
                    p.push(format!(
                        "dropped a new flow, counted {moved:?}; the model allows {allowed:?}"
                    ));
                }
                false
            } else {
                want_new_flow = true;
                if verdict != TC_ACT_OK {
                    p.push(format!("verdict {verdict} for a new flow"));
                }
                if !moved_ok(&[Counter::NatCreated]) {
                    p.push(format!("counted {moved:?}, expected NatCreated"));
                }
                true
            }
        }
        Expect::Reverse { .. } | Expect::IcmpError { .. } => {
            let want = if matches!(expect, Expect::Reverse { .. }) {
                Counter::NatReversed
            } else {
                Counter::NatIcmpError
            };
            if verdict == TC_ACT_SHOT {
                p.push(format!("dropped a packet of a known flow ({expect:?})"));
            }
            if dnat == Dnat::New {
                let delta = |c: Counter| seen.counter_delta[c as usize];
                if moved.len() != 2
                    || delta(Counter::NatReversed) != 1
                    || delta(Counter::DnatCreated) != 1
                {
                    p.push(format!(
                        "counted {moved:?}, expected NatReversed and DnatCreated"
                    ));
                }
                want_new_flow = true;
                tally.published += 1;
            } else if !moved_ok(&[want]) {
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
    if dir == Dir::Egress && verdict == TC_ACT_REDIRECT {
        p.push("egress redirected a packet".into());
    }

    // State: only a new, well-formed lab flow creates entries.
    let want_delta = want_new_flow as i64;
    let (want_orig, want_reply) = if dnat == Dnat::Rebuilt {
        (0, 1)
    } else {
        (want_delta, want_delta)
    };
    if (seen.orig_delta, seen.reply_delta) != (want_orig, want_reply) {
        p.push(format!(
            "NAT maps changed by {}/{} entries (orig/reply), expected {want_orig}/{want_reply}",
            seen.orig_delta, seen.reply_delta
        ));
    }
    if want_new_flow {
        tally.created += 1;
    }

    // Fragments: a translated first fragment records its datagram with the
    // address the rest gets; nothing else adds or changes an entry.
    let records = match expect {
        Expect::Translate { key, frag, .. } if rewrite && verdict != TC_ACT_SHOT => frag.map(|k| {
            let xlat = found.or_else(|| lab.lookup(NAT_ORIG_MAP, &key));
            (k, xlat.map(|e| e.addr))
        }),
        Expect::Reverse { frag, .. } if rewrite && verdict != TC_ACT_SHOT => {
            frag.map(|k| (k, found.map(|e| e.addr)))
        }
        _ => None,
    };
    match records {
        Some((k, addr)) => {
            if seen.frag_after.map(|e| e.addr) != addr || addr.is_none() {
                p.push(format!(
                    "a translated first fragment must record {k:?} -> {addr:?}, nat_frags holds {:?}",
                    seen.frag_after
                ));
            }
            let want = seen.frag_before.is_none() as i64;
            if seen.frag_delta != want {
                p.push(format!(
                    "nat_frags changed by {} entries, expected {want}",
                    seen.frag_delta
                ));
            }
        }
        None => {
            if seen.frag_delta != 0
                || seen.frag_after.map(|e| e.addr) != seen.frag_before.map(|e| e.addr)
            {
                p.push(format!(
                    "nat_frags changed by {} entries ({:?} -> {:?}), expected no change",
                    seen.frag_delta, seen.frag_before, seen.frag_after
                ));
            }
        }
    }

    if rewrite && verdict != TC_ACT_SHOT {
        tally.rewritten += 1;
        p.extend(check_rewrite(lab, dir, frame, out, expect, found, verdict));
    }
    p
}

/// Checks a translated frame: scope of the changes, values, checksums.
pub(crate) fn check_rewrite(
    lab: &NatLab,
    dir: Dir,
    frame: &[u8],
    out: &[u8],
    expect: Expect,
    found: Option<NatEntry>,
    verdict: u32,
) -> Vec<String> {
    let mut p = Vec::new();
    // The entry that decides the new values: the one the lookup found, or
    // for a new flow the one the program just created.
    let entry = match (expect, found) {
        (_, Some(e)) => e,
        (Expect::Translate { key, .. }, None) => match lab.lookup(NAT_ORIG_MAP, &key) {
            Some(e) => {
                // A new translation: both directions, consistent.
                let port = u16::from_be(e.port);
                if !(frames::PORT_MIN..=frames::PORT_MAX).contains(&port) {
                    p.push(format!(
                        "new translation uses port {port}, outside the range"
                    ));
                }
                if e.addr != u32::from_ne_bytes(frames::EXTERNAL.octets()) {
                    p.push("new translation does not use the external address".into());
                }
                // Where a reply will look, by the model, not by the
                // program's own key function.
                let reply = nat_model::reply_key(&nat_model::translation_of(&key, e.port));
                match lab.lookup(NAT_REPLY_MAP, &reply) {
                    Some(back) if back.addr == key.saddr && back.port == key.sport => {}
                    other => p.push(format!(
                        "the reply entry of a new translation is wrong: {other:?} under {reply:?} for {key:?}"
                    )),
                }
                e
            }
            None => {
                p.push(format!("translated with no nat_orig entry for {key:?}"));
                return p;
            }
        },
        _ => unreachable!("reverse translations come from a found entry"),
    };

    // Values.
    let ip = 14;
    let ttl_in = frame[ip + 8];
    match expect {
        Expect::Translate { port_at, .. } => {
            if raw_ip(out, ip + 12) != entry.addr || raw_port(out, port_at) != entry.port {
                p.push("the source is not the translation's".into());
            }
        }
        Expect::Reverse { port_at, .. } => {
            if raw_ip(out, ip + 16) != entry.addr || raw_port(out, port_at) != entry.port {
                p.push("the destination is not the original one".into());
            }
        }
        Expect::LaterFragment { .. } => {
            let at = if dir == Dir::Egress { ip + 12 } else { ip + 16 };
            if raw_ip(out, at) != entry.addr {
                p.push("a later fragment did not get its datagram's address".into());
            }
        }
        Expect::IcmpError { quoted: q, .. } => {
            let (outer, inner, port_at) = match dir {
                Dir::Egress => (
                    ip + 12,
                    q.ip + 16,
                    if q.proto == 1 { q.l4 + 4 } else { q.l4 + 2 },
                ),
                Dir::Ingress => (
                    ip + 16,
                    q.ip + 12,
                    if q.proto == 1 { q.l4 + 4 } else { q.l4 },
                ),
            };
            if raw_ip(out, outer) != entry.addr
                || raw_ip(out, inner) != entry.addr
                || raw_port(out, port_at) != entry.port
            {
                p.push("the ICMP error's addresses/quoted port are not the flow's".into());
            }
        }
        _ => unreachable!(),
    }
    let fast_path = dir == Dir::Ingress
        && entry.addr == u32::from_ne_bytes(frames::FAST_PATH_HOST.octets())
        && ttl_in > 1;
    if fast_path != (verdict == TC_ACT_REDIRECT) {
        p.push(format!(
            "fast path expected: {fast_path}, verdict {verdict} (TTL {ttl_in})"
        ));
    }
    if verdict == TC_ACT_REDIRECT
        && (out[0..6] != frames::FAST_PATH_MAC
            || out[6..12] != frames::GATEWAY_MAC
            || out[ip + 8] != ttl_in - 1)
    {
        p.push(
            "a fast-path delivery without the endpoint's MAC, the gateway's MAC or TTL-1".into(),
        );
    }

    // Scope: nothing else changed.
    let allowed = nat_model::rewritable(dir, &expect, verdict == TC_ACT_REDIRECT);
    let stray: Vec<usize> = (0..frame.len())
        .filter(|i| frame[*i] != out[*i] && !allowed.iter().any(|r| r.contains(i)))
        .collect();
    if !stray.is_empty() {
        p.push(format!(
            "bytes changed outside the translated fields: {stray:?}"
        ));
    }

    // Checksums.
    let (l4, quoted) = match expect {
        Expect::Translate { l4, .. } | Expect::Reverse { l4, .. } => (l4, None),
        Expect::IcmpError { l4, quoted, .. } => (l4, Some(quoted)),
        // The header as far as the frame holds it (the program reads only
        // its first 20 bytes of a later fragment; options may be cut).
        Expect::LaterFragment { .. } => (
            (ip + (frame[ip] & 0x0f) as usize * 4).min(frame.len()),
            None,
        ),
        _ => unreachable!(),
    };
    // The fast path's TTL change is covered by the IP header sum too.
    p.extend(verify::compare_residuals(
        &verify::residuals(frame, l4, quoted),
        &verify::residuals(out, l4, quoted),
    ));
    let exact = u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]) as usize + ip == frame.len();
    if exact && packets::valid_checksums(frame) && !packets::valid_checksums(out) {
        p.push("correct checksums in, wrong checksums out".into());
    }
    p
}
