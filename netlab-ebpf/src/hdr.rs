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

/// Copies of packet bytes at any offset, for headers whose position is
/// only known at run time (the IPv6 extension header walk): one reader
/// for both port programs, so the walk exists once. The TC side copies
/// with `bpf_skb_load_bytes` (non-linear data too), the XDP side with
/// `bpf_xdp_load_bytes`; both take a variable offset the verifier need
/// not bound, and fail past the end of the frame.
pub trait Load {
    /// A copy of the `T` at `offset`, if the frame holds all of it.
    fn read<T: Copy>(&self, offset: usize) -> Option<T>;
    /// The frame's length in bytes.
    fn frame_len(&self) -> usize;
}

impl Load for TcContext {
    #[inline(always)]
    fn read<T: Copy>(&self, offset: usize) -> Option<T> {
        self.load::<T>(offset).ok()
    }

    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.len() as usize
    }
}

impl Load for aya_ebpf::programs::XdpContext {
    #[inline(always)]
    fn read<T: Copy>(&self, offset: usize) -> Option<T> {
        let mut value = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: the helper writes at most size_of::<T>() bytes into
        // `value` and reports failure (nothing usable) otherwise.
        let ret = unsafe {
            aya_ebpf::helpers::generated::bpf_xdp_load_bytes(
                self.ctx,
                offset as u32,
                value.as_mut_ptr().cast(),
                size_of::<T>() as u32,
            )
        };
        // SAFETY: the helper filled every byte when it returned 0.
        (ret == 0).then(|| unsafe { value.assume_init() })
    }

    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.data_end() - self.data()
    }
}
