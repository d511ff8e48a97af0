//! Carrier watching over rtnetlink: a channel whose own device loses its carrier (or
//! is set down) has all its links declared dead at once, without waiting for deadtime.

use crate::net::netlink::{Heard, Route};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

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
    nl: Route,
    msgs: Vec<RouteNetlinkMessage>,
}

fn dump_links() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetLink(LinkMessage::default())
}

impl LinkWatch {
    /// Subscribe to link and IPv4 address changes and ask for the current state of
    /// every link (the answers arrive through [`LinkWatch::read`] like any change, so
    /// the descriptor becomes readable for them).
    pub fn open() -> io::Result<LinkWatch> {
        let mut nl = Route::route()?;
        nl.subscribe(libc::RTNLGRP_LINK)?;
        nl.subscribe(libc::RTNLGRP_IPV4_IFADDR)?;
        nl.start_dump(dump_links())?;
        Ok(LinkWatch { nl, msgs: Vec::new() })
    }

    /// Every change waiting on the socket (never blocks).
    pub fn read(&mut self, out: &mut Vec<LinkChange>) -> io::Result<()> {
        self.msgs.clear();
        let heard = self.nl.notifications(&mut self.msgs);
        out.extend(self.msgs.iter().filter_map(change));
        if heard? == Heard::SomeLost {
            // Changes were lost: ask for the whole state again.
            self.nl.start_dump(dump_links())?;
        }
        Ok(())
    }
}

impl AsRawFd for LinkWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.nl.as_raw_fd()
    }
}

impl AsFd for LinkWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.nl.as_fd()
    }
}

fn change(m: &RouteNetlinkMessage) -> Option<LinkChange> {
    match m {
        RouteNetlinkMessage::NewLink(link) => {
            let f = link.header.flags;
            Some(LinkChange::Carrier {
                ifindex: link.header.index,
                carrier: f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp),
            })
        }
        RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_) => Some(LinkChange::Addresses),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::time::{Duration, Instant};

    /// Read until `done` says so (or 2 s); every read follows a readable descriptor.
    fn read_until(w: &mut LinkWatch, done: impl Fn(&[LinkChange]) -> bool) -> Vec<LinkChange> {
        let until = Instant::now() + Duration::from_secs(2);
        let mut got = Vec::new();
        while Instant::now() < until {
            let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
                continue;
            }
            w.read(&mut got).unwrap();
            if done(&got) {
                break;
            }
        }
        got
    }

    #[test]
    fn the_first_dump_and_later_changes_arrive_through_read() {
        let mut w = LinkWatch::open().unwrap();
        let lo = |c: &[LinkChange]| c.iter().any(|c| matches!(c, LinkChange::Carrier { ifindex: 1, .. }));
        let got = read_until(&mut w, lo);
        assert!(lo(&got), "no carrier for lo in {got:?}");
        if !crate::base::privilege::has(crate::base::privilege::Cap::NetAdmin) {
            eprintln!(
                "the_first_dump_and_later_changes_arrive_through_read: address change SKIPPED, needs CAP_NET_ADMIN"
            );
            return;
        }
        let a = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 88, 0, 2));
        let ifindex = nix::net::if_::if_nametoindex("lo").unwrap();
        // Let the rest of the dump go by, then change an address.
        std::thread::sleep(Duration::from_millis(50));
        let mut rest = Vec::new();
        w.read(&mut rest).unwrap();
        crate::net::addr::add(ifindex, a, 32, None).unwrap();
        let has = |c: &[LinkChange]| c.contains(&LinkChange::Addresses);
        let got = read_until(&mut w, has);
        crate::net::addr::del(ifindex, a, 32).unwrap();
        assert!(has(&got), "no address change in {got:?}");
    }
}
