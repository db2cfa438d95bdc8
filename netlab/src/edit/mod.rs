//! Changing the eBPF datapath's state by hand, for debugging (what
//! `conntrack -D/-F`, `bridge fdb add/del` and `bpftool map update` do for
//! the kernel's): `nat flush`, `nat delete`, `fdb add`, `fdb del`.
//!
//! Each command refuses what would corrupt the datapath, before changing
//! anything: a key of the wrong shape, deleting an FDB entry the control
//! plane owns (static), an entry on a device that is not a switch port.
//! All are safe while traffic flows: a NAT flow goes the way expiry removes
//! one (original direction first, then the reply entry that holds its
//! port), and a packet of a deleted flow simply creates a new translation.

pub mod fdb;
pub mod nat;

pub use fdb::FdbCommand;
pub use nat::{NatDeleteArgs, NatFlushArgs};
