//! Interface addresses over rtnetlink, synchronously: add (already present is not an
//! error) and delete, as `ip addr add/del` do; and [`check_unicast`], the one check
//! that an address given to ipfake or arp-announce is one host's.

use crate::net::netlink::Route;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An interface name the kernel takes (dev_valid_name): 1 to IFNAMSIZ-1 bytes, not
/// `.` or `..`, without `/`, `:` or whitespace. The one check of every tool's names.
pub fn valid_ifname(d: &str) -> bool {
    !d.is_empty()
        && d.len() < libc::IFNAMSIZ
        && d != "."
        && d != ".."
        && !d.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
}

/// Refuse an address that is not one host's unicast address on a LAN, before anything
/// is added or announced: the unspecified address, broadcast (255.255.255.255, and
/// with `prefix` the subnet's broadcast address), multicast (IPv4 224/4, IPv6 ff00::/8,
/// link-local ones included), loopback (127/8, ::1), IPv4-mapped IPv6, and a /0
/// prefix (the kernel would take it as "every address is on this link"). With a
/// prefix shorter than /31 (IPv4) or /127 (IPv6), the subnet's first address is
/// refused too: it is the network address (IPv4, which hosts treat as broadcast-like
/// and routers refuse to forward to) or the subnet-router anycast address (IPv6,
/// RFC 4291 2.6.1). /31 and /32 (RFC 3021) have no network or broadcast address.
/// The message names the address and why; the caller says where it came from.
pub fn check_unicast(ip: IpAddr, prefix: Option<u8>) -> Result<(), String> {
    let why = match ip {
        IpAddr::V4(v4) => v4_problem(v4, prefix),
        IpAddr::V6(v6) => v6_problem(v6, prefix),
    };
    match why {
        None => Ok(()),
        Some(w) => Err(format!(
            "{w}; only one host's unicast address can be taken over or announced"
        )),
    }
}

