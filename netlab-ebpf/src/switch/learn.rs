//! Optional MAC learning (`SwitchConfig.learning`, off by default).
//!
//! The control plane installs a static entry for every endpoint and the
//! gateway, so learning only matters for MACs it does not know (for example
//! a device the user added behind `vbridge`). A learned entry never replaces
//! a static one: static entries are created by the control plane and only
//! learned entries (FDB_FLAG_LEARNED) are moved here.

use aya_ebpf::bindings::BPF_NOEXIST;
use netlab_common::{
    counters::Counter,
    switch::{FDB_FLAG_LEARNED, FDB_FLAG_STATIC, FdbEntry, FdbKey, PortInfo},
};

use super::mac;
use crate::{counters::count, events, maps::FDB};

#[inline(always)]
pub fn learn(src: &[u8; 6], ingress: u32, port: &PortInfo) {
    if mac::is_group(src) {
        return;
    }
    let key = FdbKey::new(*src);
    match FDB.get_ptr_mut(key) {
        Some(entry) => {
            // SAFETY: a pointer into the map value; fields are written one
            // by one, a reader sees the old or the new port.
            unsafe {
                if (*entry).flags & FDB_FLAG_STATIC == 0 && (*entry).port_ifindex != ingress {
                    (*entry).port_ifindex = ingress;
                    (*entry).kind = port.kind;
                    count(Counter::Learned);
                    events::fdb_learned(src, ingress);
                }
            }
        }
        None => {
            let entry = FdbEntry {
                port_ifindex: ingress,
                kind: port.kind,
                flags: FDB_FLAG_LEARNED,
                _pad: [0; 2],
            };
            // NOEXIST: if the control plane raced us with a static entry,
            // the static one stays.
            if FDB.insert(key, entry, u64::from(BPF_NOEXIST)).is_ok() {
                count(Counter::Learned);
                events::fdb_learned(src, ingress);
            }
        }
    }
}
