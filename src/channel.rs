//! Channels: UDP sockets bound to one device each, for broadcast, multicast or unicast
//! to listed peers — Heartbeat's `bcast`, `mcast` and `ucast` media.

use crate::config::{ChannelSpec, Mode};
use crate::exit::{ExitStatus, HasExitStatus};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};

#[derive(Debug)]
pub struct Error {
    pub channel: String,
    pub msg: String,
    pub missing_device: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "channel {}: {}", self.channel, self.msg)
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        // A missing interface is a configuration error; anything else failed at run time.
        if self.missing_device {
            ExitStatus::Usage
        } else {
            ExitStatus::Failure
        }
    }
}

pub struct Channel {
    pub spec: ChannelSpec,
    pub ifindex: u32,
    sock: UdpSocket,
    dests: Vec<SocketAddr>,
}

fn setopt<T>(fd: RawFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: val points to a live T of the size we pass.
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

fn udp_socket() -> io::Result<UdpSocket> {
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor we own.
    Ok(unsafe { UdpSocket::from_raw_fd(fd) })
}

fn bind(sock: &UdpSocket, addr: SocketAddrV4) -> io::Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sa is a valid sockaddr_in for the duration of the call.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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
            missing_device: missing,
        };
        let ifindex = nix::net::if_::if_nametoindex(spec.dev.as_str())
            .map_err(|_| err(format!("no interface `{}`", spec.dev), true))?;
        let sock = udp_socket().map_err(|e| err(format!("socket: {e}"), false))?;
        let fd = sock.as_raw_fd();
        let one: libc::c_int = 1;
        setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one).map_err(|e| err(format!("SO_REUSEADDR: {e}"), false))?;
        let mut dev = [0u8; libc::IFNAMSIZ];
        dev[..spec.dev.len()].copy_from_slice(spec.dev.as_bytes());
        // SAFETY: dev is a NUL-terminated interface name buffer of IFNAMSIZ bytes.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr() as *const libc::c_void,
                (spec.dev.len() + 1) as u32,
            )
        };
        if r != 0 {
            return Err(err(
                format!("SO_BINDTODEVICE {}: {}", spec.dev, io::Error::last_os_error()),
                false,
            ));
        }
        Ok((sock, ifindex))
    }

    /// A socket to send on: bound to the device, aimed at the broadcast address, the
    /// group, or each peer (a peer that is this node's own address is skipped).
    pub fn open_sender(spec: &ChannelSpec, port: u16) -> Result<Channel, Error> {
        let (sock, ifindex) = Self::base(spec)?;
        let err = |msg: String| Error {
            channel: spec.name.clone(),
            msg,
            missing_device: false,
        };
        let fd = sock.as_raw_fd();
        let one: libc::c_int = 1;
        let dests = match &spec.mode {
            Mode::Bcast => {
                setopt(fd, libc::SOL_SOCKET, libc::SO_BROADCAST, &one)
                    .map_err(|e| err(format!("SO_BROADCAST: {e}")))?;
                setopt(fd, libc::SOL_SOCKET, libc::SO_DONTROUTE, &one)
                    .map_err(|e| err(format!("SO_DONTROUTE: {e}")))?;
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
                let t: libc::c_int = *ttl as libc::c_int;
                setopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &t)
                    .map_err(|e| err(format!("IP_MULTICAST_TTL: {e}")))?;
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
        let prio: libc::c_int = 6;
        let _ = setopt(fd, libc::SOL_SOCKET, libc::SO_PRIORITY, &prio);
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
        let err = |msg: String| Error {
            channel: spec.name.clone(),
            msg,
            missing_device: false,
        };
        let fd = sock.as_raw_fd();
        let rcvbuf: libc::c_int = 4 << 20;
        let _ = setopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf);
        if let Mode::Mcast { group, .. } = &spec.mode {
            let mreqn = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(*group).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            setopt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn)
                .map_err(|e| err(format!("joining {group}: {e}")))?;
        }
        bind(&sock, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| err(format!("bind port {port}: {e}")))?;
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

    /// Receive one datagram without blocking.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.recv_from(buf)
    }

    /// Receive up to `bufs.len()` datagrams in one system call (never blocks).
    /// Datagrams longer than their buffer come back marked truncated.
    pub fn recv_many(&self, bufs: &mut [Vec<u8>], lens: &mut [(usize, bool)]) -> io::Result<usize> {
        let n = bufs.len().min(lens.len());
        let mut iovs: Vec<libc::iovec> = bufs[..n]
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: zeroed mmsghdr is a valid "no name, no control" header.
        let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live iovec over a live buffer.
        let r = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        for i in 0..r as usize {
            lens[i] = (
                hdrs[i].msg_len as usize,
                hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            );
        }
        Ok(r as usize)
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
