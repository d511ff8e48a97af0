//! What the binary does with its arguments: ipvsadm's command line, or a subcommand.
//! Kept here rather than in src/bin so that the choice between the two is tested.

use super::backend::{self, Kind};
use super::cli::{Command, DirectorWhat, LvsCtlArgs};
use super::{apply, config, director, follow, health, run, status};
use crate::base::exit::{report, ExitStatus};
use clap::Parser;
use std::path::{Path, PathBuf};

const SUBCOMMANDS: &[&str] = &["apply", "diff", "follow", "status", "director", "cgi", "help"];

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
        Command::Apply(x) | Command::Diff(x) => &x.common,
        Command::Follow(x) => &x.common,
        Command::Status(x) => &x.common,
        Command::Cgi(x) => &x.common,
        Command::Director(x) => &x.common,
    };
    crate::base::log::init("lvs-ctl", false, false, common.quiet);
    match &cmd {
        Command::Apply(x) | Command::Diff(x) => {
            let Some(path) = config_path(&x.file) else {
                crate::base::log::error(
                    "no configuration: give FILE (or HAKIT_CONFIG); /etc/hakit/hakit.yaml does not exist",
                );
                return ExitStatus::Usage;
            };
            let cfg = match config::load(&path) {
                Ok(c) => c,
                Err(e) => return report(&e),
            };
            let mut b = match backend::open(backend::choose(x.common.backend, cfg.backend)) {
                Ok(b) => b,
                Err(e) => return report(&e),
            };
            crate::base::signals::die_on_broken_pipe();
            let mut out = std::io::stdout().lock();
            if matches!(cmd, Command::Diff(_)) {
                // Real servers a running follower holds out stay out.
                let health = health::load_live_state(&x.state).unwrap_or_default();
                let want = |t: &super::model::Table| apply::desired(&cfg, t, &health);
                return match apply::diff(b.as_mut(), want, x.json, &mut out) {
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
            // Real servers a running follower holds out stay out.
            let health = health::load_live_state(&x.state).unwrap_or_default();
            let want = |t: &super::model::Table| apply::desired(&cfg, t, &health);
            finish(apply::apply(b.as_mut(), want, x.json, &mut out).map(|_| ()))
        }
        Command::Follow(x) => {
            let path = x.config.clone().unwrap_or_else(|| crate::config::DEFAULT_CONFIG.into());
            let cfg = match config::load(&path) {
                Ok(c) => c,
                Err(e) => return report(&e),
            };
            let b = match backend::open(backend::choose(x.common.backend, cfg.backend)) {
                Ok(b) => b,
                Err(e) => return report(&e),
            };
            match follow::run(x, cfg, b) {
                Ok(()) => ExitStatus::Success,
                Err(e) => report(&e),
            }
        }
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
    }
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
