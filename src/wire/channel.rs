//! Channels: UDP sockets bound to one device each, for broadcast, multicast or unicast
//! to listed peers — Heartbeat's `bcast`, `mcast` and `ucast` media.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::config::{ChannelSpec, Mode};
use nix::sys::socket::{self as sock, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn};
use std::fmt;
use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::unix::io::{AsRawFd, RawFd};

#[derive(Debug)]
pub struct Error {
    pub channel: String,
    pub msg: String,
    /// A configuration or privilege problem (exit 2), not a run-time failure.
    pub usage: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "channel {}: {}", self.channel, self.msg)
    }
}

impl Error {
    fn runtime(spec: &ChannelSpec, msg: String) -> Error {
        Error {
            channel: spec.name.clone(),
            msg,
            usage: false,
        }
    }
    fn usage(spec: &ChannelSpec, msg: String) -> Error {
        Error {
            channel: spec.name.clone(),
            msg,
            usage: true,
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        // A missing interface or capability is a usage error; anything else failed at
        // run time.
        if self.usage {
            ExitStatus::Usage
        } else {
            ExitStatus::Failure
        }
    }
}

// The generic socket option numbers (libc lacks them for this target, nix has no
// wrapper for socket filters).
const SO_ATTACH_FILTER: libc::c_int = 26;
const SO_DETACH_FILTER: libc::c_int = 27;
/// Classic BPF: the network header is reachable at this (negative) offset.
const SKF_NET_OFF: u32 = 0xfff0_0000;

/// One datagram taken by [`Channel::recv_many`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Received {
    pub len: usize,
    pub truncated: bool,
    /// When the kernel received it, CLOCK_REALTIME ns (0 if unknown).
    pub stamp_real_ns: u64,
}

pub struct Channel {
    pub spec: ChannelSpec,
    pub ifindex: u32,
    sock: UdpSocket,
    dests: Vec<SocketAddr>,
}

/// For the options nix does not wrap: IP_MULTICAST_IF and IP_ADD_MEMBERSHIP with an
/// interface index (`ip_mreqn`; nix has only the address form), socket filters.
fn setopt<T>(fd: RawFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: val points to a live T of the size we pass; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A UDP socket not bound yet (std binds at creation; options must come first).
fn udp_socket() -> io::Result<UdpSocket> {
    let fd = sock::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    Ok(UdpSocket::from(fd))
}

fn bind(s: &UdpSocket, addr: SocketAddrV4) -> io::Result<()> {
    Ok(sock::bind(s.as_raw_fd(), &SockaddrIn::from(addr))?)
}

fn local_addrs(dev: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if a.interface_name != dev {
                continue;
            }
            if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                out.push(IpAddr::V4(sin.ip()));
            }
        }
    }
    out
}

impl Channel {
    fn base(spec: &ChannelSpec) -> Result<(UdpSocket, u32), Error> {
        let err = |msg: String, missing: bool| Error {
            channel: spec.name.clone(),
            msg,
            usage: missing,
        };
        let ifindex = nix::net::if_::if_nametoindex(spec.dev.as_str())
            .map_err(|_| err(format!("no interface `{}`", spec.dev), true))?;
        let sock = udp_socket().map_err(|e| err(format!("socket: {e}"), false))?;
        sock::setsockopt(&sock, sockopt::ReuseAddr, &true).map_err(|e| err(format!("SO_REUSEADDR: {e}"), false))?;
        sock::setsockopt(&sock, sockopt::BindToDevice, &spec.dev.clone().into())
            .map_err(|e| err(format!("SO_BINDTODEVICE {}: {e}", spec.dev), false))?;
        Ok((sock, ifindex))
    }

