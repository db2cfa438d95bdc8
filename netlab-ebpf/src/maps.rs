//! Every map of the programs, expanded from the map table
//! (`netlab_common::map_table!`, see ARCHITECTURE.md §4): one static per
//! row, named by the row's `item` and pinned by its `name` under
//! `/sys/fs/bpf/netlab/<lab>/`. BTF definitions (`crate::btf_map`), so
//! bpftool prints them decoded; the ring buffer is a legacy definition
//! (aya-ebpf's ring buffer is one, and it has no key or value type for BTF
//! to describe).
//!
//! Also the reads every switch program makes: its port, an FDB entry's
//! target and the run-time switches.

use aya_ebpf::{macros::btf_map, macros::map, maps::RingBuf};
use netlab_common::switch::{FdbEntry, PortInfo, SwitchConfig};

use crate::btf_map::{Array, DevMapHash, HashMap, LruHashMap, PerCpuArray};

/// One static of the kind the row names.
macro_rules! ebpf_map {
    (Hash, $item:ident, $name:tt, $key:ty, $value:ty, $max:expr, $doc:tt) => {
        #[doc = $doc]
        #[btf_map(name = $name)]
        pub static $item: HashMap<$key, $value, { $max as usize }> = HashMap::new();
    };
    (LruHash, $item:ident, $name:tt, $key:ty, $value:ty, $max:expr, $doc:tt) => {
        #[doc = $doc]
        #[btf_map(name = $name)]
        pub static $item: LruHashMap<$key, $value, { $max as usize }> = LruHashMap::new();
    };
    (Array, $item:ident, $name:tt, $key:ty, $value:ty, $max:expr, $doc:tt) => {
        #[doc = $doc]
        #[btf_map(name = $name)]
        pub static $item: Array<$value, { $max as usize }> = Array::new();
    };
    (PerCpuArray, $item:ident, $name:tt, $key:ty, $value:ty, $max:expr, $doc:tt) => {
        #[doc = $doc]
        #[btf_map(name = $name)]
        pub static $item: PerCpuArray<$value, { $max as usize }> = PerCpuArray::new();
    };
    (DevMapHash, $item:ident, $name:tt, $key:ty, $value:ty, $max:expr, $doc:tt) => {
        #[doc = $doc]
        #[btf_map(name = $name)]
        pub static $item: DevMapHash<$value, { $max as usize }> = DevMapHash::new();
    };
    (RingBuf, $item:ident, $name:tt, $key:ty, $value:ty, $max:expr, $doc:tt) => {
        #[doc = $doc]
        #[map(name = $name)]
        pub static $item: RingBuf = RingBuf::pinned($max, 0);
    };
}

/// The table's rows, one [`ebpf_map`] each.
macro_rules! ebpf_maps {
    ($({
        item: $item:ident, name_const: $name_const:ident, name: $name:tt, kind: $kind:ident,
        key: $key:ty, value: $value:ty, max_entries: $max:expr, sizing: $sizing:ident,
        doc: $doc:tt
    })*) => {
        $( ebpf_map!($kind, $item, $name, $key, $value, $max, $doc); )*
    };
}

netlab_common::map_table!(ebpf_maps);

/// The port the frame came in on, copied out of the map: through
/// `port_slots` and `flood_ports` (two arrays, whose lookups the verifier
/// inlines) when the slot recorded for the ifindex still holds it, else
/// (a large ifindex, a stale or missing slot) from the `ports` hash.
#[inline(always)]
pub fn port(ifindex: u32) -> Option<PortInfo> {
    if let Some(&slot) = PORT_SLOTS.get(ifindex)
        && slot != 0
        && let Some(port) = FLOOD_PORTS.get(slot - 1)
        && port.ifindex == ifindex
    {
        return Some(*port);
    }
    // SAFETY: the control plane replaces entries whole; a concurrent update
    // at worst yields the old or the new value of a field.
    unsafe { PORTS.get(ifindex).copied() }
}

/// The port an FDB entry names, read from `flood_ports` by its slot (an
/// array, which the verifier inlines, instead of a second `ports` hash
/// lookup); `None` when the slot no longer holds that port (the port was
/// removed, or a concurrent update is half-way): unknown unicast.
#[inline(always)]
pub fn fdb_target(entry: &FdbEntry) -> Option<PortInfo> {
    let port = FLOOD_PORTS.get(u32::from(entry.slot))?;
    (port.ifindex == entry.port_ifindex && port.ifindex != 0).then_some(*port)
}

/// The run-time switches (all off when the map is somehow unreadable).
#[inline(always)]
pub fn config() -> SwitchConfig {
    SWITCH_CONFIG.get(0).copied().unwrap_or_default()
}
