//! `apply` and `diff`: the configuration as the desired state. The difference to what
//! the kernel holds is computed on the model ([`Table::diff`]), so an unchanged real
//! server is never touched (its connections stay), applying twice changes nothing, and a
//! table that drifted (a hand-made `ipvsadm -d`, a service someone added) is repaired.
//! The changes go to the backend as one commit: one nftables transaction, or one IPVS
//! batch rolled back if the kernel refuses any of it.

use super::backend::{Backend, Kind};
use super::config::Config;
use super::format;
use super::health::{self, Health};
use super::model::{Change, ServiceKey, Table};
use super::run::Error;
use std::io::Write;

/// The table `cfg` asks for given what a live follower knows of the real servers'
/// health (an empty [`Health`] when none runs: every real server in), on top of
/// `current`'s info. The same function `follow` uses, so the two never disagree.
pub fn desired(cfg: &Config, current: &Table, health: &Health) -> Table {
    let (mut t, _) = health::desired(cfg, health, health::Stamp::now());
    t.info = current.info;
    t
}

/// `--only`: `want`'s services, and every other service of `current` as it is, so that
/// the difference touches only the services the file names.
pub fn only(current: &Table, mut want: Table) -> Table {
    let others: Vec<_> = current
        .services
        .iter()
        .filter(|s| !want.services.iter().any(|w| w.key == s.key))
        .cloned()
        .collect();
    want.services.extend(others);
    want
}

/// `remove`: `current` without the services `keys` name.
pub fn without(current: &Table, keys: &[ServiceKey]) -> Table {
    let mut t = current.clone();
    t.services.retain(|s| !keys.contains(&s.key));
    t
}

/// The changes that make the kernel what `want` says; a scheduler or forwarding method
/// the backend cannot do is refused (exit 2) before anything is sent.
pub fn plan(b: &dyn Backend, current: &Table, want: &Table) -> Result<Vec<Change>, Error> {
    let changes = current.diff(want);
    for c in &changes {
        b.check(c)
            .map_err(|e| Error::Usage(format!("{}: {e}", format::change_line(c).trim_end())))?;
    }
    Ok(changes)
}

/// `present`: how many of the services named the table has, of how many (`diff --only
/// --json`: none there is a stopped resource, some a failed one).
fn print(
    out: &mut dyn Write,
    changes: &[Change],
    json: bool,
    backend: Kind,
    present: Option<(usize, usize)>,
) -> Result<(), Error> {
    let text = if json {
        let mut v = serde_json::json!({
            "backend": backend.name(),
            "changes": changes.iter().map(|c| format::change_line(c).trim_end().to_string()).collect::<Vec<_>>(),
        });
        if let Some((n, of)) = present {
            v["present"] = n.into();
            v["named"] = of.into();
        }
        v.to_string() + "\n"
    } else {
        changes.iter().map(format::change_line).collect()
    };
    crate::base::signals::write_answer(out, text.as_bytes()).map_err(Error::Refused)
}

/// `diff`: print the changes (with `named`, how many of those services the table
/// has); Ok(true) when there are none.
pub fn diff(
    b: &mut dyn Backend,
    want: impl FnOnce(&Table) -> Table,
    json: bool,
    named: Option<&[ServiceKey]>,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let current = b.read()?;
    let changes = plan(b, &current, &want(&current))?;
    let present = named.map(|k| {
        let n = k
            .iter()
            .filter(|k| current.services.iter().any(|s| s.key == **k))
            .count();
        (n, k.len())
    });
    print(out, &changes, json, b.kind(), present)?;
    Ok(changes.is_empty())
}

