//! ICMP echo: one socket type for mon-check's icmp check and hb-watch's ping nodes.
//! An unprivileged ICMP datagram socket is used where the kernel allows it
//! (net.ipv4.ping_group_range), a raw socket otherwise (root or CAP_NET_RAW); the kind
//! decides whether replies carry an IPv4 header and whether we match the identifier.

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct EchoSocket {
    fd: OwnedFd,
    raw: bool,
    v6: bool,
}

/// One echo reply: who sent it, and the sequence and token of the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub from: Option<IpAddr>,
    pub seq: u16,
    pub token: u64,
}

impl EchoSocket {
    /// A non-blocking echo socket for IPv4 or IPv6; PermissionDenied when neither kind
    /// may be opened.
    pub fn open(v6: bool) -> io::Result<EchoSocket> {
        let (dom, proto) = if v6 {
            (AddressFamily::Inet6, SockProtocol::IcmpV6)
        } else {
            (AddressFamily::Inet, SockProtocol::Icmp)
        };
        for (ty, raw) in [(SockType::Datagram, false), (SockType::Raw, true)] {
            match socket::socket(dom, ty, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, proto) {
                Ok(fd) => return Ok(EchoSocket { fd, raw, v6 }),
                Err(e) if !raw && matches!(e, Errno::EACCES | Errno::EPERM) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Send an echo request; `token` travels in the payload, so that our replies are
    /// told from other pings' on a raw socket.
    pub fn send(&self, to: IpAddr, id: u16, seq: u16, token: u64) -> io::Result<()> {
        let mut pkt = [0u8; 64];
        pkt[0] = if self.v6 { 128 } else { 8 };
        pkt[4..6].copy_from_slice(&id.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..16].copy_from_slice(&token.to_be_bytes());
        if !self.v6 {
            // The kernel fills in ICMPv6's checksum; ICMPv4's is ours.
            let c = checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let sa = SockaddrStorage::from(std::net::SocketAddr::new(to, 0));
        socket::sendto(self.fd.as_raw_fd(), &pkt, &sa, MsgFlags::empty())?;
        Ok(())
    }

    /// The next echo reply waiting for identifier `id`, skipping anything else; None
    /// when nothing more is waiting.
    pub fn recv(&self, id: u16) -> Option<Reply> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = socket::recvfrom::<SockaddrStorage>(self.fd.as_raw_fd(), &mut buf).ok()?;
            let from = from.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v| IpAddr::V4(v.ip()))
                    .or_else(|| a.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())))
            });
            let mut b = &buf[..n];
            if self.raw && !self.v6 {
                let ihl = usize::from(b.first().map(|v| v & 0x0f).unwrap_or(0)) * 4;
                b = b.get(ihl..).unwrap_or(&[]);
            }
            if b.len() < 16 || b[0] != if self.v6 { 129 } else { 0 } {
                continue;
            }
            // A datagram socket gets only its own replies (the kernel sets the id).
            if self.raw && u16::from_be_bytes([b[4], b[5]]) != id {
                continue;
            }
            return Some(Reply {
                from,
                seq: u16::from_be_bytes([b[6], b[7]]),
                token: u64::from_be_bytes(b[8..16].try_into().unwrap()),
            });
        }
    }
}

impl AsFd for EchoSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The Internet checksum (RFC 1071).
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksum_of_rfc_1071s_example() {
        assert_eq!(
            super::checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }
}
