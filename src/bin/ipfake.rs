use clap::Parser;
use hakit::cli::ipfake::{Command, IpfakeArgs};
use hakit::exit::{report, ExitStatus};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = IpfakeArgs::parse();
    hakit::log::init("ipfake", false, false, args.quiet);
    let res = match &args.command {
        Command::Up(a) => hakit::takeover::up(a, &args.pid_dir),
        Command::Down(a) => hakit::takeover::down(a, &args.pid_dir),
        Command::Status(a) => return hakit::takeover::status(a, &args.pid_dir).into(),
        Command::Fake(a) => hakit::takeover::fake(a, &args.pid_dir),
    };
    match res {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
