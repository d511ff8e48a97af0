use clap::Parser;
use hakit::base::exit::{report, ExitStatus};
use hakit::tools::arp_announce::cli::{ArpAnnounceArgs, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = ArpAnnounceArgs::parse();
    hakit::base::signals::die_on_broken_pipe();
    hakit::base::log::init("arp-announce", false, false, args.announce.quiet);
    match &args.command {
        Some(Command::Probe(p)) => match hakit::tools::arp_announce::probe(p) {
            Ok(None) => ExitStatus::Success.into(),
            Ok(Some(mac)) => {
                println!("{} is in use by {mac}", p.addr);
                ExitStatus::Failure.into()
            }
            Err(e) => report(&e).into(),
        },
        None => {
            let a = &args.announce;
            if a.interface.is_none() || a.addrs.is_empty() {
                hakit::base::log::error("give an interface (-i IFACE) and at least one address");
                return ExitStatus::Usage.into();
            }
            match hakit::tools::arp_announce::announce(a) {
                Ok(_) => ExitStatus::Success.into(),
                Err(e) => report(&e).into(),
            }
        }
    }
}
