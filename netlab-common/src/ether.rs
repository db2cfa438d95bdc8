//! EtherTypes in host byte order, as the event records carry them
//! (`Event::ethertype`), ARP's protocol type reads, and the userspace
//! frame builders write them (the programs compare the wire field with
//! `network_types::eth::EtherType`, which is in network order).

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
/// 802.1Q VLAN tag (TPID).
pub const ETH_P_8021Q: u16 = 0x8100;
