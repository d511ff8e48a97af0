use clap::Parser;
use hakit::base::exit::{report, ExitStatus};
use hakit::tools::chan_switch::cli::{ChanSwitchArgs, Command};
use hakit::tools::chan_switch::settings::{self, RunSettings};
use hakit::tools::chan_switch::{run, status};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args = ChanSwitchArgs::parse();
    let (common, wait) = match &args.command {
        Command::Run(a) => {
            hakit::base::log::init("chan-switch", a.common.syslog, a.common.verbose, a.common.quiet);
            let s = match RunSettings::resolve(a) {
                Ok(s) => s,
                Err(e) => return report(&e).into(),
            };
            return match run::run(s, || RunSettings::resolve(a)) {
                Ok(()) => ExitStatus::Success.into(),
                Err(e) => report(&e).into(),
            };
        }
        Command::Status(s) => (&s.common, None),
        Command::To(t) => (&t.common, t.wait),
        Command::Back(b) => (&b.common, b.wait),
    };
    hakit::base::signals::die_on_broken_pipe();
    hakit::base::log::init("chan-switch", common.syslog, common.verbose, common.quiet);
    let c = match settings::common(common) {
        Ok(c) => c,
        Err(e) => return report(&e).into(),
    };
    let wait = wait.unwrap_or(Duration::from_secs(5));
    let r = match &args.command {
        Command::Status(s) => status::status(&c, s.json),
        Command::To(t) => status::ask(&c, Some(&t.channel), wait),
        _ => status::ask(&c, None, wait),
    };
    match r {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
