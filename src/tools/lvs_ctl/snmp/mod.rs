//! `lvs-ctl snmp`: HAKIT-MIB (contrib/snmp/HAKIT-MIB.txt) served to snmpd through its
//! `pass_persist` protocol, one request after another on stdin, each answer written
//! and flushed at once on stdout (net-snmp 5.9's snmpd.conf(5): `PING` → `PONG`; `get`
//! / `getnext` and an OID → OID, type, value, or `NONE`; `set`, an OID and `TYPE VALUE`
//! → `DONE` or an error word). snmpd sends a PING before every request.
//!
//! Answers come from a snapshot ([`tree::Tree`], sorted by OID, looked up by binary
//! search) of `status::report` over the backend and the operator weights, and of the
//! Active Stations Table; it is taken again when a request finds it older than
//! `--refresh` (1 s), so a walk costs one read of the kernel per second, not one per
//! object. A kernel or table that cannot be read is logged once; the last snapshot
//! (or none) answers meanwhile.
//!
//! A SET of hakitRsWeight goes through `weights::set`, as `lvs-ctl weight` does, and
//! the snapshot is taken again before the next answer. snmpd's access control decides
//! who may SET at all; this side refuses everything but an INTEGER 0 to 65535 on an
//! existing real server's weight.
//!
//! Blocking reads of stdin: there is nothing to do between requests, TERM ends the
//! process (nothing to clean up), and the end of stdin (snmpd gone) ends it with 0.

pub mod tree;

use super::backend::{self, Backend};
use super::cli::SnmpArgs;
use super::config::{self, Config};
use super::{health, status, weights};
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::{clock, log};
use crate::table::TableReader;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use tree::{Oid, RealRow, Tree};

/// The OID snmpd.conf's pass_persist line gives by default.
pub const DEFAULT_ROOT: &str = ".1.3.6.1.4.1.32473.104";

#[derive(Debug)]
pub enum Error {
    Usage(String),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Io(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::Io(_) => ExitStatus::Failure,
        }
    }
}

/// What answers come from: a snapshot, and the one thing that can be changed.
pub trait Source {
    fn tree(&mut self) -> &Tree;
    fn set_weight(&mut self, row: RealRow, weight: u32) -> Result<(), String>;
}

/// Answer pass_persist requests from `input` on `out` until the end of `input`.
pub fn serve(mut input: impl BufRead, out: &mut impl Write, src: &mut dyn Source) -> io::Result<()> {
    let mut line = String::new();
    let mut arg = String::new();
    let mut value = String::new();
    let mut answer = String::with_capacity(256);
    let mut odd = HashSet::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        answer.clear();
        match line.trim_end() {
            "" => continue,
            "PING" => answer.push_str("PONG\n"),
            cmd @ ("get" | "getnext") => {
                arg.clear();
                input.read_line(&mut arg)?;
                let t = src.tree();
                let found = tree::parse_oid(&arg).and_then(|o| if cmd == "get" { t.get(&o) } else { t.next(&o) });
                match found {
                    Some((o, v)) => tree::answer(&mut answer, o, v),
                    None => answer.push_str("NONE\n"),
                }
            }
            "set" => {
                arg.clear();
                value.clear();
                input.read_line(&mut arg)?;
                read_value(&mut input, &mut value)?;
                let checked = match tree::parse_oid(&arg) {
                    Some(o) => tree::check_set(src.tree(), &o, &value),
                    None => Err(tree::Refusal::NotWritable),
                };
                let word = match checked {
                    Ok((row, w)) => match src.set_weight(row, w) {
                        Ok(()) => "DONE",
                        Err(e) => {
                            log::error(&format!(
                                "SET {} {} weight {w}: {e}",
                                health::service_name(&row.service),
                                row.real
                            ));
                            tree::Refusal::CommitFailed.word()
                        }
                    },
                    Err(r) => r.word(),
                };
                answer.push_str(word);
                answer.push('\n');
            }
            other => {
                let what: String = other.chars().take(32).collect();
                super::follow::once(
                    &mut odd,
                    what.clone(),
                    log::Level::Warn,
                    &format!("stdin: `{what}' is not a pass_persist request; answered NONE (said once)"),
                );
                answer.push_str("NONE\n");
            }
        }
        out.write_all(answer.as_bytes())?;
        out.flush()?;
    }
}

