//! arp-announce: gratuitous ARP and unsolicited neighbour advertisements, and probes.
//! The frames and the link are `net::arp`'s; this room turns the flags into rounds.

pub mod cli;

use crate::net::arp::{self, Error, Form, Link};
use cli::{AnnounceArgs, FormArg, ProbeArgs};
use pnet_base::MacAddr;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Send `count` announcements of every address, `interval` apart; how many frames went.
pub fn announce(a: &AnnounceArgs) -> Result<u64, Error> {
    let iface = a.interface.as_deref().unwrap_or_default();
    let mut link = Link::open(iface, Duration::from_millis(100))?;
    let form = match a.form {
        FormArg::Request => Form::Request,
        FormArg::Reply => Form::Reply,
        FormArg::Both => Form::Both,
    };
    let mac = a.mac.unwrap_or(link.mac);
    let dst = a.to.unwrap_or(MacAddr::broadcast());
    let frames: Vec<Vec<u8>> = a
        .addrs
        .iter()
        .flat_map(|ip| arp::frames_for(*ip, form, link.mac, dst, mac))
        .collect();
    let mut sent = 0;
    for round in 0..a.count {
        if round > 0 {
            std::thread::sleep(a.interval);
        }
        for f in &frames {
            link.send(f)?;
            sent += 1;
        }
    }
    link.detach_teardown();
    Ok(sent)
}

/// `arp-announce probe`: the MAC of a host that claims the address, if any.
pub fn probe(p: &ProbeArgs) -> Result<Option<MacAddr>, Error> {
    let mut link = Link::open(&p.interface, Duration::from_millis(10))?;
    let frame = match p.addr {
        IpAddr::V4(v4) => arp::probe(link.mac, v4).to_vec(),
        IpAddr::V6(v6) => crate::net::ndp::dad_probe(link.mac, v6),
    };
    let count = p.count.max(1);
    for i in 0..count {
        link.send(&frame)?;
        let until = Instant::now() + if i + 1 == count { p.wait } else { p.interval };
        if let Some(mac) = link.watch_claims(p.addr, until)? {
            return Ok(Some(mac));
        }
    }
    Ok(None)
}
