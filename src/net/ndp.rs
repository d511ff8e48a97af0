//! IPv6's counterpart of gratuitous ARP: unsolicited neighbour advertisements with the
//! override flag (RFC 4861 7.2.6) and duplicate address detection probes (RFC 4862
//! 5.4), as whole Ethernet frames for the AF_PACKET link of [`crate::net::arp::Link`].

use pnet_base::MacAddr;
use std::net::Ipv6Addr;

const ETH_IPV6: u16 = 0x86dd;
const ICMPV6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;
const FLAG_OVERRIDE: u8 = 0x20;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn multicast_mac(dst: Ipv6Addr) -> MacAddr {
    let o = dst.octets();
    MacAddr(0x33, 0x33, o[12], o[13], o[14], o[15])
}

/// The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        (o[14] as u16) << 8 | o[15] as u16,
    )
}

/// The ICMPv6 checksum over the pseudo-header and the message.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(msg);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn frame(eth_src: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, mut icmp: Vec<u8>) -> Vec<u8> {
    let c = checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    let d = multicast_mac(dst);
    f.extend_from_slice(&[
        d.0, d.1, d.2, d.3, d.4, d.5, eth_src.0, eth_src.1, eth_src.2, eth_src.3, eth_src.4, eth_src.5,
    ]);
    f.extend_from_slice(&ETH_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[ICMPV6, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// An unsolicited neighbour advertisement: `addr` is at `mac`, override set, to all
/// nodes, from the address itself.
pub fn advertisement(eth_src: MacAddr, mac: MacAddr, addr: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![NA, 0, 0, 0, FLAG_OVERRIDE, 0, 0, 0];
    icmp.extend_from_slice(&addr.octets());
    icmp.extend_from_slice(&[2, 1, mac.0, mac.1, mac.2, mac.3, mac.4, mac.5]); // target link-layer address
    frame(eth_src, addr, ALL_NODES, icmp)
}

/// A duplicate address detection probe: a neighbour solicitation for `addr` from the
/// unspecified address to its solicited-node group.
pub fn dad_probe(eth_src: MacAddr, addr: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![NS, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&addr.octets());
    frame(eth_src, Ipv6Addr::UNSPECIFIED, solicited_node(addr), icmp)
}

/// If `data` shows another host using `addr` — an advertisement for it, or its own
/// DAD probe for it — that host's MAC.
pub fn claims(data: &[u8], addr: Ipv6Addr, own: MacAddr) -> Option<MacAddr> {
    if data.len() < 14 + 40 + 24 || u16::from_be_bytes([data[12], data[13]]) != ETH_IPV6 || data[14 + 6] != ICMPV6 {
        return None;
    }
    let src_mac = MacAddr(data[6], data[7], data[8], data[9], data[10], data[11]);
    if src_mac == own {
        return None;
    }
    let icmp = &data[54..];
    let target: [u8; 16] = icmp[8..24].try_into().ok()?;
    if Ipv6Addr::from(target) != addr {
        return None;
    }
    match icmp[0] {
        NA => Some(src_mac),
        NS if data[22..38] == [0u8; 16] => Some(src_mac),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_layout_and_checksum() {
        let mac = MacAddr(2, 0, 0, 0, 0, 1);
        let a: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let f = advertisement(mac, mac, a);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(f[54], NA);
        assert_eq!(f[58], FLAG_OVERRIDE);
        // A correct checksum sums to zero over the message with it in place.
        let src: [u8; 16] = f[22..38].try_into().unwrap();
        let dst: [u8; 16] = f[38..54].try_into().unwrap();
        assert_eq!(checksum(src.into(), dst.into(), &f[54..]), 0);
        assert_eq!(claims(&f, a, MacAddr(2, 0, 0, 0, 0, 2)), Some(mac));
        assert_eq!(claims(&f, a, mac), None);
    }

    #[test]
    fn dad_probe_goes_to_the_solicited_node_group() {
        let a: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(solicited_node(a), "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        let f = dad_probe(MacAddr(2, 0, 0, 0, 0, 1), a);
        assert_eq!(&f[..6], &[0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        assert_eq!(
            claims(&f, a, MacAddr(2, 0, 0, 0, 0, 9)),
            Some(MacAddr(2, 0, 0, 0, 0, 1))
        );
    }
}