/// A SET's `TYPE VALUE` line. net-snmp 5.9.3 ends it with a newline, later versions
/// do not (its commit dffe26c0); either way it came in the same write as the rest of
/// the request, so what is buffered without a newline is the whole value, and waiting
/// for one would wait for an answer snmpd is waiting for.
fn read_value(input: &mut impl BufRead, value: &mut String) -> io::Result<()> {
    let buf = input.fill_buf()?;
    if buf.contains(&b'\n') {
        input.read_line(value)?;
    } else {
        let n = buf.len();
        value.push_str(&String::from_utf8_lossy(buf));
        input.consume(n);
    }
    Ok(())
}

/// The real source: the backend, the state and weights files, the table.
struct Live {
    root: Oid,
    cfg: Option<Config>,
    state: PathBuf,
    table: PathBuf,
    backend: Box<dyn Backend>,
    refresh_ns: u64,
    tree: Tree,
    taken_ns: Option<u64>,
    logged: HashSet<String>,
}

impl Live {
    fn complain(&mut self, key: &str, msg: &str) {
        super::follow::once(&mut self.logged, format!("{key}:{msg}"), log::Level::Warn, msg);
    }

    fn cluster(&mut self) -> Option<tree::Cluster> {
        let r = match TableReader::open(&self.table) {
            Ok(r) => r,
            Err(e) => {
                self.complain("table", &format!("{e}; no nodes in the MIB"));
                return None;
            }
        };
        let h = match r.header() {
            Ok(h) => h,
            Err(e) => {
                self.complain("table", &e.to_string());
                return None;
            }
        };
        Some(tree::Cluster {
            channels: h.channels,
            local: h.local,
            writer_alive: r.writer_alive(),
            nodes: r.records().into_iter().filter_map(Result::ok).collect(),
            now_ns: clock::mono_ns(),
        })
    }

    fn take(&mut self) {
        let kernel = match self.backend.read() {
            Ok(k) => k,
            Err(e) => {
                self.complain(
                    "read",
                    &format!("cannot read the kernel's table: {e}; answering from the last snapshot"),
                );
                return;
            }
        };
        let live = health::load_live(&self.state);
        let w = match weights::load(&weights::path_for(&self.state)) {
            Ok(w) => w,
            Err(e) => {
                self.complain("weights", &e);
                weights::Weights::new()
            }
        };
        let report = status::report_weighted(
            self.cfg.as_ref(),
            &kernel,
            live.as_ref(),
            &w,
            self.backend.kind().name(),
            health::Stamp::now(),
        );
        let cluster = self.cluster();
        self.tree = tree::build(&self.root, &report, &kernel, cluster.as_ref());
        self.logged.retain(|k| !k.starts_with("read:"));
    }
}

impl Source for Live {
    fn tree(&mut self) -> &Tree {
        let now = clock::mono_ns();
        if self.taken_ns.is_none_or(|t| now.saturating_sub(t) >= self.refresh_ns) {
            self.take();
            self.taken_ns = Some(now);
        }
        &self.tree
    }

