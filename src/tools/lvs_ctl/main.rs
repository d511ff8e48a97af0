//! What the binary does with its arguments: ipvsadm's command line, or a subcommand.
//! Kept here rather than in src/bin so that the choice between the two is tested.

use super::backend::{self, Kind};
use super::cli::{Command, DirectorWhat, LvsCtlArgs};
use super::{apply, config, director, follow, health, run, snmp, status, weights};
use crate::base::exit::{report, ExitStatus};
use clap::Parser;
use std::path::{Path, PathBuf};

const SUBCOMMANDS: &[&str] = &[
    "apply", "diff", "remove", "follow", "status", "director", "cgi", "join", "snmp", "weight", "help",
];

/// How the arguments are read.
#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// ipvsadm's command line (named `ipvsadm`, or options with no subcommand).
    Ipvsadm,
    /// lvs-ctl's subcommands, and its own -h/--help/-V/--version.
    Subcommand,
}

/// Invoked as `ipvsadm` it is ipvsadm whatever follows; otherwise a subcommand name, or
/// a lone help/version flag, is lvs-ctl's own, and anything else is ipvsadm's.
pub fn mode(program: &str, args: &[String]) -> Mode {
    if program == "ipvsadm" {
        return Mode::Ipvsadm;
    }
    match args.first().map(String::as_str) {
        Some(a) if SUBCOMMANDS.contains(&a) => Mode::Subcommand,
        Some("-h" | "--help" | "-V" | "--version") if args.len() == 1 => Mode::Subcommand,
        _ => Mode::Ipvsadm,
    }
}

/// The configuration file a command reads: given, `HAKIT_CONFIG`, or the default when
/// it exists.
pub(super) fn config_path(given: &Option<PathBuf>) -> Option<PathBuf> {
    given
        .clone()
        .or_else(|| std::env::var_os("HAKIT_CONFIG").map(PathBuf::from))
        .or_else(|| {
            Path::new(crate::config::DEFAULT_CONFIG)
                .exists()
                .then(|| crate::config::DEFAULT_CONFIG.into())
        })
}

/// The whole run; returns the exit status.
pub fn main(argv: Vec<String>) -> ExitStatus {
    let program = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lvs-ctl".into());
    let args = &argv[1.min(argv.len())..];
    match mode(&program, args) {
        Mode::Ipvsadm => ipvsadm_main(&program, args),
        Mode::Subcommand => {
            if args.len() == 1 && matches!(args[0].as_str(), "-h" | "--help" | "-V" | "--version") {
                let mut cmd = super::cli::command_with_ipvsadm_options();
                let text = if args[0].starts_with("-V") || args[0] == "--version" {
                    cmd.render_version().to_string()
                } else {
                    cmd.render_long_help().to_string()
                };
                print!("{text}");
                return ExitStatus::Success;
            }
            let a = LvsCtlArgs::parse_from(&argv);
            subcommand_main(a)
        }
    }
}

fn ipvsadm_main(program: &str, args: &[String]) -> ExitStatus {
    crate::base::log::init(program, false, false, false);
    let inv = match super::ipvsadm::parse_args(args) {
        Ok(i) => i,
        Err(e) => {
            crate::base::log::error(&e.to_string());
            eprintln!("Try `{program} -h' or '{program} --help' for more information.");
            return ExitStatus::Usage;
        }
    };
    crate::base::signals::die_on_broken_pipe();
    let mut stdout = std::io::stdout().lock();
    if matches!(
        inv.command,
        super::ipvsadm::Command::Help | super::ipvsadm::Command::Version
    ) {
        let mut none = NoBackend;
        return finish(run::run(&inv, &mut none, &mut std::io::empty(), &mut stdout, program));
    }
    // A restore file is read and parsed whole before a backend is opened: a bad line
    // is a usage error on any machine, and stdin is never left half read.
    let mut stdin_text = String::new();
    if inv.command == super::ipvsadm::Command::Restore {
        use std::io::Read;
        if let Err(e) = std::io::stdin().lock().read_to_string(&mut stdin_text) {
            crate::base::log::error(&format!("stdin: {e}"));
            return ExitStatus::Usage;
        }
        if let Err(e) = run::parse_restore(&stdin_text, "stdin") {
            return report(&e);
        }
    }
    // With --backend the file has nothing to say: it is not read, so a broken one does
    // not stop ldirectord's calls that name the backend.
    let file_backend = match config_path(&None).filter(|_| inv.backend.is_none()) {
        None => None,
        Some(p) => match crate::config::Source::read(&p).and_then(|s| config::backend_of(&s)) {
            Ok(k) => k,
            Err(e) => return report(&e),
        },
    };
    let mut b = match backend::open(backend::choose(inv.backend, file_backend)) {
        Ok(b) => b,
        Err(e) => return report(&e),
    };
    finish(run::run(
        &inv,
        b.as_mut(),
        &mut stdin_text.as_bytes(),
        &mut stdout,
        program,
    ))
}

