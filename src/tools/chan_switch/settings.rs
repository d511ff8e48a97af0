//! chan-switch's settings: its flags, then the file's `chan-switch` section (and the
//! `cluster`, `hb-send` and `hb-watch` sections for what it shares with them), then the
//! defaults, checked here and nowhere else.
//!
//! ```yaml
//! chan-switch:
//!   policy: all              # or per-peer
//!   preferred: a             # the channel `back` returns to (default: the first)
//!   back: none               # or a duration: back by itself after that long healthy
//!   hold-down: 90ms          # default and least: 3 x deadtime
//!   members:
//!     - name: n1
//!       address: 10.0.100.1          # its cluster address (on lo)
//!       via: [10.0.1.1, 10.0.2.1]    # its address on each channel, in their order
//! ```

use super::decide::{Ch, Policy};
use crate::base::duration::format as dur;
use crate::config::{self, ChannelSpec, Error, Origin, Resolver, Source, DEFAULT_FIFO, DEFAULT_TABLE};
use crate::tools::chan_switch::cli::{Common, RunArgs};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const SECTION: &str = "chan-switch";
pub const DEFAULT_STATE: &str = "/var/lib/hakit/chan-switch";
pub const DEFAULT_STATUS: &str = "/run/hakit/chan-switch.json";
pub const DEFAULT_ROUTE_TABLE: u32 = 6940;
pub const DEFAULT_RULE_PRIORITY: u32 = 1000;
/// Rule priorities chan-switch owns from its base.
pub const RULE_SPAN: u32 = 16;

#[derive(Debug, Default, Deserialize)]
struct FileView {
    #[serde(default, rename = "chan-switch")]
    chan_switch: Option<Section>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Section {
    policy: Option<Policy>,
    preferred: Option<String>,
    back: Option<String>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    hold_down: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    settle: Option<Duration>,
    state: Option<PathBuf>,
    status_file: Option<PathBuf>,
    route_table: Option<u32>,
    rule_priority: Option<u32>,
    json: Option<bool>,
    realtime: Option<bool>,
    #[serde(default)]
    members: Vec<MemberEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberEntry {
    name: String,
    address: IpAddr,
    #[serde(default)]
    via: Vec<IpAddr>,
}

/// A node of the switched cluster: its cluster address and its address on each channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub addr: IpAddr,
    pub via: Vec<IpAddr>,
}

/// What every subcommand needs: this node and where the daemon reports.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    pub node: String,
    pub status_file: PathBuf,
}

/// `chan-switch run`'s checked settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub node: String,
    pub channels: Vec<ChannelSpec>,
    pub members: Vec<Member>,
    pub policy: Policy,
    pub preferred: Ch,
    pub back: Option<Duration>,
    pub deadtime: Duration,
    pub keepalive: Duration,
    pub hold_down: Duration,
    pub settle: Duration,
    pub fifo: PathBuf,
    pub table: PathBuf,
    pub state: PathBuf,
    pub status_file: PathBuf,
    pub route_table: u32,
    pub rule_priority: u32,
    pub json: bool,
    pub realtime: bool,
    pub config: Option<PathBuf>,
}

impl RunSettings {
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }
    pub fn me(&self) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == self.node)
            .expect("checked: the node is a member")
    }
}

fn section(src: Option<&Source>) -> Result<Section, Error> {
    match src {
        Some(s) => Ok(s.yaml::<FileView>()?.chan_switch.unwrap_or_default()),
        None => Ok(Section::default()),
    }
}

fn node_name(c: &Common, f: &config::File, src: Option<&Source>) -> Result<String, Error> {
    let r = Resolver::new(src, "cluster");
    let node = r.pick(
        "--node",
        c.node.clone(),
        "node",
        f.cluster.node.clone(),
        config::uname_node,
    );
    if !crate::wire::hv::valid_name(&node.value) {
        return Err(r.error(&node.from, format!("`{}` is not a usable node name", node.value)));
    }
    Ok(node.value)
}

