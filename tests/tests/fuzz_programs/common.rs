//! What every fuzzed program shares: the imports (re-exported for the
//! other modules), verdicts, the run's seed and size, tallies, failures
//! and the report.

pub(crate) use std::collections::BTreeMap;

pub(crate) use aya::{Ebpf, maps::HashMap};
pub(crate) use netlab::{
    bpf::{
        loader::PORT_PROGRAM,
        maps::{HostAddrs, SwitchMaps},
    },
    nat,
    plan::{NatPlan, NatTimeouts},
};
pub(crate) use netlab_common::{
    counters::Counter,
    maps::{ENDPOINTS6_MAP, HOST_ADDRS6_MAP, PORTS6_MAP},
    nat::{
        NAT_ENTRY_DNAT, NAT_FLAG_ENABLED, NAT_FLAG_FAST_PATH, NAT_FRAGS_MAP, NAT_ORIG_MAP,
        NAT_REPLY_MAP, NatEntry, NatFragEntry, NatFragKey, NatKey,
    },
    nat6::{
        NAT6_CONFIG_MAP, NAT6_FRAGS_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Config, Nat6Entry,
        Nat6FragEntry, Nat6FragKey, Nat6Key,
    },
    switch::{
        Endpoint, FDB_FLAG_LEARNED, FDB_FLAG_STATIC, FdbEntry, FdbKey, HOST_ADDR_LOCAL,
        PORT_KIND_GATEWAY, Port6, SwitchConfig,
    },
};
pub(crate) use netlab_tests::fuzz::{
    Rng, frames,
    frames::{Dir, Translation},
    frames6::{self, Translation6},
    hex, mutate, mutate6,
    nat_model::{self, Expect},
    nat6_model::{self, Expect6},
    parse_seed,
    switch_model::{self, SwCase, SwExpect, SwOutcome, SwPort},
    switch_model6::{self, V6Tables},
    verify, verify6,
    xdp_model::{self, XdpExpect},
};
pub(crate) use netlab_tests::{
    harness::{Loaded, port_info},
    packets,
    private_netns::{add_veth_port, assert_private_netns, in_private_netns},
};

pub(crate) use netlab::bpf::verdict::{
    TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TCX_NEXT, XDP_DROP, XDP_PASS,
};
pub(crate) const UPLINK_XDP: &str = netlab::datapath::xdp::UPLINK_XDP_PROGRAM;
pub(crate) const EINVAL: i32 = 22;

/// Default seed of the suite's run ("netlab" in ASCII).
pub(crate) const DEFAULT_SEED: u64 = 0x6e65_746c_6162;
/// Default cases per program in the suite's run.
pub(crate) const DEFAULT_CASES: u64 = 4000;
/// The NAT maps are emptied when they hold more translations (or
/// fragmented datagrams) than this, so counting them stays cheap.
pub(crate) const MAX_FLOWS: usize = 48;
/// Stream numbers for [`Rng::for_case`], one per fuzzed program family.
pub(crate) const STREAM_NAT: u64 = 1;

pub(crate) fn seed_and_cases() -> (u64, u64) {
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

/// Tallies of one program's run, printed for the README's figures.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) cases: u64,
    pub(crate) refused: u64,
    pub(crate) verdicts: BTreeMap<u32, u64>,
    pub(crate) rewritten: u64,
    pub(crate) created: u64,
    /// Later fragments translated with their datagram's recorded address.
    pub(crate) fragments: u64,
    /// Translations created by a packet to a published port.
    pub(crate) published: u64,
    pub(crate) failures: u64,
}

pub(crate) struct Failure {
    pub(crate) program: &'static str,
    pub(crate) index: u64,
    pub(crate) origin: String,
    pub(crate) frame: Vec<u8>,
    pub(crate) problems: Vec<String>,
}

/// Prints the figures and every failure (with what reproduces it), then
/// fails the test if there was any.
pub(crate) fn report(
    seed: u64,
    cases: u64,
    tallies: &BTreeMap<&'static str, Tally>,
    failures: &[Failure],
) {
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
    // NETLAB_FUZZ_SHOW: how many failures to print (20 unless told).
    let show = std::env::var("NETLAB_FUZZ_SHOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for f in failures.iter().take(show) {
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
