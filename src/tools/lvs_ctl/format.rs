//! ipvsadm 1.31's listings, byte for byte: `-L -n` with each of its options, `-S -n`,
//! `--timeout`, `--daemon`, `-c`. ldirectord and people's scripts parse this text
//! (ldirectord: three header lines, then `^  ->\s+addr\s+(\w+)\s+(\d+)`), so the widths
//! and the truncations (a name cut to 33 and 28 characters) are kept as ipvsadm has
//! them. Names are never resolved: `-L` without `-n` prints addresses too.
//!
//! And `--json` for each, from the same model.

use super::ipvsadm::Format;
use super::model::*;
use serde::Serialize;
use std::fmt::Write;
use std::net::IpAddr;

fn title(out: &mut String, f: &Format) {
    let first = "Prot LocalAddress:Port";
    if f.stats {
        let _ = writeln!(
            out,
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if f.rate {
        let _ = writeln!(
            out,
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if f.thresholds {
        let _ = writeln!(
            out,
            "{first:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            out,
            "{first:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
    }
}

/// ipvsadm's print_largenum: right-aligned in 9, shortened with K/M/G/T from 10^8 up
/// unless exact.
fn largenum(out: &mut String, i: u64, f: &Format) {
    if f.exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>w$}");
    } else if i < 100_000_000 {
        let _ = write!(out, "{i:>9}");
    } else if i < 1_000_000_000 {
        let _ = write!(out, "{:>8}K", i / 1000);
    } else if i < 100_000_000_000 {
        let _ = write!(out, "{:>8}M", i / 1_000_000);
    } else if i < 100_000_000_000_000 {
        let _ = write!(out, "{:>8}G", i / 1_000_000_000);
    } else {
        let _ = write!(out, "{:>8}T", i / 1_000_000_000_000);
    }
}

fn sched_flags(s: &Service) -> String {
    let mut v = Vec::new();
    match s.scheduler.as_str() {
        "sh" | "mh" => {
            let n = &s.scheduler;
            if s.flags & F_SCHED1 != 0 {
                v.push(format!("{n}-fallback"));
            }
            if s.flags & F_SCHED2 != 0 {
                v.push(format!("{n}-port"));
            }
        }
        _ => {
            for (bit, name) in [(F_SCHED1, "flag-1"), (F_SCHED2, "flag-2"), (F_SCHED3, "flag-3")] {
                if s.flags & bit != 0 {
                    v.push(name.to_string());
                }
            }
        }
    }
    v.join(",")
}

fn cut(mut s: String, at: usize) -> String {
    s.truncate(at);
    s
}

/// The IPv4 mask as ipvsadm prints it (inet_ntoa of the u32 IPVS carries).
fn mask4(netmask: u32) -> String {
    std::net::Ipv4Addr::from(netmask.to_ne_bytes()).to_string()
}

fn service_line(out: &mut String, s: &Service, f: &Format) {
    let name = match s.key {
        // %d in ipvsadm: a mark above 2^31 prints negative.
        ServiceKey::Fwmark { mark, v6: false } => format!("FWM  {}", mark as i32),
        ServiceKey::Fwmark { mark, v6: true } => format!("FWM  {} IPv6", mark as i32),
        ServiceKey::Addr { proto, addr, port } => {
            let n = format!("{:<4} {}", proto.upper(), AddrPort(addr, port));
            if addr.is_ipv6() {
                n
            } else {
                cut(n, 33)
            }
        }
    };
    let st = &s.stats;
    if f.stats {
        let _ = write!(out, "{name:<33}");
        for n in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
            largenum(out, n, f);
        }
    } else if f.rate {
        let _ = write!(out, "{name:<33}");
        for n in [st.cps, st.inpps, st.outpps, st.inbps, st.outbps] {
            largenum(out, n, f);
        }
    } else {
        let _ = write!(out, "{name} {}", s.scheduler);
        if s.flags & (F_SCHED1 | F_SCHED2 | F_SCHED3) != 0 {
            let _ = write!(out, " ({})", sched_flags(s));
        }
        if let Some(t) = s.persistent() {
            let _ = write!(out, " persistent {t}");
            if !s.key.is_v6() && s.netmask != 0xffff_ffff {
                let _ = write!(out, " mask {}", mask4(s.netmask));
            }
            if s.key.is_v6() && s.netmask != 128 {
                let _ = write!(out, " mask {}", s.netmask as i32);
            }
            if !s.pe_name.is_empty() {
                let _ = write!(out, " pe {}", s.pe_name);
            }
        }
        if s.flags & F_ONEPACKET != 0 {
            out.push_str(" ops");
        }
    }
    out.push('\n');
}

fn dest_line(out: &mut String, d: &Dest, f: &Format) {
    let name = AddrPort(d.addr, d.port).to_string();
    let name = if d.addr.is_ipv6() { name } else { cut(name, 28) };
    let st = &d.stats;
    if f.stats {
        let _ = write!(out, "  -> {name:<28}");
        for n in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
            largenum(out, n, f);
        }
        out.push('\n');
    } else if f.rate {
        let _ = write!(out, "  -> {name:<28} {:>8} {:>8} {:>8}", st.cps, st.inpps, st.outpps);
        largenum(out, st.inbps, f);
        largenum(out, st.outbps, f);
        out.push('\n');
    } else if f.thresholds {
        let _ = writeln!(
            out,
            "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
            d.u_thresh, d.l_thresh, d.active, d.inactive
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            out,
            "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
            d.weight, d.persist, d.active, d.inactive
        );
    } else {
        let _ = writeln!(
            out,
            "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
            d.fwd.name(),
            d.weight as i32,
            d.active,
            d.inactive
        );
    }
}

fn sorted(t: &Table, f: &Format) -> Vec<Service> {
    let mut t = t.clone();
    if !f.nosort {
        t.sort();
    }
    t.services
}

/// `-L` of the whole table.
pub fn list(t: &Table, f: &Format) -> String {
    let mut out = String::with_capacity(128 + t.services.len() * 160);
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        t.info.version_string(),
        t.info.size
    );
    title(&mut out, f);
    for s in sorted(t, f) {
        service(&mut out, &s, f);
    }
    out
}

