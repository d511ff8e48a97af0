use clap::Parser;
use hakit::base::exit::{report, ExitStatus};
use hakit::tools::ipfake::cli::{Command, IpfakeArgs};
use hakit::tools::ipfake::{mirror, settings, takeover};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = IpfakeArgs::parse();
    hakit::base::log::init("ipfake", false, false, args.quiet);
    let (section, src) = match settings::section(&args.config, args.haresources.as_deref()) {
        Ok(x) => x,
        Err(e) => return report(&e).into(),
    };
    let pid_dir = match settings::pid_dir(&args, &section, src.as_ref()) {
        Ok(d) => d,
        Err(e) => return report(&e).into(),
    };
    let res = match &args.command {
        Command::Up(a) if a.check => {
            settings::Takeover::resolve(a, &section, src.as_ref()).and_then(|t| takeover::check(&t))
        }
        Command::Up(a) => {
            settings::Takeover::resolve(a, &section, src.as_ref()).and_then(|t| takeover::up(&t, &pid_dir))
        }
        Command::Down(a) => takeover::down(a, &pid_dir),
        Command::Status(a) => {
            hakit::base::signals::die_on_broken_pipe();
            return takeover::status(a, &pid_dir).into();
        }
        Command::Fake(a) => takeover::fake(a, &pid_dir),
        Command::Mirror(a) => {
            hakit::base::signals::die_on_broken_pipe();
            let order = settings::MirrorOrder::resolve(a);
            if a.check_only() {
                return order.map_or_else(|e| report(&e).into(), |_| ExitStatus::Success.into());
            }
            return match order.and_then(|o| mirror::run(&o)) {
                Ok(s) => s.into(),
                Err(e) => report(&e).into(),
            };
        }
    };
    match res {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