/// `apply`: commit the changes, and print them as `diff` does.
pub fn apply(
    b: &mut dyn Backend,
    want: impl FnOnce(&Table) -> Table,
    json: bool,
    out: &mut dyn Write,
) -> Result<usize, Error> {
    let current = b.read()?;
    let changes = plan(b, &current, &want(&current))?;
    if !changes.is_empty() {
        b.commit(&current, &changes)?;
    }
    print(out, &changes, json, b.kind(), None)?;
    Ok(changes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use crate::tools::lvs_ctl::config::from_source;
    use crate::tools::lvs_ctl::run;
    use crate::tools::lvs_ctl::run::tests::Memory;

    fn cfg(text: &str) -> Config {
        from_source(&Source {
            path: "t.yaml".into(),
            text: text.into(),
        })
        .unwrap()
    }

    const CFG: &str = "lvs-ctl:
  services:
    - service: tcp 10.0.0.1:80
      scheduler: rr
      forward: masq
      reals:
        - { address: 10.0.0.2:80, weight: 1 }
        - { address: 10.0.0.3:80, weight: 2 }
";

    /// Whether `diff` (the whole table) finds nothing to change.
    fn same(b: &mut Memory, c: &Config) -> bool {
        diff(b, |t| desired(c, t, &Health::default()), false, None, &mut Vec::new()).unwrap()
    }

    /// A service the file does not name.
    fn udp53() -> crate::tools::lvs_ctl::model::Service {
        crate::tools::lvs_ctl::model::Service {
            scheduler: "rr".into(),
            ..crate::tools::lvs_ctl::model::Service::new(
                crate::tools::lvs_ctl::config::parse_key("udp 10.0.0.1:53").unwrap(),
            )
        }
    }

    #[test]
    fn apply_twice_changes_nothing_and_drift_is_repaired() {
        let c = cfg(CFG);
        let mut b = Memory::new();
        let mut out = Vec::new();
        assert_eq!(
            apply(&mut b, |t| desired(&c, t, &Health::default()), false, &mut out).unwrap(),
            3
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 2\n"
        );
        assert_eq!(
            apply(&mut b, |t| desired(&c, t, &Health::default()), false, &mut Vec::new()).unwrap(),
            0
        );
        assert!(same(&mut b, &c));
        // Someone edits the kernel's table by hand.
        run::change(
            &mut b,
            &[
                Change::DelDest(c.services[0].service.key, "10.0.0.2".parse().unwrap(), 80),
                Change::AddService(udp53()),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(!diff(&mut b, |t| desired(&c, t, &Health::default()), false, None, &mut out).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-D -u 10.0.0.1:53\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n"
        );
        assert_eq!(
            apply(&mut b, |t| desired(&c, t, &Health::default()), false, &mut Vec::new()).unwrap(),
            2
        );
        assert!(same(&mut b, &c));
    }

    #[test]
    fn only_touches_the_files_services_and_remove_takes_only_them_out() {
        let c = cfg(CFG);
        let mut b = Memory::new();
        let theirs = udp53();
        run::change(&mut b, &[Change::AddService(theirs.clone())]).unwrap();
        let keys: Vec<_> = c.services.iter().map(|v| v.service.key).collect();
        let want = |t: &Table| only(t, desired(&c, t, &Health::default()));
        let present = |b: &mut Memory| {
            let mut out = Vec::new();
            let same = diff(b, want, true, Some(&keys), &mut out).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            (same, v["present"].as_u64().unwrap(), v["named"].as_u64().unwrap())
        };
        assert_eq!(present(&mut b), (false, 0, 1), "none there");
        assert_eq!(apply(&mut b, want, false, &mut Vec::new()).unwrap(), 3);
        assert_eq!(b.table.services.len(), 2, "the other service stays");
        assert_eq!(present(&mut b), (true, 1, 1));
        // Without --only the other service is a difference (apply would remove it).
        assert!(!diff(
            &mut b,
            |t| desired(&c, t, &Health::default()),
            false,
            None,
            &mut Vec::new()
        )
        .unwrap());
        run::change(&mut b, &[Change::DelDest(keys[0], "10.0.0.2".parse().unwrap(), 80)]).unwrap();
        assert_eq!(present(&mut b), (false, 1, 1), "part there");
        let mut out = Vec::new();
        apply(&mut b, |t| without(t, &keys), false, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "-D -t 10.0.0.1:80\n");
        assert_eq!(b.table.services, vec![theirs]);
        assert_eq!(apply(&mut b, |t| without(t, &keys), false, &mut Vec::new()).unwrap(), 0);
    }

    #[test]
    fn a_change_the_backend_cannot_make_changes_nothing() {
        let c = cfg(&CFG.replace("scheduler: rr", "scheduler: wlc"));
        let mut b = Memory::new();
        let e = apply(&mut b, |t| desired(&c, t, &Health::default()), false, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("cannot do wlc"), "{e}");
        assert!(b.table.services.is_empty());
        b.fail_at = Some(1);
        let c = cfg(CFG);
        assert!(apply(&mut b, |t| desired(&c, t, &Health::default()), false, &mut Vec::new()).is_err());
        assert!(b.table.services.is_empty(), "a failed batch leaves nothing");
    }
}
