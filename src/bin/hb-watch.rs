use clap::Parser;
use hakit::cli::hb_watch::{Command, HbWatchArgs};
use hakit::config::{self, WatchSettings};
use hakit::exit::{report, ExitStatus};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = HbWatchArgs::parse();
    if let Some(Command::Status(st)) = &args.command {
        hakit::log::init("hb-watch", false, false, false);
        return match config::table_path(&st.table, &st.config) {
            Ok(t) => hakit::status::run(&t, st.node.as_deref(), st.link.as_deref(), st.json).into(),
            Err(e) => report(&e).into(),
        };
    }
    let run = &args.run;
    hakit::log::init("hb-watch", run.cluster.syslog, run.cluster.verbose, run.cluster.quiet);
    let settings = match WatchSettings::resolve(run) {
        Ok(s) => s,
        Err(e) => return report(&e).into(),
    };
    match hakit::watcher::run(settings, || WatchSettings::resolve(run)) {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
