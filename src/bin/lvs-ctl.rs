use std::process::ExitCode;

fn main() -> ExitCode {
    // ipvsadm's arguments are text: one that is not UTF-8 is refused, never changed.
    let mut argv = Vec::new();
    for (i, a) in std::env::args_os().enumerate() {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(a) if i == 0 => argv.push(a.to_string_lossy().into_owned()),
            Err(a) => {
                eprintln!("lvs-ctl: error: argument {i} is not UTF-8: {}", a.to_string_lossy());
                return ExitCode::from(2);
            }
        }
    }
    hakit::tools::lvs_ctl::main::main(argv).into()
}
