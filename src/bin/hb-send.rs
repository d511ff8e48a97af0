use clap::Parser;
use hakit::cli::hb_send::HbSendArgs;
use hakit::config::SendSettings;
use hakit::exit::{report, ExitStatus};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = HbSendArgs::parse();
    let c = &args.cluster;
    hakit::log::init("hb-send", c.syslog, c.verbose, c.quiet);
    let settings = match SendSettings::resolve(&args) {
        Ok(s) => s,
        Err(e) => return report(&e).into(),
    };
    match hakit::sender::run(settings, || SendSettings::resolve(&args)) {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
