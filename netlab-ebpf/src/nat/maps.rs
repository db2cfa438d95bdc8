//! The NAT's maps. All are pinned by name, so a restarted control plane (and
//! a reloaded program) finds the live translations. The sizes here are
//! defaults; the loader overrides them from `NatPlan::max_entries`.

use crate::btf_map::{Array, HashMap, LruHashMap};
use aya_ebpf::macros::btf_map;
use netlab_common::{
    nat::{
        NAT_DEFAULT_MAX_ENTRIES, NAT_ENDPOINTS_SIZE, NAT_FRAGS_SIZE, NAT_PUBLISH_SIZE, NatConfig,
        NatEntry, NatFragEntry, NatFragKey, NatKey, PUBLISH_NETNS_SIZE, PUBLISH_SOCKS_SIZE,
        PublishEntry, PublishKey, PublishNetns, PublishSockEntry, PublishSockKey,
    },
    switch::Endpoint,
};

/// One entry: subnet, external address, port range, flags, gateway MAC.
#[btf_map(name = "nat_config")]
pub static NAT_CONFIG: Array<NatConfig, 1> = Array::new();

/// Original tuple (as it leaves the lab) → translated source.
#[btf_map(name = "nat_orig")]
pub static NAT_ORIG: LruHashMap<NatKey, NatEntry, { NAT_DEFAULT_MAX_ENTRIES as usize }> =
    LruHashMap::new();

/// Reply tuple (as it arrives on the uplink) → original source. Also the
/// port allocator's claim table: a translated port is taken exactly when a
/// reply key naming it exists.
#[btf_map(name = "nat_reply")]
pub static NAT_REPLY: LruHashMap<NatKey, NatEntry, { NAT_DEFAULT_MAX_ENTRIES as usize }> =
    LruHashMap::new();

/// Lab endpoint IPv4 → its MAC and switch port, for the ingress fast path.
#[btf_map(name = "nat_endpoints")]
pub static NAT_ENDPOINTS: HashMap<u32, Endpoint, { NAT_ENDPOINTS_SIZE as usize }> = HashMap::new();

/// A fragmented datagram whose first fragment was translated → the address
/// its later fragments get (they carry no ports to look up). See `frag`.
#[btf_map(name = "nat_frags")]
pub static NAT_FRAGS: LruHashMap<NatFragKey, NatFragEntry, { NAT_FRAGS_SIZE as usize }> =
    LruHashMap::new();

/// Published ports: (host address or 0, host port, protocol) → the
/// namespace's address and port. Filled by the control plane; read by the
/// uplink ingress for packets no translation knows yet (see `dnat`).
#[btf_map(name = "nat_publish")]
pub static NAT_PUBLISH: HashMap<PublishKey, PublishEntry, { NAT_PUBLISH_SIZE as usize }> =
    HashMap::new();

/// Network namespace cookie → the lab namespace it is: whose sockets the
/// socket hooks translate (see `sock`).
#[btf_map(name = "publish_netns")]
pub static PUBLISH_NETNS: HashMap<u64, PublishNetns, { PUBLISH_NETNS_SIZE as usize }> =
    HashMap::new();

/// A UDP socket and the namespace address its datagrams were redirected
/// to → the published address it addressed (see `sock`).
#[btf_map(name = "publish_socks")]
pub static PUBLISH_SOCKS: LruHashMap<
    PublishSockKey,
    PublishSockEntry,
    { PUBLISH_SOCKS_SIZE as usize },
> = LruHashMap::new();
