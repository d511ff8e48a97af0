//! chan-probe: the measuring instrument of the chan-switch tests. Every interval it sends
//! each target one datagram (magic, per-target sequence number from 1, CLOCK_MONOTONIC
//! send time) from its bind address, and writes one line per probe it receives:
//!
//!     RECV_MONO_NS SRC_IP SEQ IFNAME SEND_MONO_NS
//!
//! IFNAME is where the probe came in (IP_PKTINFO), so a test sees which LAN carried it.
//! CLOCK_MONOTONIC is one clock for every network namespace of a machine, so send and
//! receive times of different nodes compare. On SIGTERM/SIGINT it stops sending, goes on
//! receiving for the linger (what peers sent just before their own stop is still in
//! flight), then appends, and exits 0:
//!
//!     sent DST_IP LAST_SEQ                 for every target
//!     errors DST_IP ERRNO COUNT            for every send error seen (never fatal)
//!     stats skipped N maxlate_ns N overflow N
//!
//! `skipped`: send slots given up because the sender woke more than an interval late (it
//! does not burst to catch up; sequence numbers stay contiguous); `overflow`: probes the
//! kernel dropped from this socket's full receive queue (SO_RXQ_OVFL), which are the
//! instrument's loss, not the network's.
//!
//!     chan-probe --bind 10.77.100.1 --port 7700 --to 10.77.100.2,10.77.100.3 \
//!                --interval 1ms --out FILE [--start MONO_NS] [--linger 100ms]
//!
//! No SO_BINDTODEVICE: the routing under test must choose the interface. Only the
//! addresses given with --to are ever sent to.

use nix::errno::Errno;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{self, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};
use std::collections::{BTreeMap, HashMap};
use std::io::{IoSliceMut, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAGIC: &[u8; 8] = b"HKCHPRB1";
const LEN: usize = 24;
/// Receive wake-ups at least this often, so that the file is flushed at least every 50 ms
/// even when nothing arrives.
const RECV_TICK: Duration = Duration::from_millis(10);
const FLUSH_NS: u64 = 40_000_000;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn mono_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

struct Args {
    bind: Ipv4Addr,
    port: u16,
    to: Vec<Ipv4Addr>,
    interval_ns: u64,
    out: String,
    start_ns: Option<u64>,
    linger_ns: u64,
}

/// `250us`, `1ms`, `2s`, `500ns`.
fn duration_ns(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let mult = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return Err(format!("bad duration {s:?} (ns, us, ms or s)")),
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or(format!("bad duration {s:?}"))
}

fn parse_args() -> Result<Args, String> {
    let mut bind = None;
    let mut port = None;
    let mut to = Vec::new();
    let mut interval_ns = 1_000_000;
    let mut out = None;
    let mut start_ns = None;
    let mut linger_ns = 100_000_000;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bind" => bind = Some(value()?.parse().map_err(|e| format!("--bind: {e}"))?),
            "--port" => port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--to" => {
                for a in value()?.split(',').filter(|a| !a.is_empty()) {
                    to.push(a.parse().map_err(|e| format!("--to {a}: {e}"))?);
                }
            }
            "--interval" => interval_ns = duration_ns(&value()?)?,
            "--out" => out = Some(value()?),
            "--start" => start_ns = Some(value()?.parse().map_err(|e| format!("--start: {e}"))?),
            "--linger" => linger_ns = duration_ns(&value()?)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        bind: bind.ok_or("--bind is required")?,
        port: port.ok_or("--port is required")?,
        to,
        interval_ns,
        out: out.ok_or("--out is required")?,
        start_ns,
        linger_ns,
    })
}

#[derive(Default)]
struct SendReport {
    last_seq: Vec<u64>,
    errors: BTreeMap<(usize, i32), u64>,
    skipped: u64,
    max_late_ns: u64,
}

/// The pacer: absolute CLOCK_MONOTONIC deadlines start + k·interval, so that a slow
/// round does not push every later one back.
fn send_loop(sock: &UdpSocket, a: &Args) -> SendReport {
    // Signals go to the receiving thread, whose recvmsg they interrupt.
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    let _ = signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);

    let dst: Vec<SocketAddrV4> = a.to.iter().map(|ip| SocketAddrV4::new(*ip, a.port)).collect();
    let mut r = SendReport {
        last_seq: vec![0; dst.len()],
        ..Default::default()
    };
    let mut next = a.start_ns.unwrap_or_else(mono_ns);
    let mut buf = [0u8; LEN];
    buf[..8].copy_from_slice(MAGIC);
    while !STOP.load(Ordering::SeqCst) {
        let at = nix::sys::time::TimeSpec::from_duration(Duration::from_nanos(next));
        match clock_nanosleep(ClockId::CLOCK_MONOTONIC, ClockNanosleepFlags::TIMER_ABSTIME, &at) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("clock_nanosleep: {e}"),
        }
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let woke = mono_ns();
        r.max_late_ns = r.max_late_ns.max(woke.saturating_sub(next));
        for (t, d) in dst.iter().enumerate() {
            r.last_seq[t] += 1;
            buf[8..16].copy_from_slice(&r.last_seq[t].to_le_bytes());
            buf[16..24].copy_from_slice(&mono_ns().to_le_bytes());
            // A refused send keeps its sequence number: the receiver sees it as lost.
            if let Err(e) = sock.send_to(&buf, d) {
                *r.errors.entry((t, e.raw_os_error().unwrap_or(0))).or_default() += 1;
            }
        }
        next += a.interval_ns;
        let now = mono_ns();
        if now >= next + a.interval_ns {
            // Held up (stopped, starved): give up the missed slots rather than burst.
            let missed = (now - next) / a.interval_ns;
            next += missed * a.interval_ns;
            r.skipped += missed;
        }
    }
    r
}

