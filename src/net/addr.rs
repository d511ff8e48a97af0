//! Interface addresses over rtnetlink, synchronously: add (already present is not an
//! error) and delete, as `ip addr add/del` do.

use crate::net::netlink::Route;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::io;
use std::net::IpAddr;

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
    nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.into_iter().any(|a| {
                a.address
                    .as_ref()
                    .and_then(|s| {
                        s.as_sockaddr_in()
                            .map(|v| IpAddr::V4(v.ip()))
                            .or_else(|| s.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())))
                    })
                    .is_some_and(|a| a == addr)
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

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
