//! MAC address helpers. Comparisons go through integers so that no `bcmp`
//! call is emitted (the BPF target has no libc).

/// The six bytes as one integer, for equality tests.
#[inline(always)]
pub fn as_u64(mac: &[u8; 6]) -> u64 {
    u64::from(mac[0])
        | u64::from(mac[1]) << 8
        | u64::from(mac[2]) << 16
        | u64::from(mac[3]) << 24
        | u64::from(mac[4]) << 32
        | u64::from(mac[5]) << 40
}

#[inline(always)]
pub fn eq(a: &[u8; 6], b: &[u8; 6]) -> bool {
    as_u64(a) == as_u64(b)
}

/// Group bit: broadcast and multicast destinations (and never a valid source).
#[inline(always)]
pub fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}