    fn set_weight(&mut self, row: RealRow, weight: u32) -> Result<(), String> {
        self.taken_ns = None;
        weights::set(
            &self.state,
            self.cfg.as_ref(),
            self.backend.as_mut(),
            row.service,
            row.real,
            Some(weight),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

/// Whether stderr is the same pipe as stdout, as snmpd makes it for pass_persist.
pub fn stderr_is_stdout() -> bool {
    use nix::sys::stat::fstat;
    match (fstat(1), fstat(2)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// `lvs-ctl snmp`: check the settings, then serve stdin until it ends.
pub fn main(args: &SnmpArgs, config_file: Option<PathBuf>) -> Result<(), Error> {
    let root = tree::parse_oid(&args.oid)
        .filter(|o| o.len() >= 2)
        .ok_or_else(|| Error::Usage(format!("--oid: `{}' is not an OID (.1.3.6.1.4.1.N...)", args.oid)))?;
    let cfg = match &config_file {
        Some(p) => Some(config::load(p).map_err(|e| Error::Usage(e.to_string()))?),
        None => None,
    };
    let table = crate::tools::hb_watch::settings::table_path(&args.table, &config_file)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let backend = backend::open(backend::choose(
        args.common.backend,
        cfg.as_ref().and_then(|c| c.backend),
    ))
    .map_err(|e| Error::Io(e.to_string()))?;
    let mut live = Live {
        root,
        cfg,
        state: args.state.clone(),
        table,
        backend,
        refresh_ns: args.refresh.as_nanos().min(u64::MAX as u128) as u64,
        tree: Tree::default(),
        taken_ns: None,
        logged: HashSet::new(),
    };
    if stderr_is_stdout() {
        // Nothing but answers may reach snmpd, not even a panic's message.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 2);
        }
    }
    let stdin = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    match serve(stdin, &mut out, &mut live) {
        Ok(()) => Ok(()),
        // snmpd went away while an answer was written.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Io(format!("pass_persist: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::model::{Dest, Proto, Service, ServiceKey, Table};

    struct Fixed {
        tree: Tree,
        sets: Vec<(RealRow, u32)>,
        fail: bool,
    }

    impl Source for Fixed {
        fn tree(&mut self) -> &Tree {
            &self.tree
        }
        fn set_weight(&mut self, row: RealRow, weight: u32) -> Result<(), String> {
            if self.fail {
                return Err("refused".into());
            }
            self.sets.push((row, weight));
            Ok(())
        }
    }

    fn fixed() -> Fixed {
        let mut t = Table::empty(crate::tools::lvs_ctl::model::Info { version: 0, size: 0 });
        let mut s = Service::new(ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        });
        s.dests.push(Dest::new("10.0.0.2".parse().unwrap(), 80));
        t.services.push(s);
        let r = status::report(None, &t, None, "nft", health::Stamp::now());
        Fixed {
            tree: tree::build(tree::ROOT, &r, &t, None),
            sets: Vec::new(),
            fail: false,
        }
    }

    fn talk(src: &mut Fixed, input: &str) -> String {
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out, src).unwrap();
        String::from_utf8(out).unwrap()
    }

    const W: &str = ".1.3.6.1.4.1.32473.104.1.3.1.6.1.1";

    #[test]
    fn speaks_pass_persist() {
        let mut f = fixed();
        let out = talk(
            &mut f,
            &format!(
                "PING\nget\n.1.3.6.1.4.1.32473.104.1.1.1.0\ngetnext\n.1.3.6.1.4.1.32473.104\n\
                 get\n.1.3.6.1.4.1.32473.104.1.1\ngetnext\n.1.3.6.1.4.1.32473.105\nget\nnonsense\n\
                 PING\nset\n{W}\ninteger 3\nset\n{W}\ninteger -3\nset\n{W}\nstring \"3\"\n\
                 set\n.1.3.6.1.4.1.32473.104.1.3.1.9.1.1\ninteger 1\nhello\n"
            ),
        );
        assert_eq!(
            out,
            "PONG\n\
             .1.3.6.1.4.1.32473.104.1.1.1.0\nstring\nnft\n\
             .1.3.6.1.4.1.32473.104.1.1.1.0\nstring\nnft\n\
             NONE\nNONE\nNONE\n\
             PONG\nDONE\nwrong-value\nwrong-type\nnot-writable\nNONE\n"
        );
        assert_eq!(f.sets.len(), 1);
        assert_eq!((f.sets[0].0.real.to_string(), f.sets[0].1), ("10.0.0.2:80".into(), 3));
        // A refused commit is snmpd's commitFailed; the end of input ends it cleanly.
        f.fail = true;
        assert_eq!(talk(&mut f, &format!("set\n{W}\ninteger 3\n")), "commit-failed\n");
        assert_eq!(talk(&mut f, ""), "");
        // A value line without its newline (net-snmp after 5.9.3) is the whole value.
        f.fail = false;
        assert_eq!(talk(&mut f, &format!("set\n{W}\ninteger 4")), "DONE\n");
        assert_eq!(f.sets.last().map(|s| s.1), Some(4));
    }

    #[test]
    fn a_walk_visits_every_object_once() {
        let mut f = fixed();
        let n = f.tree.len();
        let mut at = DEFAULT_ROOT.to_string();
        let mut seen = 0;
        loop {
            let out = talk(&mut f, &format!("getnext\n{at}\n"));
            if out == "NONE\n" {
                break;
            }
            at = out.lines().next().unwrap().to_string();
            seen += 1;
        }
        assert_eq!(seen, n);
    }
}