/// `-L` of one service: no version line, as ipvsadm.
pub fn list_one(s: &Service, f: &Format) -> String {
    let mut out = String::new();
    title(&mut out, f);
    let mut s = s.clone();
    if !f.nosort {
        sort_dests(&mut s.dests);
    }
    service(&mut out, &s, f);
    out
}

fn service(out: &mut String, s: &Service, f: &Format) {
    service_line(out, s, f);
    for d in &s.dests {
        dest_line(out, d, f);
    }
}

/// `-S`: the lines `-R` reads back.
pub fn save(t: &Table, f: &Format) -> String {
    let mut out = String::with_capacity(t.services.len() * 96);
    for s in sorted(t, f) {
        save_service(&mut out, &s);
    }
    out
}

pub fn save_service(out: &mut String, s: &Service) {
    let _ = write!(out, "-A {} -s {}", s.key, s.scheduler);
    if let Some(t) = s.persistent() {
        let _ = write!(out, " -p {t}");
        if !s.key.is_v6() && s.netmask != 0xffff_ffff {
            let _ = write!(out, " -M {}", mask4(s.netmask));
        }
        if s.key.is_v6() && s.netmask != 128 {
            let _ = write!(out, " -M {}", s.netmask as i32);
        }
    }
    if !s.pe_name.is_empty() {
        let _ = write!(out, " --pe {}", s.pe_name);
    }
    if s.flags & F_ONEPACKET != 0 {
        out.push_str(" -o");
    }
    if s.flags & (F_SCHED1 | F_SCHED2 | F_SCHED3) != 0 {
        let _ = write!(out, " -b {}", sched_flags(s));
    }
    out.push('\n');
    for d in &s.dests {
        let _ = write!(
            out,
            "-a {} -r {} {} -w {}",
            s.key,
            AddrPort(d.addr, d.port),
            d.fwd.switch(),
            d.weight as i32
        );
        // ipvsadm names the tunnel type of every tunnel (IP-in-IP is the only one here).
        if d.fwd == Fwd::Tunnel {
            out.push_str(" --tun-type ipip");
        }
        out.push('\n');
    }
}

/// One change as the ipvsadm line that makes it (`diff`'s output; `-R` reads it back).
pub fn change_line(c: &Change) -> String {
    let mut out = String::new();
    match c {
        Change::AddService(s) | Change::EditService(s) => {
            save_service(
                &mut out,
                &Service {
                    dests: Vec::new(),
                    ..s.clone()
                },
            );
            if matches!(c, Change::EditService(_)) {
                out.replace_range(0..2, "-E");
            }
        }
        Change::DelService(k) => {
            let _ = writeln!(out, "-D {k}");
        }
        Change::AddDest(k, d) | Change::EditDest(k, d) => {
            let op = if matches!(c, Change::AddDest(..)) { "-a" } else { "-e" };
            let _ = write!(
                out,
                "{op} {k} -r {} {} -w {}",
                AddrPort(d.addr, d.port),
                d.fwd.switch(),
                d.weight
            );
            if d.u_thresh != 0 {
                let _ = write!(out, " -x {}", d.u_thresh);
            }
            if d.l_thresh != 0 {
                let _ = write!(out, " -y {}", d.l_thresh);
            }
            out.push('\n');
        }
        Change::DelDest(k, a, p) => {
            let _ = writeln!(out, "-d {k} -r {}", AddrPort(*a, *p));
        }
        Change::Flush => out.push_str("-C\n"),
        Change::Zero(None) => out.push_str("-Z\n"),
        Change::Zero(Some(k)) => {
            let _ = writeln!(out, "-Z {k}");
        }
    }
    out
}

