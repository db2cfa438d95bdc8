//! The uplink programs loaded for the fuzzer ([`NatLab`]) and what the
//! checks read from their maps.

use crate::common::*;

pub(crate) fn nat_plan() -> NatPlan {
    NatPlan {
        uplink_dev: "uplink".into(),
        subnet: frames::SUBNET,
        prefix_len: frames::PREFIX_LEN,
        port_min: frames::PORT_MIN,
        port_max: frames::PORT_MAX,
        max_entries: 4096,
        timeouts: NatTimeouts::default(),
        subnet6: None,
    }
}

/// The uplink programs (NAT egress and ingress, the XDP filter) loaded
/// with the shared harness, and the NAT maps as the fuzzer reads them.
pub(crate) struct NatLab {
    pub(crate) loaded: Loaded,
}

impl NatLab {
    /// The NAT programs, configured for the fuzzer's addresses, with the
    /// fast path on and one endpoint known to it.
    pub(crate) fn new(name: &str) -> Self {
        let plan = nat_plan();
        let loaded = Loaded::new(
            "fuzz",
            name,
            Some(&plan),
            &[nat::EGRESS_PROGRAM, nat::INGRESS_PROGRAM, UPLINK_XDP],
        );
        nat::configure(
            loaded.dir(),
            &plan,
            frames::EXTERNAL,
            frames::GATEWAY_MAC,
            true,
        )
        .expect("configure the NAT");
        SwitchMaps::open(loaded.dir())
            .and_then(|mut maps| {
                maps.set_endpoint(
                    netlab::bpf::key::ipv4_key(frames::FAST_PATH_HOST),
                    frames::FAST_PATH_MAC,
                    frames::FAST_PATH_IFINDEX,
                )
            })
            .expect("fast-path endpoint");
        let published = netlab_tests::published_ports(&frames::PUBLISHED);
        nat::sync_published(loaded.dir(), &published).expect("published ports");
        Self { loaded }
    }

    pub(crate) fn ebpf(&self) -> &Ebpf {
        self.loaded.ebpf()
    }

    pub(crate) fn ebpf_mut(&mut self) -> &mut Ebpf {
        self.loaded.ebpf_mut()
    }

    /// Runs `prog` on `frame`: the verdict and the frame as the program
    /// left it, or the errno of a refused test run.
    pub(crate) fn run(&self, prog: &str, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        self.loaded
            .run_tc(prog, frame, None)
            .map_err(|e| format!("{e:?}"))
    }

    /// Runs the uplink XDP program on `frame`.
    pub(crate) fn run_xdp(&self, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        self.loaded
            .run_xdp(UPLINK_XDP, frame, None)
            .map_err(|e| format!("{e:?}"))
    }

    /// Every counter, summed over the CPUs.
    pub(crate) fn counters(&self) -> Vec<u64> {
        self.loaded.counters()
    }

    pub(crate) fn nat_map(&self, name: &str) -> HashMap<&aya::maps::MapData, NatKey, NatEntry> {
        HashMap::try_from(self.ebpf().map(name).expect("NAT map")).unwrap()
    }

    pub(crate) fn lookup(&self, name: &str, key: &NatKey) -> Option<NatEntry> {
        self.nat_map(name).get(key, 0).ok()
    }

    pub(crate) fn entries(&self, name: &str) -> Vec<(NatKey, NatEntry)> {
        self.nat_map(name)
            .iter()
            .map(|r| r.expect("iterate a NAT map"))
            .collect()
    }

    pub(crate) fn frags_map(&self) -> HashMap<&aya::maps::MapData, NatFragKey, NatFragEntry> {
        HashMap::try_from(self.ebpf().map(NAT_FRAGS_MAP).expect("nat_frags map")).unwrap()
    }

    pub(crate) fn frag_lookup(&self, key: &NatFragKey) -> Option<NatFragEntry> {
        self.frags_map().get(key, 0).ok()
    }

    pub(crate) fn frag_entries(&self) -> Vec<(NatFragKey, NatFragEntry)> {
        self.frags_map()
            .iter()
            .map(|r| r.expect("iterate nat_frags"))
            .collect()
    }

    pub(crate) fn clear_frags(&mut self) {
        let keys: Vec<NatFragKey> = self.frag_entries().into_iter().map(|(k, _)| k).collect();
        let mut map: HashMap<_, NatFragKey, NatFragEntry> =
            HashMap::try_from(self.ebpf_mut().map_mut(NAT_FRAGS_MAP).unwrap()).unwrap();
        for k in keys {
            map.remove(&k).expect("remove a fragment entry");
        }
    }

    pub(crate) fn clear(&mut self, name: &str) {
        let keys: Vec<NatKey> = self.entries(name).into_iter().map(|(k, _)| k).collect();
        let mut map: HashMap<_, NatKey, NatEntry> =
            HashMap::try_from(self.ebpf_mut().map_mut(name).unwrap()).unwrap();
        for k in keys {
            map.remove(&k).expect("remove a NAT entry");
        }
    }
}

/// The translations the maps hold, for building replies and errors: read
/// from `nat_orig` (the lab's tuple and its port), so the replies built
/// from them are what the design says a reply is, whatever key the
/// program filed the reply direction under.
pub(crate) fn translations(lab: &NatLab) -> Vec<Translation> {
    lab.entries(NAT_ORIG_MAP)
        .into_iter()
        .map(|(k, v)| nat_model::translation_of(&k, v.port))
        .collect()
}

/// The allocator probes at most this many candidate ports for a new flow
/// (the design's bounded probe).
pub(crate) const ALLOC_PROBES: usize = 32;

/// Why a new flow may be refused, exactly: every candidate port can be
/// taken only when at least min(probes, range) translations already share
/// its reply side (remote address, remote port, protocol); a map can only
/// refuse when it holds `max_entries`. With the fuzzer's 1 000 ports,
/// <= MAX_FLOWS flows and 4 096 entries, neither happens: a drop there
/// fails the case.
pub(crate) fn allowed_new_flow_drops(lab: &NatLab, key: &NatKey) -> Vec<Counter> {
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

pub(crate) fn raw_ip(f: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(f[at..at + 4].try_into().unwrap())
}

pub(crate) fn raw_port(f: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([f[at], f[at + 1]])
}

/// What one case did to the maps and counters, for the checks.
pub(crate) struct Observed {
    pub(crate) result: Result<(u32, Vec<u8>), String>,
    pub(crate) counter_delta: Vec<i64>,
    pub(crate) orig_delta: i64,
    pub(crate) reply_delta: i64,
    pub(crate) frag_delta: i64,
    /// The entry of the datagram the frame records (first fragment) or
    /// uses (later fragment), before and after the run.
    pub(crate) frag_before: Option<NatFragEntry>,
    pub(crate) frag_after: Option<NatFragEntry>,
}

/// Whether an inbound packet meets a published port (`nat_publish`)
/// rather than an existing translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dnat {
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
pub(crate) fn classify_dnat(
    lab: &NatLab,
    key: &NatKey,
) -> Result<(Dnat, Option<NatEntry>), Counter> {
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
