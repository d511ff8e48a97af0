//! Gratuitous ARP and address probes (RFC 5227, RFC 5944 4.6) as frames, parsed with
//! small safe packet views, and the AF_PACKET link they go out on — shared by
//! arp-announce and ipfake.
//!
//! Frames follow Heartbeat's send_arp: an announcement is a *pair* — a request (target
//! MAC zero, as in RFC 5227's announcement) and a reply (target MAC = sender MAC) —
//! both with sender IP = target IP = the address, "because some systems ignore one or
//! the other". iputils' `arping -U` differs only in the request's target MAC
//! (ff:ff:ff:ff:ff:ff instead of zero); receivers ignore that field for a gratuitous
//! request.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::privilege::{self, Cap};
use crate::net::netlink::Route;
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use pnet_base::MacAddr;
use pnet_datalink::{self as datalink, Channel as DlChannel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperation, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::Packet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Ethernet header + ARP for IPv4 over Ethernet.
pub const FRAME_LEN: usize = 14 + 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Request,
    Reply,
    Both,
}

#[derive(Debug)]
pub enum Error {
    NoInterface(String),
    NoMac(String),
    /// Capabilities an AF_PACKET socket needs and this process lacks.
    Missing(String, Vec<Cap>),
    Io(String, std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::NoInterface(i) => write!(f, "no interface `{i}`"),
            Error::NoMac(i) => write!(f, "interface `{i}` has no Ethernet address"),
            Error::Missing(i, caps) => write!(
                f,
                "{i}: sending raw frames needs {} (run as root, or grant it, e.g. AmbientCapabilities= in the unit)",
                privilege::describe(caps)
            ),
            Error::Io(i, e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                write!(f, "{i}: raw sockets need CAP_NET_RAW: {e}")
            }
            Error::Io(i, e) => write!(f, "{i}: {e}"),
        }
    }
}

impl Error {
    /// A send the link refused for now: the cable out (ENOBUFS), the device down
    /// (ENETDOWN), a full queue (EAGAIN). A holder keeps its address and sends again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io(_, e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENETDOWN | libc::EAGAIN)))
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::NoInterface(_) | Error::NoMac(_) | Error::Missing(..) => ExitStatus::Usage,
            Error::Io(..) => ExitStatus::Failure,
        }
    }
}

/// One ARP frame. `eth_dst` is broadcast or an aimed host; `sha` the MAC announced.
pub fn frame(
    op: ArpOperation,
    eth_src: MacAddr,
    eth_dst: MacAddr,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf).expect("frame buffer fits an Ethernet header");
        eth.set_destination(eth_dst);
        eth.set_source(eth_src);
        eth.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(&mut buf[14..]).expect("frame buffer fits an ARP packet");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(op);
    arp.set_sender_hw_addr(sha);
    arp.set_sender_proto_addr(spa);
    arp.set_target_hw_addr(tha);
    arp.set_target_proto_addr(tpa);
    buf
}

/// The gratuitous frames announcing `ip` at `mac` (the interface's own or another
/// host's, to hand an address back), sent from `eth_src` to `eth_dst`.
pub fn announcement(
    form: Form,
    eth_src: MacAddr,
    eth_dst: MacAddr,
    mac: MacAddr,
    ip: Ipv4Addr,
) -> Vec<[u8; FRAME_LEN]> {
    let req = || frame(ArpOperations::Request, eth_src, eth_dst, mac, ip, MacAddr::zero(), ip);
    let rep = || frame(ArpOperations::Reply, eth_src, eth_dst, mac, ip, mac, ip);
    match form {
        Form::Request => vec![req()],
        Form::Reply => vec![rep()],
        Form::Both => vec![req(), rep()],
    }
}

/// An RFC 5227 probe: who has `ip`? (sender IP 0.0.0.0, so no cache is changed)
pub fn probe(eth_src: MacAddr, ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    frame(
        ArpOperations::Request,
        eth_src,
        MacAddr::broadcast(),
        eth_src,
        Ipv4Addr::UNSPECIFIED,
        MacAddr::zero(),
        ip,
    )
}