    /// A socket to send on: bound to the device, aimed at the broadcast address, the
    /// group, or each peer (a peer that is this node's own address is skipped).
    pub fn open_sender(spec: &ChannelSpec, port: u16) -> Result<Channel, Error> {
        let (sock, ifindex) = Self::base(spec)?;
        let err = |msg: String| Error::runtime(spec, msg);
        let fd = sock.as_raw_fd();
        let dests = match &spec.mode {
            Mode::Bcast => {
                sock::setsockopt(&sock, sockopt::Broadcast, &true).map_err(|e| err(format!("SO_BROADCAST: {e}")))?;
                sock::setsockopt(&sock, sockopt::DontRoute, &true).map_err(|e| err(format!("SO_DONTROUTE: {e}")))?;
                vec![SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, port))]
            }
            Mode::Mcast { group, ttl } => {
                let mreqn = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr { s_addr: 0 },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as i32,
                };
                setopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
                    .map_err(|e| err(format!("IP_MULTICAST_IF: {e}")))?;
                sock::setsockopt(&sock, sockopt::IpMulticastTtl, ttl)
                    .map_err(|e| err(format!("IP_MULTICAST_TTL: {e}")))?;
                // Our own heartbeats need not come back to this host's receivers.
                sock::setsockopt(&sock, sockopt::IpMulticastLoop, &false)
                    .map_err(|e| err(format!("IP_MULTICAST_LOOP: {e}")))?;
                vec![SocketAddr::V4(SocketAddrV4::new(*group, port))]
            }
            Mode::Ucast { peers } => {
                let own = local_addrs(&spec.dev);
                peers
                    .iter()
                    .filter(|p| !own.contains(p))
                    .map(|p| SocketAddr::new(*p, port))
                    .collect()
            }
        };
        // Heartbeats go ahead of bulk traffic in the device queue.
        let _ = sock::setsockopt(&sock, sockopt::Priority, &6);
        bind(&sock, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| err(format!("bind: {e}")))?;
        Ok(Channel {
            spec: spec.clone(),
            ifindex,
            sock,
            dests,
        })
    }

    /// A socket to receive on: the port, on this device only.
    pub fn open_receiver(spec: &ChannelSpec, port: u16) -> Result<Channel, Error> {
        let (sock, ifindex) = Self::base(spec)?;
        let err = |msg: String| Error::runtime(spec, msg);
        let _ = sock::setsockopt(&sock, sockopt::RcvBuf, &(4 << 20));
        // The kernel stamps each datagram when it arrives, so that a heartbeat read
        // late (a batching window, a busy loop) still counts from when it came.
        sock::setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(|e| err(format!("SO_TIMESTAMPNS: {e}")))?;
        if let Mode::Mcast { group, .. } = &spec.mode {
            let mreqn = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(*group).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            setopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn)
                .map_err(|e| err(format!("joining {group}: {e}")))?;
        }
        bind(&sock, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                // Below net.ipv4.ip_unprivileged_port_start (1024 unless changed).
                Error::usage(
                    spec,
                    format!("bind port {port}: {e}; a port this low needs CAP_NET_BIND_SERVICE (run as root, or grant it: AmbientCapabilities= in a unit, setpriv --ambient-caps), or use a port from 1024 up"),
                )
            } else {
                err(format!("bind port {port}: {e}"))
            }
        })?;
        Ok(Channel {
            spec: spec.clone(),
            ifindex,
            sock,
            dests: Vec::new(),
        })
    }

    /// Send one datagram to every destination of the channel. Returns how many sends
    /// failed (a down link makes sends fail; that is what the receivers detect).
    pub fn send(&self, buf: &[u8]) -> usize {
        let mut failed = 0;
        for d in &self.dests {
            if self.sock.send_to(buf, d).is_err() {
                failed += 1;
            }
        }
        failed
    }

    /// Receive up to `bufs.len()` datagrams in one system call (never blocks), with
    /// their kernel arrival times. Datagrams longer than their buffer come back
    /// marked truncated.
    pub fn recv_many(&self, bufs: &mut [Vec<u8>], out: &mut [Received]) -> io::Result<usize> {
        let n = bufs.len().min(out.len());
        let mut iovs: Vec<[IoSliceMut; 1]> = bufs[..n].iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let mut hdrs = sock::MultiHeaders::<()>::preallocate(n, Some(nix::cmsg_space!(nix::sys::time::TimeSpec)));
        let got = sock::recvmmsg(
            self.sock.as_raw_fd(),
            &mut hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        let mut count = 0;
        for (slot, m) in out.iter_mut().zip(got) {
            let stamp = m
                .cmsgs()
                .into_iter()
                .flatten()
                .find_map(|c| match c {
                    sock::ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
                    }
                    _ => None,
                })
                .unwrap_or(0);
            *slot = Received {
                len: m.bytes,
                truncated: m.flags.contains(MsgFlags::MSG_TRUNC),
                stamp_real_ns: stamp,
            };
            count += 1;
        }
        Ok(count)
    }

    /// Drop, in the kernel, datagrams whose source is one of `own` (this node's own
    /// broadcasts, which Linux loops back): they would only wake the receiver for
    /// nothing. An empty list removes the filter.
    pub fn set_own_filter(&self, own: &[Ipv4Addr]) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        if own.is_empty() {
            let zero: libc::c_int = 0;
            let _ = setopt(fd, libc::SOL_SOCKET, SO_DETACH_FILTER, &zero);
            return Ok(());
        }
        let own = &own[..own.len().min(32)];
        let n = own.len() as u8;
        let mut prog = vec![libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: SKF_NET_OFF + 12,
        }];
        for (i, a) in own.iter().enumerate() {
            // Equal: jump to the drop at the end; else fall through to the next test.
            let to_drop = n - i as u8; // tests left after this one, plus the accept
            prog.push(libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: to_drop,
                jf: 0,
                k: u32::from(*a),
            });
        }
        prog.push(libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: u32::MAX,
        });
        prog.push(libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        });
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        setopt(fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog)
    }

    /// This channel's device's IPv4 addresses now.
    pub fn own_addrs(&self) -> Vec<Ipv4Addr> {
        local_addrs(&self.spec.dev)
            .into_iter()
            .filter_map(|a| if let IpAddr::V4(v) = a { Some(v) } else { None })
            .collect()
    }

    pub fn dests(&self) -> &[SocketAddr] {
        &self.dests
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_the_kernels_arrival_stamp() {
        let spec = ChannelSpec::parse("ucast:lo:127.0.0.1").unwrap();
        let rx = Channel::open_receiver(&spec, 47_697).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut bufs = vec![vec![0u8; 64]];
        let mut got = vec![Received::default()];
        // The kernel turns arrival stamping on for the whole host a moment after the
        // first socket asks (a deferred static key); until then a datagram is stamped
        // when it is read. A long-running hb-watch never notices; a test waits.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let before = crate::base::clock::real_ns();
        tx.send_to(b"hello", "127.0.0.1:47697").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(rx.recv_many(&mut bufs, &mut got).unwrap(), 1);
        let stamp = got[0].stamp_real_ns;
        assert!(stamp >= before, "stamped by the kernel: {stamp}");
        // Stamped when it came, not when it was read 20 ms later.
        assert!(crate::base::clock::real_ns() - stamp >= 15_000_000);
    }
}
