//! ipvsadm's commands, run against a backend. Every change is checked by the backend
//! and played on a copy of the kernel's table before anything is sent, so a refusal
//! (a service that exists, a real server of a missing service, a scheduler the backend
//! lacks) changes nothing; `-R` does this for the whole file first.

use super::backend::{self, Backend, Kind};
use super::format;
use super::ipvsadm::{self, Command, Format, Invocation, ListWhat, Origin};
use super::model::{Change, Timeouts};
use crate::base::exit::{ExitStatus, HasExitStatus};
use std::fmt;
use std::io::{Read, Write};

/// The errors of running a command.
#[derive(Debug)]
pub enum Error {
    /// A bad command line or restore line: exit 2, nothing changed.
    Usage(String),
    /// The kernel refused (as ipvsadm would print it), or failed: exit 1.
    Refused(String),
    Backend(backend::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Refused(m) => f.write_str(m),
            Error::Backend(e) => e.fmt(f),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::Refused(_) => ExitStatus::Failure,
            Error::Backend(e) => e.exit_status(),
        }
    }
}

impl From<backend::Error> for Error {
    fn from(e: backend::Error) -> Error {
        Error::Backend(e)
    }
}

impl From<ipvsadm::ParseError> for Error {
    fn from(e: ipvsadm::ParseError) -> Error {
        Error::Usage(e.to_string())
    }
}

fn write_out(out: &mut dyn Write, s: &str) -> Result<(), Error> {
    crate::base::signals::write_answer(out, s.as_bytes()).map_err(Error::Refused)
}

/// Run one parsed command line; `program` is the name to print in help and version.
pub fn run(
    inv: &Invocation,
    b: &mut dyn Backend,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    program: &str,
) -> Result<(), Error> {
    let json = inv.json;
    match &inv.command {
        Command::Help => write_out(out, &help(program)),
        Command::Version => write_out(out, &version(program)),
        Command::Change(c) => change(b, std::slice::from_ref(c)),
        Command::List(what, f) => list(b, what, f, json, out),
        Command::Save(f) => {
            let t = b.read()?;
            if json {
                write_out(out, &format::json_table(&t, f, b.kind().name()))
            } else {
                write_out(out, &format::save(&t, f))
            }
        }
        Command::Restore => {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(|e| Error::Usage(format!("stdin: {e}")))?;
            restore(b, &text, "stdin")
        }
        Command::SetTimeouts(t) => Ok(b.set_timeouts(*t)?),
        Command::StartDaemon(d) => Ok(b.start_daemon(d)?),
        Command::StopDaemon(s) => Ok(b.stop_daemon(*s)?),
    }
}

