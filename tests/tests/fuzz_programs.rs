//! Every BPF program under BPF_PROG_TEST_RUN with fuzzed frames (random
//! bytes, mutated valid frames; tests/src/fuzz/). Per case:
//!
//! * the verdict is one the program documents (TC_ACT_OK, TC_ACT_SHOT,
//!   TC_ACT_REDIRECT, and for the uplink programs TCX_NEXT on traffic that
//!   is not the lab's), and the one the design asks for (tests/src/fuzz/
//!   nat_model.rs); a frame the kernel refuses to run (EINVAL: shorter
//!   than its Ethernet/IPv4 header) must be one the model says it refuses;
//! * exactly one reason counter moved, the expected one, and the fast-path
//!   counter moved exactly when the verdict is a redirect;
//! * NAT state: the translation maps grow by exactly one entry each when,
//!   and only when, a well-formed lab packet started a new translation; the
//!   new entries say what the packet was and use a port from the range;
//! * a rewritten frame changed only the fields its translation may change,
//!   to the values in the map, with checksums from scratch that are right
//!   when they were right before and exactly as wrong when they were wrong.
//!
//! The run is seeded: `NETLAB_FUZZ_SEED` (default below) and
//! `NETLAB_FUZZ_CASES` (per program) reproduce it; every failure names the
//! seed and the case index. `cargo xtask fuzz --cases N [--seed S]` runs
//! long ones. The object is loaded with its maps pinned in
//! `/sys/fs/bpf/netlab-test-fuzz-<pid>-<name>/`, removed on drop.

use std::{collections::BTreeMap, path::PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, PerCpuArray},
    programs::SchedClassifier,
};
use netlab::{
    nat,
    plan::{NatPlan, NatTimeouts},
};
use netlab_common::{
    counters::Counter,
    nat::{
        NAT_ENTRY_DNAT, NAT_FRAGS_MAP, NAT_ORIG_MAP, NAT_REPLY_MAP, NatEntry, NatFragEntry,
        NatFragKey, NatKey,
    },
    switch::{
        Endpoint, FDB_FLAG_LEARNED, FDB_FLAG_STATIC, FdbEntry, FdbKey, HOST_ADDR_LOCAL,
        PORT_KIND_GATEWAY, PortInfo, SwitchConfig,
    },
};
use netlab_tests::fuzz::{
    Rng, frames,
    frames::{Dir, Translation},
    hex, mutate,
    nat_model::{self, Expect},
    parse_seed,
    switch_model::{self, SwCase, SwExpect, SwOutcome, SwPort},
    verify,
    xdp_model::{self, XdpExpect},
};
use netlab_tests::private_netns::{add_veth_port, assert_private_netns, in_private_netns};

const TC_ACT_OK: u32 = 0;
const UPLINK_XDP: &str = netlab::datapath::xdp::UPLINK_XDP_PROGRAM;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// TC_ACT_UNSPEC (-1) as the test run reports it: the uplink programs hand
/// traffic that is not the lab's to the next program in the tcx chain.
const TCX_NEXT: u32 = u32::MAX;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;
const EINVAL: i32 = 22;

/// Default seed of the suite's run ("netlab" in ASCII).
const DEFAULT_SEED: u64 = 0x6e65_746c_6162;
/// Default cases per program in the suite's run.
const DEFAULT_CASES: u64 = 4000;
/// The NAT maps are emptied when they hold more translations (or
/// fragmented datagrams) than this, so counting them stays cheap.
const MAX_FLOWS: usize = 48;
/// Stream numbers for [`Rng::for_case`], one per fuzzed program family.
const STREAM_NAT: u64 = 1;

fn seed_and_cases() -> (u64, u64) {
    let seed = std::env::var("NETLAB_FUZZ_SEED")
        .ok()
        .map(|s| parse_seed(&s).unwrap_or_else(|| panic!("NETLAB_FUZZ_SEED={s:?} is not a number")))
        .unwrap_or(DEFAULT_SEED);
    let cases = std::env::var("NETLAB_FUZZ_CASES")
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("NETLAB_FUZZ_CASES={s:?} is not a number"))
        })
        .unwrap_or(DEFAULT_CASES);
    (seed, cases)
}

/// bpffs on /sys/fs/bpf, mounted by the library's own helper if needed.
fn ensure_bpffs() {
    netlab_tests::netlab::bpf::fs::ensure_bpffs().expect("bpffs on /sys/fs/bpf");
}