/// Resolve what status, to and back need.
pub fn common(c: &Common) -> Result<CommonSettings, Error> {
    let (f, src) = config::load_for(&c.config)?;
    let s = section(src.as_ref())?;
    let node = node_name(c, &f, src.as_ref())?;
    let r = Resolver::new(src.as_ref(), SECTION);
    let status_file = r
        .pick(
            "--status-file",
            c.status_file.clone(),
            "status-file",
            s.status_file,
            || DEFAULT_STATUS.into(),
        )
        .value;
    Ok(CommonSettings { node, status_file })
}

/// `NAME=CLUSTER_ADDR,VIA,VIA...`
fn parse_member(s: &str) -> Result<Member, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=CLUSTER_ADDR,ADDR_ON_CHANNEL..."))?;
    let mut addrs = rest.split(',').map(|a| {
        a.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("`{a}` is not an IP address"))
    });
    let addr = addrs.next().ok_or("no cluster address")??;
    let via = addrs.collect::<Result<Vec<_>, _>>()?;
    Ok(Member {
        name: name.to_string(),
        addr,
        via,
    })
}

/// The duration or `none`.
fn parse_back(s: &str) -> Result<Option<Duration>, String> {
    if s == "none" {
        return Ok(None);
    }
    crate::base::duration::parse(s).map(Some)
}

impl RunSettings {
    pub fn resolve(a: &RunArgs) -> Result<RunSettings, Error> {
        let (f, src) = config::load_for(&a.common.config)?;
        let src = src.as_ref();
        let s = section(src)?;
        let node = node_name(&a.common, &f, src)?;
        let r = Resolver::new(src, SECTION);
        let rc = Resolver::new(src, "cluster");

        // The channels: hb-send's own flags' form, else the cluster section.
        let channels = if !a.channels.is_empty() {
            a.channels
                .iter()
                .map(|c| ChannelSpec::parse(c).map_err(|m| rc.error(&Origin::Flag("--channel"), m)))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            f.cluster
                .channels
                .iter()
                .enumerate()
                .map(|(i, c)| ChannelSpec::from_entry(c).map_err(|m| rc.error(&rc.item_origin("channels", i, ""), m)))
                .collect::<Result<Vec<_>, _>>()?
        };
        if channels.len() < 2 {
            return Err(Error::new(format!(
                "{} channel(s): a switch needs two or more (--channel, or cluster.channels)",
                channels.len()
            )));
        }
        if channels.len() > crate::table::MAX_CHANNELS {
            return Err(Error::new(format!(
                "{} channels; at most {}",
                channels.len(),
                crate::table::MAX_CHANNELS
            )));
        }
        let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();

        // The members.
        let (members, from_flag) = if !a.members.is_empty() {
            let m = a
                .members
                .iter()
                .map(|m| parse_member(m).map_err(|e| r.error(&Origin::Flag("--member"), e)))
                .collect::<Result<Vec<_>, _>>()?;
            (m, true)
        } else {
            let m = s
                .members
                .iter()
                .map(|e| Member {
                    name: e.name.clone(),
                    addr: e.address,
                    via: e.via.clone(),
                })
                .collect();
            (m, false)
        };
        let origin = |i: usize, key: &'static str| {
            if from_flag {
                Origin::Flag("--member")
            } else {
                r.item_origin("members", i, key)
            }
        };
        if members.is_empty() {
            return Err(Error::new(
                "no members: give --member NAME=CLUSTER_ADDR,ADDR_ON_CHANNEL... for every node, or chan-switch.members",
            ));
        }
        for (i, m) in members.iter().enumerate() {
            if !crate::wire::hv::valid_name(&m.name) {
                return Err(r.error(&origin(i, "name"), format!("`{}` is not a usable node name", m.name)));
            }
            if members[..i].iter().any(|o| o.name == m.name) {
                return Err(r.error(&origin(i, "name"), format!("node `{}` is listed twice", m.name)));
            }
            crate::net::addr::check_unicast(m.addr, None)
                .map_err(|e| r.error(&origin(i, "address"), format!("{}: {e}", m.name)))?;
            if let Some(o) = members[..i].iter().find(|o| o.addr == m.addr) {
                return Err(r.error(
                    &origin(i, "address"),
                    format!("{} and {} have the same cluster address {}", o.name, m.name, m.addr),
                ));
            }
            if m.via.len() != channels.len() {
                return Err(r.error(
                    &origin(i, "via"),
                    format!(
                        "{}: {} address(es) for {} channels ({}); give its address on each, in that order",
                        m.name,
                        m.via.len(),
                        channels.len(),
                        names.join(", ")
                    ),
                ));
            }
            for v in &m.via {
                crate::net::addr::check_unicast(*v, None)
                    .map_err(|e| r.error(&origin(i, "via"), format!("{}: {e}", m.name)))?;
                if v.is_ipv4() != m.addr.is_ipv4() {
                    return Err(r.error(
                        &origin(i, "via"),
                        format!(
                            "{}: {v} and the cluster address {} are not of one family",
                            m.name, m.addr
                        ),
                    ));
                }
                if *v == m.addr {
                    return Err(r.error(
                        &origin(i, "via"),
                        format!(
                            "{}: {v} is its cluster address; the cluster address must be on lo, apart from the LANs",
                            m.name
                        ),
                    ));
                }
            }
        }
        if let Some((i, m)) = members
            .iter()
            .enumerate()
            .find(|(_, m)| m.addr.is_ipv4() != members[0].addr.is_ipv4())
        {
            return Err(r.error(
                &origin(i, "address"),
                format!(
                    "{}'s cluster address {} is not of the family of {}'s ({}): one family per cluster",
                    m.name, m.addr, members[0].name, members[0].addr
                ),
            ));
        }
        if !members.iter().any(|m| m.name == node) {
            return Err(r.error(
                &if from_flag {
                    Origin::Flag("--member")
                } else {
                    r.file_origin("members")
                },
                format!("this node, {node}, is not among the members"),
            ));
        }