/// Check, play and commit `changes` all or nothing.
pub fn change(b: &mut dyn Backend, changes: &[Change]) -> Result<(), Error> {
    for c in changes {
        b.check(c).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let current = b.read()?;
    let mut after = current.clone();
    for c in changes {
        // Found before anything is sent: a usage error, nothing changed.
        after.apply(c).map_err(|r| Error::Usage(r.to_string()))?;
    }
    Ok(b.commit(&current, changes)?)
}

/// The lines of a restore file: each change with its line number, and the timeouts
/// (`--set`) if any. Syntax only: nothing is asked of a backend.
pub struct Restore {
    pub changes: Vec<(usize, Change)>,
    pub timeouts: Option<Timeouts>,
}

/// Parse every line of a restore file called `name`.
pub fn parse_restore(text: &str, name: &str) -> Result<Restore, Error> {
    let mut r = Restore {
        changes: Vec::new(),
        timeouts: None,
    };
    for (n, line) in text.lines().enumerate() {
        let words = ipvsadm::split_line(line);
        if words.is_empty() {
            continue;
        }
        let inv = ipvsadm::parse(&words, Origin::Line(name, n + 1))?;
        let at = |msg: &str| Error::Usage(format!("{name}:{}:{}: {msg}", n + 1, words[0].col));
        if inv.backend.is_some() || inv.json {
            return Err(at("--backend and --json have no place in a restore file"));
        }
        match inv.command {
            Command::Change(c) => r.changes.push((n + 1, c)),
            Command::SetTimeouts(t) => r.timeouts = Some(t),
            _ => return Err(at("only changes (-A -E -D -a -e -d -C -Z --set) can be restored")),
        }
    }
    Ok(r)
}

/// `-R`: every line parsed, checked and played before the first is sent; then one
/// commit. Timeouts (`--set`) in the file are set after the table.
pub fn restore(b: &mut dyn Backend, text: &str, name: &str) -> Result<(), Error> {
    let r = parse_restore(text, name)?;
    for (n, c) in &r.changes {
        b.check(c).map_err(|e| Error::Usage(format!("{name}:{n}: {e}")))?;
    }
    let current = b.read()?;
    let mut after = current.clone();
    after
        .apply_all(r.changes.iter().map(|(_, c)| c))
        .map_err(|(i, e)| Error::Usage(format!("{name}:{}: {e} (nothing was changed)", r.changes[i].0)))?;
    let changes: Vec<Change> = r.changes.into_iter().map(|(_, c)| c).collect();
    // Timeouts first, where they can be put back: a backend without them, or a kernel
    // that refuses them, leaves the table as it was.
    let old = match r.timeouts {
        Some(t) => {
            let old = b
                .timeouts()
                .map_err(|e| Error::Usage(format!("{name}: --set: {e} (nothing was changed)")))?;
            b.set_timeouts(t)?;
            Some(old)
        }
        None => None,
    };
    if !changes.is_empty() {
        if let Err(e) = b.commit(&current, &changes) {
            if let Some(t) = old {
                let _ = b.set_timeouts(t);
            }
            return Err(e.into());
        }
    }
    Ok(())
}

fn list(b: &mut dyn Backend, what: &ListWhat, f: &Format, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    match what {
        ListWhat::All => {
            let t = b.read()?;
            let text = if json {
                format::json_table(&t, f, b.kind().name())
            } else {
                format::list(&t, f)
            };
            write_out(out, &text)
        }
        ListWhat::Service(k) => {
            let t = b.read()?;
            let s = t.service(k).ok_or_else(|| Error::Refused("No such service".into()))?;
            let text = if json {
                format::json_service(s).to_string() + "\n"
            } else {
                format::list_one(s, f)
            };
            write_out(out, &text)
        }
        ListWhat::Timeouts => {
            let t = b.timeouts()?;
            let text = if json {
                serde_json::to_string(&t).unwrap_or_default() + "\n"
            } else {
                format::timeouts(&t)
            };
            write_out(out, &text)
        }
        ListWhat::Daemons => {
            let d = b.daemons()?;
            let text = if json {
                serde_json::to_string(&d).unwrap_or_default() + "\n"
            } else {
                format::daemons(&d)
            };
            write_out(out, &text)
        }
        ListWhat::Connections => {
            if b.kind() != Kind::Ipvs {
                return Err(Error::Usage(
                    "the nft backend's connections are conntrack's: `conntrack -L`".into(),
                ));
            }
            let text = std::fs::read_to_string("/proc/net/ip_vs_conn")
                .map_err(|e| Error::Refused(format!("cannot open file /proc/net/ip_vs_conn: {e}")))?;
            let conns = format::parse_conns(&text);
            let text = if json {
                serde_json::to_string(&conns).unwrap_or_default() + "\n"
            } else {
                format::conns(&conns, f)
            };
            write_out(out, &text)
        }
    }
}

/// `-v`.
pub fn version(program: &str) -> String {
    format!(
        "{program} (hakit lvs-ctl {}; ipvsadm v1.31 compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `-h`: ipvsadm's synopsis and every option of the table.
pub fn help(program: &str) -> String {
    let mut s = format!(
        "{}\nUsage:\n  {program} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n  \
         {program} -D virtual-service\n  {program} -C\n  {program} -R\n  {program} -S [-n]\n  \
         {program} -a|e virtual-service -r server-address [options]\n  {program} -d virtual-service -r server-address\n  \
         {program} -L|l [virtual-service] [options]\n  {program} -Z [virtual-service]\n  {program} --set tcp tcpfin udp\n  \
         {program} --start-daemon {{master|backup}} [daemon-options]\n  {program} --stop-daemon {{master|backup}}\n  {program} -h\n\n\
         virtual-service:\n  --tcp-service|-t  service-address   host[:port]\n  --udp-service|-u  service-address   host[:port]\n  \
         --sctp-service    service-address   host[:port]\n  --fwmark-service|-f fwmark          fwmark [-6]\n\nOptions:\n",
        version(program).trim_end()
    );
    for o in ipvsadm::OPTIONS {
        let short = o.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let arg = match o.arg {
            ipvsadm::Arg::None => String::new(),
            ipvsadm::Arg::Required(v) => format!(" {v}"),
            ipvsadm::Arg::Optional(v) => format!(" [{v}]"),
        };
        s.push_str(&format!("  {:<34} {}\n", format!("{short}--{}{arg}", o.long), o.help));
    }
    s
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::tools::lvs_ctl::model::*;

    /// A backend in memory, for the logic above the kernel: it refuses what IPVS
    /// refuses (through Table::apply) and can be told to fail the nth change.
    pub struct Memory {
        pub table: Table,
        pub fail_at: Option<usize>,
        pub commits: usize,
    }

    impl Default for Memory {
        fn default() -> Memory {
            Memory::new()
        }
    }

    impl Memory {
        pub fn new() -> Memory {
            Memory {
                table: Table::empty(Info {
                    version: 0x010201,
                    size: 4096,
                }),
                fail_at: None,
                commits: 0,
            }
        }
    }

    impl Backend for Memory {
        fn kind(&self) -> Kind {
            Kind::Nft
        }
        fn read(&mut self) -> backend::Result<Table> {
            let mut t = self.table.clone();
            t.sort();
            Ok(t)
        }
        fn check(&self, c: &Change) -> backend::Result<()> {
            match c {
                Change::AddService(s) | Change::EditService(s) if s.scheduler == "wlc" => {
                    Err(backend::Error::Usage("the test backend cannot do wlc".into()))
                }
                _ => Ok(()),
            }
        }
        fn commit(&mut self, _current: &Table, changes: &[Change]) -> backend::Result<()> {
            let mut t = self.table.clone();
            for (i, c) in changes.iter().enumerate() {
                if self.fail_at == Some(i) {
                    return Err(backend::Error::Kernel("injected failure".into()));
                }
                t.apply(c).map_err(|r| backend::Error::Kernel(r.to_string()))?;
            }
            self.table = t;
            self.commits += 1;
            Ok(())
        }
    }

    fn cmd(b: &mut Memory, line: &str) -> Result<String, Error> {
        let args: Vec<&str> = line.split_whitespace().collect();
        let inv = ipvsadm::parse_args(&args)?;
        let mut out = Vec::new();
        run(&inv, b, &mut std::io::empty(), &mut out, "lvs-ctl")?;
        Ok(String::from_utf8(out).unwrap())
    }

    const RULES: &str = "-A -t 10.0.0.1:80 -s rr\n\
                         -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n\
                         -a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 2\n\
                         -A -u 10.0.0.1:53 -s sh -p 60\n";

    #[test]
    fn restore_then_save_round_trips() {
        let mut b = Memory::new();
        restore(&mut b, RULES, "stdin").unwrap();
        assert_eq!(b.commits, 1, "one commit for the whole file");
        let saved = cmd(&mut b, "-S -n").unwrap();
        assert_eq!(
            saved,
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n-a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 2\n-A -u 10.0.0.1:53 -s sh -p 60\n"
        );
        let mut again = Memory::new();
        restore(&mut again, &saved, "stdin").unwrap();
        assert_eq!(again.table, b.table);
    }

    #[test]
    fn restore_is_all_or_nothing() {
        let mut b = Memory::new();
        cmd(&mut b, "-A -t 10.0.0.9:80 -s rr").unwrap();
        let before = b.table.clone();
        for (bad, want) in [
            (
                format!("{RULES}-a -t 10.0.0.1:80 -r 10.0.0.4:80 -w 99999\n"),
                "stdin:5:",
            ),
            (
                format!("{RULES}-a -t 10.0.0.7:80 -r 10.0.0.4:80\n"),
                "stdin:5: Service not defined",
            ),
            (
                format!("{RULES}-A -t 10.0.0.9:80 -s rr\n"),
                "stdin:5: Service already exists",
            ),
            (
                format!("-A -t 10.0.0.8:80\n{RULES}"),
                "stdin:1: the test backend cannot do wlc",
            ),
            (format!("{RULES}-L -n\n"), "stdin:5:1: only changes"),
        ] {
            let e = restore(&mut b, &bad, "stdin").unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
            assert_eq!(e.exit_status(), ExitStatus::Usage);
            assert_eq!(b.table, before, "nothing changed");
        }
        // --set where the backend has no timeouts: refused before the table changes.
        let e = restore(&mut b, &format!("{RULES}--set 10 10 10\n"), "stdin").unwrap_err();
        assert_eq!(e.exit_status(), ExitStatus::Usage, "{e}");
        assert!(e.to_string().contains("nothing was changed"), "{e}");
        assert_eq!(b.table, before);
        // A backend that refuses the commit: its error, and the table as the backend
        // left it (Memory commits all or nothing; the real backends' rollback is tested
        // against their kernels in tests/lvs_nft.rs and tests/lvs_ipvs.rs).
        b.fail_at = Some(2);
        let e = restore(&mut b, RULES, "stdin").unwrap_err();
        assert_eq!(e.exit_status(), ExitStatus::Failure);
        assert_eq!(b.table, before);
    }

    #[test]
    fn single_commands_refuse_like_ipvsadm() {
        let mut b = Memory::new();
        cmd(&mut b, "-A -t 10.0.0.1:80 -s rr").unwrap();
        let e = cmd(&mut b, "-A -t 10.0.0.1:80 -s rr").unwrap_err();
        assert_eq!(e.to_string(), "Service already exists");
        assert_eq!(e.exit_status(), ExitStatus::Usage, "found before anything is sent");
        let e = cmd(&mut b, "-e -t 10.0.0.1:80 -r 10.0.0.2").unwrap_err();
        assert_eq!(e.to_string(), "No such destination");
        let e = cmd(&mut b, "-L -n -t 10.0.0.5:80").unwrap_err();
        assert_eq!(e.to_string(), "No such service");
        cmd(&mut b, "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 0").unwrap();
        let out = cmd(&mut b, "-L -n").unwrap();
        assert!(
            out.contains("  -> 10.0.0.2:80                  Route   0      0          0         \n"),
            "{out}"
        );
        let out = cmd(&mut b, "-L -n --json").unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["services"][0]["dests"][0]["weight"], 0);
        assert!(cmd(&mut b, "-h").unwrap().contains("--persistent-conn"));
    }
}
