//! The loaded-program harness of the program tests and the fuzzer: one
//! copy of netlab's eBPF object, loaded into the real kernel (verifier
//! included), its maps pinned in a bpffs directory of its own, and packets
//! run through its programs with BPF_PROG_TEST_RUN ([`crate::test_run`]).
//!
//! Each [`Loaded`] owns `/sys/fs/bpf/netlab-test-<family>-<pid>-<name>/`
//! and removes it on drop (also when loading fails half-way), so tests
//! share no state and can run in parallel.
//!
//! The object is loaded with aya's own loader pointed at that directory,
//! not with the control plane's `bpf::loader::load_object`: some tests pin
//! a map of another type there on purpose (a plain hash map with one slot
//! standing in for an LRU map, to see a real refused insert), which the
//! control plane rightly refuses to adopt. The NAT plan's sizes are
//! applied the way the control plane applies them
//! (`bpf::loader::set_map_sizes` with `nat::map_sizes`).

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::PerCpuArray,
    programs::{Program, ProgramError, SchedClassifier, Xdp},
};
use netlab::{
    bpf::{
        fs,
        loader::{retry_eagain, set_map_sizes},
    },
    nat,
    plan::NatPlan,
};
use netlab_common::{counters::Counter, maps::COUNTERS_MAP, switch::PortInfo};

use crate::test_run;

/// A bpffs directory of the test's own, removed on drop.
struct PinDir(PathBuf);

impl PinDir {
    /// `/sys/fs/bpf/netlab-test-<family>-<pid>-<name>`, empty (a leftover
    /// of an earlier run of the same process id is removed first).
    fn create(family: &str, name: &str) -> Self {
        fs::ensure_bpffs().expect("bpffs on /sys/fs/bpf");
        let path = PathBuf::from(format!(
            "{}/netlab-test-{family}-{}-{name}",
            fs::BPFFS_ROOT,
            std::process::id()
        ));
        let _ = fs::remove_lab_dir(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("pin dir {}: {e}", path.display()));
        Self(path)
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = fs::remove_lab_dir(&self.0);
    }
}

/// One loaded copy of the object with its pins. Fields drop in order: the
/// object (programs, map fds) before its pin directory.
pub struct Loaded {
    ebpf: Option<Ebpf>,
    pins: PinDir,
}

impl Loaded {
    /// An empty pin directory for `family` (the test file: "nat", "sw",
    /// "fuzz", ...) and `name` (the test), nothing loaded yet: maps pinned
    /// there before [`Loaded::load`] are adopted by name instead of created.
    pub fn empty(family: &str, name: &str) -> Self {
        Self {
            ebpf: None,
            pins: PinDir::create(family, name),
        }
    }

    /// [`Loaded::empty`], then [`Loaded::load`] with `nat` and `programs`.
    pub fn new(family: &str, name: &str, nat: Option<&NatPlan>, programs: &[&str]) -> Self {
        let mut loaded = Self::empty(family, name);
        loaded.load(nat, programs);
        loaded
    }

    /// Loads (or reloads: the old copy goes first, its pinned maps stay and
    /// are adopted) the object, its NAT maps sized by `nat`, and loads
    /// `programs` into the kernel, each by its own kind (TC or XDP).
    /// Panics with the verifier's words when it rejects one.
    pub fn load(&mut self, nat: Option<&NatPlan>, programs: &[&str]) {
        self.ebpf = None;
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(self.dir());
        if let Some(plan) = nat {
            set_map_sizes(&mut loader, &nat::map_sizes(plan)).expect("size the NAT maps");
        }
        let mut ebpf = loader.load(netlab::EBPF_OBJECT).expect("load the object");
        for &name in programs {
            let program = ebpf
                .program_mut(name)
                .unwrap_or_else(|| panic!("no program {name} in the object"));
            let loaded = match program {
                Program::SchedClassifier(p) => retry_eagain(|| p.load()),
                Program::Xdp(p) => retry_eagain(|| p.load()),
                other => panic!(
                    "{name}: a {:?} program is not one the tests run",
                    other.prog_type()
                ),
            };
            loaded.unwrap_or_else(|e| panic!("the verifier rejected {name}: {e:?}"));
        }
        self.ebpf = Some(ebpf);
    }

