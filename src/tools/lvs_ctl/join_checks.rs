//! The directors' checks of joiners. A service's `check: GROUP/SERVICE` names a
//! mon-check service whose hosts are fixed in mon-check's configuration, so a joiner
//! is not among them: `follow` runs that service's monitor itself against the joiner's
//! address, with mon-check's own code (sched::scheduler::execute, as the scheduler runs
//! it for one host), each in a thread of its own so that the loop never waits for a
//! check; a result wakes the loop through a pipe.

use super::config::Config;
use super::health::RealId;
use super::join::{Due, Every};
use crate::config::Error;
use crate::tools::mon_check::check::many::Limit;
use crate::tools::mon_check::check::Status;
use crate::tools::mon_check::sched::{config as mon, scheduler};
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

/// What a check said of a joiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub id: RealId,
    pub ok: bool,
    pub status: String,
    pub line: String,
}

/// mon-check's services that joinable services name, and the threads running them.
pub struct Checks {
    mon: Option<Arc<mon::Config>>,
    services: HashMap<String, Arc<mon::Service>>,
    limit: Arc<Limit>,
    tx: Sender<CheckResult>,
    rx: Receiver<CheckResult>,
    wake_rd: OwnedFd,
    wake_wr: Arc<OwnedFd>,
}

/// mon-check's section of `path`, if a service of `cfg` may be joined (else none is
/// needed); every such service's check must be one of its services.
pub fn load(path: &Path, cfg: &Config) -> Result<Option<mon::Config>, Error> {
    let joinable: Vec<&str> = cfg
        .services
        .iter()
        .filter(|v| v.join.is_some())
        .filter_map(|v| v.check.as_deref())
        .collect();
    if joinable.is_empty() {
        return Ok(None);
    }
    let src = crate::config::Source::read(path)?;
    let m = mon::from_source(&src, &None, &None)?;
    for c in joinable {
        let found = c.split_once('/').and_then(|(g, s)| m.service(g, s)).is_some();
        if !found {
            return Err(Error {
                file: Some(path.to_path_buf()),
                pos: src.position_in(super::config::SECTION, |l| l.find(&format!("check: {c}"))),
                msg: format!("check `{c}' of a joinable service is no service of mon-check's section; joiners could never be checked"),
            });
        }
    }
    Ok(Some(m))
}

impl Checks {
    pub fn new(m: Option<mon::Config>) -> std::io::Result<Checks> {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        let (tx, rx) = mpsc::channel();
        let mut c = Checks {
            mon: None,
            services: HashMap::new(),
            limit: Limit::new(64),
            tx,
            rx,
            wake_rd: rd,
            wake_wr: Arc::new(wr),
        };
        c.set(m);
        Ok(c)
    }

    /// A new mon-check configuration (a reload).
    pub fn set(&mut self, m: Option<mon::Config>) {
        self.services.clear();
        if let Some(m) = &m {
            for s in &m.services {
                self.services.insert(s.key.clone(), Arc::new(s.clone()));
            }
            self.limit = Limit::new(m.max_parallel.min(64));
        }
        self.mon = m.map(Arc::new);
    }

    /// How often `check` runs (None: not a service of mon-check's).
    pub fn every(&self, check: &str) -> Option<Every> {
        self.services.get(check).map(|s| Every {
            ok: s.interval,
            failing: s.failure_interval.unwrap_or(s.interval),
        })
    }

