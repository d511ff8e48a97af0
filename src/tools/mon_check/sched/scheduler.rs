//! The scheduler: mon's model — services run on their interval (with skew), every
//! check in parallel and bounded by its timeout, alerts run without holding up the
//! schedule, state saved so that a restart forgets nothing — in one thread that only
//! decides, and waits on one channel fed by the checks, the alerts, the control
//! socket and the signals. Between rounds it sleeps until the next service is due.

use super::alert::{self, Context, Kind};
use super::config::{self, find_program, Config, DepBehavior, Monitor, Service};
use super::ctl::{self, Kind as CtlKind, Reply, Request};
use super::period::Tm;
use super::state::{self, Ack, Disable, HostResult, ServiceState, State};
use crate::events::{Event, Kind as EventKind, Sink};
use crate::tools::mon_check::check::exec::{spawn_bounded, MAX_OUTPUT};
use crate::tools::mon_check::check::many::{self, Limit};
use crate::tools::mon_check::check::{Outcome, Status};
use crate::tools::mon_check::cli::RunArgs;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How much of a summary, a host's line and a monitor's output the state keeps.
const KEEP_SUMMARY: usize = 1024;
const KEEP_OUTPUT: usize = 16 * 1024;

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What a service's run found.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub failed: bool,
    pub status: Status,
    /// mon's summary: the failed hosts, or the monitor's first line.
    pub summary: String,
    pub output: String,
    pub retval: Option<i32>,
    pub hosts: Vec<(String, HostResult)>,
}

pub enum Msg {
    Done { key: String, result: RunResult },
    Ctl { req: Request, reply: Sender<Reply> },
    Signal(i32),
    AlertDone,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `mon-check run`; `json`: events as JSON lines.
pub fn main(args: &RunArgs, json: bool) -> Status {
    let cfg = match config::load(&args.config, &args.state_dir, &args.socket) {
        Ok(c) => c,
        Err(e) => {
            crate::base::log::error(&e.to_string());
            return Status::Unknown;
        }
    };
    if args.check {
        println!(
            "{}: {} host groups, {} services",
            cfg.path.display(),
            cfg.hostgroups.len(),
            cfg.services.len()
        );
        for s in &cfg.services {
            println!(
                "  {} every {}: {}",
                s.key.clone(),
                crate::base::duration::format(s.interval),
                s.monitor_text
            );
        }
        return Status::Ok;
    }
    // Before the state is read (or a corrupt one set aside) and anything is started.
    let lock = match state::lock(&cfg.state_dir) {
        Ok(l) => l,
        Err(e) => {
            crate::base::log::error(&e);
            return Status::Unknown;
        }
    };
    let st = match state::load(&cfg.state_dir) {
        Ok(s) => s,
        Err(e) => {
            crate::base::log::error(&e);
            return Status::Unknown;
        }
    };
    let (tx, rx) = mpsc::channel();
    let _listener = if args.once {
        None
    } else {
        match ctl::serve(&cfg.socket, cfg.socket_group, tx.clone()) {
            Ok(l) => Some(l),
            Err(e) => {
                crate::base::log::error(&e);
                return Status::Unknown;
            }
        }
    };
    if let Err(e) = forward_signals(tx.clone()) {
        crate::base::log::error(&format!("cannot set up signals: {e}"));
        return Status::Unknown;
    }
    let mut s = Scheduler::new(cfg, args.clone(), json, st, tx, rx);
    s.lock = Some(lock);
    s.run()
}

fn forward_signals(tx: Sender<Msg>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM, SIGUSR1])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if tx.send(Msg::Signal(sig)).is_err() {
                break;
            }
        }
    })?;
    Ok(())
}

pub struct Scheduler {
    cfg: Arc<Config>,
    args: RunArgs,
    state: State,
    next: HashMap<String, Instant>,
    running: HashSet<String>,
    /// In --once mode: the services already started.
    started: HashSet<String>,
    limit: Arc<Limit>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    dirty: bool,
    last_save: Instant,
    alerts_in_flight: usize,
    rng: u64,
    worst: Status,
    /// Service key to its index in the configuration.
    index: HashMap<String, usize>,
    /// The earliest time a service not running is due (None: none is).
    earliest: Option<Instant>,
    /// Where the events go (stdout, lines or JSON lines).
    sink: Sink,
    /// The state directory's lock, held while this runs (None in unit tests).
    lock: Option<state::DirLock>,
}