/// `-L --timeout`.
pub fn timeouts(t: &Timeouts) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcp_fin, t.udp)
}

/// `-L --daemon`: master first, then backup.
pub fn daemons(ds: &[Daemon]) -> String {
    let mut out = String::new();
    for state in [DAEMON_MASTER, DAEMON_BACKUP] {
        for d in ds.iter().filter(|d| d.state & state != 0) {
            let kind = if state == DAEMON_MASTER { "master" } else { "backup" };
            let _ = write!(out, "{kind} sync daemon (mcast={}, syncid={}", d.ifname, d.syncid);
            if d.sync_maxlen != 0 {
                let _ = write!(out, ", maxlen={}", d.sync_maxlen);
            }
            if let Some(g) = d.mcast_group {
                let _ = write!(out, ", group={g}");
            }
            if d.mcast_port != 0 {
                let _ = write!(out, ", port={}", d.mcast_port);
            }
            if d.mcast_ttl != 0 {
                let _ = write!(out, ", ttl={}", d.mcast_ttl);
            }
            out.push_str(")\n");
        }
    }
    out
}

/// One connection of `-L -c` (from /proc/net/ip_vs_conn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conn {
    pub proto: String,
    pub client: String,
    pub virt: String,
    pub dest: String,
    pub state: String,
    pub expires: u32,
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
}

/// Read /proc/net/ip_vs_conn's text (hex addresses and ports, or IPv6 in text).
pub fn parse_conns(text: &str) -> Vec<Conn> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 {
            continue;
        }
        let addr = |a: &str, p: &str| -> Option<String> {
            let port = u16::from_str_radix(p, 16).ok()?;
            let ip: IpAddr = match a.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => IpAddr::V4(u32::from_str_radix(a, 16).ok()?.into()),
            };
            Some(AddrPort(ip, port).to_string())
        };
        let (Some(c), Some(v), Some(d), Ok(exp)) = (addr(f[1], f[2]), addr(f[3], f[4]), addr(f[5], f[6]), f[8].parse())
        else {
            continue;
        };
        out.push(Conn {
            proto: f[0].to_string(),
            client: c,
            virt: v,
            dest: d,
            state: f[7].to_string(),
            expires: exp,
            pe_name: f.get(9).map(|s| s.to_string()),
            pe_data: f.get(10).map(|s| s.to_string()),
        });
    }
    out
}

/// `-L -c`.
pub fn conns(cs: &[Conn], f: &Format) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if f.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in cs {
        let exp = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        match (&c.pe_name, &c.pe_data, f.persistent_conn) {
            (Some(n), Some(d), true) => {
                let _ = writeln!(
                    out,
                    "{:<3} {exp:<6} {:<11} {:<18} {:<18} {:<16} {n:<18} {d}",
                    c.proto, c.state, c.client, c.virt, c.dest
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{:<3} {exp:<6} {:<11} {:<18} {:<18} {}",
                    c.proto, c.state, c.client, c.virt, c.dest
                );
            }
        }
    }
    out
}

/// `--json` of a table: one object, services sorted as `-L` lists them.
pub fn json_table(t: &Table, f: &Format, backend: &str) -> String {
    let services: Vec<serde_json::Value> = sorted(t, f).iter().map(json_service).collect();
    let v = serde_json::json!({
        "backend": backend,
        "version": t.info.version_string(),
        "size": t.info.size,
        "services": services,
    });
    v.to_string() + "\n"
}

