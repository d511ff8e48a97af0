//! `lvs-ctl join`: a real server's side of joining a pool at run time (join.rs has the
//! messages and the directors' side). Its flags are checked first, before anything is
//! sent; then it says `t=join` through hb-send's FIFO now and every `--every`, and
//! `t=leave` on TERM/INT. While hb-send is not there (not started yet, restarting) the
//! join is said again as soon as it reads its FIFO; a FIFO we must not write to (a
//! symlink, not a FIFO, another user's) is refused at start, exit 2.

use super::cli::JoinArgs;
use super::health;
use super::join::Announce;
use super::model::ServiceKey;
use crate::base::exit::{report, ExitStatus, HasExitStatus};
use crate::base::runloop::RunLoop;
use crate::base::{clock, log};
use crate::wire::fifo::{self, OpenError};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// A bad flag, or a FIFO we must not write to: nothing was sent.
    Usage(String),
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::Failed(_) => ExitStatus::Failure,
        }
    }
}

/// The checked flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub fifo: PathBuf,
    pub join: Announce,
    pub every: Duration,
}

pub fn settings(a: &JoinArgs) -> Result<Settings, Error> {
    let service = health::parse_service_name(&a.service).ok_or_else(|| {
        Error::Usage(format!(
            "--service `{}`: write tcp/VIP:PORT, udp/..., sctp/..., or fwmark/N[/ipv6]",
            a.service
        ))
    })?;
    let addr = crate::net::addr::parse_unicast(&a.addr).map_err(|e| Error::Usage(format!("--addr: {e}")))?;
    let port = match (a.port, service) {
        (Some(p), _) => p,
        (None, ServiceKey::Addr { port, .. }) => port,
        (None, ServiceKey::Fwmark { .. }) => {
            return Err(Error::Usage(
                "--port: a fwmark service has no port of its own; give one".into(),
            ))
        }
    };
    if a.weight > super::model::WEIGHT_MAX {
        return Err(Error::Usage(format!(
            "--weight {}: 0 to {}",
            a.weight,
            super::model::WEIGHT_MAX
        )));
    }
    if a.every < Duration::from_millis(100) {
        return Err(Error::Usage(format!(
            "--every {}: at least 100ms",
            crate::base::duration::format(a.every)
        )));
    }
    Ok(Settings {
        fifo: a.fifo.clone(),
        join: Announce {
            join: true,
            service,
            addr,
            port,
            weight: a.weight,
        },
        every: a.every,
    })
}

pub fn main(a: &JoinArgs) -> ExitStatus {
    log::init("lvs-ctl", false, false, a.quiet);
    match settings(a).and_then(|s| run(&s)) {
        Ok(()) => ExitStatus::Success,
        Err(e) => report(&e),
    }
}

/// Say the join until TERM/INT, then the leave.
pub fn run(s: &Settings) -> Result<(), Error> {
    let mut rl = RunLoop::new().map_err(|e| Error::Failed(format!("cannot install the signal handlers: {e}")))?;
    // Refused now rather than never sent; absent (hb-send not yet there) is waited for.
    if let Err(OpenError::Refused(m)) = fifo::open_writer(&s.fifo) {
        return Err(Error::Usage(m));
    }
    let mut out = fifo::Writer::new(&s.fifo, "the join and its renewals");
    let join = s.join.block();
    let leave = Announce {
        join: false,
        ..s.join.clone()
    }
    .block();
    let every = s.every.as_nanos().min(u64::MAX as u128 / 2) as u64;
    // While hb-send is away, try again soon rather than a whole lease later.
    let retry = every.min(500_000_000);
    let what = format!("{} as {}", health::service_name(&s.join.service), s.join.real());
    let mut said = false;
    loop {
        let sent = out.write(&join);
        if sent && !said {
            log::info(&format!(
                "joining {what}, said again every {}",
                crate::base::duration::format(s.every)
            ));
        }
        said |= sent;
        let deadline = clock::mono_ns().saturating_add(if sent { every } else { retry });
        while clock::mono_ns() < deadline {
            rl.wait(&[], deadline);
            if rl.signals().stop() {
                if out.write(&leave) {
                    log::info(&format!("left {what}"));
                } else {
                    log::warn(&format!(
                        "the leave of {what} could not be sent; the directors take it out when its lease lapses"
                    ));
                }
                return Ok(());
            }
            rl.signals().take_reload();
            if rl.signals().take_usr1() {
                log::info(&format!("joining {what}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(service: &str, addr: &str) -> JoinArgs {
        JoinArgs {
            fifo: "/run/hakit/fifo".into(),
            service: service.into(),
            addr: addr.into(),
            port: None,
            weight: 1,
            every: Duration::from_secs(5),
            quiet: true,
        }
    }

    #[test]
    fn flags_are_checked_before_anything_is_sent() {
        let s = settings(&args("tcp/10.77.1.100:80", "10.77.2.7")).unwrap();
        assert_eq!(s.join.port, 80, "the service's port by default");
        assert_eq!(
            s.join.block(),
            ">>>\nt=join\nservice=tcp/10.77.1.100:80\naddr=10.77.2.7\nport=80\nweight=1\n<<<\n"
        );
        for (a, want) in [
            (
                args("tcp 10.77.1.100:80", "10.77.2.7"),
                "--service `tcp 10.77.1.100:80`",
            ),
            (
                args("tcp/10.77.1.100:80", "10.77.2"),
                "--addr: `10.77.2` is not an IP address",
            ),
            (args("tcp/10.77.1.100:80", "255.255.255.255"), "--addr"),
            (args("fwmark/3", "10.77.2.7"), "--port"),
            (
                JoinArgs {
                    weight: 70000,
                    ..args("tcp/10.77.1.100:80", "10.77.2.7")
                },
                "--weight 70000",
            ),
            (
                JoinArgs {
                    every: Duration::ZERO,
                    ..args("tcp/10.77.1.100:80", "10.77.2.7")
                },
                "--every",
            ),
        ] {
            let e = settings(&a).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
            assert_eq!(e.exit_status(), ExitStatus::Usage);
        }
    }

    #[test]
    fn a_fifo_we_must_not_write_to_is_refused_and_an_absent_one_waited_for() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        for p in [&plain, &link] {
            assert!(matches!(fifo::open_writer(p), Err(OpenError::Refused(_))), "{p:?}");
        }
        assert!(matches!(
            fifo::open_writer(&d.path().join("none")),
            Err(OpenError::Absent(_))
        ));
        let f = d.path().join("fifo");
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            matches!(fifo::open_writer(&f), Err(OpenError::Absent(m)) if m.contains("nobody reads it")),
            "no reader: ENXIO"
        );
    }
}
