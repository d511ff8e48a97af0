//! hb-send's settings: its flags, then the file's `hb-send` and `cluster` sections,
//! then the defaults, checked here and nowhere else.

use crate::base::duration::format as dur;
use crate::config::{Cluster, Error, Resolver, DEFAULT_FIFO, DEFAULT_GENERATION};
use crate::tools::hb_send::cli::HbSendArgs;
use std::path::PathBuf;
use std::time::Duration;

/// hb-send's checked settings.
#[derive(Debug, Clone)]
pub struct SendSettings {
    pub cluster: Cluster,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub redundancy: u32,
    pub fifo: Option<PathBuf>,
    /// The group that may write to the FIFO too (its gid).
    pub fifo_group: Option<u32>,
    pub generation_file: PathBuf,
    pub status: String,
    pub realtime: bool,
    pub count: Option<u64>,
    pub config: Option<PathBuf>,
}

impl SendSettings {
    pub fn resolve(a: &HbSendArgs) -> Result<SendSettings, Error> {
        let d = a.cluster.load()?;
        let cluster = a.cluster.resolve(&d)?;
        let (s, src) = (&d.file.hb_send, d.src.as_ref());
        let r = Resolver::new(src, "hb-send");
        let keepalive = r.pick_also(
            "--keepalive",
            a.keepalive,
            "keepalive",
            s.keepalive,
            d.hacf(|h| h.keepalive.as_ref()),
            || Duration::from_secs(1),
        )?;
        let deadtime = r.pick_also(
            "--deadtime",
            a.deadtime,
            "deadtime",
            s.deadtime,
            d.hacf(|h| h.deadtime.as_ref()),
            || Duration::from_secs(30),
        )?;
        if keepalive.value < Duration::from_micros(500) {
            return Err(r.error(
                &keepalive.from,
                format!("keepalive {} is below the 500us floor", dur(keepalive.value)),
            ));
        }
        let redundancy = r.pick("--redundancy", a.redundancy, "redundancy", s.redundancy, || 0);
        if redundancy.value > 9 {
            return Err(r.error(
                &redundancy.from,
                format!("redundancy {} is more than 9", redundancy.value),
            ));
        }
        // A deadtime of two keepalives dies of one lost heartbeat, unless every
        // heartbeat travels more than once (--redundancy): then a whole round must be
        // lost, which is what makes the shortest deadtimes safe (BENCHMARKS.md).
        let too_short = if redundancy.value > 0 {
            deadtime.value < keepalive.value * 2
        } else {
            deadtime.value <= keepalive.value * 2
        };
        if too_short {
            return Err(r.error_among(
                &[&deadtime.from, &keepalive.from],
                if redundancy.value > 0 {
                    format!(
                        "deadtime {} must be at least twice keepalive {}",
                        dur(deadtime.value),
                        dur(keepalive.value)
                    )
                } else {
                    format!(
                        "deadtime {} must be more than twice keepalive {} (or twice, with --redundancy)",
                        dur(deadtime.value),
                        dur(keepalive.value)
                    )
                },
            ));
        }
        let status = r.pick("--status", a.status.clone(), "status", s.status.clone(), || {
            "active".into()
        });
        if !valid_status(&status.value) {
            return Err(r.error(&status.from, format!("`{}` is not a status word", status.value)));
        }
        if status.value == "dead" {
            // Every heartbeat would say "stopping": peers would flap dead/up each one.
            return Err(r.error(
                &status.from,
                "`dead` is what hb-send announces when it stops; a node that should not serve is `standby`",
            ));
        }
        let group = r.pick(
            "--fifo-group",
            a.fifo_group.clone(),
            "fifo-group",
            s.fifo_group.clone(),
            String::new,
        );
        let fifo_group = if group.value.is_empty() {
            None
        } else {
            Some(gid_of(&group.value).map_err(|m| r.error(&group.from, m))?)
        };
        let fifo = r.pick("--fifo", a.fifo.clone(), "fifo", s.fifo.clone(), || DEFAULT_FIFO.into());
        let generation_file = r.pick(
            "--generation-file",
            a.generation_file.clone(),
            "generation-file",
            s.generation_file.clone(),
            || DEFAULT_GENERATION.into(),
        );
        Ok(SendSettings {
            cluster,
            keepalive: keepalive.value,
            deadtime: deadtime.value,
            redundancy: redundancy.value,
            fifo: (!a.no_fifo).then_some(fifo.value),
            fifo_group,
            generation_file: generation_file.value,
            status: status.value,
            realtime: a.realtime || s.realtime.unwrap_or(false),
            count: a.count,
            config: src.map(|s| s.path.clone()),
        })
    }
}

