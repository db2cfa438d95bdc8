//! The uplink's XDP program (`netlab_uplink_xdp`): attached in native mode
//! to the uplink's receive side as a pinned bpf_link, so it survives the
//! control plane like the tcx links, and removed with the lab's pins.
//!
//! Native only: generic (skb) XDP runs after the skb is built, which is
//! what the TC ingress already does, so where the driver has no native XDP
//! (or refuses it, e.g. a veth whose peer's MTU is above veth's XDP limit)
//! netlab does not attach anything and says so in one line; the uplink TC
//! ingress applies the same rule on its own. Never half attached: the link
//! exists only once it is pinned.
//!
//! What XDP_PASS on a veth needs: nothing netlab must change. Attaching a
//! program turns on the veth's NAPI receive path by itself (and the kernel
//! takes GSO away from the peer and caps the peer's MTU while it is there);
//! only XDP_REDIRECT *into* a veth needs NAPI on the receiving side (GRO or
//! a program there), which the uplink program never does.

use std::{io, path::Path};

use aya::{
    Ebpf,
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};

use crate::bpf::{
    Error, Result,
    fs::remove_pin,
    loader::{self, retry_eagain},
};

/// The program's name in the eBPF object.
pub const UPLINK_XDP_PROGRAM: &str = "netlab_uplink_xdp";
/// Its link's pin name in the lab's pin directory.
pub const UPLINK_XDP_LINK_PIN: &str = "link_uplink_xdp";
/// How the uplink program is attached (the only mode netlab uses).
pub const ATTACH_MODE: &str = "xdp native";

/// What [`attach_uplink`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UplinkXdp {
    /// Attached in native mode (or the pinned link now runs this object's
    /// program).
    Attached,
    /// `[host] uplink_xdp = false`: not attached (an old link removed).
    Off,
    /// The device refused native XDP: the TC ingress filters alone.
    Fallback { reason: String },
}

/// Attaches (or re-adopts) the uplink XDP program on `dev`, in the calling
/// thread's namespace, pinned at `<dir>/link_uplink_xdp`; with `wanted`
/// false, removes it. A refusal by the device is not an error: it is
/// returned as [`UplinkXdp::Fallback`] with nothing attached.
pub fn attach_uplink(ebpf: &mut Ebpf, dir: &Path, dev: &str, wanted: bool) -> Result<UplinkXdp> {
    let pin = dir.join(UPLINK_XDP_LINK_PIN);
    if !wanted {
        remove_pin(&pin)?;
        return Ok(UplinkXdp::Off);
    }
    let perr = |source| Error::Program {
        program: UPLINK_XDP_PROGRAM,
        source,
    };
    let prog: &mut Xdp = loader::program(ebpf, UPLINK_XDP_PROGRAM)?;
    if prog.fd().is_err() {
        retry_eagain(|| prog.load()).map_err(|e| Error::from_load(UPLINK_XDP_PROGRAM, e))?;
    }
    if pin.exists() {
        if adopt(prog, &pin).is_ok() {
            return Ok(UplinkXdp::Attached);
        }
        // Stale (its device was deleted) or not an XDP link: replace it.
        log::info!("replacing stale link pin {}", pin.display());
        remove_pin(&pin)?;
    }
    let id = match prog.attach(dev, XdpMode::Driver) {
        Ok(id) => id,
        Err(e) => {
            return Ok(UplinkXdp::Fallback {
                reason: refusal(&e),
            });
        }
    };
    let link = prog.take_link(id).map_err(perr)?;
    let link = match FdLink::try_from(link) {
        Ok(link) => link,
        Err(e) => {
            // aya fell back to a netlink attachment (no bpf_link for XDP
            // here), which cannot be pinned and which aya does not detach
            // once the link is converted: take it off with iproute2 rather
            // than leave it half owned.
            let off = std::process::Command::new("ip")
                .args(["link", "set", "dev", dev, "xdpdrv", "off"])
                .status();
            if !off.is_ok_and(|s| s.success()) {
                return Err(Error::InvalidPlan(format!(
                    "XDP on {dev} was attached through netlink and could not be removed \
                     (`ip link set dev {dev} xdpdrv off`)"
                )));
            }
            return Ok(UplinkXdp::Fallback {
                reason: format!("no XDP bpf_link on this kernel ({e})"),
            });
        }
    };
    // If pinning fails the link is dropped here and detaches with its fd.
    link.pin(&pin).map_err(|e| Error::Pin {
        what: "cannot pin link",
        path: pin.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    Ok(UplinkXdp::Attached)
}

/// Points the pinned link at `prog` (an atomic swap: no packet sees the
/// uplink without a program).
fn adopt(prog: &mut Xdp, pin: &Path) -> std::result::Result<(), String> {
    let link: FdLink = PinnedLink::from_pin(pin).map_err(|e| e.to_string())?.into();
    let link = XdpLink::try_from(link).map_err(|e| e.to_string())?;
    let id = prog.attach_to_link(link).map_err(|e| e.to_string())?;
    // The pin keeps the link; our fd goes when the taken link drops.
    drop(prog.take_link(id).map_err(|e| e.to_string())?);
    Ok(())
}

/// Why the device refused, in the user's terms.
fn refusal(e: &ProgramError) -> String {
    let errno = match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    };
    match errno {
        Some(libc::ERANGE) => {
            "its MTU (for a veth: its peer's) is above the XDP limit of one page per frame".into()
        }
        Some(libc::EOPNOTSUPP) => "the driver has no native XDP".into(),
        Some(libc::ENOSPC) => {
            "it has fewer receive queues than its peer has transmit queues".into()
        }
        Some(libc::EBUSY) | Some(libc::EEXIST) => "another XDP program is attached to it".into(),
        _ => e.to_string(),
    }
}

// ----------------------------------------------------------------------
// The switch in XDP (`switch = "xdp"`)

/// The XDP port program's name in the eBPF object.
pub const PORT_XDP_PROGRAM: &str = "netlab_xdp_port";
/// Prefix of its links' pins (`link_xdp_port_<dev>`).
pub const PORT_XDP_LINK_PREFIX: &str = "link_xdp_port_";

/// The pin of the XDP link on port `dev`.
pub fn port_link_pin(dir: &Path, dev: &str) -> std::path::PathBuf {
    dir.join(format!(
        "{PORT_XDP_LINK_PREFIX}{}",
        crate::bpf::fs::encode_name(dev)
    ))
}

/// A switch port as the XDP switch needs it.
#[derive(Clone, Debug)]
pub struct XdpPort {
    /// The port device (host side) and its ifindex.
    pub dev: String,
    pub ifindex: u32,
    /// Where the port's frames arrive: the namespace's veth (in `peer_netns`),
    /// or `vbridge` (in the host namespace, `peer_netns` None). An XDP
    /// redirect into a veth needs NAPI on that receiving end, which GRO
    /// turns on.
    pub peer_netns: Option<String>,
    pub peer_dev: String,
}

/// What [`attach_ports`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortsXdp {
    /// Every port runs the XDP switch in native mode.
    Attached,
    /// `switch = "tc"`: none does (any older XDP switch removed).
    Off,
    /// A port refused native XDP: none runs it, the TC switch works alone.
    Fallback { dev: String, reason: String },
}

