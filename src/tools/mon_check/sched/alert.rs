//! When to alert: mon's rules, as a pure function of a service's configuration, its
//! saved state and the time, so that every rule is tested without waiting for it.
//!
//! mon's order of suppression, for a failure: the service (or its watch) is disabled;
//! a dependency is failing; the failure is acknowledged; the time is outside the
//! period; `alertevery` (an unchanged summary within T; a changed one alerts at once);
//! `alertafter` and `numalerts`. An up alert goes out only after a down alert in the
//! same period (or always, with `no_comp_alerts`).

use super::config::{AlertAfter, Service};
use super::period::Tm;
use super::state::{PeriodState, ServiceState};

/// Which kind of alert, as mon names it in MON_ALERTTYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failure,
    Up,
    Startup,
    Test,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Failure => "failure",
            Kind::Up => "up",
            Kind::Startup => "startup",
            Kind::Test => "test",
        }
    }
}

/// What surrounds one result.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: i64,
    pub tm: Tm,
    /// The service or its watch is disabled.
    pub disabled: bool,
    /// Its dependencies hold.
    pub deps_ok: bool,
}

/// Fold one monitor result into the state and return the alerts due, as (period
/// index, kind).
pub fn on_result(svc: &Service, st: &mut ServiceState, failed: bool, summary: &str, cx: Context) -> Vec<(usize, Kind)> {
    st.periods.resize(svc.periods.len(), PeriodState::default());
    st.untested = false;
    st.last_check = Some(cx.now);
    let mut due = Vec::new();
    if failed {
        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
        st.failure_times.push(cx.now);
        if st.failure_times.len() > 64 {
            st.failure_times.remove(0);
        }
        if !st.failing {
            st.failing = true;
            st.first_failure = Some(cx.now);
        }
        st.last_failure = Some(cx.now);
        if cx.disabled || !cx.deps_ok || st.ack.is_some() {
            return due;
        }
        for (i, p) in svc.periods.iter().enumerate() {
            if p.alert.is_empty() || !p.when.contains(&cx.tm) {
                continue;
            }
            let ps = &mut st.periods[i];
            if let (Some(every), Some(last)) = (p.alertevery, ps.last_alert) {
                if cx.now - last < every.as_secs() as i64 && ps.last_summary.as_deref() == Some(summary) {
                    continue;
                }
            }
            let after_ok = match p.alertafter {
                None => true,
                Some(AlertAfter::Count(n)) => st.consecutive_failures >= n,
                Some(AlertAfter::CountWithin(n, t)) => {
                    let since = cx.now - t.as_secs() as i64;
                    st.failure_times.iter().filter(|&&x| x >= since).count() as u32 >= n
                }
                Some(AlertAfter::For(t)) => cx.now - st.first_failure.unwrap_or(cx.now) >= t.as_secs() as i64,
            };
            if !after_ok {
                continue;
            }
            if p.numalerts.is_some_and(|n| ps.alerts >= n) {
                continue;
            }
            ps.last_alert = Some(cx.now);
            ps.last_summary = Some(summary.to_string());
            ps.alerts += 1;
            ps.down_alerted = true;
            due.push((i, Kind::Failure));
        }
    } else {
        let was_failing = st.failing;
        st.failing = false;
        st.consecutive_failures = 0;
        st.failure_times.clear();
        st.first_failure = None;
        st.last_success = Some(cx.now);
        // mon forgets an acknowledgement when the service recovers.
        st.ack = None;
        if was_failing && !cx.disabled {
            for (i, p) in svc.periods.iter().enumerate() {
                let ps = &st.periods[i];
                if !p.upalert.is_empty() && p.when.contains(&cx.tm) && (ps.down_alerted || p.no_comp_alerts) {
                    due.push((i, Kind::Up));
                }
            }
        }
        for ps in &mut st.periods {
            *ps = PeriodState::default();
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::mon_check::sched::config::parse_monitor;
    use crate::tools::mon_check::sched::config::{DepBehavior, Monitor, PeriodCfg};
    use crate::tools::mon_check::sched::period::Period;
    use std::time::Duration;

    fn svc(p: PeriodCfg) -> Service {
        let m = parse_monitor("tcp -p 1").unwrap();
        Service {
            key: "g/s".into(),
            group: "g".into(),
            name: "s".into(),
            description: String::new(),
            interval: Duration::from_secs(60),
            failure_interval: None,
            randskew: Duration::ZERO,
            timeout: Duration::from_secs(5),
            monitor: Monitor::BuiltIn(m.built_in.unwrap()),
            monitor_text: "tcp -p 1".into(),
            exclude_hosts: vec![],
            exclude_period: None,
            depend: None,
            dep_behavior: DepBehavior::Alerts,
            periods: vec![p],
        }
    }

    fn period() -> PeriodCfg {
        PeriodCfg {
            when: Period::always(),
            alert: vec![vec!["a".into()]],
            upalert: vec![vec!["u".into()]],
            startupalert: vec![],
            alertevery: None,
            alertafter: None,
            numalerts: None,
            no_comp_alerts: false,
        }
    }

    fn cx(now: i64) -> Context {
        Context {
            now,
            tm: Tm::local(now),
            disabled: false,
            deps_ok: true,
        }
    }

    /// Feed results (true = failed) one a minute; return the kinds alerted at each.
    fn run(s: &Service, results: &[(bool, &str)]) -> Vec<Vec<Kind>> {
        let mut st = ServiceState::default();
        results
            .iter()
            .enumerate()
            .map(|(i, (f, sum))| {
                on_result(s, &mut st, *f, sum, cx(1_000_000 + 60 * i as i64))
                    .into_iter()
                    .map(|x| x.1)
                    .collect()
            })
            .collect()
    }

    use Kind::{Failure as F, Up as U};

    #[test]
    fn every_failure_alerts_without_alertevery() {
        let s = svc(period());
        assert_eq!(
            run(&s, &[(true, "h"), (true, "h"), (false, "")]),
            vec![vec![F], vec![F], vec![U]]
        );
    }

    #[test]
    fn alertevery_holds_an_unchanged_summary_but_not_a_changed_one() {
        let mut p = period();
        p.alertevery = Some(Duration::from_secs(150));
        let s = svc(p);
        let r = run(
            &s,
            &[
                (true, "h1"),
                (true, "h1"),
                (true, "h1"),
                (true, "h1 h2"),
                (true, "h1 h2"),
            ],
        );
        assert_eq!(r, vec![vec![F], vec![], vec![], vec![F], vec![]]);
        // 150 s after the last alert, the same summary alerts again
        let r = run(&s, &[(true, "h"), (true, "h"), (true, "h"), (true, "h")]);
        assert_eq!(r, vec![vec![F], vec![], vec![], vec![F]]);
    }

    #[test]
    fn alertafter_and_numalerts() {
        let mut p = period();
        p.alertafter = Some(AlertAfter::Count(3));
        p.numalerts = Some(2);
        let s = svc(p);
        let r = run(
            &s,
            &[(true, ""), (true, ""), (true, ""), (true, ""), (true, ""), (false, "")],
        );
        assert_eq!(r, vec![vec![], vec![], vec![F], vec![F], vec![], vec![U]]);
        let mut p = period();
        p.alertafter = Some(AlertAfter::For(Duration::from_secs(120)));
        let r = run(&svc(p), &[(true, ""), (true, ""), (true, "")]);
        assert_eq!(r, vec![vec![], vec![], vec![F]]);
    }

    #[test]
    fn upalert_only_after_a_down_alert() {
        let mut p = period();
        p.alertafter = Some(AlertAfter::Count(3));
        let s = svc(p.clone());
        assert_eq!(run(&s, &[(true, ""), (false, "")]), vec![vec![], vec![]]);
        p.no_comp_alerts = true;
        assert_eq!(run(&svc(p), &[(true, ""), (false, "")]), vec![vec![], vec![U]]);
    }

    #[test]
    fn disabled_dependencies_ack_and_period_suppress_in_order() {
        let s = svc(period());
        let mut st = ServiceState::default();
        let mut c = cx(1_000_000);
        c.disabled = true;
        assert!(on_result(&s, &mut st, true, "", c).is_empty());
        c.disabled = false;
        c.deps_ok = false;
        assert!(on_result(&s, &mut st, true, "", c).is_empty());
        c.deps_ok = true;
        st.ack = Some(crate::tools::mon_check::sched::state::Ack {
            at: 0,
            comment: "known".into(),
        });
        assert!(on_result(&s, &mut st, true, "", c).is_empty());
        // the ack is forgotten on recovery; no down alert went out, so no up alert
        assert!(on_result(&s, &mut st, false, "", c).is_empty());
        assert!(st.ack.is_none());
        let mut p = period();
        p.when = Period::parse("none").unwrap();
        assert_eq!(run(&svc(p), &[(true, "")]), vec![vec![]]);
    }
}
