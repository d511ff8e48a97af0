use clap::Parser;
use hakit::base::exit::{report, ExitStatus};
use hakit::tools::hb_watch::cli::{Command, HbWatchArgs};
use hakit::tools::hb_watch::settings::{self, WatchSettings};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = HbWatchArgs::parse();
    if let Some(Command::Status(st)) = &args.command {
        hakit::base::signals::die_on_broken_pipe();
        hakit::base::log::init("hb-watch", false, false, false);
        return match settings::table_path(&st.table, &st.config) {
            Ok(t) if st.prometheus || st.prometheus_out.is_some() => {
                hakit::tools::hb_watch::status::run_prometheus(&t, st.prometheus_out.as_deref()).into()
            }
            Ok(t) => hakit::tools::hb_watch::status::run(&t, st.node.as_deref(), st.link.as_deref(), st.json).into(),
            Err(e) => report(&e).into(),
        };
    }
    if let Some(Command::Forget(f)) = &args.command {
        hakit::base::log::init("hb-watch", false, false, false);
        return match settings::forget_paths(&f.table, &f.floors, &f.config) {
            Ok((t, fl)) => hakit::tools::hb_watch::floors::forget_command(&t, &fl, &f.node).into(),
            Err(e) => report(&e).into(),
        };
    }
    let run = &args.run;
    hakit::base::log::init("hb-watch", run.cluster.syslog, run.cluster.verbose, run.cluster.quiet);
    let settings = match WatchSettings::resolve(run) {
        Ok(s) => s,
        Err(e) => return report(&e).into(),
    };
    match hakit::tools::hb_watch::watch::run(settings, || WatchSettings::resolve(run)) {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => report(&e).into(),
    }
}
