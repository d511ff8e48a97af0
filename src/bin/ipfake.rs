use clap::Parser;
use hakit::base::exit::{report, ExitStatus};
use hakit::tools::ipfake::cli::{Command, IpfakeArgs};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = IpfakeArgs::parse();
    hakit::base::log::init("ipfake", false, false, args.quiet);
    let (section, src) = match hakit::config::ipfake_section(&args.config) {
        Ok(x) => x,
        Err(e) => return report(&e).into(),
    };
    let pid_dir = args
        .pid_dir
        .clone()
        .or_else(|| section.pid_dir.clone())
        .unwrap_or_else(|| "/run/hakit".into());
    let res = match &args.command {
        Command::Up(a) => hakit::tools::ipfake::takeover::Takeover::resolve(a, &section, &src)
            .and_then(|t| hakit::tools::ipfake::takeover::up(&t, &pid_dir)),
        Command::Down(a) => hakit::tools::ipfake::takeover::down(a, &pid_dir),
        Command::Status(a) => return hakit::tools::ipfake::takeover::status(a, &pid_dir).into(),
        Command::Fake(a) => hakit::tools::ipfake::takeover::fake(a, &pid_dir),
    };
    match res {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
