//! One netlink socket for every conversation hakit has with the kernel: rtnetlink now
//! (addresses, links), generic netlink (IPVS) next — the machinery is generic over the
//! message payload, so a family only brings its message type.
//!
//! Why not trust the first answer that arrives: a request that timed out may still be
//! answered later, and a subscribed socket also receives notifications, some carrying
//! our own port and sequence number. So every request gets its own sequence number,
//! only unicast messages from the kernel with our port and that number are taken as its
//! answer, and anything else is skipped (or kept as a notification). Every wait has a
//! deadline, so a request never hangs.

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

/// How long a request waits for its answer unless told otherwise: rtnetlink answers
/// in microseconds, but a contended RTNL lock can take a while.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is asked again this
/// many times in all.
const DUMP_ATTEMPTS: usize = 3;

/// How many requests [`Netlink::batch`] puts in one datagram.
pub const BATCH_WINDOW: usize = 64;

/// What became of a [`Netlink::batch`] that did not wholly succeed. The first `known`
/// requests were done, but for those in `refused`; of the `unknown` after them (sent
/// when the socket failed or the kernel did not answer), those in `refused` were
/// refused and the others may or may not have been done; none after them was sent.
#[derive(Debug)]
pub struct BatchError {
    pub known: usize,
    pub unknown: usize,
    /// The refused requests' indexes and errnos, in order.
    pub refused: Vec<(usize, io::Error)>,
    /// What stopped the batch if it was not (only) refusals.
    pub error: Option<io::Error>,
}

/// What [`Netlink::notifications`] can say besides the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Heard {
    /// Every notification since the last call.
    All,
    /// The kernel dropped some (ENOBUFS, or one too large): ask for the whole state again.
    SomeLost,
}

/// A netlink socket speaking one family's messages `T`.
pub struct Netlink<T> {
    sock: Socket,
    port: u32,
    seq: u32,
    timeout: Duration,
    buf: Vec<u8>,
    subscribed: bool,
    /// Notifications (and background dump parts) that arrived while a request waited.
    queued: VecDeque<T>,
    lost: bool,
    /// A dump whose answers come with the notifications ([`Netlink::start_dump`]).
    background: Option<Exchange>,
    background_error: Option<io::Error>,
    _payload: PhantomData<fn() -> T>,
}

/// The rtnetlink socket.
pub type Route = Netlink<RouteNetlinkMessage>;

impl Netlink<RouteNetlinkMessage> {
    /// An rtnetlink socket.
    pub fn route() -> io::Result<Route> {
        Netlink::open(NETLINK_ROUTE)
    }
}