impl Scheduler {
    pub fn new(cfg: Config, args: RunArgs, json: bool, state: State, tx: Sender<Msg>, rx: Receiver<Msg>) -> Scheduler {
        let now = Instant::now();
        let limit = Limit::new(cfg.max_parallel);
        let mut s = Scheduler {
            cfg: Arc::new(cfg),
            args,
            state,
            next: HashMap::new(),
            running: HashSet::new(),
            started: HashSet::new(),
            limit,
            tx,
            rx,
            dirty: false,
            last_save: now,
            alerts_in_flight: 0,
            rng: crate::base::clock::mono_ns() ^ (u64::from(std::process::id()) << 32) | 1,
            worst: Status::Ok,
            index: HashMap::new(),
            earliest: Some(now),
            sink: Sink::stdout(json, "checks, alerts and the state go on"),
            lock: None,
        };
        s.index = index_of(&s.cfg);
        for svc in s.cfg.clone().services.iter() {
            // Every service runs at start, spread over its skew.
            let skew = s.skew(svc.randskew);
            s.next.insert(svc.key.clone(), now + skew);
        }
        s
    }

    fn skew(&mut self, max: Duration) -> Duration {
        skew(&mut self.rng, max)
    }

    fn run(&mut self) -> Status {
        crate::base::log::info(&format!(
            "{} services in {} host groups; state in {}",
            self.cfg.services.len(),
            self.cfg.hostgroups.len(),
            self.cfg.state_dir.display()
        ));
        if !self.args.once {
            self.startup_alerts();
        }
        loop {
            let now = Instant::now();
            let unix = unix_now();
            if self.state.disabled.expire(unix) {
                self.dirty = true;
            }
            let cfg = self.cfg.clone();
            // Look through the services only when one is due: a round of thousands
            // delivers thousands of results, and each must not cost a full scan.
            if self.earliest.is_some_and(|t| t <= now) {
                self.earliest = None;
                for svc in &cfg.services {
                    if self.running.contains(&svc.key) || (self.args.once && self.started.contains(&svc.key)) {
                        continue;
                    }
                    match self.next.get(&svc.key) {
                        Some(&t) if t <= now => self.start(svc, unix),
                        Some(&t) => self.earliest = Some(self.earliest.map_or(t, |e| e.min(t))),
                        None => {}
                    }
                }
            }
            // Saved at most once a second (and at once after an alert or a control
            // request); --once saves at the end.
            if self.dirty && !self.args.once && now - self.last_save >= Duration::from_secs(1) {
                self.save();
            }
            if self.args.once
                && self.running.is_empty()
                && self.alerts_in_flight == 0
                && self.started.len() >= cfg.services.len()
            {
                self.save();
                return self.worst;
            }
            let wait = self.wait_time(now, unix);
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Done { key, result }) => self.done(&key, result),
                Ok(Msg::AlertDone) => self.alerts_in_flight = self.alerts_in_flight.saturating_sub(1),
                Ok(Msg::Ctl { req, reply }) => {
                    let r = self.control(req);
                    let _ = reply.send(r);
                }
                Ok(Msg::Signal(sig)) => match sig {
                    signal_hook::consts::SIGHUP => {
                        let _ = self.reload();
                    }
                    signal_hook::consts::SIGUSR1 => crate::base::log::info(
                        &serde_json::to_string(&ctl::status(&self.cfg, &self.state)).unwrap_or_default(),
                    ),
                    _ => {
                        self.save();
                        // Checks and alerts running in their threads end with it.
                        crate::base::proc::end_running();
                        crate::base::log::info("stopping");
                        return Status::Ok;
                    }
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Status::Unknown,
            }
        }
    }

    /// Until the next service is due, a disable expires, or a pending save.
    fn wait_time(&self, now: Instant, unix: i64) -> Duration {
        let mut wait = Duration::from_secs(3600);
        if let Some(t) = self.earliest {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if let Some(u) = self.state.disabled.next_expiry() {
            wait = wait.min(Duration::from_secs((u - unix).max(0) as u64));
        }
        if self.dirty {
            wait = wait.min(Duration::from_secs(1));
        }
        wait
    }

    fn set_next(&mut self, key: &str, t: Instant) {
        self.next.insert(key.to_string(), t);
        self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
    }

    fn save(&mut self) {
        if let Err(e) = state::save(&self.cfg.state_dir, &self.state) {
            crate::base::log::error(&e);
        }
        self.dirty = false;
        self.last_save = Instant::now();
    }

    fn disabled(&self, svc: &Service) -> bool {
        self.state.disabled.services.contains_key(&svc.key) || self.state.disabled.watches.contains_key(&svc.group)
    }

    fn deps_ok(&self, svc: &Service) -> bool {
        svc.depend
            .as_ref()
            .is_none_or(|d| d.holds(&|g, s| !self.state.services.get(&config::key(g, s)).is_some_and(|x| x.failing)))
    }

    fn hosts_of(&self, svc: &Service) -> Vec<String> {
        self.cfg
            .hostgroups
            .get(&svc.group)
            .map(|hs| {
                hs.iter()
                    .filter(|h| !svc.exclude_hosts.contains(h) && !self.state.disabled.hosts.contains_key(*h))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn reschedule(&mut self, svc: &Service) {
        let failing = self.state.services.get(&svc.key).is_some_and(|s| s.failing);
        let every = if failing {
            svc.failure_interval.unwrap_or(svc.interval)
        } else {
            svc.interval
        };
        let skew = self.skew(svc.randskew);
        self.set_next(&svc.key, Instant::now() + every + skew);
    }

    /// Start a service's monitor, unless something says it must not run now.
    fn start(&mut self, svc: &Service, unix: i64) {
        let key = svc.key.clone();
        self.started.insert(key.clone());
        let skip = if self.disabled(svc) {
            Some("disabled")
        } else if svc.exclude_period.as_ref().is_some_and(|p| p.contains_unix(unix)) {
            Some("in its exclude_period")
        } else if svc.dep_behavior == DepBehavior::Monitor && !self.deps_ok(svc) {
            Some("a dependency is failing")
        } else {
            None
        };
        let hosts = self.hosts_of(svc);
        if skip.is_some() || hosts.is_empty() {
            crate::base::log::debug(&format!(
                "{key}: not run ({})",
                skip.unwrap_or("no hosts left to check")
            ));
            self.reschedule(svc);
            return;
        }
        self.running.insert(key.clone());
        let env = monitor_env(svc, self.state.services.get(&key), &self.cfg);
        let self_key = key.clone();
        let (svc, tx, limit) = (svc.clone(), self.tx.clone(), self.limit.clone());
        let spawned = std::thread::Builder::new()
            .name("service".into())
            .stack_size(many::STACK)
            .spawn(move || {
                let result = execute(&svc, &hosts, &env, limit);
                let _ = tx.send(Msg::Done { key, result });
            });
        if let Err(e) = spawned {
            crate::base::log::error(&format!("{self_key}: cannot start its monitor: {e}"));
            self.running.remove(&self_key);
            let cfg = self.cfg.clone();
            if let Some(svc) = self.index.get(&self_key).and_then(|&i| cfg.services.get(i)) {
                self.reschedule(svc);
            }
        }
    }

    fn done(&mut self, key: &str, r: RunResult) {
        self.running.remove(key);
        let cfg = self.cfg.clone();
        let Some(svc) = self.index.get(key).and_then(|&i| cfg.services.get(i)) else {
            return; // removed by a reload while it ran
        };
        let unix = unix_now();
        let cx = Context {
            now: unix,
            tm: Tm::local(unix),
            disabled: self.disabled(svc),
            deps_ok: self.deps_ok(svc),
        };
        let st = self.state.services.entry(key.to_string()).or_default();
        let before: HashMap<String, Status> = st.hosts.iter().map(|(h, x)| (h.clone(), x.status)).collect();
        let was_failing = st.failing;
        let was_untested = st.last_check.is_none();
        // An up alert names the hosts that were down.
        let were_down = failed_hosts(st);
        // What is kept (and saved, for every service) is bounded; the alerts of this
        // result still get the whole output on their stdin.
        st.summary = cut(&r.summary, KEEP_SUMMARY);
        st.output = cut(&r.output, KEEP_OUTPUT);
        st.retval = r.retval;
        st.hosts = r
            .hosts
            .iter()
            .map(|(h, x)| {
                let line = cut(&x.line, KEEP_SUMMARY);
                (h.clone(), HostResult { status: x.status, line })
            })
            .collect();
        let due = alert::on_result(svc, st, r.failed, &r.summary, cx);
        if r.failed && (!was_failing || was_untested) {
            crate::base::log::warn(&format!("{key} failing: {}", one_line(&r.summary, &r.output)));
        } else if !r.failed && was_failing {
            crate::base::log::info(&format!("{key} up again"));
        }
        for ev in events(key, &before, &r, was_failing, was_untested) {
            self.sink.emit(&ev);
        }
        self.sink.flush();
        self.worst = self.worst.worst(r.status);
        let mut snapshot = st.clone();
        snapshot.output = r.output.clone();
        let alerted = !due.is_empty();
        for (i, kind) in due {
            let hosts = if kind == Kind::Up {
                were_down.clone()
            } else {
                failed_hosts(&snapshot)
            };
            self.run_alerts(svc, i, kind, &snapshot, &hosts, unix);
        }
        self.dirty = true;
        if !self.args.once {
            if alerted {
                // What was alerted must survive a crash, or it would be alerted again.
                self.save();
            }
            self.reschedule(svc);
        }
    }

    fn startup_alerts(&mut self) {
        let cfg = self.cfg.clone();
        let unix = unix_now();
        for svc in &cfg.services {
            for (i, p) in svc.periods.iter().enumerate() {
                if !p.startupalert.is_empty() {
                    let st = self.state.services.get(&svc.key).cloned().unwrap_or_default();
                    let hosts = self.hosts_of(svc).join(" ");
                    self.run_alerts(svc, i, Kind::Startup, &st, &hosts, unix);
                }
            }
        }
    }

    /// Run a period's alerts, each in a thread of its own: a slow alert never holds up
    /// the schedule, a missing or failing one is logged and the others still run.
    fn run_alerts(&mut self, svc: &Service, period: usize, kind: Kind, st: &ServiceState, hosts: &str, unix: i64) {
        let Some(p) = svc.periods.get(period) else { return };
        let list = match kind {
            Kind::Up => &p.upalert,
            Kind::Startup => &p.startupalert,
            Kind::Failure | Kind::Test => &p.alert,
        };
        for cmd in list {
            let Some(prog) = find_program(&cmd[0], &self.cfg.alertdir) else {
                crate::base::log::error(&format!(
                    "{}: alert `{}` not found in {}; the others still run",
                    svc.key.clone(),
                    cmd[0],
                    self.cfg
                        .alertdir
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                continue;
            };
            let mut argv = vec![
                prog.display().to_string(),
                "-s".into(),
                svc.name.clone(),
                "-g".into(),
                svc.group.clone(),
                "-h".into(),
                hosts.to_string(),
                "-t".into(),
                unix.to_string(),
            ];
            if kind == Kind::Up {
                argv.push("-u".into());
            }
            argv.extend(cmd[1..].iter().cloned());
            let mut env = monitor_env(svc, Some(st), &self.cfg);
            env.push(("MON_ALERTTYPE".into(), kind.name().into()));
            env.push(("MON_RETVAL".into(), st.retval.unwrap_or(0).to_string()));
            env.push(("MON_OPSTATUS".into(), if st.failing { "0" } else { "1" }.into()));
            let stdin = if st.output.is_empty() {
                format!("{}\n", st.summary)
            } else {
                st.output.clone()
            };
            let (tx, timeout, key, name) = (self.tx.clone(), self.cfg.alert_timeout, svc.key.clone(), cmd[0].clone());
            self.alerts_in_flight += 1;
            crate::base::log::info(&format!("{key}: {} alert {name}", kind.name()));
            let spawned = std::thread::Builder::new()
                .name("alert".into())
                .stack_size(many::STACK)
                .spawn(move || {
                    match spawn_bounded(&argv, &env, Some(stdin.into_bytes()), timeout, MAX_OUTPUT) {
                        Ok(r) if r.code == Some(0) => {}
                        Ok(r) => crate::base::log::error(&format!(
                            "{key}: alert {name} failed ({}): {}",
                            r.how(),
                            r.output.lines().next().unwrap_or("")
                        )),
                        Err(e) => crate::base::log::error(&format!("{key}: cannot run alert {name}: {e}")),
                    }
                    let _ = tx.send(Msg::AlertDone);
                });
            if spawned.is_err() {
                self.alerts_in_flight -= 1;
                crate::base::log::error(&format!("{}: cannot start alert {}", svc.key, cmd[0]));
            }
        }
    }

    fn reload(&mut self) -> Result<(), String> {
        match config::load(&self.cfg.path, &self.args.state_dir, &self.args.socket) {
            Err(e) => {
                crate::base::log::error(&format!("{e}; keeping the running configuration"));
                Err(e.to_string())
            }
            Ok(cfg) => {
                // A new state directory is taken only with its lock.
                if cfg.state_dir != self.cfg.state_dir && self.lock.is_some() {
                    match state::lock(&cfg.state_dir) {
                        Ok(l) => self.lock = Some(l),
                        Err(e) => {
                            crate::base::log::error(&format!("{e}; keeping the running configuration"));
                            return Err(e);
                        }
                    }
                }
                let now = Instant::now();
                let keys: HashSet<String> = cfg.services.iter().map(|s| s.key.clone()).collect();
                self.next.retain(|k, _| keys.contains(k));
                self.state.services.retain(|k, _| keys.contains(k));
                for s in &cfg.services {
                    self.next.entry(s.key.clone()).or_insert(now);
                }
                self.earliest = Some(now);
                crate::base::log::info(&format!("reloaded: {} services", cfg.services.len()));
                self.cfg = Arc::new(cfg);
                self.index = index_of(&self.cfg);
                self.dirty = true;
                Ok(())
            }
        }
    }

    fn control(&mut self, req: Request) -> Reply {
        let unix = unix_now();
        match req {
            Request::List => Reply::status(ctl::status(&self.cfg, &self.state)),
            Request::Disable {
                kind,
                names,
                for_secs,
                reason,
            } => {
                let key = match self.target(kind, &names) {
                    Ok(k) => k,
                    Err(e) => return Reply::err(e),
                };
                let d = Disable {
                    since: unix,
                    until: for_secs.map(|s| unix + s as i64),
                    reason,
                };
                match kind {
                    CtlKind::Host => self.state.disabled.hosts.insert(key.clone(), d),
                    CtlKind::Service => self.state.disabled.services.insert(key.clone(), d),
                    CtlKind::Watch => self.state.disabled.watches.insert(key.clone(), d),
                };
                self.save();
                crate::base::log::info(&format!("disabled {} {key}", kind.name()));
                Reply::ok(format!("disabled {} {key}", kind.name()))
            }
            Request::Enable { kind, names } => {
                let key = match self.target(kind, &names) {
                    Ok(k) => k,
                    Err(e) => return Reply::err(e),
                };
                let was = match kind {
                    CtlKind::Host => self.state.disabled.hosts.remove(&key),
                    CtlKind::Service => self.state.disabled.services.remove(&key),
                    CtlKind::Watch => self.state.disabled.watches.remove(&key),
                };
                if was.is_none() {
                    return Reply::err(format!("{} {key} is not disabled", kind.name()));
                }
                self.save();
                crate::base::log::info(&format!("enabled {} {key}", kind.name()));
                Reply::ok(format!("enabled {} {key}", kind.name()))
            }
            Request::Ack {
                group,
                service,
                comment,
            } => {
                if self.cfg.service(&group, &service).is_none() {
                    return Reply::err(format!("no service {group}/{service}"));
                }
                let key = config::key(&group, &service);
                match self.state.services.get_mut(&key) {
                    Some(st) if st.failing => {
                        st.ack = Some(Ack { at: unix, comment });
                        self.save();
                        crate::base::log::info(&format!("{key} acknowledged"));
                        Reply::ok(format!("acknowledged {key}"))
                    }
                    _ => Reply::err(format!("{key} is not failing")),
                }
            }
            Request::Test { group, service, up } => {
                let cfg = self.cfg.clone();
                let Some(svc) = cfg.service(&group, &service) else {
                    return Reply::err(format!("no service {group}/{service}"));
                };
                let st = self.state.services.get(&svc.key).cloned().unwrap_or_default();
                let before = self.alerts_in_flight;
                let hosts = if st.failing {
                    failed_hosts(&st)
                } else {
                    self.hosts_of(svc).join(" ")
                };
                for i in 0..svc.periods.len() {
                    self.run_alerts(svc, i, if up { Kind::Up } else { Kind::Test }, &st, &hosts, unix);
                }
                Reply::ok(format!("{} alerts started", self.alerts_in_flight - before))
            }
            Request::Check { group, service } => {
                if self.cfg.service(&group, &service).is_none() {
                    return Reply::err(format!("no service {group}/{service}"));
                }
                self.set_next(&config::key(&group, &service), Instant::now());
                Reply::ok(format!("{group}/{service} will run now"))
            }
            Request::Reload => match self.reload() {
                Ok(()) => Reply::ok(format!("reloaded: {} services", self.cfg.services.len())),
                Err(e) => Reply::err(format!("{e}; keeping the running configuration")),
            },
        }
    }

    /// The key of what a disable or enable names, checked against the configuration.
    fn target(&self, kind: CtlKind, names: &[String]) -> Result<String, String> {
        match (kind, names) {
            (CtlKind::Host, [h]) if self.cfg.has_host(h) => Ok(h.clone()),
            (CtlKind::Host, [h]) => Err(format!("no host {h} in any host group")),
            (CtlKind::Watch, [g]) if self.cfg.services.iter().any(|s| &s.group == g) => Ok(g.clone()),
            (CtlKind::Watch, [g]) => Err(format!("no watch {g}")),
            (CtlKind::Service, [g, s]) if self.cfg.service(g, s).is_some() => Ok(config::key(g, s)),
            (CtlKind::Service, [g, s]) => Err(format!("no service {g}/{s}")),
            (CtlKind::Service, _) => Err("a service is named GROUP SERVICE".into()),
            _ => Err("a host or a watch is named by one word".into()),
        }
    }
}

/// The events of a result, for scripts on stdout (`mon-check run | while read ev
/// subject rest`): each host that changed state (or has its first result), and the
/// service when it starts or stops failing.
fn events(
    key: &str,
    before: &HashMap<String, Status>,
    r: &RunResult,
    was_failing: bool,
    was_untested: bool,
) -> Vec<Event> {
    let now = crate::base::clock::mono_ns();
    let mut out = Vec::new();
    for (host, x) in &r.hosts {
        let was = before.get(host).copied();
        if was.is_some_and(|w| (w == Status::Ok) == (x.status == Status::Ok)) {
            continue;
        }
        let kind = if x.status == Status::Ok {
            EventKind::HostUp
        } else {
            EventKind::HostDown
        };
        out.push(
            Event::new(kind, host, now)
                .with("service", key)
                .with("status", x.status)
                .with("was", was.map(|w| w.name()).unwrap_or("untested"))
                .with("line", cut(&x.line, 200)),
        );
    }
    if r.failed != was_failing || was_untested {
        let kind = if r.failed {
            EventKind::ServiceFailing
        } else {
            EventKind::ServiceUp
        };
        out.push(
            Event::new(kind, key, now)
                .with("status", r.status)
                .with("summary", cut(&r.summary, 200)),
        );
    }
    out
}

/// A random delay in [0, max): xorshift64, as a skew needs spread, not cryptography.
fn skew(rng: &mut u64, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    Duration::from_nanos(*rng % max.as_nanos().clamp(1, u64::MAX as u128) as u64)
}

fn index_of(cfg: &Config) -> HashMap<String, usize> {
    cfg.services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.clone(), i))
        .collect()
}

fn failed_hosts(st: &ServiceState) -> String {
    let failed: Vec<&str> = st
        .hosts
        .iter()
        .filter(|(_, r)| r.status != Status::Ok)
        .map(|(h, _)| h.as_str())
        .collect();
    if failed.is_empty() {
        st.summary.clone()
    } else {
        failed.join(" ")
    }
}

fn one_line(summary: &str, output: &str) -> String {
    let s = if summary.trim().is_empty() {
        output.lines().next().unwrap_or("")
    } else {
        summary
    };
    s.chars().take(200).collect()
}

/// The environment mon gives a monitor (and, with a few more, an alert).
pub fn monitor_env(svc: &Service, st: Option<&ServiceState>, cfg: &Config) -> Vec<(String, String)> {
    let t = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "0".into());
    let mut env = vec![
        ("MON_GROUP".to_string(), svc.group.clone()),
        ("MON_SERVICE".into(), svc.name.clone()),
        ("MON_DESCRIPTION".into(), svc.description.clone()),
        ("MON_STATEDIR".into(), cfg.state_dir.display().to_string()),
        (
            "MON_CFBASEDIR".into(),
            cfg.path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        ),
    ];
    if let Some(st) = st {
        env.push(("MON_LAST_SUMMARY".into(), st.summary.clone()));
        env.push(("MON_LAST_OUTPUT".into(), st.output.chars().take(4096).collect()));
        env.push(("MON_LAST_FAILURE".into(), t(st.last_failure)));
        env.push(("MON_FIRST_FAILURE".into(), t(st.first_failure)));
        env.push(("MON_LAST_SUCCESS".into(), t(st.last_success)));
    }
    env
}

/// Run one service's monitor on its hosts.
pub fn execute(svc: &Service, hosts: &[String], env: &[(String, String)], limit: Arc<Limit>) -> RunResult {
    match &svc.monitor {
        Monitor::BuiltIn(check) => {
            // One host: run it on this thread (every step of a built-in check is
            // bounded by its deadline, name resolution included); several: one thread
            // each, none waited for past its timeout.
            let outcomes = if let [host] = hosts {
                let _permit = limit.acquire();
                vec![check.run(host)]
            } else {
                many::run_all_with(check.clone(), hosts, limit)
            };
            let (label, sep) = check.label();
            summarize(hosts, &outcomes, |o| o.plugin_line(label, sep))
        }
        Monitor::Program {
            argv,
            append_hosts,
            per_host,
        } => {
            if *per_host {
                let outcomes: Vec<Outcome> = std::thread::scope(|sc| {
                    let handles: Vec<_> = hosts
                        .iter()
                        .map(|h| {
                            let argv: Vec<String> = argv.iter().map(|a| a.replace("{host}", h)).collect();
                            let limit = limit.clone();
                            sc.spawn(move || {
                                let permit = limit.acquire();
                                let r = spawn_bounded(&argv, env, None, svc.timeout, MAX_OUTPUT);
                                drop(permit);
                                program_outcome(
                                    r,
                                    &argv[0],
                                    svc.timeout,
                                    crate::tools::mon_check::check::exec::Style::Plugin,
                                )
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or_else(|_| Outcome::new(Status::Unknown, "the check could not run"))
                        })
                        .collect()
                });
                return summarize(hosts, &outcomes, |o| o.plugin_line("EXEC", " - "));
            }
            let mut argv = argv.clone();
            if *append_hosts {
                argv.extend(hosts.iter().cloned());
            }
            let permit = limit.acquire();
            let r = spawn_bounded(&argv, env, None, svc.timeout, MAX_OUTPUT);
            drop(permit);
            match r {
                Err(e) => {
                    let text = format!("cannot run {}: {e}", argv[0]);
                    RunResult {
                        failed: true,
                        status: Status::Unknown,
                        summary: text.clone(),
                        output: text,
                        retval: None,
                        hosts: Vec::new(),
                    }
                }
                Ok(ran) => {
                    let failed = ran.code != Some(0);
                    let mut summary = ran.output.lines().next().unwrap_or("").to_string();
                    let mut output = ran.output.clone();
                    if ran.timed_out {
                        summary = format!(
                            "{} timed out after {} s and was killed",
                            argv[0],
                            svc.timeout.as_secs_f64()
                        );
                        output = format!("{summary}\n{output}");
                    } else if ran.code.is_none() {
                        summary = format!("{} {}", argv[0], ran.how());
                    }
                    if ran.truncated {
                        output.push_str(&format!("\n(output cut at {MAX_OUTPUT} bytes)\n"));
                    }
                    // mon's monitors name the failed hosts in the summary.
                    let named: HashSet<&str> = summary.split_whitespace().collect();
                    let hosts = hosts
                        .iter()
                        .map(|h| {
                            let bad = failed && (ran.timed_out || named.contains(h.as_str()) || named.is_empty());
                            (
                                h.clone(),
                                HostResult {
                                    status: if bad { Status::Critical } else { Status::Ok },
                                    line: if bad { summary.clone() } else { String::new() },
                                },
                            )
                        })
                        .collect();
                    RunResult {
                        failed,
                        status: if failed { Status::Critical } else { Status::Ok },
                        summary,
                        output,
                        retval: ran.code.or(ran.signal.map(|s| 128 + s)),
                        hosts,
                    }
                }
            }
        }
    }
}

fn program_outcome(
    r: std::io::Result<crate::tools::mon_check::check::exec::Ran>,
    name: &str,
    timeout: Duration,
    style: crate::tools::mon_check::check::exec::Style,
) -> Outcome {
    match r {
        Ok(ran) => crate::tools::mon_check::check::exec::outcome(&ran, style, name, timeout),
        Err(e) => Outcome::new(Status::Unknown, format!("cannot run {name}: {e}")),
    }
}

fn summarize(hosts: &[String], outcomes: &[Outcome], line: impl Fn(&Outcome) -> String) -> RunResult {
    let status = many::worst(outcomes);
    let failed: Vec<&str> = hosts
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.status != Status::Ok)
        .map(|(h, _)| h.as_str())
        .collect();
    let summary = failed.join(" ");
    let mut output = format!("{summary}\n");
    let mut results = Vec::new();
    for (h, o) in hosts.iter().zip(outcomes) {
        let l = line(o);
        if o.status != Status::Ok {
            output.push_str(&format!("{h}: {l}\n"));
        }
        results.push((
            h.clone(),
            HostResult {
                status: o.status,
                line: l,
            },
        ));
    }
    RunResult {
        failed: !failed.is_empty(),
        status,
        summary,
        output,
        retval: Some(status.code()),
        hosts: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduler on a configuration of one service, with no thread started: the
    /// tests feed it results and requests by hand.
    fn scheduler(dir: &std::path::Path) -> Scheduler {
        let path = dir.join("hakit.yaml");
        std::fs::write(
            &path,
            format!(
                "mon-check:\n  state-dir: {d}/state\n  hostgroups:\n    g: [h1, h2]\n  watches:\n    g:\n      s:\n        interval: 1h\n        failure-interval: 10s\n        monitor: tcp -p 1\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let cfg = config::load(&path, &None, &None).unwrap();
        let args = RunArgs {
            config: path,
            state_dir: None,
            socket: None,
            once: false,
            check: false,
            syslog: false,
            quiet: true,
        };
        let (tx, rx) = mpsc::channel();
        Scheduler::new(cfg, args, false, State::default(), tx, rx)
    }

    fn result(failed_host: Option<&str>) -> RunResult {
        let hosts = vec!["h1".to_string(), "h2".to_string()];
        let outcomes: Vec<Outcome> = hosts
            .iter()
            .map(|h| {
                if Some(h.as_str()) == failed_host {
                    Outcome::new(Status::Critical, "refused")
                } else {
                    Outcome::new(Status::Ok, "fine")
                }
            })
            .collect();
        summarize(&hosts, &outcomes, |o| o.plugin_line("TCP", " - "))
    }

    #[test]
    fn a_failure_brings_the_next_check_forward_and_a_recovery_puts_it_back() {
        let d = tempfile::tempdir().unwrap();
        let mut s = scheduler(d.path());
        s.running.insert("g/s".into());
        s.done("g/s", result(Some("h2")));
        let st = &s.state.services["g/s"];
        assert!(st.failing && st.summary == "h2" && st.hosts["h1"].status == Status::Ok);
        let due = s.next["g/s"] - Instant::now();
        assert!(
            due <= Duration::from_secs(10) && due > Duration::from_secs(9),
            "{due:?}"
        );
        assert!(!s.running.contains("g/s"));
        s.done("g/s", result(None));
        assert!(!s.state.services["g/s"].failing);
        assert!(s.next["g/s"] - Instant::now() > Duration::from_secs(3590));
        // a result for a service a reload removed is dropped
        s.done("g/gone", result(Some("h1")));
        assert!(!s.state.services.contains_key("g/gone"));
    }

    #[test]
    fn control_requests_are_checked_against_the_configuration() {
        let d = tempfile::tempdir().unwrap();
        let mut s = scheduler(d.path());
        let dis = |kind, names: &[&str]| Request::Disable {
            kind,
            names: names.iter().map(|n| n.to_string()).collect(),
            for_secs: Some(60),
            reason: None,
        };
        assert!(!s.control(dis(CtlKind::Host, &["nosuch"])).ok);
        assert!(!s.control(dis(CtlKind::Service, &["g"])).ok);
        assert!(s.control(dis(CtlKind::Host, &["h2"])).ok);
        assert_eq!(s.hosts_of(&s.cfg.services[0].clone()), vec!["h1".to_string()]);
        assert!(s.state.disabled.hosts["h2"].until.is_some());
        assert!(s.control(dis(CtlKind::Watch, &["g"])).ok);
        assert!(s.disabled(&s.cfg.services[0].clone()));
        let ack = |s: &mut Scheduler| {
            s.control(Request::Ack {
                group: "g".into(),
                service: "s".into(),
                comment: "on it".into(),
            })
            .ok
        };
        assert!(!ack(&mut s), "not failing yet");
        s.done("g/s", result(Some("h1")));
        assert!(ack(&mut s));
        // what was said is saved at once
        let saved = state::load(&s.cfg.state_dir).unwrap();
        assert_eq!(
            saved.services["g/s"].ack.as_ref().map(|a| a.comment.as_str()),
            Some("on it")
        );
    }

    #[test]
    fn randskew_spreads_over_the_whole_skew() {
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        let max = Duration::from_secs(10);
        let draws: Vec<Duration> = (0..1000).map(|_| skew(&mut rng, max)).collect();
        assert!(draws.iter().all(|d| *d < max));
        assert!(draws.iter().any(|d| *d < Duration::from_secs(1)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(9)));
        assert_eq!(skew(&mut rng, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn kept_text_is_cut_on_a_character_boundary() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut(&"x".repeat(5000), KEEP_SUMMARY).len(), KEEP_SUMMARY + "…".len());
    }

    #[test]
    fn a_monitors_summary_names_its_failed_hosts() {
        let hosts = vec!["a".to_string(), "b".to_string()];
        let ok = Outcome::new(Status::Ok, "fine");
        let bad = Outcome::new(Status::Critical, "refused");
        let r = summarize(&hosts, &[ok, bad], |o| o.plugin_line("TCP", " - "));
        assert!(r.failed);
        assert_eq!(r.summary, "b");
        assert_eq!(r.output, "b\nb: TCP CRITICAL - refused\n");
        assert_eq!(r.retval, Some(2));
        assert_eq!(r.hosts[0].1.status, Status::Ok);
    }
}
