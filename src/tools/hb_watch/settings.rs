//! hb-watch's settings: its flags, then the file's `hb-watch` and `cluster` sections,
//! then the defaults, checked here and nowhere else.

use crate::config::{self, Cluster, Error, Resolver, DEFAULT_FLOORS, DEFAULT_TABLE};
use crate::events::hooks::NotifyTarget;
use crate::tools::hb_watch::cli::RunArgs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// hb-watch's checked settings.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub cluster: Cluster,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    pub max_nodes: usize,
    pub exec: Option<PathBuf>,
    /// A hook running longer is killed.
    pub hook_timeout: Duration,
    /// Events waiting for the hook at most.
    pub hook_queue: usize,
    pub notify: Vec<NotifyTarget>,
    pub json: bool,
    pub realtime: bool,
    pub config: Option<PathBuf>,
    /// The replay floors, kept across reboots.
    pub floors: PathBuf,
    /// Ping nodes, how often they are pinged, and the silence after which one is dead.
    pub ping: Vec<std::net::IpAddr>,
    pub ping_interval: Duration,
    pub ping_deadtime: Duration,
}

impl WatchSettings {
    pub fn resolve(a: &RunArgs) -> Result<WatchSettings, Error> {
        let d = a.cluster.load()?;
        let cluster = a.cluster.resolve(&d)?;
        let (w, src) = (&d.file.hb_watch, d.src.as_ref());
        let r = Resolver::new(src, "hb-watch");
        let deadtime = r.pick_also(
            "--deadtime",
            a.deadtime,
            "deadtime",
            w.deadtime,
            d.hacf(|h| h.deadtime.as_ref()),
            || Duration::from_secs(30),
        )?;
        if deadtime.value < Duration::from_millis(1) {
            return Err(r.error(&deadtime.from, "deadtime must be at least 1ms"));
        }
        let warntime = r.pick_also(
            "--warntime",
            a.warntime,
            "warntime",
            w.warntime,
            d.hacf(|h| h.warntime.as_ref()),
            || deadtime.value / 2,
        )?;
        if warntime.value > deadtime.value {
            return Err(r.error_among(&[&warntime.from, &deadtime.from], "warntime must not exceed deadtime"));
        }
        let initdead = r.pick_also(
            "--initdead",
            a.initdead,
            "initdead",
            w.initdead,
            d.hacf(|h| h.initdead.as_ref()),
            // Without initdead, ha.cf's cluster starts as Heartbeat would.
            || match d.hacf {
                Some(_) => crate::config::hacf::default_initdead(deadtime.value),
                None => deadtime.value * 2,
            },
        )?;
        if initdead.value < deadtime.value {
            return Err(r.error_among(&[&initdead.from, &deadtime.from], "initdead must be at least deadtime"));
        }
        let max_nodes = r.pick("--max-nodes", a.max_nodes, "max-nodes", w.max_nodes, || 256);
        if !(2..=65_536).contains(&max_nodes.value) || max_nodes.value < cluster.nodes.len() {
            return Err(r.error(
                &max_nodes.from,
                format!(
                    "max-nodes {} must be 2..65536 and hold every listed node",
                    max_nodes.value
                ),
            ));
        }
        let notify = r.pick(
            "--notify",
            (!a.notify.is_empty()).then(|| a.notify.clone()),
            "notify",
            (!w.notify.is_empty()).then(|| w.notify.clone()),
            Vec::new,
        );
        let targets = notify
            .value
            .iter()
            .map(|n| NotifyTarget::parse(n).map_err(|m| r.error(&notify.from, m)))
            .collect::<Result<Vec<_>, _>>()?;
        let exec = r.pick(
            "--exec",
            a.exec.clone().map(Some),
            "exec",
            w.exec.clone().map(Some),
            || None,
        );
        if let Some(e) = &exec.value {
            if !is_executable(e) {
                return Err(r.error(&exec.from, format!("{} is not an executable file", e.display())));
            }
        }
        let hook_timeout = r.pick("--hook-timeout", a.hook_timeout, "hook-timeout", w.hook_timeout, || {
            Duration::from_secs(30)
        });
        if hook_timeout.value < Duration::from_millis(10) {
            return Err(r.error(&hook_timeout.from, "hook-timeout must be at least 10ms"));
        }
        let hook_queue = r.pick("--hook-queue", a.hook_queue, "hook-queue", w.hook_queue, || 1024);
        if !(1..=1_000_000).contains(&hook_queue.value) {
            return Err(r.error(&hook_queue.from, "hook-queue must be 1..1000000"));
        }
        let floors = r.pick("--floors", a.floors.clone(), "floors", w.floors.clone(), || {
            default_floors(&cluster.table)
        });
        let hacf_ping = d
            .hacf_all(|h| &h.ping)
            .map(|(all, from)| (all.iter().map(|p| p.to_string()).collect(), from));
        let ping = r.pick_also(
            "--ping",
            (!a.ping.is_empty()).then(|| a.ping.clone()),
            "ping",
            (!w.ping.is_empty()).then(|| w.ping.clone()),
            hacf_ping,
            Vec::new,
        )?;
        let mut ping_nodes = Vec::new();
        for p in &ping.value {
            let ip: std::net::IpAddr = p
                .parse()
                .map_err(|_| r.error(&ping.from, format!("ping node `{p}` is not an IP address")))?;
            let special =
                ip.is_unspecified() || ip.is_multicast() || matches!(ip, std::net::IpAddr::V4(v) if v.is_broadcast());
            if special {
                return Err(r.error(&ping.from, format!("ping node {ip} is not a unicast address")));
            }
            if ping_nodes.contains(&ip) {
                return Err(r.error(&ping.from, format!("ping node {ip} is listed twice")));
            }
            ping_nodes.push(ip);
        }
        if ping_nodes.len() > 16 {
            return Err(r.error(&ping.from, "at most 16 ping nodes"));
        }
        let ping_interval = r.pick(
            "--ping-interval",
            a.ping_interval,
            "ping-interval",
            w.ping_interval,
            || Duration::from_secs(1),
        );
        if ping_interval.value < Duration::from_millis(10) {
            return Err(r.error(&ping_interval.from, "ping-interval must be at least 10ms"));
        }
        let ping_deadtime = r.pick_also(
            "--ping-deadtime",
            a.ping_deadtime,
            "ping-deadtime",
            w.ping_deadtime,
            d.hacf(|h| h.deadping.as_ref()),
            || ping_interval.value * 3,
        )?;
        if ping_deadtime.value <= ping_interval.value {
            return Err(r.error_among(
                &[&ping_deadtime.from, &ping_interval.from],
                "ping-deadtime must be more than ping-interval",
            ));
        }
        Ok(WatchSettings {
            floors: floors.value,
            ping: ping_nodes,
            ping_interval: ping_interval.value,
            ping_deadtime: ping_deadtime.value,
            cluster,
            deadtime: deadtime.value,
            warntime: warntime.value,
            initdead: initdead.value,
            max_nodes: max_nodes.value,
            exec: exec.value,
            hook_timeout: hook_timeout.value,
            hook_queue: hook_queue.value,
            notify: targets,
            json: a.json || w.json.unwrap_or(false),
            realtime: a.realtime || w.realtime.unwrap_or(false),
            config: src.map(|s| s.path.clone()),
        })
    }
}