/// A status word, as `st` carries it.
pub fn valid_status(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= crate::table::STATUS_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A group by name or number.
fn gid_of(name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(format!("no group `{name}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use clap::Parser;

    fn resolve(file: Option<&str>, flags: &[&str]) -> Result<SendSettings, Error> {
        let d = tempfile::tempdir().unwrap();
        let argv = config::test_argv(d.path(), "hb-send", file, flags);
        SendSettings::resolve(&HbSendArgs::try_parse_from(argv).unwrap())
    }

    #[test]
    fn a_bad_flag_is_blamed_on_the_flag_even_with_a_file() {
        let e = resolve(Some("hb-send:\n  deadtime: 10s\n"), &["--keepalive", "100us"]).unwrap_err();
        assert_eq!(e.to_string(), "--keepalive: keepalive 100us is below the 500us floor");
    }

    #[test]
    fn a_bad_key_is_blamed_on_its_line() {
        let e = resolve(Some("hb-send:\n  deadtime: 10s\n  keepalive: 100us\n"), &[]).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("h.yaml:3:3: keepalive 100us is below the 500us floor"),
            "{e}"
        );
    }

    #[test]
    fn a_relation_is_blamed_on_who_set_it() {
        // deadtime is the default (30s): the keepalive flag is to blame.
        let e = resolve(None, &["--keepalive", "20s"]).unwrap_err();
        assert!(e.to_string().starts_with("--keepalive: deadtime 30s"), "{e}");
        let e = resolve(Some("hb-send:\n  deadtime: 1s\n"), &["--keepalive", "1s"]).unwrap_err();
        assert!(e.to_string().contains("h.yaml:2:3: deadtime 1s"), "{e}");
    }

    #[test]
    fn ha_cf_timings_and_their_errors_name_its_lines() {
        let d = tempfile::tempdir().unwrap();
        let cf = d.path().join("ha.cf");
        let empty = d.path().join("e.yaml");
        std::fs::write(&empty, "").unwrap();
        let run = |text: &str, flags: &[&str]| {
            std::fs::write(&cf, text).unwrap();
            let mut argv = vec![
                "hb-send",
                "--ha-cf",
                cf.to_str().unwrap(),
                "--node",
                "n1",
                "-c",
                empty.to_str().unwrap(),
            ];
            argv.extend(flags);
            SendSettings::resolve(&HbSendArgs::try_parse_from(argv).unwrap())
        };
        let s = run(
            "keepalive 200ms
deadtime 2
bcast eth0
",
            &[],
        )
        .unwrap();
        assert_eq!(
            (s.keepalive, s.deadtime),
            (Duration::from_millis(200), Duration::from_secs(2))
        );
        assert_eq!(
            run(
                "keepalive 200ms
deadtime 2
bcast eth0
",
                &["--keepalive", "500ms"]
            )
            .unwrap()
            .keepalive,
            Duration::from_millis(500)
        );
        // Heartbeat's own rule, blamed on ha.cf's deadtime line.
        let e = run(
            "keepalive 1
deadtime 2
bcast eth0
",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("ha.cf:2:10: deadtime 2s must be more than twice keepalive 1s (or twice, with --redundancy)"),
            "{e}"
        );
    }

    #[test]
    fn fifo_group_by_name_or_number() {
        assert_eq!(resolve(None, &["--fifo-group", "0"]).unwrap().fifo_group, Some(0));
        assert_eq!(resolve(None, &["--fifo-group", "root"]).unwrap().fifo_group, Some(0));
        let e = resolve(None, &["--fifo-group", "no-such-group-here"]).unwrap_err();
        assert_eq!(e.to_string(), "--fifo-group: no group `no-such-group-here`");
    }
}
