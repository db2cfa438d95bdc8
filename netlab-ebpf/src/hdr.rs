//! Bounds-checked access to packet bytes.
//!
//! Every header access in netlab goes through these functions: they return
//! a pointer only when `offset + size_of::<T>()` lies inside the linear packet
//! data, in a form the verifier can follow (compare against `data_end` right
//! before use). Pointers are invalidated by any helper that may change the
//! packet (`bpf_skb_store_bytes`, csum replace, clone_redirect, pull_data,
//! ...): re-derive them after such a call.

use core::mem::size_of;

use aya_ebpf::programs::TcContext;

/// Pointer to a `T` at `offset` bytes into the packet, if it fits.
#[inline(always)]
pub fn ptr_at<T>(ctx: &TcContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    let len = size_of::<T>();
    if start + offset + len > end {
        return None;
    }
    Some((start + offset) as *const T)
}

/// Mutable pointer to a `T` at `offset` bytes into the packet, if it fits.
#[inline(always)]
pub fn ptr_at_mut<T>(ctx: &TcContext, offset: usize) -> Option<*mut T> {
    ptr_at::<T>(ctx, offset).map(|p| p as *mut T)
}

/// Makes the first `len` bytes of the packet directly accessible, pulling
/// them into the linear area when the skb carries them in fragments.
///
/// Returns false when the packet is shorter than `len` (a truncated header)
/// or the pull failed. Invalidates every packet pointer derived before.
#[inline(always)]
pub fn make_linear(ctx: &TcContext, len: usize) -> bool {
    if ctx.data() + len <= ctx.data_end() {
        return true;
    }
    if (ctx.len() as usize) < len {
        return false;
    }
    ctx.pull_data(len as u32).is_ok() && ctx.data() + len <= ctx.data_end()
}