/// The default table's floors live on disk; another table's beside it, so that two
/// hb-watch on one host (tests, a demo) never share one.
pub fn default_floors(table: &Path) -> PathBuf {
    if table == Path::new(DEFAULT_TABLE) {
        DEFAULT_FLOORS.into()
    } else {
        let mut p = table.as_os_str().to_owned();
        p.push(".floors");
        p.into()
    }
}

/// The table's and the floors' paths, for `hb-watch forget`.
pub fn forget_paths(
    table: &Option<PathBuf>,
    floors: &Option<PathBuf>,
    config: &Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), Error> {
    let (f, _) = config::load_for(config)?;
    let t = table
        .clone()
        .or(f.cluster.table)
        .unwrap_or_else(|| DEFAULT_TABLE.into());
    let fl = floors
        .clone()
        .or(f.hb_watch.floors)
        .unwrap_or_else(|| default_floors(&t));
    Ok((t, fl))
}

/// Only the table's path, for `hb-watch status`.
pub fn table_path(arg: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(t) = arg {
        return Ok(t.clone());
    }
    let (f, _) = config::load_for(config)?;
    Ok(f.cluster.table.unwrap_or_else(|| DEFAULT_TABLE.into()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::hb_watch::cli::HbWatchArgs;
    use clap::Parser;

    fn resolve(file: Option<&str>, flags: &[&str]) -> Result<WatchSettings, Error> {
        let d = tempfile::tempdir().unwrap();
        let argv = config::test_argv(d.path(), "hb-watch", file, flags);
        WatchSettings::resolve(&HbWatchArgs::try_parse_from(argv).unwrap().run)
    }

    #[test]
    fn errors_name_the_flag_or_the_line() {
        let e = resolve(Some("hb-watch:\n  deadtime: 2s\n"), &["--warntime", "3s"]).unwrap_err();
        assert_eq!(e.to_string(), "--warntime: warntime must not exceed deadtime");
        let e = resolve(Some("hb-watch:\n  deadtime: 2s\n  warntime: 3s\n"), &[]).unwrap_err();
        assert!(
            e.to_string().ends_with("h.yaml:3:3: warntime must not exceed deadtime"),
            "{e}"
        );
        let e = resolve(Some("cluster:\n  port: 0\n"), &[]).unwrap_err();
        assert!(e.to_string().ends_with("h.yaml:2:3: port 0 is not a port"), "{e}");
        let e = resolve(Some("cluster:\n  port: 0\n"), &["--port", "0"]).unwrap_err();
        assert_eq!(e.to_string(), "--port: port 0 is not a port");
        let e = resolve(None, &["--hook-queue", "0"]).unwrap_err();
        assert_eq!(e.to_string(), "--hook-queue: hook-queue must be 1..1000000");
    }

    /// With ha.cf and no initdead, Heartbeat's default; without ha.cf, 2 × deadtime.
    #[test]
    fn initdead_defaults() {
        let d = tempfile::tempdir().unwrap();
        let cf = d.path().join("ha.cf");
        let cf_s = cf.display().to_string();
        for (text, want) in [("deadtime 2\n", 12), ("deadtime 8\n", 16), ("deadtime 20\n", 20)] {
            std::fs::write(&cf, format!("bcast eth0\nnode n1\n{text}")).unwrap();
            let s = resolve(None, &["--ha-cf", &cf_s]).unwrap();
            assert_eq!(s.initdead, Duration::from_secs(want), "{text}");
        }
        let s = resolve(None, &["--deadtime", "2s"]).unwrap();
        assert_eq!(s.initdead, Duration::from_secs(4));
    }
}