/// One loaded copy of the eBPF object, its maps pinned in a directory of
/// its own (removed on drop).
struct Loaded {
    ebpf: Option<Ebpf>,
    dir: PathBuf,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.ebpf = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nat_plan() -> NatPlan {
    NatPlan {
        uplink_dev: "uplink".into(),
        subnet: frames::SUBNET,
        prefix_len: frames::PREFIX_LEN,
        port_min: frames::PORT_MIN,
        port_max: frames::PORT_MAX,
        max_entries: 4096,
        timeouts: NatTimeouts::default(),
    }
}

impl Loaded {
    fn pin_dir(name: &str) -> PathBuf {
        ensure_bpffs();
        let dir = PathBuf::from(format!(
            "/sys/fs/bpf/netlab-test-fuzz-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pin dir");
        dir
    }

    /// The NAT programs, configured for the fuzzer's addresses, with the
    /// fast path on and one endpoint known to it.
    fn nat(name: &str) -> Self {
        let dir = Self::pin_dir(name);
        // Owned (removed on drop) before anything can fail.
        let mut lab = Self { ebpf: None, dir };
        let dir = lab.dir.clone();
        let plan = nat_plan();
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(&dir);
        netlab::bpf::loader::set_map_sizes(&mut loader, &nat::map_sizes(&plan)).expect("sizes");
        let mut ebpf = loader.load(netlab::EBPF_OBJECT).expect("load object");
        for prog in [nat::EGRESS_PROGRAM, nat::INGRESS_PROGRAM] {
            let p: &mut SchedClassifier = ebpf.program_mut(prog).unwrap().try_into().unwrap();
            netlab::bpf::loader::load_retrying(p)
                .unwrap_or_else(|e| panic!("verifier rejected {prog}: {e:?}"));
        }
        let xdp: &mut aya::programs::Xdp =
            ebpf.program_mut(UPLINK_XDP).unwrap().try_into().unwrap();
        netlab::bpf::loader::retry_eagain(|| xdp.load())
            .unwrap_or_else(|e| panic!("verifier rejected {UPLINK_XDP}: {e:?}"));
        nat::configure(&dir, &plan, frames::EXTERNAL, frames::GATEWAY_MAC, true)
            .expect("configure the NAT");
        netlab::bpf::maps::SwitchMaps::open(&dir)
            .and_then(|mut maps| {
                maps.set_endpoint(
                    netlab::bpf::key::ipv4_key(frames::FAST_PATH_HOST),
                    frames::FAST_PATH_MAC,
                    frames::FAST_PATH_IFINDEX,
                )
            })
            .expect("fast-path endpoint");
        let published = netlab_tests::published_ports(&frames::PUBLISHED);
        nat::sync_published(&lab.dir, &published).expect("published ports");
        lab.ebpf = Some(ebpf);
        lab
    }

    fn ebpf(&self) -> &Ebpf {
        self.ebpf.as_ref().unwrap()
    }

    fn ebpf_mut(&mut self) -> &mut Ebpf {
        self.ebpf.as_mut().unwrap()
    }

    /// Runs `prog` on `frame`: the verdict and the frame as the program
    /// left it, or the errno of a refused test run.
    fn run(&self, prog: &str, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        let p: &SchedClassifier = self.ebpf().program(prog).unwrap().try_into().unwrap();
        netlab_tests::test_run::test_run(p, frame, None).map_err(|e| format!("{e:?}"))
    }

    /// Runs the uplink XDP program on `frame`.
    fn run_xdp(&self, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        let p: &aya::programs::Xdp = self.ebpf().program(UPLINK_XDP).unwrap().try_into().unwrap();
        netlab_tests::test_run::test_run_xdp(p, frame, None).map_err(|e| format!("{e:?}"))
    }

    /// Every counter, summed over the CPUs.
    fn counters(&self) -> Vec<u64> {
        let arr: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf().map("counters").expect("counters map")).unwrap();
        Counter::ALL
            .iter()
            .map(|c| arr.get(&(*c as u32), 0).unwrap().iter().sum())
            .collect()
    }

    fn nat_map(&self, name: &str) -> HashMap<&aya::maps::MapData, NatKey, NatEntry> {
        HashMap::try_from(self.ebpf().map(name).expect("NAT map")).unwrap()
    }

    fn lookup(&self, name: &str, key: &NatKey) -> Option<NatEntry> {
        self.nat_map(name).get(key, 0).ok()
    }

    fn entries(&self, name: &str) -> Vec<(NatKey, NatEntry)> {
        self.nat_map(name)
            .iter()
            .map(|r| r.expect("iterate a NAT map"))
            .collect()
    }

    fn frags_map(&self) -> HashMap<&aya::maps::MapData, NatFragKey, NatFragEntry> {
        HashMap::try_from(self.ebpf().map(NAT_FRAGS_MAP).expect("nat_frags map")).unwrap()
    }

    fn frag_lookup(&self, key: &NatFragKey) -> Option<NatFragEntry> {
        self.frags_map().get(key, 0).ok()
    }

    fn frag_entries(&self) -> Vec<(NatFragKey, NatFragEntry)> {
        self.frags_map()
            .iter()
            .map(|r| r.expect("iterate nat_frags"))
            .collect()
    }

    fn clear_frags(&mut self) {
        let keys: Vec<NatFragKey> = self.frag_entries().into_iter().map(|(k, _)| k).collect();
        let mut map: HashMap<_, NatFragKey, NatFragEntry> =
            HashMap::try_from(self.ebpf_mut().map_mut(NAT_FRAGS_MAP).unwrap()).unwrap();
        for k in keys {
            map.remove(&k).expect("remove a fragment entry");
        }
    }