/// One service as JSON (addresses as text, flags spelled out).
pub fn json_service(s: &Service) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("persistent".into(), serde_json::json!(s.persistent()));
        o.insert("sched_flags".into(), serde_json::json!(sched_flags(s)));
        o.insert("ops".into(), serde_json::json!(s.flags & F_ONEPACKET != 0));
        if !s.key.is_v6() {
            o.insert("netmask".into(), serde_json::json!(mask4(s.netmask)));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::empty(Info {
            version: 0x010201,
            size: 4096,
        });
        let mut s = Service::new(ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "192.168.0.100".parse().unwrap(),
            port: 80,
        });
        s.flags = F_PERSISTENT;
        s.timeout = 300;
        let mut d1 = Dest::new("192.168.10.2".parse().unwrap(), 80);
        d1.weight = 2;
        d1.fwd = Fwd::Route;
        let mut d2 = Dest::new("192.168.10.1".parse().unwrap(), 80);
        d2.fwd = Fwd::Masq;
        d2.active = 3;
        d2.inactive = 12;
        s.dests = vec![d1, d2];
        let mut u = Service::new(ServiceKey::Addr {
            proto: Proto::Udp,
            addr: "192.168.0.100".parse().unwrap(),
            port: 53,
        });
        u.scheduler = "sh".into();
        u.flags = F_SCHED1 | F_SCHED2;
        let mut fwm = Service::new(ServiceKey::Fwmark { mark: 1, v6: false });
        fwm.scheduler = "rr".into();
        t.services = vec![fwm, u, s];
        t
    }

    #[test]
    fn list_is_ipvsadms() {
        // The listing of lvs.md (ipvsadm's man page and its source's formats).
        assert_eq!(
            list(&table(), &Format::default()),
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  192.168.0.100:80 wlc persistent 300\n  \
             -> 192.168.10.1:80              Masq    1      3          12        \n  \
             -> 192.168.10.2:80              Route   2      0          0         \n\
             UDP  192.168.0.100:53 sh (sh-fallback,sh-port)\n\
             FWM  1 rr\n"
        );
        assert_eq!(
            save(&table(), &Format::default()),
            "-A -t 192.168.0.100:80 -s wlc -p 300\n\
             -a -t 192.168.0.100:80 -r 192.168.10.1:80 -m -w 1\n\
             -a -t 192.168.0.100:80 -r 192.168.10.2:80 -g -w 2\n\
             -A -u 192.168.0.100:53 -s sh -b sh-fallback,sh-port\n\
             -A -f 1 -s rr\n"
        );
    }

    #[test]
    fn a_mark_above_two_to_the_31_prints_as_ipvsadm_prints_it() {
        let mut t = table();
        t.services = vec![Service::new(ServiceKey::Fwmark {
            mark: 4_000_000_000,
            v6: false,
        })];
        assert!(list(&t, &Format::default()).contains("\nFWM  -294967296 wlc\n"));
        assert_eq!(save(&t, &Format::default()), "-A -f -294967296 -s wlc\n");
        // And -R reads it back as the same mark.
        let words = crate::tools::lvs_ctl::ipvsadm::split_line("-A -f -294967296 -s wlc");
        let inv =
            crate::tools::lvs_ctl::ipvsadm::parse(&words, crate::tools::lvs_ctl::ipvsadm::Origin::Line("stdin", 1))
                .unwrap();
        assert!(matches!(
            inv.command,
            crate::tools::lvs_ctl::ipvsadm::Command::Change(Change::AddService(ref s)) if s.key == ServiceKey::Fwmark { mark: 4_000_000_000, v6: false }
        ));
    }

    #[test]
    fn counters_shorten_as_ipvsadm() {
        let f = Format::default();
        let mut s = String::new();
        for n in [0, 99_999_999, 100_000_000, 999_999_999_999, 123_456_789_012_345_678] {
            largenum(&mut s, n, &f);
        }
        assert_eq!(s, "        0 99999999  100000K     999G  123456T");
        let mut s = String::new();
        largenum(&mut s, 1_234_567_890, &Format { exact: true, ..f });
        assert_eq!(s, " 1234567890");
    }

    #[test]
    fn stats_and_thresholds_titles() {
        let f = Format {
            stats: true,
            ..Format::default()
        };
        let l = list(&table(), &f);
        assert!(l.contains("Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"), "{l}");
        assert!(
            l.contains("TCP  192.168.0.100:80                    0        0        0        0        0\n"),
            "{l}"
        );
    }

    #[test]
    fn proc_conns_parse() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
                    TCP 0A000003 9C40 0A000001 0050 0A000002 0050 ESTABLISHED     899\n";
        let c = parse_conns(text);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].client, "10.0.0.3:40000");
        let out = conns(&c, &Format::default());
        assert_eq!(
            out.lines().nth(2).unwrap(),
            "TCP 14:59  ESTABLISHED 10.0.0.3:40000     10.0.0.1:80        10.0.0.2:80"
        );
    }
}
