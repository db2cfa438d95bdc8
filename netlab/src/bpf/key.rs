//! How the maps store an IPv4 address: the four bytes in network order,
//! as in the packet, read as a native-endian u32 (what the programs
//! compare against the header without swapping).

use std::net::Ipv4Addr;

/// `ip` as a map key or value field.
pub fn ipv4_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// The address a map key or value field holds.
pub fn ipv4_of_key(key: u32) -> Ipv4Addr {
    Ipv4Addr::from(key.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_stored_in_network_order() {
        let ip = Ipv4Addr::new(192, 168, 28, 5);
        assert_eq!(ipv4_key(ip).to_ne_bytes(), [192, 168, 28, 5]);
        assert_eq!(ipv4_of_key(ipv4_key(ip)), ip);
    }
}
