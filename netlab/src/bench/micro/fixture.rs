//! The micro-benchmark's made-up lab: the real object loaded into the
//! kernel with its maps pinned under its own lab name, two endpoint ports,
//! the gateway port and an uplink, on throwaway veth devices of a private
//! network namespace.
//!
//! Why a private namespace: under BPF_PROG_TEST_RUN `bpf_clone_redirect`
//! (flooding) really transmits, on the device of the caller's namespace
//! with the ifindex the program picked; the XDP test run needs its
//! ingress device to exist. The namespace is the calling thread's own
//! (unshared, unnamed): it and its devices die with the thread.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use aya::{
    Ebpf,
    maps::{DevMapHash, HashMap, MapData},
    programs::{SchedClassifier, Xdp},
};
use netlab_common::{
    maps::XDP_PORTS_MAP,
    nat::{IPPROTO_UDP, NAT_ORIG_MAP, NAT_REPLY_MAP, NatEntry, NatKey},
    switch::{PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, PortInfo},
};

use super::frames::Mac;
use crate::bench::nsexec::ip;
use crate::bpf::{fs, loader, maps::SwitchMaps};
use crate::plan::{NatPlan, NatTimeouts};

pub const A_MAC: Mac = [0x02, 0x9b, 0, 0, 0, 0x01];
pub const B_MAC: Mac = [0x02, 0x9b, 0, 0, 0, 0x02];
pub const GW_MAC: Mac = [0x02, 0x9b, 0, 0, 0, 0x05];
pub const UPLINK_MAC: Mac = [0x02, 0x9b, 0, 0, 1, 0x01];
pub const REMOTE_MAC: Mac = [0x02, 0x9b, 0, 0, 2, 0x01];
pub const A_IP: [u8; 4] = [10, 155, 0, 1];
pub const B_IP: [u8; 4] = [10, 155, 0, 2];
pub const GW_IP: [u8; 4] = [10, 155, 0, 5];
pub const BROADCAST_IP: [u8; 4] = [10, 155, 0, 255];
/// The uplink's address (masquerade source) and a remote beyond it.
pub const EXTERNAL: [u8; 4] = [10, 155, 1, 1];
pub const REMOTE: [u8; 4] = [10, 155, 2, 1];
/// The translated port range.
pub const PORT_MIN: u16 = 20000;
pub const PORT_MAX: u16 = 59999;

/// Entries per NAT map: room for the prefilled table plus the new flows.
const NAT_MAX_ENTRIES: u32 = 1 << 18;

/// The devices, their ifindexes in the private namespace.
pub struct Ports {
    pub a: u32,
    pub b: u32,
    pub gw: u32,
    pub uplink: u32,
}

/// The loaded object and its pins (removed on drop).
pub struct Fixture {
    pub ebpf: Ebpf,
    pub dir: PathBuf,
    pub ports: Ports,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_lab_dir(&self.dir);
    }
}

/// Moves the calling thread into a fresh network namespace. Call it on a
/// thread of its own: the thread never comes back.
pub fn enter_private_netns() -> anyhow::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .context("unshare a private network namespace")?;
    Ok(())
}

/// A veth pair `dev` / `<dev>x`, both up, in the calling thread's
/// namespace; returns `dev`'s ifindex.
fn add_veth(dev: &str) -> anyhow::Result<u32> {
    let peer = format!("{dev}x");
    ip(&["link", "add", dev, "type", "veth", "peer", "name", &peer])?;
    for d in [dev, peer.as_str()] {
        ip(&["link", "set", "dev", d, "addrgenmode", "none"])?;
        ip(&["link", "set", d, "up"])?;
    }
    nix::net::if_::if_nametoindex(dev).with_context(|| format!("ifindex of {dev}"))
}

fn plan() -> NatPlan {
    NatPlan {
        uplink_dev: "mqup".into(),
        subnet: Ipv4Addr::new(10, 155, 0, 0),
        prefix_len: 24,
        port_min: PORT_MIN,
        port_max: PORT_MAX,
        max_entries: NAT_MAX_ENTRIES,
        timeouts: NatTimeouts::default(),
        subnet6: None,
    }
}

