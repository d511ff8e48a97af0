use clap::Parser;
use hakit::base::exit::{report, ExitStatus};
use hakit::tools::hb_send::cli::HbSendArgs;
use hakit::tools::hb_send::settings::SendSettings;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = HbSendArgs::parse();
    let c = &args.cluster;
    hakit::base::log::init("hb-send", c.syslog, c.verbose, c.quiet);
    let settings = match SendSettings::resolve(&args) {
        Ok(s) => s,
        Err(e) => return report(&e).into(),
    };
    match hakit::tools::hb_send::send::run(settings, || SendSettings::resolve(&args)) {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