    fn clear(&mut self, name: &str) {
        let keys: Vec<NatKey> = self.entries(name).into_iter().map(|(k, _)| k).collect();
        let mut map: HashMap<_, NatKey, NatEntry> =
            HashMap::try_from(self.ebpf_mut().map_mut(name).unwrap()).unwrap();
        for k in keys {
            map.remove(&k).expect("remove a NAT entry");
        }
    }
}

/// Tallies of one program's run, printed for the README's figures.
#[derive(Default)]
struct Tally {
    cases: u64,
    refused: u64,
    verdicts: BTreeMap<u32, u64>,
    rewritten: u64,
    created: u64,
    /// Later fragments translated with their datagram's recorded address.
    fragments: u64,
    /// Translations created by a packet to a published port.
    published: u64,
    failures: u64,
}

struct Failure {
    program: &'static str,
    index: u64,
    origin: String,
    frame: Vec<u8>,
    problems: Vec<String>,
}

/// The translations the maps hold, for building replies and errors: read
/// from `nat_orig` (the lab's tuple and its port), so the replies built
/// from them are what the design says a reply is, whatever key the
/// program filed the reply direction under.
fn translations(lab: &Loaded) -> Vec<Translation> {
    lab.entries(NAT_ORIG_MAP)
        .into_iter()
        .map(|(k, v)| nat_model::translation_of(&k, v.port))
        .collect()
}

/// The allocator probes at most this many candidate ports for a new flow
/// (the design's bounded probe).
const ALLOC_PROBES: usize = 32;

/// Why a new flow may be refused, exactly: every candidate port can be
/// taken only when at least min(probes, range) translations already share
/// its reply side (remote address, remote port, protocol); a map can only
/// refuse when it holds `max_entries`. With the fuzzer's 1 000 ports,
/// <= MAX_FLOWS flows and 4 096 entries, neither happens: a drop there
/// fails the case.
fn allowed_new_flow_drops(lab: &Loaded, key: &NatKey) -> Vec<Counter> {
    let orig = lab.entries(NAT_ORIG_MAP);
    let same_reply_side = orig
        .iter()
        .filter(|(k, _)| {
            k.proto == key.proto
                && k.daddr == key.daddr
                && (k.proto == netlab_tests::packets::PROTO_ICMP || k.dport == key.dport)
        })
        .count();
    let range = (frames::PORT_MAX - frames::PORT_MIN) as usize + 1;
    let mut allowed = Vec::new();
    if same_reply_side >= ALLOC_PROBES.min(range) {
        allowed.push(Counter::NatDropNoPort);
    }
    let max_entries = nat_plan().max_entries as usize;
    if orig.len() >= max_entries || lab.entries(NAT_REPLY_MAP).len() >= max_entries {
        allowed.push(Counter::NatDropMapFull);
    }
    allowed
}

fn raw_ip(f: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(f[at..at + 4].try_into().unwrap())
}

fn raw_port(f: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([f[at], f[at + 1]])
}

/// What one case did to the maps and counters, for the checks.
struct Observed {
    result: Result<(u32, Vec<u8>), String>,
    counter_delta: Vec<i64>,
    orig_delta: i64,
    reply_delta: i64,
    frag_delta: i64,
    /// The entry of the datagram the frame records (first fragment) or
    /// uses (later fragment), before and after the run.
    frag_before: Option<NatFragEntry>,
    frag_after: Option<NatFragEntry>,
}

/// Whether an inbound packet meets a published port (`nat_publish`)
/// rather than an existing translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dnat {
    /// No: an existing translation, or the host's.
    No,
    /// The first packet of a published flow: both entries are created.
    New,
    /// The flow's `nat_orig` entry is there but its reply entry is not
    /// (evicted): the reply entry is created again.
    Rebuilt,
}

/// Classifies an inbound packet the model calls a reply (`Reverse`) for
/// which `nat_reply` holds nothing: a published port's first packet gets
/// the namespace's address and port (returned as the entry the checks
/// compare against), unless `nat_orig` holds its tuple for another flow,
/// which makes it a drop.
fn classify_dnat(lab: &Loaded, key: &NatKey) -> Result<(Dnat, Option<NatEntry>), Counter> {
    let external = u32::from_ne_bytes(frames::EXTERNAL.octets());
    let Some((addr, port)) = frames::published(key.dport, key.proto)
        .filter(|_| key.daddr == external && matches!(key.proto, 6 | 17))
    else {
        return Ok((Dnat::No, None));
    };
    let to_namespace = NatEntry {
        addr,
        port,
        ..Default::default()
    };
    match lab.lookup(NAT_ORIG_MAP, &key.orig_key(&to_namespace)) {
        None => Ok((Dnat::New, Some(to_namespace))),
        Some(e) if e.flags & NAT_ENTRY_DNAT != 0 && e.addr == key.daddr && e.port == key.dport => {
            Ok((Dnat::Rebuilt, Some(to_namespace)))
        }
        Some(_) => Err(Counter::DnatDropConflict),
    }
}

