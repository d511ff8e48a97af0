//! Channels: UDP sockets bound to one device each, for broadcast, multicast or unicast
//! to listed peers — Heartbeat's `bcast`, `mcast` and `ucast` media.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::config::{ChannelSpec, Mode};
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

impl Error {
    fn runtime(spec: &ChannelSpec, msg: String) -> Error {
        Error {
            channel: spec.name.clone(),
            msg,
            missing_device: false,
        }
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

// x86_64 and the generic socket option numbers (libc lacks some for this target).
const SO_TIMESTAMPNS: libc::c_int = 35;
const SCM_TIMESTAMPNS: libc::c_int = SO_TIMESTAMPNS;
const SO_ATTACH_FILTER: libc::c_int = 26;
const SO_DETACH_FILTER: libc::c_int = 27;
/// Classic BPF: the network header is reachable at this (negative) offset.
const SKF_NET_OFF: u32 = 0xfff0_0000;
const CMSG_SPACE: usize = 64;

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
        let err = |msg: String| Error::runtime(spec, msg);
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
        let err = |msg: String| Error::runtime(spec, msg);
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

    /// Receive up to `bufs.len()` datagrams in one system call (never blocks), with
    /// their kernel arrival times. Datagrams longer than their buffer come back
    /// marked truncated.
    pub fn recv_many(&self, bufs: &mut [Vec<u8>], out: &mut [Received]) -> io::Result<usize> {
        let n = bufs.len().min(out.len());
        let mut iovs: Vec<libc::iovec> = bufs[..n]
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        let mut ctrl = vec![[0u64; CMSG_SPACE / 8]; n];
        // SAFETY: zeroed mmsghdr is a valid "no name, no control" header.
        let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        for ((h, iov), c) in hdrs.iter_mut().zip(iovs.iter_mut()).zip(ctrl.iter_mut()) {
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = c.as_mut_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_controllen = CMSG_SPACE;
        }
        // SAFETY: every header points at a live iovec over a live buffer and a live
        // control buffer of the size it states.
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
            let h = &hdrs[i].msg_hdr;
            let mut stamp = 0u64;
            // SAFETY: the CMSG macros walk the control buffer the kernel filled in,
            // bounded by msg_controllen.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(h);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SCM_TIMESTAMPNS {
                        let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        stamp = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                    }
                    c = libc::CMSG_NXTHDR(h, c);
                }
            }
            out[i] = Received {
                len: hdrs[i].msg_len as usize,
                truncated: h.msg_flags & libc::MSG_TRUNC != 0,
                stamp_real_ns: stamp,
            };
        }
        Ok(r as usize)
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