/// Puts the XDP switch on every port of `ports` (calling thread in the
/// host namespace), all or nothing, with `xdp_ports` listing them and the
/// far ends' offloads set for it ([`set_offloads`]); with `wanted` false, takes it off every port.
/// Ports not in `ports` lose their XDP link. The TC port program stays
/// attached behind it either way.
pub fn attach_ports(
    ebpf: &mut Ebpf,
    dir: &Path,
    ports: &[XdpPort],
    wanted: bool,
) -> Result<PortsXdp> {
    let keep: std::collections::BTreeSet<std::path::PathBuf> = if wanted {
        ports.iter().map(|p| port_link_pin(dir, &p.dev)).collect()
    } else {
        Default::default()
    };
    remove_port_links(dir, |pin| !keep.contains(pin))?;
    sync_devmap(ebpf, if wanted { ports } else { &[] })?;
    if !wanted {
        for p in ports {
            // Best effort: a port whose device is gone has nothing to restore.
            let _ = set_offloads(p, false);
        }
        return Ok(PortsXdp::Off);
    }
    let prog: &mut Xdp = loader::program(ebpf, PORT_XDP_PROGRAM)?;
    if prog.fd().is_err() {
        retry_eagain(|| prog.load()).map_err(|e| Error::from_load(PORT_XDP_PROGRAM, e))?;
    }
    for p in ports {
        if let Err(reason) = set_offloads(p, true) {
            return fall_back(ebpf, dir, ports, &p.dev, reason);
        }
    }
    for p in ports {
        let pin = port_link_pin(dir, &p.dev);
        if pin.exists() && adopt(prog, &pin).is_ok() {
            continue;
        }
        remove_pin(&pin)?;
        match prog.attach(&p.dev, XdpMode::Driver) {
            Ok(id) => {
                let link = prog.take_link(id).map_err(|source| Error::Program {
                    program: PORT_XDP_PROGRAM,
                    source,
                })?;
                let Ok(link) = FdLink::try_from(link) else {
                    let reason = "no XDP bpf_link on this kernel".to_owned();
                    return fall_back(ebpf, dir, ports, &p.dev, reason);
                };
                link.pin(&pin).map_err(|e| Error::Pin {
                    what: "cannot pin link",
                    path: pin.clone(),
                    source: io::Error::other(e.to_string()),
                })?;
            }
            Err(e) => return fall_back(ebpf, dir, ports, &p.dev, refusal(&e)),
        }
    }
    Ok(PortsXdp::Attached)
}