/// The `lvs-ctl` section of FILE (or HAKIT_CONFIG, or the default file) and the table
/// it says: what apply, diff and remove start from.
fn file_and_table(
    file: &Option<PathBuf>,
    flag: Option<Kind>,
) -> Result<(config::Config, Box<dyn backend::Backend>), ExitStatus> {
    let Some(path) = config_path(file) else {
        crate::base::log::error("no configuration: give FILE (or HAKIT_CONFIG); /etc/hakit/hakit.yaml does not exist");
        return Err(ExitStatus::Usage);
    };
    let cfg = config::load(&path).map_err(|e| report(&e))?;
    let b = backend::open(backend::choose(flag, cfg.backend)).map_err(|e| report(&e))?;
    Ok((cfg, b))
}

/// The services the file names.
fn named(cfg: &config::Config) -> Vec<super::model::ServiceKey> {
    cfg.services.iter().map(|v| v.service.key).collect()
}

/// `--only`: the file's services as it wants them, the table's others as they are.
fn scoped(only: bool, current: &super::model::Table, want: super::model::Table) -> super::model::Table {
    if only {
        apply::only(current, want)
    } else {
        want
    }
}

fn finish(r: Result<(), run::Error>) -> ExitStatus {
    match r {
        Ok(()) => ExitStatus::Success,
        Err(e) => report(&e),
    }
}

fn subcommand_main(a: LvsCtlArgs) -> ExitStatus {
    let Some(cmd) = a.command else {
        return ExitStatus::Usage;
    };
    let common = match &cmd {
        // A real server's side: no table, no configuration, its own log.
        Command::Join(x) => return super::joiner::main(x),
        Command::Apply(x) | Command::Diff(x) => &x.common,
        Command::Remove(x) => &x.common,
        Command::Follow(x) => &x.common,
        Command::Status(x) => &x.common,
        Command::Cgi(x) => &x.common,
        Command::Director(x) => &x.common,
        Command::Snmp(x) => &x.common,
        Command::Weight(x) => &x.common,
    };
    // snmpd gives its pass_persist children their stdout as stderr too: a log line
    // there would be read as an answer, so `snmp` logs to syslog when started so.
    let syslog = matches!(cmd, Command::Snmp(_)) && snmp::stderr_is_stdout();
    crate::base::log::init("lvs-ctl", syslog, false, common.quiet);
    match &cmd {
        Command::Apply(x) | Command::Diff(x) => {
            let (cfg, mut b) = match file_and_table(&x.file, x.common.backend) {
                Ok(x) => x,
                Err(status) => return status,
            };
            crate::base::signals::die_on_broken_pipe();
            let mut out = std::io::stdout().lock();
            if matches!(cmd, Command::Diff(_)) {
                let health = match kept(&x.state) {
                    Ok(h) => h,
                    Err(e) => return report(&e),
                };
                let keys = named(&cfg);
                let want = |t: &super::model::Table| scoped(x.only, t, apply::desired(&cfg, t, &health));
                return match apply::diff(b.as_mut(), want, x.json, x.only.then_some(&keys[..]), &mut out) {
                    Ok(true) => ExitStatus::Success,
                    Ok(false) => ExitStatus::Failure,
                    Err(e) => report(&e),
                };
            }
            // A running follower is told to reload first and applies the file itself:
            // were it told after, a tick in between would take this apply for drift and
            // undo it with the old file. Then apply finds what is left (nothing, when
            // the follower follows this same file).
            if let Some((_, w)) = health::load_live(&x.state) {
                match health::reload_follower(&x.state) {
                    Ok(true) => {
                        let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
                        while std::time::Instant::now() < end
                            && health::load_live(&x.state).is_some_and(|(_, n)| n.written == w.written)
                        {
                            std::thread::sleep(std::time::Duration::from_millis(10));
                        }
                    }
                    Ok(false) => {}
                    Err(e) => crate::base::log::warn(&format!("the follower was not told to reload: {e}")),
                }
            }
            let health = match kept(&x.state) {
                Ok(h) => h,
                Err(e) => return report(&e),
            };
            let want = |t: &super::model::Table| scoped(x.only, t, apply::desired(&cfg, t, &health));
            finish(apply::apply(b.as_mut(), want, x.json, &mut out).map(|_| ()))
        }
        Command::Remove(x) => {
            let (cfg, mut b) = match file_and_table(&x.file, x.common.backend) {
                Ok(x) => x,
                Err(status) => return status,
            };
            crate::base::signals::die_on_broken_pipe();
            let keys = named(&cfg);
            let want = |t: &super::model::Table| apply::without(t, &keys);
            finish(apply::apply(b.as_mut(), want, x.json, &mut std::io::stdout().lock()).map(|_| ()))
        }
        Command::Follow(x) => {
            let path = x.config.clone().unwrap_or_else(|| crate::config::DEFAULT_CONFIG.into());
            let cfg = match config::load(&path) {
                Ok(c) => c,
                Err(e) => return report(&e),
            };
            let mon = match super::join_checks::load(&path, &cfg) {
                Ok(m) => m,
                Err(e) => return report(&e),
            };
            let b = match backend::open(backend::choose(x.common.backend, cfg.backend)) {
                Ok(b) => b,
                Err(e) => return report(&e),
            };
            match follow::run(x, cfg, mon, b) {
                Ok(()) => ExitStatus::Success,
                Err(e) => report(&e),
            }
        }
        // Taken above.
        Command::Join(_) => ExitStatus::Usage,
        Command::Status(x) => {
            let cfg = match config_path(&x.config) {
                None => None,
                Some(p) => match config::load(&p) {
                    Ok(c) => Some(c),
                    Err(e) => return report(&e),
                },
            };
            let file_backend = cfg.as_ref().and_then(|c| c.backend);
            let mut b = match backend::open(backend::choose(x.common.backend, file_backend)) {
                Ok(b) => b,
                Err(e) => return report(&e),
            };
            crate::base::signals::die_on_broken_pipe();
            match status::run(x, cfg, b.as_mut()) {
                Ok(()) => ExitStatus::Success,
                Err(e) => report(&e),
            }
        }
        Command::Cgi(x) => super::web::main(x),
        Command::Director(x) => {
            let path = config_path(&x.file).unwrap_or_else(|| crate::config::DEFAULT_CONFIG.into());
            let node = x.node.clone().unwrap_or_else(crate::config::uname_node);
            let out = director::load(&path)
                .map_err(director::DirError::from)
                .and_then(|d| match x.what {
                    DirectorWhat::Show => d.shell(&node),
                    DirectorWhat::Conntrackd => d.conntrackd_conf(&node, &x.state_dir),
                });
            match out {
                Ok(text) => {
                    print!("{text}");
                    ExitStatus::Success
                }
                Err(e) => report(&e),
            }
        }
        Command::Snmp(x) => match snmp::main(x, config_path(&x.config)) {
            Ok(()) => ExitStatus::Success,
            Err(e) => report(&e),
        },
        Command::Weight(x) => {
            let Some(service) = health::parse_service_name(&x.service) else {
                crate::base::log::error(&format!(
                    "SERVICE: `{}' is not a service (tcp/ADDRESS:PORT, udp/..., sctp/..., fwmark/N[/ipv6])",
                    x.service
                ));
                return ExitStatus::Usage;
            };
            let Ok(real) = x.real.parse::<std::net::SocketAddr>() else {
                crate::base::log::error(&format!("REAL: `{}' is not ADDRESS:PORT", x.real));
                return ExitStatus::Usage;
            };
            let cfg = match config_path(&x.config) {
                None => None,
                Some(p) => match config::load(&p) {
                    Ok(c) => Some(c),
                    Err(e) => return report(&e),
                },
            };
            let mut b = match backend::open(backend::choose(x.common.backend, cfg.as_ref().and_then(|c| c.backend))) {
                Ok(b) => b,
                Err(e) => return report(&e),
            };
            let w = if x.reset { None } else { x.weight };
            match weights::set(&x.state, cfg.as_ref(), b.as_mut(), service, real, w) {
                Ok(_) => ExitStatus::Success,
                Err(e) => report(&e),
            }
        }
    }
}

