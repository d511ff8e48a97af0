//! What direct routing needs of the network, asked when a real server is added: the
//! interface holding the VIP (the ingress hook goes there), the interface towards the
//! real server with its MAC, and the real server's MAC from the neighbour table.
//!
//! A MAC not known yet (no traffic to that server so far) is asked for: one UDP
//! datagram to its discard port makes the kernel resolve it (ARP or ND), and the
//! neighbour table is watched for a second. A server that does not answer is refused
//! (nothing is changed): a DR rule needs the MAC written into it. A MAC that changes
//! later (a replaced server) is not followed until that server is added again.

use super::layout::{Hop, Network};
use crate::base::proc::{self, Capture, Leftovers, Limits};
use crate::tools::lvs_ctl::backend::{Error, Result};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// The machine's network, asked through `ip -j`.
#[derive(Default)]
pub struct Live;

fn ip_json(args: &[&str]) -> Result<Value> {
    let mut cmd = Command::new("ip");
    cmd.arg("-j").args(args);
    let limits = Limits {
        timeout: Duration::from_secs(5),
        max_output: 16 << 20,
        capture: Capture::Both,
        leftovers: Leftovers::Kill,
    };
    let f = proc::run(cmd, None, &limits).map_err(|e| Error::Kernel(format!("cannot run ip: {e}")))?;
    let out = String::from_utf8_lossy(&f.output);
    if f.code != Some(0) {
        return Err(Error::Kernel(format!(
            "ip {}: {} {}",
            args.join(" "),
            f.how(),
            out.trim()
        )));
    }
    if out.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(&out).map_err(|e| Error::Kernel(format!("ip {}: unreadable answer: {e}", args.join(" "))))
}

fn usable(state: &Value) -> bool {
    let bad = ["FAILED", "INCOMPLETE", "NOARP"];
    match state.as_array() {
        Some(s) => !s.iter().any(|x| x.as_str().is_some_and(|x| bad.contains(&x))),
        None => true,
    }
}

fn neighbour(rip: IpAddr, dev: &str) -> Result<Option<String>> {
    let v = ip_json(&["neigh", "show", &rip.to_string(), "dev", dev])?;
    Ok(v.as_array().and_then(|a| {
        a.iter().find_map(|n| {
            let mac = n.get("lladdr")?.as_str()?;
            usable(n.get("state").unwrap_or(&Value::Null)).then(|| mac.to_string())
        })
    }))
}

impl Network for Live {
    fn vip_device(&mut self, vip: IpAddr) -> Result<String> {
        let v = ip_json(&["addr", "show"])?;
        let want = vip.to_string();
        v.as_array()
            .and_then(|links| {
                links.iter().find_map(|l| {
                    let holds = l
                        .get("addr_info")?
                        .as_array()?
                        .iter()
                        .any(|a| a.get("local").and_then(Value::as_str) == Some(want.as_str()));
                    let name = l.get("ifname")?.as_str()?;
                    (holds && name != "lo").then(|| name.to_string())
                })
            })
            .ok_or_else(|| {
                Error::Kernel(format!(
                    "direct routing needs the VIP {vip} on one of this director's interfaces (it answers ARP for it)"
                ))
            })
    }

    fn next_hop(&mut self, rip: IpAddr) -> Result<Hop> {
        let r = ip_json(&["route", "get", &rip.to_string()])?;
        let r = r
            .get(0)
            .ok_or_else(|| Error::Kernel(format!("no route to real server {rip}")))?;
        if let Some(g) = r.get("gateway").and_then(Value::as_str) {
            return Err(Error::Kernel(format!(
                "real server {rip} is reached through {g}: direct routing needs it on the director's own LAN"
            )));
        }
        let dev = r
            .get("dev")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Kernel(format!("the route to {rip} names no interface")))?
            .to_string();
        let l = ip_json(&["link", "show", "dev", &dev])?;
        let own_mac = l
            .get(0)
            .and_then(|l| l.get("address"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Kernel(format!("{dev} has no MAC address")))?
            .to_string();
        if let Some(mac) = neighbour(rip, &dev)? {
            return Ok(Hop { dev, own_mac, mac });
        }
        // Make the kernel resolve it: any datagram to it does.
        if let Ok(sock) = UdpSocket::bind(if rip.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }) {
            let _ = sock.send_to(&[], SocketAddr::new(rip, 9));
        }
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(mac) = neighbour(rip, &dev)? {
                return Ok(Hop { dev, own_mac, mac });
            }
        }
        Err(Error::Kernel(format!(
            "no MAC address for real server {rip} on {dev}: it did not answer ARP/ND within 1 s \
             (is it up and on this LAN?); nothing changed"
        )))
    }
}