/// Undoes a partial [`attach_ports`]: no port keeps the XDP switch.
fn fall_back(
    ebpf: &mut Ebpf,
    dir: &Path,
    ports: &[XdpPort],
    dev: &str,
    reason: String,
) -> Result<PortsXdp> {
    attach_ports(ebpf, dir, ports, false)?;
    Ok(PortsXdp::Fallback {
        dev: dev.to_owned(),
        reason,
    })
}

/// Removes the XDP port links whose pin `drop` selects.
fn remove_port_links(dir: &Path, drop: impl Fn(&Path) -> bool) -> Result<()> {
    for name in crate::bpf::fs::entries(dir)? {
        let pin = dir.join(&name);
        if name.starts_with(PORT_XDP_LINK_PREFIX) && drop(&pin) {
            remove_pin(&pin)?;
        }
    }
    Ok(())
}

/// Removes the XDP link of one port (`netlab detach`); fine when absent.
pub fn detach_port(dir: &Path, dev: &str) -> Result<()> {
    remove_pin(&port_link_pin(dir, dev))
}

/// A port added to a running lab (`netlab attach`) whose switch runs in
/// XDP (some port has an XDP link): its far end gets the offloads and it
/// joins `xdp_ports`, so the XDP ports' unicast and floods reach it; its
/// own ingress stays on the TC port program (the XDP program is not
/// pinned for later attachments) until the lab is installed again.
/// Nothing to do on a TC-only lab.
pub fn join_port(dir: &Path, port: &XdpPort) -> Result<()> {
    let on_xdp = crate::bpf::fs::entries(dir)?
        .iter()
        .any(|n| n.starts_with(PORT_XDP_LINK_PREFIX));
    if !on_xdp {
        return Ok(());
    }
    set_offloads(port, true).map_err(Error::InvalidPlan)?;
    let name = netlab_common::maps::XDP_PORTS_MAP;
    let path = dir.join(name);
    let data = aya::maps::MapData::from_pin(&path).map_err(Error::map(name))?;
    let mut devmap = aya::maps::DevMapHash::try_from(aya::maps::Map::DevMapHash(data))
        .map_err(Error::map(name))?;
    devmap
        .insert(port.ifindex, port.ifindex, None, 0)
        .map_err(|e| Error::InvalidPlan(format!("{name}: port {}: {e}", port.dev)))
}

/// Makes `xdp_ports` hold exactly `ports` (ifindex → ifindex).
fn sync_devmap(ebpf: &mut Ebpf, ports: &[XdpPort]) -> Result<()> {
    let name = netlab_common::maps::XDP_PORTS_MAP;
    let map = ebpf.map_mut(name).ok_or(Error::MissingProgram(name))?;
    let mut devmap = aya::maps::DevMapHash::try_from(map).map_err(Error::map(name))?;
    let old: Vec<u32> = devmap.keys().filter_map(|k| k.ok()).collect();
    for p in ports {
        devmap
            .insert(p.ifindex, p.ifindex, None, 0)
            .map_err(|e| Error::InvalidPlan(format!("{name}: port {}: {e}", p.dev)))?;
    }
    for k in old {
        if !ports.iter().any(|p| p.ifindex == k) {
            devmap.remove(k).map_err(Error::map(name))?;
        }
    }
    Ok(())
}

/// What a port's far end (the namespace's veth, or `vbridge`) needs while
/// the XDP switch runs, or (`xdp` false) veth's defaults back:
/// * GRO on: an XDP redirect into a veth is refused unless the receiving
///   end runs NAPI, which GRO turns on;
/// * transmit checksum offload off: a frame redirected in XDP becomes an
///   xdp_frame, which carries no "checksum to be completed" state, so a
///   TCP/UDP packet sent with a partial checksum would arrive with a wrong
///   one. The sender computes it in full instead (and loses TSO with it,
///   which XDP on the port costs it anyway).
///
/// These devices are the lab's own (created by `up`, deleted by `down`).
fn set_offloads(port: &XdpPort, xdp: bool) -> std::result::Result<(), String> {
    let mut cmd = match &port.peer_netns {
        // A CNI container's namespace is a path (a runtime's netns file).
        Some(ns) if ns.starts_with('/') => {
            let mut c = std::process::Command::new("nsenter");
            c.arg(format!("--net={ns}")).arg("ethtool");
            c
        }
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns, "ethtool"]);
            c
        }
        None => std::process::Command::new("ethtool"),
    };
    let (gro, tx) = if xdp { ("on", "off") } else { ("off", "on") };
    cmd.args(["-K", &port.peer_dev, "gro", gro, "tx", tx]);
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "ethtool -K {} gro {gro} tx {tx}: {}",
            port.peer_dev,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("ethtool (install it: cargo xtask setup): {e}")),
    }
}