/// Loads `programs` (TC) and `xdp_programs` and fills the maps as the
/// control plane would. Must run inside [`enter_private_netns`].
pub fn build(
    lab: &str,
    programs: &[&'static str],
    xdp_programs: &[&'static str],
) -> anyhow::Result<Fixture> {
    fs::ensure_bpffs()?;
    let dir = fs::lab_dir(lab);
    if fs::entries(&dir)?.iter().any(|n| n.starts_with("link_")) {
        bail!(
            "{} holds attached programs: a lab called {lab} exists; choose another --prefix",
            dir.display()
        );
    }
    // A previous run that died may have left its pins.
    fs::remove_lab_dir(&dir)?;
    fs::create_lab_dir(&dir)?;
    let ports = Ports {
        a: add_veth("mqa")?,
        b: add_veth("mqb")?,
        gw: add_veth("mqgw")?,
        uplink: add_veth("mqup")?,
    };
    let vbridge = add_veth("mqvbr")?;
    let nat = plan();
    let ebpf = loader::load_object(&dir, &crate::nat::map_sizes(&nat))?;
    // From here on the fixture's Drop removes the pins.
    let mut fx = Fixture { ebpf, dir, ports };
    for name in programs {
        loader::load_classifier(&mut fx.ebpf, name)?;
    }
    for name in xdp_programs {
        let prog: &mut Xdp = loader::program(&mut fx.ebpf, name)?;
        loader::retry_eagain(|| prog.load()).with_context(|| format!("loading {name}"))?;
    }

    let mut switch = SwitchMaps::open(&fx.dir)?;
    let port = |ifindex, deliver_ifindex, kind, mac, ip: [u8; 4], slot| PortInfo {
        ifindex,
        deliver_ifindex,
        ipv4: u32::from_ne_bytes(ip),
        slot,
        mac,
        kind,
        _pad: 0,
    };
    let (a, b, gw) = (fx.ports.a, fx.ports.b, fx.ports.gw);
    switch.write_port(&port(a, a, PORT_KIND_ENDPOINT, A_MAC, A_IP, 0))?;
    switch.write_port(&port(b, b, PORT_KIND_ENDPOINT, B_MAC, B_IP, 1))?;
    switch.write_port(&port(gw, vbridge, PORT_KIND_GATEWAY, GW_MAC, GW_IP, 2))?;
    let mut devmap: DevMapHash<MapData> = crate::bpf::maps::open_pinned(&fx.dir, XDP_PORTS_MAP)?;
    for ifindex in [a, b, gw] {
        devmap
            .insert(ifindex, ifindex, None, 0)
            .with_context(|| format!("{XDP_PORTS_MAP}: {ifindex}"))?;
    }
    crate::nat::configure(&fx.dir, &nat, Ipv4Addr::from(EXTERNAL), GW_MAC, true)?;
    Ok(fx)
}

/// The original key of a UDP flow from `src:sport` to the remote.
pub fn udp_key(src: [u8; 4], sport: u16, dport: u16) -> NatKey {
    NatKey {
        saddr: u32::from_ne_bytes(src),
        daddr: u32::from_ne_bytes(REMOTE),
        sport: sport.to_be(),
        dport: dport.to_be(),
        proto: IPPROTO_UDP,
        _pad: [0; 3],
    }
}

/// Fills both NAT maps with `count` UDP flows as the program would have
/// made them: every original and reply key distinct, none of them a flow
/// the cases use (their remote port is 1000 and up, the cases' is 53).
pub fn prefill_nat(fx: &Fixture, count: u32) -> anyhow::Result<()> {
    let mut orig: HashMap<MapData, NatKey, NatEntry> =
        crate::bpf::maps::open_pinned(&fx.dir, NAT_ORIG_MAP)?;
    let mut reply: HashMap<MapData, NatKey, NatEntry> =
        crate::bpf::maps::open_pinned(&fx.dir, NAT_REPLY_MAP)?;
    let range = u32::from(PORT_MAX - PORT_MIN) + 1;
    let now = crate::nat::monotonic_now_ns();
    for i in 0..count {
        let src = [10, 155, 0, 10 + (i % 200) as u8];
        let key = udp_key(src, 1024 + (i / 200) as u16, 1000 + (i / range) as u16);
        let xlat = NatEntry {
            addr: u32::from_ne_bytes(EXTERNAL),
            port: (PORT_MIN + (i % range) as u16).to_be(),
            state: 0,
            flags: 0,
            last_seen_ns: now,
        };
        let back = NatEntry {
            addr: key.saddr,
            port: key.sport,
            state: 0,
            flags: 0,
            last_seen_ns: now,
        };
        reply
            .insert(key.reply_key(&xlat), back, 0)
            .context("prefilling nat_reply")?;
        orig.insert(key, xlat, 0).context("prefilling nat_orig")?;
    }
    Ok(())
}

/// A loaded TC program.
pub fn classifier<'a>(fx: &'a Fixture, name: &str) -> anyhow::Result<&'a SchedClassifier> {
    Ok(fx
        .ebpf
        .program(name)
        .with_context(|| format!("{name} is missing from the object"))?
        .try_into()?)
}

/// A loaded XDP program.
pub fn xdp<'a>(fx: &'a Fixture, name: &str) -> anyhow::Result<&'a Xdp> {
    Ok(fx
        .ebpf
        .program(name)
        .with_context(|| format!("{name} is missing from the object"))?
        .try_into()?)
}