    /// Start one check; its result comes through [`Checks::results`]. A check that is
    /// no service (a reload removed it) fails at once, saying so.
    pub fn start(&self, d: Due) {
        let (Some(svc), Some(mon)) = (self.services.get(&d.check).cloned(), self.mon.clone()) else {
            let _ = self.tx.send(CheckResult {
                id: d.id,
                ok: false,
                status: Status::Unknown.name().into(),
                line: format!("`{}' is no service of mon-check's section", d.check),
            });
            self.wake();
            return;
        };
        let tx = self.tx.clone();
        let wake = self.wake_wr.clone();
        let limit = self.limit.clone();
        let spawned = std::thread::Builder::new().name("join-check".into()).spawn(move || {
            let env = scheduler::monitor_env(&svc, None, &mon);
            let r = scheduler::execute(&svc, std::slice::from_ref(&d.host), &env, limit);
            let res = match r.hosts.iter().find(|(h, _)| *h == d.host) {
                Some((_, x)) => CheckResult {
                    id: d.id,
                    ok: x.status == Status::Ok,
                    status: x.status.name().into(),
                    line: x.line.clone(),
                },
                None => CheckResult {
                    id: d.id,
                    ok: !r.failed,
                    status: r.status.name().into(),
                    line: r.summary.clone(),
                },
            };
            let _ = tx.send(res);
            let _ = nix::unistd::write(&*wake, b"x");
        });
        if let Err(e) = spawned {
            let _ = self.tx.send(CheckResult {
                id: d.id,
                ok: false,
                status: Status::Unknown.name().into(),
                line: format!("the check could not start: {e}"),
            });
            self.wake();
        }
    }

    fn wake(&self) {
        let _ = nix::unistd::write(&*self.wake_wr, b"x");
    }

    /// What the loop polls: readable when a result is waiting.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake_rd.as_fd()
    }

    /// The results that came.
    pub fn results(&self) -> Vec<CheckResult> {
        let mut b = [0u8; 256];
        while matches!(nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.wake_rd), &mut b), Ok(n) if n > 0) {}
        self.rx.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "lvs-ctl:
  services:
    - service: tcp 192.0.2.10:80
      check: web/tcp
      join: {allow: ['*']}
mon-check:
  hostgroups:
    web: [127.0.0.1]
  watches:
    web:
      tcp:
        interval: 2s
        failure-interval: 500ms
        monitor: tcp -p PORT -t 1
";

    #[test]
    fn a_joinable_service_s_check_runs_in_a_thread_with_mon_check_s_code() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hakit.yaml");
        std::fs::write(&p, CFG.replace("PORT", &port.to_string())).unwrap();
        let cfg = crate::tools::lvs_ctl::config::load(&p).unwrap();
        let m = load(&p, &cfg).unwrap();
        assert!(m.is_some());
        let c = Checks::new(m).unwrap();
        assert_eq!(
            c.every("web/tcp"),
            Some(Every {
                ok: std::time::Duration::from_secs(2),
                failing: std::time::Duration::from_millis(500)
            })
        );
        let id = RealId {
            service: cfg.services[0].service.key,
            real: "127.0.0.1:80".parse().unwrap(),
        };
        let due = |host: &str| Due {
            id,
            host: host.into(),
            check: "web/tcp".into(),
        };
        let wait = |c: &Checks| {
            let mut fds = [nix::poll::PollFd::new(c.fd(), nix::poll::PollFlags::POLLIN)];
            assert_eq!(
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap(),
                1
            );
            c.results()
        };
        c.start(due("127.0.0.1"));
        let r = wait(&c);
        assert!(r[0].ok && r[0].status == "OK", "{r:?}");
        drop(listener);
        c.start(due("127.0.0.1"));
        let r = wait(&c);
        assert!(!r[0].ok && r[0].status == "CRITICAL", "{r:?}");
        let mut bad = due("127.0.0.1");
        bad.check = "web/none".into();
        c.start(bad);
        let r = wait(&c);
        assert!(!r[0].ok && r[0].line.contains("no service"), "{r:?}");

        // A joinable service whose check mon-check does not have is a configuration error.
        std::fs::write(
            &p,
            CFG.replace("PORT", "80").replace("check: web/tcp", "check: web/http"),
        )
        .unwrap();
        let cfg = crate::tools::lvs_ctl::config::load(&p).unwrap();
        let e = load(&p, &cfg).unwrap_err().to_string();
        assert!(e.contains("check `web/http'") && e.contains(":4:"), "{e}");
    }
}