/// If `data` is an ARP frame in which another host claims `ip` (as sender), that host's
/// MAC. A probe for the same address from another host counts too (RFC 5227 2.1.1).
pub fn claims(data: &[u8], ip: Ipv4Addr, own: MacAddr) -> Option<MacAddr> {
    let eth = EthernetPacket::new(data)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    if arp.get_hardware_type() != ArpHardwareTypes::Ethernet || arp.get_protocol_type() != EtherTypes::Ipv4 {
        return None;
    }
    let sha = arp.get_sender_hw_addr();
    if sha == own {
        return None;
    }
    let spa = arp.get_sender_proto_addr();
    let conflicting_probe =
        spa.is_unspecified() && arp.get_target_proto_addr() == ip && arp.get_operation() == ArpOperations::Request;
    (spa == ip || conflicting_probe).then_some(sha)
}

/// The Ethernet address of interface `index`, asked of rtnetlink for that one link
/// (right in any network namespace, where /sys may show another one's); `None` if it
/// is not Ethernet (loopback, a tunnel).
fn hardware_address(index: u32) -> std::io::Result<Option<MacAddr>> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    let replies = Route::route()?.get(RouteNetlinkMessage::GetLink(m))?;
    Ok(replies.into_iter().find_map(|r| match r {
        RouteNetlinkMessage::NewLink(l)
            if l.header.index == index && l.header.link_layer_type == LinkLayerType::Ether =>
        {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Address(b) if b.len() == 6 => Some(MacAddr(b[0], b[1], b[2], b[3], b[4], b[5])),
                _ => None,
            })
        }
        _ => None,
    }))
}

/// An open AF_PACKET channel on one interface.
pub struct Link {
    pub iface: NetworkInterface,
    pub mac: MacAddr,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
}

impl Link {
    pub fn open(name: &str, read_timeout: Duration) -> Result<Link, Error> {
        // Two cheap questions to the kernel, rather than pnet's enumeration of every
        // interface and address: a takeover is timed from here.
        let index = nix::net::if_::if_nametoindex(name).map_err(|_| Error::NoInterface(name.into()))?;
        let mac = match hardware_address(index) {
            Ok(Some(m)) if !m.is_zero() => m,
            Ok(_) => return Err(Error::NoMac(name.into())),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Err(Error::NoInterface(name.into())),
            Err(e) => return Err(Error::Io(name.into(), e)),
        };
        let missing = privilege::missing(&[Cap::NetRaw]);
        if !missing.is_empty() {
            return Err(Error::Missing(name.into(), missing));
        }
        let iface = NetworkInterface {
            name: name.into(),
            description: String::new(),
            index,
            mac: Some(mac),
            ips: Vec::new(),
            flags: 0,
        };
        let cfg = datalink::Config {
            read_timeout: Some(read_timeout),
            promiscuous: false,
            ..Default::default()
        };
        match datalink::channel(&iface, cfg) {
            Ok(DlChannel::Ethernet(tx, rx)) => Ok(Link { iface, mac, tx, rx }),
            Ok(_) => Err(Error::Io(name.into(), std::io::Error::other("not an Ethernet channel"))),
            Err(e) => Err(Error::Io(name.into(), e)),
        }
    }

    /// Hand the socket's teardown to a child process so that this one can exit at
    /// once: closing an AF_PACKET socket waits for an RCU grace period (~16 ms here),
    /// which a one-shot command has no reason to make its caller wait for. The child
    /// holds the last reference, closes it, and exits; ours then closes in no time.
    pub fn detach_teardown(&self) {
        // SAFETY: this process is single-threaded here; the child does nothing but
        // _exit, which closes its copies of the descriptors.
        unsafe {
            if libc::fork() == 0 {
                libc::_exit(0);
            }
        }
    }

    pub fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        match self.tx.send_to(frame, None) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::Io(self.iface.name.clone(), e)),
            None => Err(Error::Io(
                self.iface.name.clone(),
                std::io::Error::other("send buffer too small"),
            )),
        }
    }

    /// Wait until `until` for a frame in which another host claims `ip` (ARP, or for
    /// IPv6 a neighbour advertisement or DAD probe).
    pub fn watch_claims(&mut self, ip: IpAddr, until: Instant) -> Result<Option<MacAddr>, Error> {
        while Instant::now() < until {
            match self.rx.next() {
                Ok(data) => {
                    let found = match ip {
                        IpAddr::V4(v4) => claims(data, v4, self.mac),
                        IpAddr::V6(v6) => crate::net::ndp::claims(data, v6, self.mac),
                    };
                    if let Some(mac) = found {
                        return Ok(Some(mac));
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {}
                Err(e) => return Err(Error::Io(self.iface.name.clone(), e)),
            }
        }
        Ok(None)
    }
}

/// The frames announcing `ip` at `mac`: an ARP pair (or one form) for IPv4, an
/// unsolicited neighbour advertisement for IPv6 (to all nodes unless aimed).
pub fn frames_for(ip: IpAddr, form: Form, eth_src: MacAddr, dst: MacAddr, mac: MacAddr) -> Vec<Vec<u8>> {
    match ip {
        IpAddr::V4(v4) => announcement(form, eth_src, dst, mac, v4)
            .iter()
            .map(|f| f.to_vec())
            .collect(),
        IpAddr::V6(v6) => {
            let mut f = crate::net::ndp::advertisement(eth_src, mac, v6);
            if dst != MacAddr::broadcast() {
                f[..6].copy_from_slice(&[dst.0, dst.1, dst.2, dst.3, dst.4, dst.5]);
            }
            vec![f]
        }
    }
}

/// A MAC address as people write it, `aa:bb:cc:dd:ee:ff` (flags and files of
/// arp-announce and ipfake); one host's only (see [`check_unicast_mac`]).
pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let m = s
        .parse::<MacAddr>()
        .map_err(|_| format!("`{s}` is not a MAC address (write aa:bb:cc:dd:ee:ff)"))?;
    check_unicast_mac(m)?;
    Ok(m)
}

