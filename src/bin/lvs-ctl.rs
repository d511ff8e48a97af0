use std::process::ExitCode;

fn main() -> ExitCode {
    // ipvsadm's arguments are plain text; one that is not UTF-8 is refused by the parser
    // as an unknown word rather than silently changed.
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    hakit::tools::lvs_ctl::main::main(argv).into()
}