    /// The pin directory (for the control plane's map helpers).
    pub fn dir(&self) -> &Path {
        &self.pins.0
    }

    pub fn ebpf(&self) -> &Ebpf {
        self.ebpf.as_ref().expect("the object is loaded")
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        self.ebpf.as_mut().expect("the object is loaded")
    }

    fn classifier(&self, name: &str) -> &SchedClassifier {
        self.ebpf()
            .program(name)
            .unwrap_or_else(|| panic!("no program {name}"))
            .try_into()
            .unwrap_or_else(|e| panic!("{name} is not a TC program: {e:?}"))
    }

    fn xdp(&self, name: &str) -> &Xdp {
        self.ebpf()
            .program(name)
            .unwrap_or_else(|| panic!("no program {name}"))
            .try_into()
            .unwrap_or_else(|e| panic!("{name} is not an XDP program: {e:?}"))
    }

    /// Runs the TC program `name` on `frame` ([`test_run::test_run`]):
    /// (verdict, the frame as the program left it), or the kernel's refusal.
    pub fn run_tc(
        &self,
        name: &str,
        frame: &[u8],
        ingress: Option<u32>,
    ) -> Result<(u32, Vec<u8>), ProgramError> {
        test_run::test_run(self.classifier(name), frame, ingress)
    }

    /// Runs the XDP program `name` on `frame` ([`test_run::test_run_xdp`]).
    pub fn run_xdp(
        &self,
        name: &str,
        frame: &[u8],
        ingress: Option<u32>,
    ) -> Result<(u32, Vec<u8>), ProgramError> {
        test_run::test_run_xdp(self.xdp(name), frame, ingress)
    }

    /// Whether the loaded program `name` uses the map `map` (the kernel's
    /// own record of the maps a program references): the fuzzer's test
    /// that a program of this build has a feature at all (the IPv6 rules
    /// use the IPv6 maps), printed by the test when it is absent.
    pub fn program_uses_map(&self, name: &str, map: &str) -> bool {
        let program = self
            .ebpf()
            .program(name)
            .unwrap_or_else(|| panic!("no program {name}"));
        let info = program
            .info()
            .unwrap_or_else(|e| panic!("{name}: program info: {e:?}"));
        info.map_ids()
            .unwrap_or_else(|e| panic!("{name}: map ids: {e:?}"))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| aya::maps::MapInfo::from_id(id).ok())
            .any(|m| m.name_as_str() == Some(map))
    }

    /// Every counter, summed over the CPUs, indexed by `Counter as usize`.
    pub fn counters(&self) -> Vec<u64> {
        let map = self.ebpf().map(COUNTERS_MAP).expect("the counters map");
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(map).expect("a per-CPU array");
        Counter::ALL
            .iter()
            .map(|c| {
                counters
                    .get(&(*c as u32), 0)
                    .expect("read a counter")
                    .iter()
                    .sum()
            })
            .collect()
    }

    /// One counter, summed over the CPUs.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters()[counter as usize]
    }
}

/// The counters that moved between `before` and `after` (two
/// [`Loaded::counters`] readings), by name, with how much.
pub fn moved(before: &[u64], after: &[u64]) -> Vec<(&'static str, u64)> {
    Counter::ALL
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| a != b)
        .map(|(c, (b, a))| (c.name(), a - b))
        .collect()
}

/// A switch port's row as the control plane writes it
/// (`SwitchMaps::write_port`): the port on `ifindex`, frames for it
/// delivered on `deliver`.
pub fn port_info(
    ifindex: u32,
    deliver: u32,
    kind: u8,
    mac: [u8; 6],
    ip: [u8; 4],
    slot: u32,
) -> PortInfo {
    PortInfo {
        ifindex,
        deliver_ifindex: deliver,
        ipv4: u32::from_ne_bytes(ip),
        slot,
        mac,
        kind,
        _pad: 0,
    }
}