impl<T> Netlink<T>
where
    T: NetlinkSerializable + NetlinkDeserializable,
{
    /// A socket of netlink `protocol` (NETLINK_ROUTE, NETLINK_GENERIC), bound to a port
    /// the kernel picks and connected to the kernel, so that no other process can send
    /// to it.
    pub fn open(protocol: isize) -> io::Result<Netlink<T>> {
        let mut sock = Socket::new(protocol)?;
        let addr = sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            sock,
            port: addr.port_number(),
            seq: 0,
            timeout: DEFAULT_TIMEOUT,
            buf: Vec::with_capacity(64 * 1024),
            subscribed: false,
            queued: VecDeque::new(),
            lost: false,
            background: None,
            background_error: None,
            _payload: PhantomData,
        })
    }

    /// How long a request waits for its whole answer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Read answers into a buffer of `bytes` (64 KiB unless told). The kernel sizes a
    /// dump's parts by the largest read a socket has made (up to 32 KiB, then each
    /// part is a multi-page allocation); a family whose answers are small (IPVS) reads
    /// faster with a page. A datagram larger than the buffer is lost, and the buffer
    /// grows so that the next fits.
    pub fn set_receive_buffer(&mut self, bytes: usize) {
        self.buf = Vec::with_capacity(bytes);
    }

    /// Receive the notifications of multicast `group` (RTNLGRP_LINK, ...). Groups
    /// above 32 are refused: their messages cannot be told from answers by the address
    /// they come from.
    pub fn subscribe(&mut self, group: u32) -> io::Result<()> {
        if group == 0 || group > 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("netlink group {group}: only groups 1 to 32 are supported"),
            ));
        }
        self.sock.add_membership(group)?;
        self.subscribed = true;
        Ok(())
    }

    /// Acknowledgements without a copy of the request (NETLINK_CAP_ACK): a refused
    /// 64 KiB request then costs the receive buffer a few dozen bytes, not 64 KiB.
    pub fn set_cap_ack(&mut self, on: bool) -> io::Result<()> {
        self.sock.set_cap_ack(on)
    }

    /// Ask the kernel to queue up to `bytes` of answers for this socket (SO_RCVBUF,
    /// beyond rmem_max where CAP_NET_ADMIN allows), for answers that come all at once,
    /// as a batch's refusals do.
    pub fn set_receive_queue(&mut self, bytes: usize) -> io::Result<()> {
        use nix::sys::socket::{setsockopt, sockopt};
        setsockopt(&self.sock, sockopt::RcvBufForce, &bytes)
            .or_else(|_| setsockopt(&self.sock, sockopt::RcvBuf, &bytes))
            .map_err(io::Error::from)
    }

    /// Send `msgs` (each with NLM_F_REQUEST and its flags) in one datagram and return
    /// the refused ones' indexes and errnos, in order.
    ///
    /// One datagram because the kernel hands a datagram to the family whole, and some
    /// families need that (nfnetlink's BATCH_BEGIN … BATCH_END transaction ends with the
    /// datagram: what comes after in another is not part of it). The send buffer is
    /// raised to fit (the kernel refuses a datagram larger than it with EMSGSIZE). The
    /// kernel answers a refusal whether asked or not; the wait ends at the
    /// acknowledgement of the last message that carries NLM_F_ACK (at least one must),
    /// and a refusal of a message after it is not waited for.
    pub fn together<I>(&mut self, msgs: I) -> io::Result<Vec<(usize, io::Error)>>
    where
        I: IntoIterator<Item = (T, u16)>,
    {
        let mut out = Vec::new();
        let mut seqs = Vec::new();
        let mut acked = None;
        for (i, (m, flags)) in msgs.into_iter().enumerate() {
            let seq = self.next_seq();
            self.encode(&mut out, m, flags, seq);
            seqs.push(seq);
            if flags & NLM_F_ACK != 0 {
                acked = Some(i);
            }
        }
        let Some(acked) = acked else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "netlink: a datagram of requests none of which asks for an acknowledgement",
            ));
        };
        self.fit_send_buffer(out.len())?;
        self.sock.send(&out, 0)?;
        let mut refused = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        // A family that refuses a datagram whole (nfnetlink without CAP_NET_ADMIN, a
        // batch of a stale generation) answers only its first request.
        let r = self.window(&mut buf, &seqs[..=acked], 0, true, &mut refused);
        self.buf = buf;
        r.map(|()| refused)
    }

    /// Raise the send buffer for a datagram of `len` bytes, if it is too small.
    fn fit_send_buffer(&mut self, len: usize) -> io::Result<()> {
        use nix::sys::socket::{getsockopt, setsockopt, sockopt};
        // The kernel keeps 32 bytes of the buffer for itself and doubles what it is told.
        let need = len + 64;
        if getsockopt(&self.sock, sockopt::SndBuf)? >= need {
            return Ok(());
        }
        let ask = need.div_ceil(2);
        setsockopt(&self.sock, sockopt::SndBufForce, &ask)
            .or_else(|_| setsockopt(&self.sock, sockopt::SndBuf, &ask))
            .map_err(io::Error::from)
    }

    /// Send `msg` (with NLM_F_REQUEST, NLM_F_ACK and `flags`) and wait for the kernel's
    /// acknowledgement; a refusal comes back as its errno (`raw_os_error`).
    pub fn request(&mut self, msg: T, flags: u16) -> io::Result<()> {
        self.exchange(msg, NLM_F_ACK | flags, false).map(|_| ())
    }

    /// Send a get request (with NLM_F_ACK) and return the replies that came before
    /// the acknowledgement.
    pub fn get(&mut self, msg: T) -> io::Result<Vec<T>> {
        self.exchange(msg, NLM_F_ACK, false)
    }

    /// Send a dump request and return every reply, multipart, up to NLMSG_DONE. A dump
    /// the kernel marks interrupted by a concurrent change is asked again.
    pub fn dump(&mut self, msg: T) -> io::Result<Vec<T>>
    where
        T: Clone,
    {
        let mut attempt = 1;
        loop {
            match self.exchange(msg.clone(), NLM_F_DUMP, true) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted && attempt < DUMP_ATTEMPTS => attempt += 1,
                r => return r,
            }
        }
    }

    /// Send a dump request without waiting: its replies come out of
    /// [`Netlink::notifications`] among the notifications, in the order the kernel sent
    /// them (what a poll loop that watches state wants). A new one replaces the last.
    pub fn start_dump(&mut self, msg: T) -> io::Result<()> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        self.background = Some(Exchange::new(self.port, seq, true));
        Ok(())
    }

    /// Everything waiting: notifications of the subscribed groups and the replies of a
    /// [`Netlink::start_dump`]. Never blocks. Messages this crate cannot decode are
    /// skipped.
    pub fn notifications(&mut self, out: &mut Vec<T>) -> io::Result<Heard> {
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.drain(&mut buf);
        self.buf = buf;
        // What came while a request waited, then what was just read, in order.
        out.extend(self.queued.drain(..));
        r?;
        if let Some(e) = self.background_error.take() {
            return Err(e);
        }
        Ok(if std::mem::take(&mut self.lost) {
            Heard::SomeLost
        } else {
            Heard::All
        })
    }

    /// Read every waiting datagram into the queue.
    fn drain(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        loop {
            match recv(&self.sock, buf) {
                Ok(Received::Whole(from)) => {
                    // No request waits: nothing is an answer, nothing can finish.
                    let _ = self.take(buf, from, None, &mut Vec::new());
                }
                Ok(Received::Truncated(_)) => self.lost = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.lost = true,
                Err(e) => return Err(e),
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        // Never 0: notifications the kernel originates carry 0.
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Append `msg` as a request with `flags` and sequence number `seq` to `out`.
    fn encode(&self, out: &mut Vec<u8>, msg: T, flags: u16, seq: u32) {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        header.port_number = self.port;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let start = out.len();
        let len = req.buffer_len();
        out.resize(start + ((len + 3) & !3), 0);
        req.serialize(&mut out[start..start + len]);
    }

    fn send(&mut self, msg: T, flags: u16) -> io::Result<u32> {
        let seq = self.next_seq();
        let mut bytes = Vec::new();
        self.encode(&mut bytes, msg, flags, seq);
        self.sock.send(&bytes, 0)?;
        Ok(seq)
    }

    /// Send `msgs` (requests with NLM_F_REQUEST and `flags`) back to back and learn
    /// which the kernel refused; return how many were sent.
    ///
    /// Why it is fast: [`BATCH_WINDOW`] requests go in one datagram, and only the last
    /// of each asks for an acknowledgement. The kernel handles a datagram's requests in
    /// order before `send` returns, answers a refusal whether asked or not, and so the
    /// last one's acknowledgement says the whole window is done: two system calls per
    /// window instead of two per request. The window is small enough that the refusals
    /// of a whole window fit the receive buffer.
    ///
    /// The kernel goes on with a window's requests after one it refuses, so several may
    /// be refused; no window is sent after one with a refusal.
    pub fn batch<I>(&mut self, msgs: I, flags: u16) -> Result<usize, BatchError>
    where
        I: IntoIterator<Item = T>,
    {
        let mut msgs = msgs.into_iter().peekable();
        let mut out = Vec::with_capacity(BATCH_WINDOW * 256);
        let mut seqs = Vec::with_capacity(BATCH_WINDOW);
        let mut refused = Vec::new();
        let mut sent = 0;
        let mut buf = std::mem::take(&mut self.buf);
        let r = loop {
            out.clear();
            seqs.clear();
            while seqs.len() < BATCH_WINDOW {
                let Some(m) = msgs.next() else { break };
                let last = seqs.len() + 1 == BATCH_WINDOW || msgs.peek().is_none();
                let seq = self.next_seq();
                self.encode(&mut out, m, flags | if last { NLM_F_ACK } else { 0 }, seq);
                seqs.push(seq);
            }
            if seqs.is_empty() {
                break Ok(sent);
            }
            // A failed send reached no request: the kernel takes a datagram whole.
            if let Err(e) = self.sock.send(&out, 0) {
                break Err((0, e));
            }
            if let Err(e) = self.window(&mut buf, &seqs, sent, false, &mut refused) {
                break Err((seqs.len(), e));
            }
            sent += seqs.len();
            if !refused.is_empty() {
                break Ok(sent);
            }
        };
        self.buf = buf;
        match r {
            Ok(_) if refused.is_empty() => Ok(sent),
            Ok(_) => Err(BatchError {
                known: sent,
                unknown: 0,
                refused,
                error: None,
            }),
            Err((unknown, e)) => Err(BatchError {
                known: sent,
                unknown,
                refused,
                error: Some(e),
            }),
        }
    }

    /// Wait for the acknowledgement of the last of `seqs` (requests `base..`), noting
    /// every refusal among them; with `first_ends`, a refusal of the first ends the wait
    /// too. Lost answers (ENOBUFS, truncated) are an error once nothing more is waiting:
    /// the kernel answers a datagram within send, so the awaited one will not come.
    fn window(
        &mut self,
        buf: &mut Vec<u8>,
        seqs: &[u32],
        base: usize,
        first_ends: bool,
        refused: &mut Vec<(usize, io::Error)>,
    ) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        let last = seqs.len() - 1;
        let mut lost = None;
        loop {
            // The answers are usually there already: try before polling.
            let from = match recv(&self.sock, buf) {
                Ok(Received::Whole(from)) => from,
                Ok(Received::Truncated(from)) if from.multicast_groups() != 0 => {
                    self.lost = true;
                    continue;
                }
                Ok(Received::Truncated(_)) => {
                    lost = Some(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink: an answer did not fit the receive buffer",
                    ));
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(e) = lost {
                        return Err(e);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || !self.readable(left)? {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("netlink: no answer from the kernel in {} ms", self.timeout.as_millis()),
                        ));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Answers were dropped: which requests were refused is not known.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    lost = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if from.port_number() != 0 {
                continue;
            }
            if from.multicast_groups() != 0 {
                let _ = self.take(buf, from, None, &mut Vec::new());
                continue;
            }
            let Ok(parts) = split(buf) else {
                lost.get_or_insert(io::Error::new(io::ErrorKind::InvalidData, "malformed netlink answer"));
                continue;
            };
            let mut done = false;
            for m in parts {
                let (kind, seq, port) = (u16_at(m, 4), u32_at(m, 8), u32_at(m, 12));
                let i = match seqs.iter().position(|&s| s == seq) {
                    Some(i) if port == self.port => i,
                    _ => {
                        self.foreign(m);
                        continue;
                    }
                };
                if kind != NLMSG_ERROR {
                    continue;
                }
                let code = if m.len() >= NLMSG_HDRLEN + 4 {
                    u32_at(m, NLMSG_HDRLEN) as i32
                } else {
                    lost.get_or_insert(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink: truncated acknowledgement",
                    ));
                    0
                };
                if code != 0 {
                    refused.push((base + i, io::Error::from_raw_os_error(code.unsigned_abs() as i32)));
                }
                done |= i == last || (first_ends && i == 0 && code != 0);
            }
            if done {
                return lost.map_or(Ok(()), Err);
            }
        }
    }

    fn exchange(&mut self, msg: T, flags: u16, dump: bool) -> io::Result<Vec<T>> {
        let seq = self.send(msg, flags)?;
        let mut ex = Exchange::new(self.port, seq, dump);
        let deadline = Instant::now() + self.timeout;
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.wait(&mut buf, &mut ex, deadline);
        self.buf = buf;
        let answer = r?;
        if ex.interrupted {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "netlink dump interrupted by a concurrent change",
            ));
        }
        Ok(answer)
    }

    fn wait(&mut self, buf: &mut Vec<u8>, ex: &mut Exchange, deadline: Instant) -> io::Result<Vec<T>> {
        let mut answer = Vec::new();
        // The kernel answers (and makes a dump's next part) within send and recv, so
        // what is awaited is usually there already: read first, poll only when not.
        let mut poll = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (poll && !self.readable(left)?) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("netlink: no answer from the kernel in {} ms", self.timeout.as_millis()),
                ));
            }
            poll = true;
            match recv(&self.sock, buf) {
                Ok(Received::Whole(from)) => {
                    if let Some(end) = self.take(buf, from, Some(ex), &mut answer) {
                        return end.map(|()| answer);
                    }
                    poll = false;
                }
                Ok(Received::Truncated(from)) if from.multicast_groups() != 0 => {
                    self.lost = true;
                    poll = false;
                }
                Ok(Received::Truncated(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink: an answer did not fit the receive buffer",
                    ))
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                // Notifications were lost, not our answer: the wait goes on.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.lost = true,
                Err(e) => return Err(e),
            }
        }
    }

    fn readable(&self, left: Duration) -> io::Result<bool> {
        // Round up: poll counts milliseconds, and 0 would not wait at all.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Sort one datagram from `from`: the answer of `ex` into `answer` (returning how
    /// the exchange ended, if it did), the rest into the notifications.
    fn take(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        mut ex: Option<&mut Exchange>,
        answer: &mut Vec<T>,
    ) -> Option<io::Result<()>> {
        if from.port_number() != 0 {
            return None; // not the kernel
        }
        let Ok(msgs) = split(datagram) else {
            return ex.map(|_| Err(io::Error::new(io::ErrorKind::InvalidData, "malformed netlink answer")));
        };
        if from.multicast_groups() != 0 {
            if self.subscribed {
                self.queued.extend(msgs.into_iter().filter_map(decode));
            }
            return None;
        }
        let mut end = None;
        for m in msgs {
            let step = match ex.as_deref_mut() {
                Some(e) => e.step(m),
                None => Step::Foreign,
            };
            match step {
                Step::Part(m) => match NetlinkMessage::<T>::deserialize(m) {
                    Ok(NetlinkMessage {
                        payload: NetlinkPayload::InnerMessage(t),
                        ..
                    }) => answer.push(t),
                    Ok(_) => {}
                    Err(e) => {
                        end.get_or_insert(Err(io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}"))));
                    }
                },
                Step::Finished(r) => {
                    end.get_or_insert(r);
                }
                Step::Ignored => {}
                Step::Foreign => self.foreign(m),
            }
        }
        end
    }

    /// A unicast message that answers no request waited for: a part of the background
    /// dump, or nothing.
    fn foreign(&mut self, m: &[u8]) {
        let Some(bg) = self.background.as_mut() else { return };
        match bg.step(m) {
            Step::Part(m) => self.queued.extend(decode(m)),
            Step::Finished(r) => {
                self.background = None;
                if let Err(e) = r {
                    self.background_error = Some(e);
                }
            }
            Step::Ignored | Step::Foreign => {}
        }
    }
}

impl<T> AsRawFd for Netlink<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl<T> AsFd for Netlink<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

fn decode<T: NetlinkDeserializable>(m: &[u8]) -> Option<T> {
    match NetlinkMessage::<T>::deserialize(m).ok()?.payload {
        NetlinkPayload::InnerMessage(t) => Some(t),
        _ => None,
    }
}

enum Received {
    Whole(SocketAddr),
    Truncated(SocketAddr),
}

/// One datagram into `buf` (never blocks). One too large for `buf` is lost, and
/// `buf` grows so that the next fits.
fn recv(sock: &Socket, buf: &mut Vec<u8>) -> io::Result<Received> {
    buf.clear();
    let (n, from) = sock.recv_from(buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC)?;
    if n > buf.capacity() {
        buf.reserve(n);
        return Ok(Received::Truncated(from));
    }
    Ok(Received::Whole(from))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

/// The messages of a datagram, each with its header; 4-byte aligned.
fn split(mut d: &[u8]) -> Result<Vec<&[u8]>, ()> {
    let mut out = Vec::new();
    while d.len() >= NLMSG_HDRLEN {
        let len = u32_at(d, 0) as usize;
        if len < NLMSG_HDRLEN || len > d.len() {
            return Err(());
        }
        out.push(&d[..len]);
        d = &d[((len + 3) & !3).min(d.len())..];
    }
    Ok(out)
}

/// One request in flight: which messages answer it, and whether a dump of it was
/// interrupted.
#[derive(Debug)]
struct Exchange {
    port: u32,
    seq: u32,
    dump: bool,
    interrupted: bool,
}

#[derive(Debug)]
enum Step<'a> {
    /// Another request's (another sequence number or port): not this one's answer.
    Foreign,
    /// A message of the answer.
    Part(&'a [u8]),
    /// The acknowledgement, the kernel's error, or the end of a dump.
    Finished(io::Result<()>),
    /// Ours but carrying nothing (NOOP, a DONE that ends no dump).
    Ignored,
}

impl Exchange {
    fn new(port: u32, seq: u32, dump: bool) -> Exchange {
        Exchange {
            port,
            seq,
            dump,
            interrupted: false,
        }
    }

    /// What one message `m` (whole, from the kernel) is to this exchange.
    fn step<'a>(&mut self, m: &'a [u8]) -> Step<'a> {
        let (kind, flags, seq, port) = (u16_at(m, 4), u16_at(m, 6), u32_at(m, 8), u32_at(m, 12));
        if seq != self.seq || port != self.port {
            return Step::Foreign;
        }
        // NLMSG_ERROR and NLMSG_DONE carry the kernel's code: 0 or a negative errno.
        let code = || {
            if m.len() >= NLMSG_HDRLEN + 4 {
                u32_at(m, NLMSG_HDRLEN) as i32
            } else {
                0
            }
        };
        let result = |c: i32| {
            if c == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(c.unsigned_abs() as i32))
            }
        };
        match kind {
            NLMSG_ERROR if m.len() < NLMSG_HDRLEN + 4 => Step::Finished(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "netlink: truncated acknowledgement",
            ))),
            NLMSG_ERROR => Step::Finished(result(code())),
            NLMSG_DONE if self.dump => Step::Finished(result(code())),
            NLMSG_DONE | NLMSG_NOOP | NLMSG_OVERRUN => Step::Ignored,
            _ => {
                if flags & NLM_F_DUMP_INTR != 0 {
                    self.interrupted = true;
                }
                Step::Part(m)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NLM_F_MULTIPART;

    /// A raw netlink message: header fields and payload.
    fn msg(kind: u16, flags: u16, seq: u32, port: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&port.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn ack(seq: u32, port: u32, code: i32) -> Vec<u8> {
        let mut p = code.to_ne_bytes().to_vec();
        p.extend_from_slice(&[0; NLMSG_HDRLEN]); // the request's header, echoed
        msg(NLMSG_ERROR, 0, seq, port, &p)
    }

    /// Walk one datagram as `Netlink::take` does for the exchange.
    fn feed(ex: &mut Exchange, datagram: &[u8]) -> (usize, Option<io::Result<()>>) {
        let mut parts = 0;
        for m in split(datagram).unwrap() {
            match ex.step(m) {
                Step::Part(_) => parts += 1,
                Step::Finished(r) => return (parts, Some(r)),
                Step::Foreign | Step::Ignored => {}
            }
        }
        (parts, None)
    }

    #[test]
    fn answers_to_another_sequence_number_or_port_are_skipped() {
        let mut ex = Exchange::new(4242, 7, false);
        // A late refusal of request 6, another socket's ACK for 7, then ours.
        let mut d = ack(6, 4242, -libc::EEXIST);
        d.extend(ack(7, 9999, -libc::EPERM));
        let (parts, end) = feed(&mut ex, &d);
        assert_eq!(parts, 0);
        assert!(end.is_none(), "a foreign answer was taken: {end:?}");
        let (_, end) = feed(&mut ex, &ack(7, 4242, 0));
        assert!(end.unwrap().is_ok());
    }

    #[test]
    fn an_error_ack_maps_to_its_errno() {
        let mut ex = Exchange::new(1, 3, false);
        let (_, end) = feed(&mut ex, &ack(3, 1, -libc::EADDRNOTAVAIL));
        let e = end.unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL));
        // A truncated NLMSG_ERROR is an error, never an ACK.
        let mut ex = Exchange::new(1, 4, false);
        let (_, end) = feed(&mut ex, &msg(NLMSG_ERROR, 0, 4, 1, &[]));
        assert_eq!(end.unwrap().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_dump_is_multipart_until_done() {
        let mut ex = Exchange::new(5, 9, true);
        let mut d = msg(16, NLM_F_MULTIPART, 9, 5, &[0; 16]);
        d.extend(msg(16, NLM_F_MULTIPART, 8, 5, &[0; 16])); // an older dump's
        d.extend(msg(16, NLM_F_MULTIPART, 9, 5, &[0; 16]));
        assert_eq!(feed(&mut ex, &d).0, 2);
        assert!(!ex.interrupted);
        let mut d = msg(16, NLM_F_MULTIPART | NLM_F_DUMP_INTR, 9, 5, &[0; 16]);
        d.extend(msg(NLMSG_DONE, NLM_F_MULTIPART, 9, 5, &0i32.to_ne_bytes()));
        let (parts, end) = feed(&mut ex, &d);
        assert_eq!(parts, 1);
        assert!(end.unwrap().is_ok());
        assert!(ex.interrupted);
        // A dump the kernel refuses at once, and one that ends with an error.
        let mut ex = Exchange::new(5, 10, true);
        let (_, end) = feed(&mut ex, &ack(10, 5, -libc::EOPNOTSUPP));
        assert_eq!(end.unwrap().unwrap_err().raw_os_error(), Some(libc::EOPNOTSUPP));
        let mut ex = Exchange::new(5, 11, true);
        let done = msg(NLMSG_DONE, NLM_F_MULTIPART, 11, 5, &(-libc::ENOBUFS).to_ne_bytes());
        assert_eq!(
            feed(&mut ex, &done).1.unwrap().unwrap_err().raw_os_error(),
            Some(libc::ENOBUFS)
        );
    }

    #[test]
    fn a_length_past_the_end_is_malformed() {
        let mut m = ack(1, 1, 0);
        m[0] = 200;
        assert!(split(&m).is_err());
        m[0] = 4;
        assert!(split(&m).is_err());
        assert_eq!(split(&[]).unwrap().len(), 0);
    }

    #[test]
    fn requests_together_in_one_datagram_say_which_were_refused() {
        use netlink_packet_route::address::AddressMessage;
        use netlink_packet_route::link::LinkMessage;
        let mut nl = Netlink::route().unwrap();
        nl.set_timeout(Duration::from_secs(2));
        nl.set_cap_ack(true).unwrap();
        let lo = || {
            let mut l = LinkMessage::default();
            l.header.index = 1;
            RouteNetlinkMessage::GetLink(l)
        };
        let mut a = AddressMessage::default();
        a.header.family = netlink_packet_route::AddressFamily::Inet;
        a.header.index = u32::MAX;
        let msgs = vec![
            (lo(), 0),
            (RouteNetlinkMessage::DelAddress(a), 0),
            (lo(), 0),
            (lo(), NLM_F_ACK),
        ];
        let refused = nl.together(msgs).unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, 1);
        assert!(
            nl.together(vec![(lo(), 0)]).is_err(),
            "none asks for an acknowledgement"
        );
        // (A datagram beyond the default send buffer: tests/nftables.rs, 1.8 MB.)
        assert!(!nl
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_the_kernels_unicast_answers_count_and_notifications_are_kept() {
        use netlink_packet_route::link::LinkMessage;
        let mut nl = Netlink::route().unwrap();
        nl.subscribe(libc::RTNLGRP_LINK).unwrap();
        let port = nl.port;
        let mut ex = Exchange::new(port, 5, false);
        let mut answer = Vec::new();
        // Our sequence number and port, but sent by another process.
        let end = nl.take(&ack(5, port, 0), SocketAddr::new(77, 0), Some(&mut ex), &mut answer);
        assert!(end.is_none());
        // A notification of our own change carries our port and number: it is
        // multicast, so a notification, not the answer.
        let mut header = NetlinkHeader::default();
        header.sequence_number = 5;
        header.port_number = port;
        let mut note = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(LinkMessage::default())),
        );
        note.finalize();
        let mut bytes = vec![0; note.buffer_len()];
        note.serialize(&mut bytes);
        let mut d = bytes.clone();
        d.extend(ack(5, port, 0));
        assert!(nl.take(&d, SocketAddr::new(0, 1), Some(&mut ex), &mut answer).is_none());
        assert_eq!(nl.queued.len(), 1);
        // A stale refusal, then ours, in one datagram from the kernel.
        let mut d = ack(4, port, -libc::EEXIST);
        d.extend(ack(5, port, -libc::EPERM));
        let end = nl.take(&d, SocketAddr::new(0, 0), Some(&mut ex), &mut answer).unwrap();
        assert_eq!(end.unwrap_err().raw_os_error(), Some(libc::EPERM));
        let mut out = Vec::new();
        assert_eq!(nl.notifications(&mut out).unwrap(), Heard::All);
        assert!(matches!(out[..], [RouteNetlinkMessage::NewLink(_), ..]));
    }

    #[test]
    fn a_background_dump_comes_out_in_the_read_that_found_it() {
        use netlink_packet_route::link::LinkMessage;
        let mut nl = Netlink::route().unwrap();
        nl.subscribe(libc::RTNLGRP_LINK).unwrap();
        nl.start_dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .unwrap();
        let mut fds = [PollFd::new(nl.as_fd(), PollFlags::POLLIN)];
        assert_eq!(nix::poll::poll(&mut fds, PollTimeout::from(2000u16)).unwrap(), 1);
        let mut out = Vec::new();
        assert_eq!(nl.notifications(&mut out).unwrap(), Heard::All);
        assert!(
            out.iter().any(|m| matches!(m, RouteNetlinkMessage::NewLink(_))),
            "{out:?}"
        );
    }

    #[test]
    fn a_real_dump_and_a_refused_request() {
        use netlink_packet_route::address::AddressMessage;
        use netlink_packet_route::link::LinkMessage;
        let mut nl = Netlink::route().unwrap();
        nl.set_timeout(Duration::from_secs(2));
        let links = nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default())).unwrap();
        assert!(links
            .iter()
            .any(|l| matches!(l, RouteNetlinkMessage::NewLink(l) if l.header.index == 1)));
        // Deleting an address from a link that does not exist: the kernel's errno.
        let mut a = AddressMessage::default();
        a.header.family = netlink_packet_route::AddressFamily::Inet;
        a.header.index = u32::MAX;
        let e = nl.request(RouteNetlinkMessage::DelAddress(a), 0).unwrap_err();
        assert!(e.raw_os_error().is_some(), "{e}");
        // The socket is still in step: a second dump works.
        assert!(!nl
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_batch_says_which_requests_were_refused() {
        use netlink_packet_route::address::AddressMessage;
        use netlink_packet_route::link::LinkMessage;
        let mut nl = Netlink::route().unwrap();
        nl.set_timeout(Duration::from_secs(2));
        let lo = || {
            let mut l = LinkMessage::default();
            l.header.index = 1;
            RouteNetlinkMessage::GetLink(l)
        };
        let bogus = || {
            let mut a = AddressMessage::default();
            a.header.family = netlink_packet_route::AddressFamily::Inet;
            a.header.index = u32::MAX;
            RouteNetlinkMessage::DelAddress(a)
        };
        // Three windows of requests that succeed (their answers are skipped).
        assert_eq!(
            nl.batch((0..BATCH_WINDOW * 2 + 5).map(|_| lo()), 0).unwrap(),
            BATCH_WINDOW * 2 + 5
        );
        // A refusal in the second window: that window is finished, no third is sent.
        let msgs = (0..BATCH_WINDOW * 3).map(|i| {
            if i == BATCH_WINDOW + 2 || i == BATCH_WINDOW + 9 {
                bogus()
            } else {
                lo()
            }
        });
        let e = nl.batch(msgs, 0).unwrap_err();
        assert_eq!(e.known, BATCH_WINDOW * 2);
        assert_eq!(e.unknown, 0);
        assert!(e.error.is_none(), "{e:?}");
        let at: Vec<usize> = e.refused.iter().map(|r| r.0).collect();
        assert_eq!(at, [BATCH_WINDOW + 2, BATCH_WINDOW + 9]);
        assert!(e.refused[0].1.raw_os_error().is_some());
        // The socket is still in step.
        assert!(!nl
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .unwrap()
            .is_empty());
        assert_eq!(nl.batch(std::iter::empty(), 0).unwrap(), 0);
    }
}
