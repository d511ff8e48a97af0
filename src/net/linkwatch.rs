//! Carrier watching over rtnetlink: a channel whose own device loses its carrier (or
//! is set down) has all its links declared dead at once, without waiting for deadtime.

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};

const RTMGRP_LINK: u32 = 1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;

/// What netlink reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// A link's carrier: administratively up and with a carrier (IFF_UP and
    /// IFF_LOWER_UP).
    Carrier { ifindex: u32, carrier: bool },
    /// Some IPv4 address was added or removed.
    Addresses,
}

pub struct LinkWatch {
    sock: Socket,
    buf: Vec<u8>,
}

impl LinkWatch {
    /// Subscribe to link changes and ask for the current state of every link (the
    /// answers arrive through [`LinkWatch::read`] like any change).
    pub fn open() -> io::Result<LinkWatch> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))?;
        sock.set_non_blocking(true)?;
        let mut w = LinkWatch {
            sock,
            buf: vec![0; 64 * 1024],
        };
        w.request_dump()?;
        Ok(w)
    }

    fn request_dump(&mut self) -> io::Result<()> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut req = NetlinkMessage::new(
            header,
            NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
        );
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0)?;
        Ok(())
    }

    /// Every change waiting on the socket (never blocks).
    pub fn read(&mut self, out: &mut Vec<LinkChange>) -> io::Result<()> {
        loop {
            self.buf.clear();
            match self.sock.recv(&mut self.buf, libc::MSG_DONTWAIT) {
                Ok(0) => return Ok(()),
                Ok(_) => parse_all(&self.buf, out),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Changes were lost: ask for the whole state again.
                    self.request_dump()?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsRawFd for LinkWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

fn parse_all(mut buf: &[u8], out: &mut Vec<LinkChange>) {
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            return;
        }
        if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len]) {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    let f = link.header.flags;
                    out.push(LinkChange::Carrier {
                        ifindex: link.header.index,
                        carrier: f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp),
                    });
                }
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_),
                ) => {
                    out.push(LinkChange::Addresses);
                }
                _ => {}
            }
        }
        // Messages are 4-byte aligned.
        let step = (len + 3) & !3;
        if step >= buf.len() {
            return;
        }
        buf = &buf[step..];
    }
}
