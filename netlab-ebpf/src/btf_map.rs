//! BTF map definitions pinned by name.
//!
//! Why not `aya_ebpf::btf_maps`: its definitions (0.2.1) have no `pinning`
//! member, so a loader would create fresh maps instead of re-adopting the
//! pinned ones, and why not the legacy `aya_ebpf::maps`: maps created from
//! them carry no BTF, so `bpftool map dump pinned ...` can only print raw
//! bytes. These definitions are the libbpf layout (`type`, `key`, `value`,
//! `max_entries`, `map_flags`, `pinning` as pointers to arrays whose length
//! is the value) that aya-obj parses, including `pinning =
//! LIBBPF_PIN_BY_NAME`: the loader pins each map as `<pin dir>/<name>` and
//! creates it with its key/value BTF types.

use core::{borrow::Borrow, ffi::c_void, ptr::NonNull};

use aya_ebpf::{
    bindings::bpf_map_type::{
        BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_DEVMAP_HASH, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH,
        BPF_MAP_TYPE_PERCPU_ARRAY,
    },
    helpers::{bpf_map_delete_elem, bpf_map_lookup_elem, bpf_map_update_elem},
};

/// libbpf's `LIBBPF_PIN_BY_NAME`.
const PIN_BY_NAME: usize = 1;