        let policy_flag = a
            .policy
            .as_deref()
            .map(|p| match p {
                "all" => Ok(Policy::All),
                "per-peer" => Ok(Policy::PerPeer),
                _ => Err(r.error(
                    &Origin::Flag("--policy"),
                    format!("`{p}` is not a policy (all, per-peer)"),
                )),
            })
            .transpose()?;
        let policy = r
            .pick("--policy", policy_flag, "policy", s.policy, || Policy::All)
            .value;

        let preferred = r.pick(
            "--preferred",
            a.preferred.clone(),
            "preferred",
            s.preferred.clone(),
            || names[0].to_string(),
        );
        let Some(preferred_ix) = names.iter().position(|n| *n == preferred.value) else {
            return Err(r.error(
                &preferred.from,
                format!("`{}` is not a channel ({})", preferred.value, names.join(", ")),
            ));
        };

        let back = r.pick("--back", a.back.clone(), "back", s.back.clone(), || "none".into());
        let back_v = parse_back(&back.value).map_err(|e| r.error(&back.from, e))?;

        let rw = Resolver::new(src, "hb-watch");
        let deadtime = rw.pick("--deadtime", a.deadtime, "deadtime", f.hb_watch.deadtime, || {
            Duration::from_secs(30)
        });
        if deadtime.value < Duration::from_millis(1) {
            return Err(rw.error(&deadtime.from, "deadtime must be at least 1ms"));
        }
        let rs = Resolver::new(src, "hb-send");
        let keepalive = rs.pick("--keepalive", a.keepalive, "keepalive", f.hb_send.keepalive, || {
            Duration::from_secs(1)
        });
        if keepalive.value.is_zero() || keepalive.value >= deadtime.value {
            return Err(r.error_among(
                &[&keepalive.from, &deadtime.from],
                format!(
                    "keepalive {} must be shorter than deadtime {}",
                    dur(keepalive.value),
                    dur(deadtime.value)
                ),
            ));
        }
        let least = deadtime.value * 3;
        let hold = r.pick("--hold-down", a.hold_down, "hold-down", s.hold_down, || least);
        if hold.value < least {
            return Err(r.error(
                &hold.from,
                format!(
                    "hold-down {} is less than 3 x deadtime ({}); a shorter one lets a channel flap",
                    dur(hold.value),
                    dur(least)
                ),
            ));
        }
        let settle = r.pick("--settle", a.settle, "settle", s.settle, || keepalive.value / 2);
        if settle.value >= deadtime.value {
            return Err(r.error_among(
                &[&settle.from, &deadtime.from],
                format!(
                    "settle {} must be shorter than deadtime {}",
                    dur(settle.value),
                    dur(deadtime.value)
                ),
            ));
        }
        if let Some(b) = back_v {
            if b < hold.value {
                return Err(r.error(
                    &back.from,
                    format!("back {} is shorter than the hold-down {}", dur(b), dur(hold.value)),
                ));
            }
        }