fn v4_problem(a: Ipv4Addr, prefix: Option<u8>) -> Option<String> {
    if a.is_unspecified() {
        return Some(format!("{a} is the unspecified address"));
    }
    if a.is_broadcast() {
        return Some(format!("{a} is the broadcast address"));
    }
    if a.is_multicast() {
        return Some(format!("{a} is a multicast address (224.0.0.0/4)"));
    }
    if a.is_loopback() {
        return Some(format!("{a} is a loopback address (127.0.0.0/8)"));
    }
    match prefix {
        Some(0) => Some(format!("/0 makes {a}/0 cover every address")),
        Some(p) if p < 31 => {
            let host = u32::MAX >> p;
            let bits = u32::from(a);
            let net = format!("{}/{p}", Ipv4Addr::from(bits & !host));
            if bits & host == host {
                Some(format!("{a} is the broadcast address of {net}"))
            } else if bits & host == 0 {
                Some(format!(
                    "{a} is the network address of {net} (a point-to-point /31 has none)"
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn v6_problem(a: Ipv6Addr, prefix: Option<u8>) -> Option<String> {
    if a.is_unspecified() {
        return Some(format!("{a} is the unspecified address"));
    }
    if a.is_loopback() {
        return Some(format!("{a} is the loopback address"));
    }
    if a.is_multicast() {
        return Some(format!("{a} is a multicast address (ff00::/8)"));
    }
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(format!("{a} is an IPv4-mapped address (write {v4})"));
    }
    match prefix {
        Some(0) => Some(format!("/0 makes {a}/0 cover every address")),
        Some(p) if p < 127 => {
            let host = u128::MAX >> p;
            let bits = u128::from(a);
            (bits & host == 0).then(|| {
                format!(
                    "{a} is the subnet-router anycast address of {}/{p}",
                    Ipv6Addr::from(bits & !host)
                )
            })
        }
        _ => None,
    }
}

/// `192.0.2.10/24`
pub fn parse_prefixed(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` has no prefix length (write 192.0.2.10/24)"))?;
    let addr: IpAddr = a.parse().map_err(|_| format!("`{a}` is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("`{p}` is not a prefix length (0..{max})"))?;
    Ok((addr, prefix))
}

/// A dotted IPv4 netmask's prefix length (`255.255.255.0` → 24); a mask with holes is
/// none.
pub fn netmask_prefix(mask: &str) -> Option<u8> {
    let m: Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(m);
    let prefix = bits.leading_ones();
    (bits.checked_shl(prefix).unwrap_or(0) == 0).then_some(prefix as u8)
}

/// Whether `ip` is inside `net/prefix` (another family never is).
pub fn in_prefix(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u32::from(v) as u128, 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((x, w), (n, wn)) = (bits(ip), bits(net));
    if w != wn || prefix as u32 > w {
        return false;
    }
    let shift = w - prefix as u32;
    shift >= w || (x >> shift) == (n >> shift)
}

/// An address from the command line that must be one host's (arp-announce's ADDR).
pub fn parse_unicast(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s.parse().map_err(|_| format!("`{s}` is not an IP address"))?;
    check_unicast(ip, None)?;
    Ok(ip)
}

/// What adding an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// We added it (and should remove it when we let go).
    Now,
    /// It was there already.
    Already,
}

fn message(ifindex: u32, addr: IpAddr, prefix: u8, label: Option<&str>) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = prefix;
    m.header.index = ifindex;
    m.attributes.push(AddressAttribute::Local(addr));
    m.attributes.push(AddressAttribute::Address(addr));
    if let IpAddr::V4(v4) = addr {
        if prefix < 31 {
            let host_bits = 32 - prefix as u32;
            let brd = u32::from(v4) | ((1u64 << host_bits) - 1) as u32;
            m.attributes.push(AddressAttribute::Broadcast(brd.into()));
        }
        if let Some(l) = label {
            m.attributes.push(AddressAttribute::Label(l.to_string()));
        }
    } else {
        // A takeover cannot wait a second for duplicate address detection; ipfake
        // --probe runs its own DAD first when asked.
        m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    m
}

/// Send one request on a fresh rtnetlink socket and wait for its acknowledgement.
fn request(msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    Route::route()?.request(msg, flags)
}

/// Add `addr/prefix` to interface `ifindex` (with an IPv4 label such as `eth0:vip`).
pub fn add(ifindex: u32, addr: IpAddr, prefix: u8, label: Option<&str>) -> io::Result<Added> {
    match request(
        RouteNetlinkMessage::NewAddress(message(ifindex, addr, prefix, label)),
        NLM_F_CREATE | NLM_F_EXCL,
    ) {
        Ok(()) => Ok(Added::Now),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(Added::Already),
        Err(e) => Err(e),
    }
}

/// Remove `addr/prefix` from interface `ifindex`; absent is not an error.
pub fn del(ifindex: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
    match request(RouteNetlinkMessage::DelAddress(message(ifindex, addr, prefix, None)), 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `addr` is configured on any interface of this namespace.
pub fn present(addr: IpAddr) -> bool {
    labelled().iter().any(|a| a.0 == addr)
}

/// Every address of this namespace with its interface's name — for IPv4, the
/// address's label (`eth0:vip`), which is what getifaddrs reports.
pub fn labelled() -> Vec<(IpAddr, String)> {
    nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter_map(|a| {
                let ip = a.address.as_ref().and_then(|s| {
                    s.as_sockaddr_in()
                        .map(|v| IpAddr::V4(v.ip()))
                        .or_else(|| s.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())))
                })?;
                Some((ip, a.interface_name))
            })
            .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    /// The kernel's rule (dev_valid_name), the one check of every tool's names.
    #[test]
    fn interface_names() {
        for ok in ["eth0", "bond0.100", "br-lan", "a", "fifteen-chars-1"] {
            assert!(super::valid_ifname(ok), "{ok}");
        }
        for bad in ["", ".", "..", "sixteen-chars-12", "a/b", "eth0:1", "a b", "a\tb"] {
            assert!(!super::valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_contain_what_they_should() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_prefix(ip("10.77.2.9"), ip("10.77.2.0"), 24));
        assert!(!in_prefix(ip("10.77.3.9"), ip("10.77.2.0"), 24));
        assert!(in_prefix(ip("10.77.3.9"), ip("0.0.0.0"), 0));
        assert!(in_prefix(ip("10.77.2.9"), ip("10.77.2.9"), 32));
        assert!(!in_prefix(ip("10.77.2.8"), ip("10.77.2.9"), 32));
        assert!(in_prefix(ip("2001:db8::5"), ip("2001:db8::"), 64));
        assert!(!in_prefix(ip("2001:db9::5"), ip("2001:db8::"), 32));
        assert!(in_prefix(ip("2001:db9::5"), ip("::"), 0));
        assert!(!in_prefix(ip("10.0.0.1"), ip("::"), 0), "another family");
        assert_eq!(parse_prefixed("10.1.0.0/16"), Ok((ip("10.1.0.0"), 16)));
        assert!(parse_prefixed("10.1.0.0/33").is_err() && parse_prefixed("10.1.0.0").is_err());
    }
    use super::*;

    #[test]
    fn only_one_hosts_unicast_addresses_pass() {
        let ok = |s: &str, p: Option<u8>| check_unicast(s.parse().unwrap(), p);
        for (a, p) in [
            ("192.0.2.10", Some(24)),
            ("192.0.2.10", None),
            ("192.0.2.0", Some(31)),
            ("192.0.2.1", Some(31)),
            ("192.0.2.255", Some(32)),
            ("10.0.0.1", Some(8)),
            ("169.254.1.1", Some(16)),
            ("2001:db8::1", Some(64)),
            ("fe80::1", Some(64)),
            ("2001:db8::", Some(127)),
            ("2001:db8::", Some(128)),
        ] {
            assert_eq!(ok(a, p), Ok(()), "{a}/{p:?}");
        }
        for (a, p, why) in [
            ("0.0.0.0", None, "unspecified"),
            ("255.255.255.255", Some(32), "broadcast"),
            ("224.0.0.1", None, "multicast"),
            ("239.255.255.250", Some(32), "multicast"),
            ("127.0.0.5", Some(8), "loopback"),
            ("192.0.2.10", Some(0), "/0"),
            ("192.0.2.255", Some(24), "broadcast address of 192.0.2.0/24"),
            ("192.0.2.0", Some(24), "network address of 192.0.2.0/24"),
            ("10.1.255.255", Some(16), "broadcast address of 10.1.0.0/16"),
            ("192.0.2.3", Some(30), "broadcast address of 192.0.2.0/30"),
            ("::", None, "unspecified"),
            ("::1", Some(128), "loopback"),
            ("ff02::1", None, "multicast"),
            ("ff02::1:ff00:1", Some(128), "multicast"),
            ("::ffff:192.0.2.1", None, "write 192.0.2.1"),
            ("2001:db8::1", Some(0), "/0"),
            ("2001:db8::", Some(64), "subnet-router anycast address of 2001:db8::/64"),
        ] {
            let e = ok(a, p).unwrap_err();
            assert!(e.contains(a) || a == "192.0.2.10" || a == "2001:db8::1", "{e}");
            assert!(e.contains(why), "{a}/{p:?}: {e}");
        }
        assert_eq!(parse_unicast("192.0.2.1"), Ok("192.0.2.1".parse().unwrap()));
        assert!(parse_unicast("nope").unwrap_err().contains("not an IP address"));
        assert!(parse_unicast("ff02::1").unwrap_err().contains("multicast"));
    }

    #[test]
    fn add_present_del_on_lo() {
        if !crate::base::privilege::has(crate::base::privilege::Cap::NetAdmin) {
            eprintln!("add_present_del_on_lo: SKIPPED, needs CAP_NET_ADMIN");
            return;
        }
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let a = IpAddr::V4(Ipv4Addr::new(127, 88, 0, 1));
        let _ = del(lo, a, 32);
        assert!(!present(a));
        let first = add(lo, a, 32, None);
        let second = add(lo, a, 32, None);
        let shown = present(a);
        let removed = del(lo, a, 32);
        let gone = !present(a);
        // Absent is not an error either.
        let again = del(lo, a, 32);
        assert_eq!(first.unwrap(), Added::Now);
        assert_eq!(second.unwrap(), Added::Already);
        assert!(shown);
        removed.unwrap();
        assert!(gone);
        again.unwrap();
        // The kernel's refusal comes back as its errno.
        let e = add(u32::MAX, a, 32, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
    }
}