macro_rules! pinned_btf_map {
    ($(#[$attr:meta])* $name:ident<$($gen:ident),+>, $map_type:ident, key: $key:ty, value: $value:ty) => {
        $(#[$attr])*
        // repr(C): the members must stay in declaration order in BTF.
        #[repr(C)]
        pub struct $name<$($gen,)+ const MAX_ENTRIES: usize> {
            r#type: *const [i32; $map_type as usize],
            key: *const $key,
            value: *const $value,
            max_entries: *const [i32; MAX_ENTRIES],
            map_flags: *const [i32; 0],
            pinning: *const [i32; PIN_BY_NAME],
        }

        // SAFETY: the members are placeholders the loader reads from BTF;
        // they are never dereferenced. Statics need Sync.
        unsafe impl<$($gen,)+ const MAX_ENTRIES: usize> Sync for $name<$($gen,)+ MAX_ENTRIES> {}

        impl<$($gen,)+ const MAX_ENTRIES: usize> $name<$($gen,)+ MAX_ENTRIES> {
            pub const fn new() -> Self {
                Self {
                    r#type: core::ptr::null(),
                    key: core::ptr::null(),
                    value: core::ptr::null(),
                    max_entries: core::ptr::null(),
                    map_flags: core::ptr::null(),
                    pinning: core::ptr::null(),
                }
            }

            #[inline(always)]
            fn as_ptr(&self) -> *mut c_void {
                core::ptr::from_ref(self).cast_mut().cast()
            }

            // Not every map type uses these (a devmap is only redirected to).
            #[allow(dead_code)]
            #[inline(always)]
            fn lookup(&self, key: &$key) -> Option<NonNull<$value>> {
                // SAFETY: the helper takes the map (relocated by the loader)
                // and a pointer to a key of the map's key size.
                NonNull::new(unsafe {
                    bpf_map_lookup_elem(self.as_ptr(), core::ptr::from_ref(key).cast())
                }
                .cast())
            }

            #[allow(dead_code)]
            #[inline(always)]
            fn update(&self, key: &$key, value: &$value, flags: u64) -> Result<(), i32> {
                // SAFETY: as in `lookup`; the value has the map's value size.
                match unsafe {
                    bpf_map_update_elem(
                        self.as_ptr(),
                        core::ptr::from_ref(key).cast(),
                        core::ptr::from_ref(value).cast(),
                        flags,
                    )
                } {
                    0 => Ok(()),
                    ret => Err(ret as i32),
                }
            }
        }
    };
}

macro_rules! hash_api {
    ($name:ident) => {
        // A uniform API; not every map uses every method.
        #[allow(dead_code)]
        impl<K, V, const MAX_ENTRIES: usize> $name<K, V, MAX_ENTRIES> {
            /// # Safety
            /// The entry may be changed or deleted (and its slot reused)
            /// while the reference lives; copy it out at once.
            #[inline(always)]
            pub unsafe fn get(&self, key: impl Borrow<K>) -> Option<&V> {
                // SAFETY: a map value pointer, valid for the program's run.
                self.lookup(key.borrow()).map(|p| unsafe { p.as_ref() })
            }

            #[inline(always)]
            pub fn get_ptr(&self, key: impl Borrow<K>) -> Option<*const V> {
                self.lookup(key.borrow()).map(|p| p.as_ptr().cast_const())
            }

            #[inline(always)]
            pub fn get_ptr_mut(&self, key: impl Borrow<K>) -> Option<*mut V> {
                self.lookup(key.borrow()).map(NonNull::as_ptr)
            }

            #[inline(always)]
            pub fn insert(
                &self,
                key: impl Borrow<K>,
                value: impl Borrow<V>,
                flags: u64,
            ) -> Result<(), i32> {
                self.update(key.borrow(), value.borrow(), flags)
            }

            #[inline(always)]
            pub fn remove(&self, key: impl Borrow<K>) -> Result<(), i32> {
                // SAFETY: as in `lookup`.
                match unsafe {
                    bpf_map_delete_elem(self.as_ptr(), core::ptr::from_ref(key.borrow()).cast())
                } {
                    0 => Ok(()),
                    ret => Err(ret as i32),
                }
            }
        }
    };
}

macro_rules! array_api {
    ($name:ident) => {
        #[allow(dead_code)]
        impl<T, const MAX_ENTRIES: usize> $name<T, MAX_ENTRIES> {
            /// Array slots are preallocated and never freed: the reference
            /// stays valid (its contents may change under it).
            #[inline(always)]
            pub fn get(&self, index: u32) -> Option<&T> {
                // SAFETY: see above.
                self.lookup(&index).map(|p| unsafe { p.as_ref() })
            }

            #[inline(always)]
            pub fn get_ptr_mut(&self, index: u32) -> Option<*mut T> {
                self.lookup(&index).map(NonNull::as_ptr)
            }

            #[inline(always)]
            pub fn set(&self, index: u32, value: impl Borrow<T>, flags: u64) -> Result<(), i32> {
                self.update(&index, value.borrow(), flags)
            }
        }
    };
}

pinned_btf_map!(
    /// `BPF_MAP_TYPE_HASH`, pinned by name.
    HashMap<K, V>, BPF_MAP_TYPE_HASH, key: K, value: V
);
hash_api!(HashMap);

pinned_btf_map!(
    /// `BPF_MAP_TYPE_LRU_HASH`, pinned by name.
    LruHashMap<K, V>, BPF_MAP_TYPE_LRU_HASH, key: K, value: V
);
hash_api!(LruHashMap);

pinned_btf_map!(
    /// `BPF_MAP_TYPE_ARRAY`, pinned by name.
    Array<T>, BPF_MAP_TYPE_ARRAY, key: u32, value: T
);
array_api!(Array);

pinned_btf_map!(
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`, pinned by name; lookups return this
    /// CPU's slot.
    PerCpuArray<T>, BPF_MAP_TYPE_PERCPU_ARRAY, key: u32, value: T
);
array_api!(PerCpuArray);

pinned_btf_map!(
    /// `BPF_MAP_TYPE_DEVMAP_HASH` (key: ifindex), pinned by name: the
    /// targets of XDP redirects.
    DevMapHash<V>, BPF_MAP_TYPE_DEVMAP_HASH, key: u32, value: V
);

#[allow(dead_code)]
impl<V, const MAX_ENTRIES: usize> DevMapHash<V, MAX_ENTRIES> {
    /// `bpf_redirect_map`: the XDP verdict (XDP_REDIRECT, or the low bits
    /// of `flags` when `key` is not in the map).
    #[inline(always)]
    pub fn redirect(&self, key: u32, flags: u64) -> u32 {
        // SAFETY: the helper takes the map (relocated by the loader).
        unsafe { aya_ebpf::helpers::bpf_redirect_map(self.as_ptr(), u64::from(key), flags) as u32 }
    }
}
