use clap::Parser;
use hakit::tools::mon_check::check::spec::Check;
use hakit::tools::mon_check::check::{report, Status};
use hakit::tools::mon_check::cli::{Command, MonCheckArgs};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Bad arguments are UNKNOWN (3), the plugin convention, not clap's 2.
    let args = match MonCheckArgs::try_parse() {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return Status::Unknown.into();
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match &args.command {
        Command::Run(r) => {
            hakit::base::log::init("mon-check", r.syslog, false, r.quiet);
            hakit::tools::mon_check::sched::scheduler::main(r, args.json).into()
        }
        Command::Ctl(c) => {
            hakit::base::signals::die_on_broken_pipe();
            hakit::base::log::init("mon-check", false, false, false);
            hakit::tools::mon_check::sched::ctl::client(c, args.json).into()
        }
        Command::Import(i) => {
            hakit::base::signals::die_on_broken_pipe();
            hakit::base::log::init("mon-check", false, false, false);
            hakit::tools::mon_check::sched::import::main(i).into()
        }
        other => {
            hakit::base::signals::die_on_broken_pipe();
            hakit::base::log::init("mon-check", false, args.verbose > 1, false);
            match Check::from_command(other) {
                Ok(Some((check, hosts))) if args.mon => report::mon(&check, &hosts, args.json, args.verbose).into(),
                Ok(Some((check, hosts))) => report::one_shot(&check, &hosts, args.json, args.verbose).into(),
                Ok(None) => Status::Unknown.into(),
                Err(e) => {
                    println!("MON-CHECK UNKNOWN - {e}");
                    Status::Unknown.into()
                }
            }
        }
    }
}