/// What `apply` and `diff` keep: the real servers a running follower holds out stay
/// out, and the operator weights stand.
fn kept(state: &Path) -> Result<health::Health, weights::Error> {
    let mut h = health::load_live_state(state).unwrap_or_default();
    h.weights = weights::load(&weights::path_for(state)).map_err(weights::Error::Usage)?;
    Ok(h)
}

/// What help and version run against: they touch no table.
struct NoBackend;

impl backend::Backend for NoBackend {
    fn kind(&self) -> Kind {
        Kind::Nft
    }
    fn read(&mut self) -> backend::Result<super::model::Table> {
        Err(self.lacks("table"))
    }
    fn check(&self, _c: &super::model::Change) -> backend::Result<()> {
        Err(self.lacks("table"))
    }
    fn commit(&mut self, _t: &super::model::Table, _c: &[super::model::Change]) -> backend::Result<()> {
        Err(self.lacks("table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn which_command_line() {
        assert_eq!(mode("lvs-ctl", &v("-L -n")), Mode::Ipvsadm);
        assert_eq!(mode("lvs-ctl", &v("")), Mode::Ipvsadm);
        assert_eq!(mode("lvs-ctl", &v("apply x.yaml")), Mode::Subcommand);
        assert_eq!(mode("lvs-ctl", &v("-h")), Mode::Subcommand);
        assert_eq!(mode("lvs-ctl", &v("--backend nft -L")), Mode::Ipvsadm);
        assert_eq!(mode("ipvsadm", &v("-h")), Mode::Ipvsadm);
        assert_eq!(mode("ipvsadm", &v("status")), Mode::Ipvsadm);
    }
}