        let fifo = Resolver::new(src, "hb-send")
            .pick("--fifo", a.fifo.clone(), "fifo", f.hb_send.fifo.clone(), || {
                DEFAULT_FIFO.into()
            })
            .value;
        let table = rc
            .pick("--table", a.table.clone(), "table", f.cluster.table.clone(), || {
                DEFAULT_TABLE.into()
            })
            .value;
        let state = r
            .pick("--state", a.state.clone(), "state", s.state, || DEFAULT_STATE.into())
            .value;
        let status_file = r
            .pick(
                "--status-file",
                a.common.status_file.clone(),
                "status-file",
                s.status_file,
                || DEFAULT_STATUS.into(),
            )
            .value;
        let rt = r.pick("--route-table", a.route_table, "route-table", s.route_table, || {
            DEFAULT_ROUTE_TABLE
        });
        let last = rt.value.checked_add(channels.len() as u32 - 1);
        // 0 is "unspecified"; 253-255 are the kernel's default, main and local tables.
        if rt.value == 0 || last.is_none() || (rt.value <= 255 && last.unwrap_or(0) >= 253) {
            return Err(r.error(
                &rt.from,
                format!(
                    "route tables {}..{} would take 0 or one of the kernel's (253 default, 254 main, 255 local)",
                    rt.value,
                    last.unwrap_or(u32::MAX)
                ),
            ));
        }
        let rp = r.pick(
            "--rule-priority",
            a.rule_priority,
            "rule-priority",
            s.rule_priority,
            || DEFAULT_RULE_PRIORITY,
        );
        if !(1..=32_000).contains(&rp.value) {
            return Err(r.error(
                &rp.from,
                format!(
                    "rule priority {} must be 1..32000 (0 is the local table's rule, 32766 main's)",
                    rp.value
                ),
            ));
        }
        let json = a.json || s.json.unwrap_or(false);
        let realtime = a.realtime || s.realtime.unwrap_or(false);
        Ok(RunSettings {
            node,
            channels,
            members,
            policy,
            preferred: preferred_ix,
            back: back_v,
            deadtime: deadtime.value,
            keepalive: keepalive.value,
            hold_down: hold.value,
            settle: settle.value,
            fifo,
            table,
            state,
            status_file,
            route_table: rt.value,
            rule_priority: rp.value,
            json,
            realtime,
            config: a.common.config.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolve(file: Option<&str>, flags: &[&str]) -> Result<RunSettings, Error> {
        let dir = tempfile::tempdir().unwrap();
        let mut argv: Vec<String> = vec!["chan-switch".into(), "run".into()];
        if let Some(text) = file {
            let path = dir.path().join("h.yaml");
            std::fs::write(&path, text).unwrap();
            argv.extend(["--config".into(), path.display().to_string()]);
        }
        argv.extend(flags.iter().map(|s| s.to_string()));
        let args = crate::tools::chan_switch::cli::ChanSwitchArgs::try_parse_from(&argv).unwrap();
        let crate::tools::chan_switch::cli::Command::Run(a) = args.command else {
            unreachable!()
        };
        RunSettings::resolve(&a)
    }

    const FILE: &str = "cluster:\n  node: n1\n  channels:\n    - {name: a, dev: eth0, mode: bcast}\n    - {name: b, dev: eth1, mode: bcast}\nhb-send:\n  keepalive: 10ms\nhb-watch:\n  deadtime: 30ms\nchan-switch:\n  members:\n    - {name: n1, address: 10.0.100.1, via: [10.0.1.1, 10.0.2.1]}\n    - {name: n2, address: 10.0.100.2, via: [10.0.1.2, 10.0.2.2]}\n";

    #[test]
    fn the_file_and_its_defaults() {
        let s = resolve(Some(FILE), &[]).unwrap();
        assert_eq!(s.channel_names(), ["a", "b"]);
        assert_eq!(s.members.len(), 2);
        assert_eq!(s.policy, Policy::All);
        assert_eq!(s.hold_down, Duration::from_millis(90));
        assert_eq!(s.settle, Duration::from_millis(5));
        assert_eq!(s.back, None);
        assert_eq!(s.me().addr.to_string(), "10.0.100.1");
        let s = resolve(
            Some(FILE),
            &["--policy", "per-peer", "--back", "1s", "--preferred", "b"],
        )
        .unwrap();
        assert_eq!(
            (s.policy, s.back, s.preferred),
            (Policy::PerPeer, Some(Duration::from_secs(1)), 1)
        );
    }

    #[test]
    fn errors_name_the_place() {
        let bad = FILE.replace("via: [10.0.1.2, 10.0.2.2]", "via: [10.0.1.2]");
        let e = resolve(Some(&bad), &[]).unwrap_err().to_string();
        assert!(e.contains(":13:") && e.contains("1 address(es) for 2 channels"), "{e}");
        let bad = FILE.replace("address: 10.0.100.2", "address: 10.0.100.1");
        let e = resolve(Some(&bad), &[]).unwrap_err().to_string();
        assert!(e.contains("same cluster address"), "{e}");
        let bad = FILE.replace(
            "address: 10.0.100.2, via: [10.0.1.2, 10.0.2.2]",
            "address: fd00::2, via: [fd01::2, fd02::2]",
        );
        let e = resolve(Some(&bad), &[]).unwrap_err().to_string();
        assert!(e.contains(":13:") && e.contains("one family per cluster"), "{e}");
        let bad = FILE.replace("address: 10.0.100.2", "address: 224.0.0.1");
        assert!(resolve(Some(&bad), &[]).unwrap_err().to_string().contains("multicast"));
        let e = resolve(Some(FILE), &["--hold-down", "50ms"]).unwrap_err().to_string();
        assert!(e.starts_with("--hold-down: ") && e.contains("3 x deadtime"), "{e}");
        let e = resolve(Some(FILE), &["--policy", "some"]).unwrap_err().to_string();
        assert!(e.starts_with("--policy: "), "{e}");
        let e = resolve(Some(FILE), &["--preferred", "c"]).unwrap_err().to_string();
        assert!(e.contains("`c` is not a channel"), "{e}");
        let e = resolve(Some(FILE), &["--node", "n9"]).unwrap_err().to_string();
        assert!(e.contains("n9, is not among the members"), "{e}");
        let e = resolve(Some(FILE), &["--route-table", "252"]).unwrap_err().to_string();
        assert!(e.contains("kernel's"), "{e}");
        let e = resolve(
            Some(
                &FILE
                    .replace("policy", "x")
                    .replace("members:", "polcy: all\n  members:"),
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("polcy"), "{e}");
        let e = resolve(Some(FILE), &["--member", "n1=10.0.100.1,bad"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--member: "), "{e}");
    }

    #[test]
    fn members_from_flags() {
        let s = resolve(
            None,
            &[
                "--node",
                "n2",
                "--channel",
                "a=bcast:eth0",
                "--channel",
                "b=bcast:eth1",
                "--member",
                "n1=10.0.100.1,10.0.1.1,10.0.2.1",
                "--member",
                "n2=10.0.100.2,10.0.1.2,10.0.2.2",
                "--deadtime",
                "30ms",
                "--keepalive",
                "10ms",
            ],
        )
        .unwrap();
        assert_eq!(s.me().via[1].to_string(), "10.0.2.2");
    }
}