fn run(a: Args) -> Result<(), String> {
    let sock =
        UdpSocket::bind(SocketAddrV4::new(a.bind, a.port)).map_err(|e| format!("bind {}:{}: {e}", a.bind, a.port))?;
    let fd = sock.as_raw_fd();
    let bfd = sock.as_fd();
    socket::setsockopt(&bfd, sockopt::Ipv4PacketInfo, &true).map_err(|e| format!("IP_PKTINFO: {e}"))?;
    socket::setsockopt(&bfd, sockopt::RxqOvfl, &1).map_err(|e| format!("SO_RXQ_OVFL: {e}"))?;
    // A held-up receiver must not lose probes that the network delivered: a deep queue
    // (FORCE passes rmem_max for root; otherwise take what the limit allows).
    if socket::setsockopt(&bfd, sockopt::RcvBufForce, &(4 << 20)).is_err() {
        let _ = socket::setsockopt(&bfd, sockopt::RcvBuf, &(4 << 20));
    }
    sock.set_read_timeout(Some(RECV_TICK)).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(&a.out).map_err(|e| format!("{}: {e}", a.out))?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, file);

    let action = SigAction::new(SigHandler::Handler(on_stop), SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGTERM, Signal::SIGINT] {
        unsafe { signal::sigaction(s, &action) }.map_err(|e| format!("sigaction: {e}"))?;
    }

    let a = Arc::new(a);
    let sock = Arc::new(sock);
    let sender = {
        let (a, sock) = (a.clone(), sock.clone());
        std::thread::spawn(move || send_loop(&sock, &a))
    };

    let mut names: HashMap<i32, String> = HashMap::new();
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo, u32);
    let mut buf = [0u8; 64];
    let mut overflow = 0u32;
    let mut flushed = mono_ns();
    let mut stop_at = None;
    loop {
        let now = mono_ns();
        if stop_at.is_none() && STOP.load(Ordering::SeqCst) {
            stop_at = Some(now + a.linger_ns);
        }
        if stop_at.is_some_and(|t| now >= t) {
            break;
        }
        if now - flushed >= FLUSH_NS {
            out.flush().map_err(|e| format!("{}: {e}", a.out))?;
            flushed = now;
        }
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty()) {
            Ok(m) => m,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            // ICMP errors are not queued on an unconnected socket without IP_RECVERR;
            // anything else is reported and waited out, never fatal.
            Err(e) => {
                eprintln!("chan-probe: recvmsg: {e}");
                std::thread::sleep(RECV_TICK);
                continue;
            }
        };
        let recv_ns = mono_ns();
        let mut ifindex = 0;
        for c in msg.cmsgs().into_iter().flatten() {
            match c {
                ControlMessageOwned::Ipv4PacketInfo(p) => ifindex = p.ipi_ifindex,
                ControlMessageOwned::RxqOvfl(n) => overflow = n,
                _ => {}
            }
        }
        let (len, src) = (msg.bytes, msg.address);
        let Some(src) = src else { continue };
        if len != LEN || &buf[..8] != MAGIC {
            continue;
        }
        let seq = u64::from_le_bytes(buf[8..16].try_into().unwrap());
        let send_ns = u64::from_le_bytes(buf[16..24].try_into().unwrap());
        let name = names.entry(ifindex).or_insert_with(|| {
            nix::net::if_::if_indextoname(ifindex as u32)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|_| format!("if{ifindex}"))
        });
        writeln!(out, "{recv_ns} {} {seq} {name} {send_ns}", src.ip()).map_err(|e| format!("{}: {e}", a.out))?;
    }

    let r = sender.join().map_err(|_| "sender panicked".to_string())?;
    for (t, ip) in a.to.iter().enumerate() {
        writeln!(out, "sent {ip} {}", r.last_seq[t]).map_err(|e| e.to_string())?;
    }
    for ((t, errno), n) in &r.errors {
        writeln!(out, "errors {} {:?} {n}", a.to[*t], Errno::from_raw(*errno)).map_err(|e| e.to_string())?;
    }
    writeln!(
        out,
        "stats skipped {} maxlate_ns {} overflow {overflow}",
        r.skipped, r.max_late_ns
    )
    .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| format!("{}: {e}", a.out))
}

fn main() {
    // hakit's statuses: 2 a usage error, 1 a failure.
    let code = match parse_args() {
        Err(e) => {
            eprintln!("chan-probe: {e}");
            2
        }
        Ok(a) => match run(a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("chan-probe: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