/// Checks one case of a NAT program; returns the problems found.
#[allow(clippy::too_many_arguments)]
fn check_nat_case(
    lab: &Loaded,
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
fn check_rewrite(
    lab: &Loaded,
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
    if exact && verify::valid_checksums(frame) && !verify::valid_checksums(out) {
        p.push("correct checksums in, wrong checksums out".into());
    }
    p
}

/// Runs `cases` cases per NAT program; returns the tallies and failures.
fn fuzz_nat(seed: u64, cases: u64) -> (BTreeMap<&'static str, Tally>, Vec<Failure>) {
    let mut lab = Loaded::nat("nat");
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut known = translations(&lab);
    let mut datagrams: Vec<NatFragKey> = Vec::new();
    let mut counters = lab.counters();
    let (mut n_orig, mut n_reply, mut n_frags) = (0i64, 0i64, 0i64);
    let mut done = [0u64; 2];
    let mut index = 0u64;
    // A line every few seconds where there is no terminal (CI logs).
    let progress = netlab_tests::netlab::progress::Progress::new("fuzz uplink", Some(2 * cases));
    while done.iter().any(|d| *d < cases) {
        progress.set_position(done[0] + done[1]);
        let mut rng = Rng::for_case(seed, STREAM_NAT, index);
        let mut dir = if rng.chance(50) {
            Dir::Egress
        } else {
            Dir::Ingress
        };
        if done[dir as usize] >= cases {
            dir = if dir == Dir::Egress {
                Dir::Ingress
            } else {
                Dir::Egress
            };
        }
        let (mut frame, mut origin) = if rng.chance(15) {
            frames::random_frame(&mut rng)
        } else {
            frames::valid_frame(&mut rng, dir, &known, &datagrams)
        };
        if rng.chance(65) && !origin.starts_with("random") {
            let m = mutate::mutate(&mut rng, &mut frame);
            origin = format!("{origin}; {m}");
        }
        let program = match dir {
            Dir::Egress => nat::EGRESS_PROGRAM,
            Dir::Ingress => nat::INGRESS_PROGRAM,
        };

        let mut expect = nat_model::expect(dir, &frame);
        let mut found = match expect {
            Expect::Translate { key, .. } => lab.lookup(NAT_ORIG_MAP, &key),
            Expect::Reverse { key, .. } => lab.lookup(NAT_REPLY_MAP, &key),
            Expect::IcmpError { key, .. } => lab.lookup(
                if dir == Dir::Egress {
                    NAT_ORIG_MAP
                } else {
                    NAT_REPLY_MAP
                },
                &key,
            ),
            // What decides a later fragment's fate is its datagram's entry.
            Expect::LaterFragment { key } => lab.frag_lookup(&key).map(|e| NatEntry {
                addr: e.addr,
                ..Default::default()
            }),
            _ => None,
        };
        let mut dnat = Dnat::No;
        if let Expect::Reverse { key, .. } = expect
            && found.is_none()
        {
            match classify_dnat(&lab, &key) {
                Ok((kind, entry)) => (dnat, found) = (kind, entry),
                Err(reason) => expect = Expect::Drop(reason),
            }
        }
        match expect {
            Expect::Reverse { .. } if found.is_none() => expect = Expect::Pass,
            Expect::IcmpError { .. } if found.is_none() => expect = nat_model::not_ours(dir),
            Expect::LaterFragment { .. } if found.is_none() => {
                expect = nat_model::fragment_not_tracked(dir)
            }
            _ => {}
        }
        let frag_key = match expect {
            Expect::Translate { frag, .. } | Expect::Reverse { frag, .. } => frag,
            Expect::LaterFragment { key } => Some(key),
            _ => None,
        };
        let frag_before = frag_key.and_then(|k| lab.frag_lookup(&k));

        if dir == Dir::Ingress {
            // The uplink XDP program sees the frame first (where it is
            // attached): its own model, and the TC ingress's agreement.
            let tally = tallies.entry(UPLINK_XDP).or_default();
            let problems = check_xdp_case(&lab, &frame, &expect, &mut counters, tally);
            tally.cases += 1;
            if !problems.is_empty() {
                tally.failures += 1;
                failures.push(Failure {
                    program: UPLINK_XDP,
                    index,
                    origin: origin.clone(),
                    frame: frame.clone(),
                    problems,
                });
            }
        }
        let result = lab.run(program, &frame);
        let after = lab.counters();
        let orig_now = lab.entries(NAT_ORIG_MAP).len() as i64;
        let reply_now = lab.entries(NAT_REPLY_MAP).len() as i64;
        let frags_now = lab.frag_entries().len() as i64;
        let seen = Observed {
            result,
            counter_delta: after
                .iter()
                .zip(&counters)
                .map(|(a, b)| *a as i64 - *b as i64)
                .collect(),
            orig_delta: orig_now - n_orig,
            reply_delta: reply_now - n_reply,
            frag_delta: frags_now - n_frags,
            frag_before,
            frag_after: frag_key.and_then(|k| lab.frag_lookup(&k)),
        };
        let tally = tallies.entry(program).or_default();
        tally.cases += 1;
        let problems = check_nat_case(&lab, dir, &frame, expect, found, dnat, &seen, tally);
        if !problems.is_empty() {
            tally.failures += 1;
            failures.push(Failure {
                program,
                index,
                origin,
                frame: frame.clone(),
                problems,
            });
        }
        counters = after;
        if (orig_now, reply_now) != (n_orig, n_reply) {
            if orig_now as usize > MAX_FLOWS {
                lab.clear(NAT_ORIG_MAP);
                lab.clear(NAT_REPLY_MAP);
            }
            known = translations(&lab);
            n_orig = lab.entries(NAT_ORIG_MAP).len() as i64;
            n_reply = lab.entries(NAT_REPLY_MAP).len() as i64;
        }
        if frags_now != n_frags {
            if frags_now as usize > MAX_FLOWS {
                lab.clear_frags();
            }
            datagrams = lab.frag_entries().into_iter().map(|(k, _)| k).collect();
            n_frags = datagrams.len() as i64;
        }
        done[dir as usize] += 1;
        index += 1;
    }
    progress.finish_and_clear();
    (tallies, failures)
}

/// Runs the uplink XDP program on `frame` and checks it against
/// `xdp_model`: the verdict, the frame left untouched, exactly its counter
/// moved by one, and (a drop) the TC ingress's expectation `tc` dropping
/// too. Updates `counters` to the values after the run.
fn check_xdp_case(
    lab: &Loaded,
    frame: &[u8],
    tc: &Expect,
    counters: &mut Vec<u64>,
    tally: &mut Tally,
) -> Vec<String> {
    let mut problems = Vec::new();
    let want = xdp_model::expect(frame);
    let result = lab.run_xdp(frame);
    match &result {
        Ok((v, _)) => *tally.verdicts.entry(*v).or_default() += 1,
        Err(_) => tally.refused += 1,
    }
    let after = lab.counters();
    let moved: Vec<(&str, i64)> = Counter::ALL
        .iter()
        .zip(after.iter().zip(counters.iter()))
        .filter(|(_, (a, b))| a != b)
        .map(|(c, (a, b))| (c.name(), *a as i64 - *b as i64))
        .collect();
    *counters = after;
    let (verdict, counter) = match want {
        XdpExpect::Refused => {
            if result.is_ok() {
                problems.push(format!("expected a refused test run, got {result:?}"));
            }
            return problems;
        }
        XdpExpect::Pass => (XDP_PASS, Counter::XdpPass),
        XdpExpect::Drop(reason) => {
            if !xdp_model::tc_agrees(reason, tc) {
                problems.push(format!(
                    "XDP drops for {} but the TC ingress expects {tc:?}",
                    reason.name()
                ));
            }
            (XDP_DROP, reason)
        }
    };
    match result {
        Ok((v, out)) => {
            if v != verdict {
                problems.push(format!("XDP verdict {v}, expected {verdict} ({want:?})"));
            }
            if out != frame {
                problems.push("XDP changed the frame".into());
            }
        }
        Err(e) => problems.push(format!("XDP test run failed: {e}")),
    }
    if moved != [(counter.name(), 1)] {
        problems.push(format!(
            "XDP counters moved {moved:?}, expected {} by 1",
            counter.name()
        ));
    }
    problems
}

/// Prints the figures and every failure (with what reproduces it), then
/// fails the test if there was any.
fn report(seed: u64, cases: u64, tallies: &BTreeMap<&'static str, Tally>, failures: &[Failure]) {
    for (program, t) in tallies {
        // Only the NAT programs track fragments.
        let fragments = if program.starts_with("netlab_uplink") {
            format!(
                "{} later fragments translated, {} published-port translations, ",
                t.fragments, t.published
            )
        } else {
            String::new()
        };
        println!(
            "fuzz {program}: {} cases (seed {seed:#x}), {} refused by the kernel (too short), \
             verdicts {:?}, {} rewritten, {} state entries created (NAT translations, learned MACs), \
             {fragments}{} failures",
            t.cases, t.refused, t.verdicts, t.rewritten, t.created, t.failures
        );
    }
    for f in failures.iter().take(20) {
        println!(
            "\nFAILED {} case {} (seed {seed:#x}): {}\n  frame: {}\n  - {}",
            f.program,
            f.index,
            f.origin,
            hex(&f.frame),
            f.problems.join("\n  - ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} fuzz failures with seed {seed:#x}; reproduce with \
         NETLAB_FUZZ_SEED={seed:#x} NETLAB_FUZZ_CASES={cases} cargo test -p netlab-tests \
         --test fuzz_programs (or cargo xtask fuzz --cases {cases} --seed {seed:#x})",
        failures.len()
    );
}

#[test]
fn nat_programs_survive_fuzzed_frames() {
    let (seed, cases) = seed_and_cases();
    let (tallies, failures) = fuzz_nat(seed, cases);
    // The run must have exercised the interesting paths, or it proves little.
    let egress = &tallies[nat::EGRESS_PROGRAM];
    let ingress = &tallies[nat::INGRESS_PROGRAM];
    assert_eq!(
        tallies[UPLINK_XDP].cases, ingress.cases,
        "XDP saw every ingress case"
    );
    if failures.is_empty() && cases >= 1000 {
        assert!(egress.created > 0 && egress.rewritten > egress.created);
        assert!(ingress.rewritten > 0);
        assert!(ingress.verdicts.get(&TC_ACT_REDIRECT).copied().unwrap_or(0) > 0);
        assert!(egress.fragments > 0 && ingress.fragments > 0);
        for t in [egress, ingress] {
            assert!(t.refused > 0 && t.verdicts.get(&TC_ACT_SHOT).copied().unwrap_or(0) > 0);
        }
        let xdp = &tallies[UPLINK_XDP];
        for v in [XDP_DROP, XDP_PASS] {
            assert!(xdp.verdicts.get(&v).copied().unwrap_or(0) > 0, "XDP {v}");
        }
    }
    report(seed, cases, &tallies, &failures);
}

/// Found by the fuzzer (seed 0x6e65746c6162, ingress case 3775): the
/// host's own GRE packet with a 4-byte payload was dropped as malformed
/// because ingress read 8 bytes of L4 header for every protocol. Other
/// protocols to the external address are the host's and pass untouched.
#[test]
fn short_packets_of_other_protocols_to_the_host_pass_untouched() {
    use netlab_tests::packets::{ETH_P_IP, Ip, ethernet, ipv4};
    let lab = Loaded::nat("foreign");
    for (proto, len) in [(47u8, 4usize), (59, 0), (50, 7), (132, 1)] {
        let frame = ethernet(
            frames::UPLINK_MAC,
            frames::INET_MAC,
            ETH_P_IP,
            &ipv4(
                &Ip::new(frames::REMOTES[0], frames::EXTERNAL, proto),
                &vec![0xab; len],
            ),
        );
        let before = lab.counters()[Counter::NatPassHost as usize];
        let (verdict, out) = lab.run(nat::INGRESS_PROGRAM, &frame).expect("test run");
        assert_eq!((verdict, &out), (TCX_NEXT, &frame), "protocol {proto}");
        assert_eq!(
            lab.counters()[Counter::NatPassHost as usize],
            before + 1,
            "protocol {proto}"
        );
    }
}

// ------------------------------------------------------------ switch port

const STREAM_SWITCH: u64 = 2;
/// Learned FDB entries are removed when there are more than this.
const MAX_LEARNED: usize = 64;

struct SwitchLab {
    loaded: Loaded,
    maps: netlab::bpf::maps::SwitchMaps,
    counters: netlab::bpf::maps::Counters,
    ports: Vec<SwPort>,
}

impl SwitchLab {
    /// The port program with its maps in a private pin directory, and the
    /// fuzzer's ports as veth devices of the calling thread's namespace
    /// (which must be private), registered the way the control plane does.
    fn new(name: &str) -> Self {
        // bpf_clone_redirect (flooding) really transmits on the ports.
        assert_private_netns("the switch fuzzer");
        // Owned (removed on drop) before anything can fail.
        let mut loaded = Loaded {
            ebpf: None,
            dir: Loaded::pin_dir(name),
        };
        let mut ebpf = netlab::bpf::loader::load_object(&loaded.dir, &[]).expect("load object");
        netlab::bpf::loader::load_classifier(&mut ebpf, netlab::bpf::loader::PORT_PROGRAM)
            .expect("verifier accepts the port program");
        loaded.ebpf = Some(ebpf);
        let mut maps = netlab::bpf::maps::SwitchMaps::open(&loaded.dir).expect("maps");
        let counters = netlab::bpf::maps::Counters::open(&loaded.dir).expect("counters");
        let index = |dev: &str| nix::net::if_::if_nametoindex(dev).expect("ifindex");
        for dev in switch_model::PORTS
            .iter()
            .map(|p| p.dev)
            .chain([switch_model::VBRIDGE_DEV])
        {
            add_veth_port(dev, None);
        }
        let vbridge = index(switch_model::VBRIDGE_DEV);
        let mut ports = Vec::new();
        for p in switch_model::PORTS {
            let ifindex = index(p.dev);
            let port = SwPort {
                ifindex,
                deliver: if p.kind == PORT_KIND_GATEWAY {
                    vbridge
                } else {
                    ifindex
                },
                ..p
            };
            let info = PortInfo {
                ifindex,
                deliver_ifindex: port.deliver,
                ipv4: u32::from_ne_bytes(p.ip.octets()),
                slot: p.slot,
                mac: p.mac,
                kind: p.kind,
                _pad: 0,
            };
            maps.ports.insert(ifindex, info, 0).unwrap();
            maps.flood_ports.set(p.slot, info, 0).unwrap();
            maps.endpoints
                .insert(
                    u32::from_ne_bytes(p.ip.octets()),
                    Endpoint {
                        mac: p.mac,
                        _pad: [0; 2],
                        port_ifindex: ifindex,
                    },
                    0,
                )
                .unwrap();
            maps.fdb
                .insert(
                    FdbKey::new(p.mac),
                    FdbEntry {
                        port_ifindex: ifindex,
                        kind: p.kind,
                        flags: FDB_FLAG_STATIC,
                        _pad: [0; 2],
                    },
                    0,
                )
                .unwrap();
            ports.push(port);
        }
        Self {
            loaded,
            maps,
            counters,
            ports,
        }
    }

    fn run(&self, ingress: u32, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        let p: &SchedClassifier = self
            .loaded
            .ebpf()
            .program(netlab::bpf::loader::PORT_PROGRAM)
            .unwrap()
            .try_into()
            .unwrap();
        netlab_tests::test_run::test_run(p, frame, Some(ingress)).map_err(|e| format!("{e:?}"))
    }

    fn counters(&self) -> Vec<u64> {
        self.counters
            .all()
            .unwrap()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Lists `addrs` in `host_addrs` (empty: host access allowed), as the
    /// control plane does.
    fn set_host_addrs(&self, addrs: &[std::net::Ipv4Addr]) {
        let wanted = addrs
            .iter()
            .map(|a| (u32::from_ne_bytes(a.octets()), HOST_ADDR_LOCAL))
            .collect();
        netlab::bpf::maps::HostAddrs::open(&self.loaded.dir)
            .unwrap()
            .sync(&wanted)
            .unwrap();
    }

    fn fdb(&self) -> BTreeMap<[u8; 6], FdbEntry> {
        self.maps
            .fdb_entries()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.mac, v))
            .collect()
    }

    /// (rx, tx, drops) packets per port slot.
    fn port_stats(&self) -> Vec<(u64, u64, u64)> {
        self.ports
            .iter()
            .map(|p| {
                let s = self.maps.port_stats(p.slot).unwrap();
                (s.rx_packets, s.tx_packets, s.drops)
            })
            .collect()
    }
}

/// Checks one case of the port program; returns the problems found.
#[allow(clippy::too_many_arguments)]
fn check_switch_case(
    sw: &SwitchLab,
    case: &SwCase,
    expect: SwExpect,
    result: &Result<(u32, Vec<u8>), String>,
    counter_delta: &[i64],
    fdb_before: &BTreeMap<[u8; 6], FdbEntry>,
    fdb_after: &BTreeMap<[u8; 6], FdbEntry>,
    stats_delta: &[(i64, i64, i64)],
    tally: &mut Tally,
) -> Vec<String> {
    let mut p = Vec::new();
    let frame = &case.frame;
    let (verdict, out) = match (result, expect.outcome) {
        (Err(e), SwOutcome::Refused) => {
            if !e.contains("Invalid argument") {
                p.push(format!("test run refused with an unexpected error: {e}"));
            }
            tally.refused += 1;
            return p;
        }
        (Err(e), o) => return vec![format!("test run failed ({e}); expected {o:?}")],
        (Ok(_), SwOutcome::Refused) => {
            return vec!["the kernel ran a frame the model expects it to refuse".into()];
        }
        (Ok((v, out)), _) => (*v, out.as_slice()),
    };
    *tally.verdicts.entry(verdict).or_default() += 1;
    if ![TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT].contains(&verdict) {
        p.push(format!("undocumented verdict {verdict}"));
    }
    let want_verdict = match expect.outcome {
        SwOutcome::NotAPort => TC_ACT_OK,
        SwOutcome::Drop(_) | SwOutcome::Flood { .. } => TC_ACT_SHOT,
        _ => TC_ACT_REDIRECT,
    };
    if verdict != want_verdict {
        p.push(format!("verdict {verdict}, expected {want_verdict}"));
    }
    match expect.outcome {
        SwOutcome::ArpAnswered { owner } => {
            tally.rewritten += 1;
            let reply = switch_model::arp_reply(frame, sw.ports[owner].mac);
            if out != reply.as_slice() {
                p.push(format!(
                    "ARP answer differs from the owner's reply: {}",
                    hex(out)
                ));
            }
        }
        _ if verdict != TC_ACT_SHOT && out != frame.as_slice() => {
            p.push("a switched frame was changed".into());
        }
        _ => {}
    }

    // Counters: exactly the expected ones moved, by the expected amounts.
    let mut want = vec![0i64; Counter::ALL.len()];
    let reached_port = expect.outcome != SwOutcome::NotAPort;
    want[Counter::PortRx as usize] = 1;
    if let Some(c) = switch_model::outcome_counter(&sw.ports, expect.outcome) {
        want[c as usize] += 1;
    }
    if expect.other_ethertype {
        want[Counter::OtherEtherType as usize] += 1;
    }
    if let SwOutcome::Flood { copies, .. } = expect.outcome {
        want[Counter::FloodCopies as usize] += copies as i64;
    }
    let src: [u8; 6] = frame[6..12].try_into().unwrap();
    let mut want_fdb = fdb_before.clone();
    if expect.learns {
        let port = sw.ports.iter().find(|p| p.ifindex == case.ingress).unwrap();
        match fdb_before.get(&src) {
            Some(e) if e.flags & FDB_FLAG_STATIC != 0 || e.port_ifindex == case.ingress => {}
            Some(e) => {
                want[Counter::Learned as usize] += 1;
                want_fdb.insert(
                    src,
                    FdbEntry {
                        port_ifindex: case.ingress,
                        kind: port.kind,
                        ..*e
                    },
                );
            }
            None => {
                want[Counter::Learned as usize] += 1;
                want_fdb.insert(
                    src,
                    FdbEntry {
                        port_ifindex: case.ingress,
                        kind: port.kind,
                        flags: FDB_FLAG_LEARNED,
                        _pad: [0; 2],
                    },
                );
                tally.created += 1;
            }
        }
    }
    if counter_delta != want.as_slice() {
        let diff: Vec<String> = Counter::ALL
            .iter()
            .filter(|c| counter_delta[**c as usize] != want[**c as usize])
            .map(|c| {
                format!(
                    "{} moved {} (expected {})",
                    c.name(),
                    counter_delta[*c as usize],
                    want[*c as usize]
                )
            })
            .collect();
        p.push(format!("counters: {}", diff.join(", ")));
    }
    if fdb_after != &want_fdb {
        p.push(format!(
            "FDB changed unexpectedly: {} entries before, {} after, {} expected",
            fdb_before.len(),
            fdb_after.len(),
            want_fdb.len()
        ));
    }

    // Per-port statistics add up with the outcome.
    let mut want_stats = vec![(0i64, 0i64, 0i64); sw.ports.len()];
    if reached_port {
        let ingress = sw
            .ports
            .iter()
            .position(|p| p.ifindex == case.ingress)
            .unwrap();
        want_stats[ingress].0 = 1;
        match expect.outcome {
            SwOutcome::Drop(_) => want_stats[ingress].2 = 1,
            SwOutcome::ArpAnswered { .. } => want_stats[ingress].1 = 1,
            SwOutcome::Unicast { to } => want_stats[to].1 = 1,
            SwOutcome::Flood { host, .. } => {
                for (i, s) in want_stats.iter_mut().enumerate() {
                    if i != ingress && (host || sw.ports[i].kind != PORT_KIND_GATEWAY) {
                        s.1 = 1;
                    }
                }
            }
            _ => {}
        }
    }
    if stats_delta != want_stats.as_slice() {
        p.push(format!(
            "port statistics moved {stats_delta:?}, expected {want_stats:?}"
        ));
    }
    p
}

/// Runs `cases` frames through the port program. Returns the tally, the
/// failures, and how many frames the host-access rule dropped (a run must
/// reach the rule, or it proves nothing about it).
fn fuzz_switch(seed: u64, cases: u64) -> (Tally, Vec<Failure>, u64) {
    let mut sw = SwitchLab::new("port");
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let mut counters = sw.counters();
    let mut learning = false;
    let mut host_addrs: &[std::net::Ipv4Addr] = &[];
    let progress = netlab_tests::netlab::progress::Progress::new("fuzz port", Some(cases));
    for index in 0..cases {
        progress.set_position(index);
        let mut rng = Rng::for_case(seed, STREAM_SWITCH, index);
        let learn_now = rng.chance(30);
        if learn_now != learning {
            learning = learn_now;
            sw.maps
                .set_config(SwitchConfig {
                    trace: 0,
                    learning: learning as u32,
                })
                .unwrap();
        }
        // Host access: mostly closed (the default), sometimes allowed.
        let want_addrs: &[std::net::Ipv4Addr] = if rng.chance(20) {
            &[]
        } else {
            &switch_model::HOST_ADDRS
        };
        if want_addrs != host_addrs {
            host_addrs = want_addrs;
            sw.set_host_addrs(host_addrs);
        }
        let case = switch_model::switch_case(&mut rng, &sw.ports);
        let fdb_before = sw.fdb();
        let expect = switch_model::expect(
            &sw.ports,
            case.ingress,
            &case.frame,
            learning,
            &|mac| fdb_before.get(&mac).copied(),
            host_addrs,
        );
        let stats_before = sw.port_stats();
        let result = sw.run(case.ingress, &case.frame);
        let after = sw.counters();
        let fdb_after = sw.fdb();
        let stats_after = sw.port_stats();
        let counter_delta: Vec<i64> = after
            .iter()
            .zip(&counters)
            .map(|(a, b)| *a as i64 - *b as i64)
            .collect();
        let stats_delta: Vec<(i64, i64, i64)> = stats_after
            .iter()
            .zip(&stats_before)
            .map(|(a, b)| {
                (
                    a.0 as i64 - b.0 as i64,
                    a.1 as i64 - b.1 as i64,
                    a.2 as i64 - b.2 as i64,
                )
            })
            .collect();
        tally.cases += 1;
        let problems = check_switch_case(
            &sw,
            &case,
            expect,
            &result,
            &counter_delta,
            &fdb_before,
            &fdb_after,
            &stats_delta,
            &mut tally,
        );
        if !problems.is_empty() {
            tally.failures += 1;
            failures.push(Failure {
                program: netlab::bpf::loader::PORT_PROGRAM,
                index,
                origin: format!(
                    "{} (ingress ifindex {}, learning {learning})",
                    case.origin, case.ingress
                ),
                frame: case.frame.clone(),
                problems,
            });
        }
        counters = after;
        let learned: Vec<[u8; 6]> = fdb_after
            .iter()
            .filter(|(_, e)| e.flags & FDB_FLAG_STATIC == 0)
            .map(|(k, _)| *k)
            .collect();
        if learned.len() > MAX_LEARNED {
            for mac in learned {
                sw.maps.fdb.remove(&FdbKey::new(mac)).unwrap();
            }
        }
    }
    let host_drops = sw.counters()[Counter::DropHostAccess as usize];
    progress.finish_and_clear();
    (tally, failures, host_drops)
}

#[test]
fn port_program_survives_fuzzed_frames() {
    let (seed, cases) = seed_and_cases();
    let (tally, failures, host_drops) = in_private_netns(move || fuzz_switch(seed, cases));
    if failures.is_empty() && cases >= 1000 {
        // The run must have reached every outcome, or it proves little.
        for v in [TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT] {
            assert!(tally.verdicts.get(&v).copied().unwrap_or(0) > 0, "{v}");
        }
        assert!(tally.refused > 0 && tally.rewritten > 0 && tally.created > 0);
        assert!(host_drops > 0, "no frame met the host-access rule");
    }
    let mut tallies = BTreeMap::new();
    tallies.insert(netlab::bpf::loader::PORT_PROGRAM, tally);
    report(seed, cases, &tallies, &failures);
}
