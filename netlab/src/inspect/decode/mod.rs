//! Decoding map bytes into what a network engineer reads: MACs as
//! `aa:bb:..`, addresses as dotted quads, protocols and states by name,
//! IPv6 addresses in their standard form,
//! ages as durations, ifindexes as interface names (resolved in the lab's
//! host namespace, where the switch ports live).
//!
//! Every decoder takes the raw key/value bytes of one entry (as the kernel
//! returns them) and yields named fields, so `map dump` tables and `--json`
//! come from one place, and the decoders are tested on known bytes.
//!
//! [`scalars`] formats one value, [`fields`] holds what a decoder yields,
//! [`context`] the interface names and clock it needs, [`records`] names
//! the fields of each key and value type, [`entry`] decodes one entry of
//! any map.

pub mod context;
pub mod entry;
pub mod fields;
pub mod records;
pub mod scalars;

pub use context::{Context, IfNames};
pub use entry::{entry, is_empty_slot, read};
pub use fields::{Decoded, Fields, cell, compare_fields};
pub use records::nat_key;
pub use scalars::{
    duration, fdb_flags, frag_dir, host_addr_kind, ipv4, ipv6, mac, nat_flags, nat_kind, nat_state,
    parse_proto, port, port_kind, proto, proto_number,
};
