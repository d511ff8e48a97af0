//! Interface addresses over rtnetlink, synchronously: add (already present is not an
//! error) and delete, as `ip addr add/del` do.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
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

/// Send one request and wait for its acknowledgement; the kernel's error as io::Error.
fn request(msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = 1;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    req.finalize();
    let mut buf = vec![0; req.buffer_len()];
    req.serialize(&mut buf);
    sock.send(&buf, 0)?;
    let mut rbuf = vec![0u8; 8192];
    loop {
        let n = sock.recv(&mut &mut rbuf[..], 0)?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(rbuf[off..off + 4].try_into().unwrap()) as usize;
            if len < 16 || off + len > n {
                return Err(io::Error::other("malformed netlink answer"));
            }
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rbuf[off..off + len])
                .map_err(|e| io::Error::other(format!("netlink: {e}")))?;
            if let NetlinkPayload::Error(e) = m.payload {
                return match e.code {
                    None => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                };
            }
            off += (len + 3) & !3;
        }
    }
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
