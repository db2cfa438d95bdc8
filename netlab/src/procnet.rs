//! The kernel's socket tables as `/proc/net/{tcp,udp}[6]` print them: one
//! header line, then `sl local_address rem_address st ...`, the local
//! address as `HEXADDR:HEXPORT` (an IPv4 address as 8 hex digits of the
//! u32 in host byte order, IPv6 as 32) and the state as two hex digits.
//! Read through `/proc/thread-self/net/…`, they are the tables of the
//! calling thread's network namespace (`/proc/self` would follow the
//! thread group leader).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `st` of a TCP socket in LISTEN.
pub const TCP_LISTEN: u8 = 0x0A;

/// One socket's local end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSocket {
    /// The local IPv4 address (0.0.0.0 for a wildcard bind); `None` in the
    /// IPv6 tables.
    pub ipv4: Option<Ipv4Addr>,
    /// The local address, IPv4 or IPv6 (`::` for a wildcard bind).
    pub address: Option<IpAddr>,
    pub port: u16,
    /// `st`: a TCP state (`TCP_LISTEN`, ...); 07 for an unconnected UDP
    /// socket.
    pub state: u8,
}

/// The sockets of one table's text; malformed lines are skipped.
pub fn parse(text: &str) -> impl Iterator<Item = LocalSocket> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1)?;
        let state = u8::from_str_radix(cols.nth(1)?, 16).ok()?;
        let (addr, port) = local.rsplit_once(':')?;
        let ipv4 = (addr.len() == 8)
            .then(|| u32::from_str_radix(addr, 16).ok())
            .flatten()
            .map(|a| Ipv4Addr::from(a.to_ne_bytes()));
        let address = ipv4.map(IpAddr::V4).or_else(|| ipv6(addr).map(IpAddr::V6));
        Some(LocalSocket {
            ipv4,
            address,
            port: u16::from_str_radix(port, 16).ok()?,
            state,
        })
    })
}

/// An IPv6 address as the tables print it: four 32-bit words, each in
/// host byte order.
fn ipv6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_local_ends_and_states() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   2: garbage\n";
        let sockets: Vec<_> = parse(tcp).collect();
        assert_eq!(
            sockets,
            vec![
                LocalSocket {
                    ipv4: Some(Ipv4Addr::LOCALHOST),
                    address: Some(Ipv4Addr::LOCALHOST.into()),
                    port: 8080,
                    state: TCP_LISTEN
                },
                LocalSocket {
                    ipv4: Some(Ipv4Addr::LOCALHOST),
                    address: Some(Ipv4Addr::LOCALHOST.into()),
                    port: 8081,
                    state: 1
                },
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:1451 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n";
        assert_eq!(
            parse(tcp6).collect::<Vec<_>>(),
            vec![LocalSocket {
                ipv4: None,
                address: Some(Ipv6Addr::UNSPECIFIED.into()),
                port: 5201,
                state: TCP_LISTEN
            }]
        );
        // ::1 and 2001:db8::1 as x86 (little-endian words) prints them.
        assert_eq!(
            ipv6("00000000000000000000000001000000"),
            Some(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            ipv6("B80D0120000000000000000001000000"),
            Some("2001:db8::1".parse().unwrap())
        );
    }
}