/// Refuse a MAC that is not one host's: announced as an address's owner, a broadcast
/// or multicast MAC (the group bit, the first byte's lowest) sends every host's
/// traffic for it to the whole LAN or to a group; the all-zero MAC to nobody.
pub fn check_unicast_mac(m: MacAddr) -> Result<(), String> {
    let why = if m == MacAddr::broadcast() {
        "the broadcast MAC"
    } else if m.0 & 1 == 1 {
        "a multicast MAC (the first byte is odd)"
    } else if m.is_zero() {
        "the all-zero MAC"
    } else {
        return Ok(());
    };
    Err(format!("`{m}` is {why}, not one host's"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 0x01);
    const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    #[test]
    fn announcement_pair_is_send_arp_shaped() {
        let f = announcement(Form::Both, MAC, MacAddr::broadcast(), MAC, IP);
        assert_eq!(f.len(), 2);
        let req = &f[0];
        assert_eq!(&req[..6], &[0xff; 6]);
        assert_eq!(&req[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&req[12..14], &[0x08, 0x06]);
        // htype 1, ptype 0x0800, hlen 6, plen 4, op 1
        assert_eq!(&req[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&req[22..28], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&req[28..32], &[192, 0, 2, 10]);
        assert_eq!(&req[32..38], &[0; 6]);
        assert_eq!(&req[38..42], &[192, 0, 2, 10]);
        let rep = &f[1];
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[32..38], &[2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn a_missing_capability_is_a_usage_error_naming_it() {
        let e = Error::Missing("eth0".into(), vec![Cap::NetRaw]);
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        let line = e.to_string();
        assert!(
            line.contains("CAP_NET_RAW") && line.starts_with("eth0:") && !line.contains('\n'),
            "{line}"
        );
    }

    #[test]
    fn only_one_hosts_macs_parse() {
        assert_eq!(parse_mac("02:00:00:00:00:01"), Ok(MAC));
        assert_eq!(parse_mac("52:54:00:12:34:56").map(|m| m.0), Ok(0x52));
        for (m, why) in [
            ("ff:ff:ff:ff:ff:ff", "broadcast"),
            ("01:00:5e:00:00:01", "multicast"),
            ("33:33:00:00:00:01", "multicast"),
            ("00:00:00:00:00:00", "all-zero"),
            ("nonsense", "not a MAC address"),
        ] {
            let e = parse_mac(m).unwrap_err();
            assert!(e.contains(why) && e.contains(m), "{m}: {e}");
        }
    }

    #[test]
    fn probe_and_claims() {
        let p = probe(MAC, IP);
        assert_eq!(&p[28..32], &[0, 0, 0, 0]);
        // Our own probe is not a claim; another host's reply is; another's probe too.
        assert_eq!(claims(&p, IP, MAC), None);
        let other = MacAddr(0x02, 0, 0, 0, 0, 0x02);
        let reply = frame(ArpOperations::Reply, other, MAC, other, IP, MAC, Ipv4Addr::UNSPECIFIED);
        assert_eq!(claims(&reply, IP, MAC), Some(other));
        assert_eq!(claims(&probe(other, IP), IP, MAC), Some(other));
        assert_eq!(claims(&probe(other, Ipv4Addr::new(192, 0, 2, 11)), IP, MAC), None);
        assert_eq!(claims(&[0u8; 10], IP, MAC), None);
    }
}
