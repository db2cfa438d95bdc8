//! Types shared by the eBPF programs and the userspace control plane.
//!
//! Every map key and value is `#[repr(C)]` with explicit padding so that the
//! layout is the same on both sides and no uninitialised byte ever reaches a
//! hash key. Layouts are asserted by the unit tests at the bottom of each
//! module. Addresses are stored in network byte order, exactly as they appear
//! in the packet, so the datapath never swaps bytes.
#![no_std]

pub mod counters;
pub mod ether;
pub mod events;
pub mod maps;
pub mod nat;
pub mod nat6;
pub mod switch;

/// Implements `aya::Pod` for the listed types when built for userspace.
macro_rules! user_pod {
    ($($t:ty),* $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: every type listed is `#[repr(C)]`, `Copy`, has explicit
            // padding fields and no pointers, so any bit pattern is valid.
            unsafe impl aya::Pod for $t {}
        )*
    };
}
pub(crate) use user_pod;
