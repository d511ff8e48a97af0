//! lvs-ctl's command lines and files, refused before any table is touched: one line
//! naming the option or `file:line:column`, exit 2; and invoked as `ipvsadm` it is
//! ipvsadm. (The tables themselves: tests/lvs_nft.rs here, tests/lvs_ipvs.rs in the VM.)

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn run_as(program: &std::path::Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(program);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("HAKIT_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    // A command refused before it reads its input closes the pipe: not this test's
    // business.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn lvs(args: &[&str]) -> (i32, String, String) {
    run_as(&bin("lvs-ctl"), args, "", &[])
}

#[test]
fn bad_command_lines_name_the_option_and_exit_2() {
    for (args, want) in [
        (
            &["-A", "-t", "10.0.0.1:80", "-w", "3"][..],
            "-w: illegal 'weight' option with the 'add-service' command",
        ),
        (
            &["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "65536"],
            "-w: illegal weight specified",
        ),
        (
            &["-A", "-t", "10.0.0.1:80", "-s", "rr", "-s", "wrr"],
            "-s: multiple 'scheduler' options specified",
        ),
        (&["-A", "-t", "10.0.0.300:80"], "-t: illegal virtual server address"),
        (
            &["-a", "-t", "10.0.0.1:80", "-r", "2001:db8::2"],
            "-r: Different address family",
        ),
        (&["--backend", "lvs", "-L"], "--backend: unknown backend `lvs'"),
        (&["-Q"], "-Q: unknown option -Q"),
    ] {
        let (code, out, err) = lvs(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        let first = err.lines().next().unwrap_or("");
        assert!(first.starts_with(&format!("lvs-ctl: error: {want}")), "{args:?}: {err}");
    }
}

#[test]
fn a_bad_configuration_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hakit.yaml");
    std::fs::write(
        &f,
        "lvs-ctl:\n  services:\n    - service: tcp 10.0.0.1:80\n      scheduler: wrong\n      reals:\n        - address: 10.0.0.2:80\n",
    )
    .unwrap();
    let p = f.display().to_string();
    for sub in [
        &["apply"][..],
        &["diff"],
        &["apply", "--only"],
        &["diff", "--only"],
        &["remove"],
    ] {
        let args: Vec<&str> = sub.iter().copied().chain([p.as_str()]).collect();
        let (code, out, err) = lvs(&args);
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty());
        assert!(err.contains(&format!("{p}:4:7: unknown scheduler `wrong'")), "{err}");
    }
    std::fs::write(
        &f,
        "lvs-ctl:\n  services:\n    - service: tcp 10.0.0.1:80\n      colour: red\n",
    )
    .unwrap();
    let (code, _, err) = lvs(&["diff", &p]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{p}:4:7:")) && err.contains("colour"), "{err}");
    // ipvsadm's command line reads only the backend from the file, but a broken file is
    // still refused rather than half read.
    std::fs::write(&f, "lvs-ctl:\n  backend: lvm\n").unwrap();
    let (code, _, err) = run_as(&bin("lvs-ctl"), &["-L", "-n"], "", &[("HAKIT_CONFIG", &p)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{p}:2:")), "{err}");
}

#[test]
fn invoked_as_ipvsadm_it_is_ipvsadm() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ipvsadm");
    std::os::unix::fs::symlink(bin("lvs-ctl"), &link).unwrap();
    let (code, out, _) = run_as(&link, &["-h"], "", &[]);
    assert_eq!(code, 0);
    assert!(out.contains("ipvsadm -A|E virtual-service"), "{out}");
    let (code, out, _) = run_as(&link, &["-v"], "", &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ipvsadm "), "{out}");
    // "status" is a subcommand of lvs-ctl, but ipvsadm has none: an unexpected word.
    let (code, _, err) = run_as(&link, &["-L", "status"], "", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("ipvsadm: error: status: unexpected argument"), "{err}");
    // lvs-ctl's own help lists the subcommands and every ipvsadm option.
    let (code, out, _) = lvs(&["--help"]);
    assert_eq!(code, 0);
    for w in ["apply", "follow", "--persistent-conn", "--backend", "Exit status"] {
        assert!(out.contains(w), "{w}: {out}");
    }
}

#[test]
fn a_bad_restore_line_is_named_and_nothing_is_read_past_it() {
    // The file is parsed whole before any backend is opened, so this holds on any
    // machine; tests/lvs_nft.rs shows the table unchanged with a real backend.
    let rules = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w x\n";
    let (code, out, err) = run_as(&bin("lvs-ctl"), &["--backend", "nft", "-R"], rules, &[]);
    assert!(out.is_empty());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin:2:37: illegal weight specified: `x'"), "{err}");
}

#[test]
fn the_example_director_configuration_is_valid_for_both_tools() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/lvs-ctl/director.yaml");
    let cfg = hakit::tools::lvs_ctl::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.services.len(), 3);
    assert!(cfg.services[0].join.is_some());
    // Its joinable service's check is one of mon-check's, as follow requires.
    let mon = hakit::tools::lvs_ctl::join_checks::load(&path, &cfg).unwrap_or_else(|e| panic!("{e}"));
    assert!(mon.is_some());
    let out = Command::new(bin("mon-check"))
        .args(["run", "--check", "-c", &path.display().to_string()])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every service's `check` is a watch of the same file, so follow hears about it.
    for v in &cfg.services {
        let key = v.check.as_deref().expect("every example service is checked");
        assert!(listing.contains(&format!("  {key} every")), "{key}: {listing}");
    }
}

/// lvs-ctl in a namespace of its own (the nftables backend: this kernel has no IPVS).
struct Ns {
    net: Net,
}

impl Ns {
    fn new() -> Ns {
        Ns { net: Net::new(1, 1) }
    }

    fn lvs(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let lvs = bin("lvs-ctl");
        let mut a = vec!["netns", "exec", self.net.ns(1), lvs.to_str().unwrap()];
        a.extend_from_slice(args);
        run_as(std::path::Path::new("/usr/sbin/ip"), &a, stdin, &[])
    }
}

const RULES: &str = "-A -t 10.9.0.1:80 -s rr\n-a -t 10.9.0.1:80 -r 10.9.1.1:80 -m -w 1\n\
                     -a -t 10.9.0.1:80 -r 10.9.1.2:80 -m -w 2\n-A -u 10.9.0.1:53 -s sh\n\
                     -a -u 10.9.0.1:53 -r 10.9.1.1:53 -m -w 1\n";

#[test]
fn restore_save_and_all_or_nothing_on_a_real_table() {
    let ns = Ns::new();
    let b = ["--backend", "nft"];
    let (code, _, err) = ns.lvs(&[&b[..], &["-R"]].concat(), RULES);
    assert_eq!(code, 0, "{err}");
    let (_, saved, _) = ns.lvs(&[&b[..], &["-S", "-n"]].concat(), "");
    let mut want: Vec<&str> = RULES.lines().collect();
    let mut got: Vec<&str> = saved.lines().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "-S -n gives back what -R read:\n{saved}");
    // A file whose last line the table refuses changes nothing, not even its first lines.
    let bad = "-A -t 10.9.0.2:80 -s rr\n-a -t 10.9.0.2:80 -r 10.9.1.1:80 -m\n-a -t 10.9.0.3:80 -r 10.9.1.1:80 -m\n";
    let (code, _, err) = ns.lvs(&[&b[..], &["-R"]].concat(), bad);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("stdin:3: Service not defined (nothing was changed)"),
        "{err}"
    );
    let (_, after, _) = ns.lvs(&[&b[..], &["-S", "-n"]].concat(), "");
    assert_eq!(after, saved, "nothing changed");
}

#[test]
fn apply_diff_and_drift_repair_on_a_real_table() {
    let ns = Ns::new();
    let f = ns.net.path("hakit.yaml");
    std::fs::write(
        &f,
        "lvs-ctl:\n  backend: nft\n  services:\n    - service: tcp 10.9.0.1:80\n      scheduler: wrr\n      forward: masq\n      reals:\n        - { address: 10.9.1.1:80, weight: 2 }\n        - { address: 10.9.1.2:80 }\n",
    )
    .unwrap();
    let p = f.display().to_string();
    let (code, out, _) = ns.lvs(&["diff", &p], "");
    assert_eq!(code, 1, "differences: exit 1");
    assert_eq!(out.lines().count(), 3, "{out}");
    let (code, out, err) = ns.lvs(&["apply", &p], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let (code, out, _) = ns.lvs(&["diff", &p], "");
    assert_eq!((code, out.as_str()), (0, ""), "applied: no difference");
    let (code, out, _) = ns.lvs(&["apply", &p], "");
    assert_eq!((code, out.as_str()), (0, ""), "applying twice changes nothing");
    // Someone changes the kernel's table by hand; the next apply puts it back.
    ns.lvs(
        &[
            "--backend",
            "nft",
            "-e",
            "-t",
            "10.9.0.1:80",
            "-r",
            "10.9.1.1:80",
            "-m",
            "-w",
            "7",
        ],
        "",
    );
    ns.lvs(&["--backend", "nft", "-A", "-t", "10.9.0.5:80", "-s", "rr"], "");
    let (code, out, _) = ns.lvs(&["diff", &p], "");
    assert_eq!(code, 1);
    assert_eq!(
        out, "-D -t 10.9.0.5:80\n-e -t 10.9.0.1:80 -r 10.9.1.1:80 -m -w 2\n",
        "{out}"
    );
    assert_eq!(ns.lvs(&["apply", &p], "").0, 0);
    assert_eq!(ns.lvs(&["diff", &p], "").0, 0, "repaired");
    // A scheduler the backend cannot do: exit 2, nothing changed.
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("wrr", "wlc")).unwrap();
    let (code, _, err) = ns.lvs(&["apply", &p], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("wlc"), "{err}");
    let (code, _, err) = ns.lvs(&["diff", &p], "");
    assert_eq!(code, 2, "diff says what apply would: {err}");
    assert!(err.contains("-E -t 10.9.0.1:80 -s wlc"), "{err}");
}

#[test]
fn join_refuses_bad_flags_and_fifos_it_must_not_write_to_before_sending_anything() {
    for (args, want) in [
        (
            &["--service", "tcp 10.0.0.1:80", "--addr", "10.0.0.7"][..],
            "--service `tcp 10.0.0.1:80`",
        ),
        (
            &["--service", "tcp/10.0.0.1:80", "--addr", "10.0.0.x"],
            "--addr: `10.0.0.x` is not an IP address",
        ),
        (&["--service", "tcp/10.0.0.1:80", "--addr", "0.0.0.0"], "--addr"),
        (&["--service", "fwmark/2", "--addr", "10.0.0.7"], "--port"),
        (
            &[
                "--service",
                "tcp/10.0.0.1:80",
                "--addr",
                "10.0.0.7",
                "--weight",
                "70000",
            ],
            "--weight 70000",
        ),
    ] {
        let mut a = vec!["join", "--fifo", "/nonexistent/fifo"];
        a.extend_from_slice(args);
        let (code, out, err) = lvs(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Not a FIFO, a symlink, another user's FIFO: refused at once, exit 2.
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&plain, &link).unwrap();
    let theirs = d.path().join("theirs");
    nix::unistd::mkfifo(&theirs, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(is_root(), "chown needs root");
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    for (p, want) in [
        (&plain, "not a FIFO"),
        (&link, "symbolic link"),
        (&theirs, "owned by uid 65534"),
    ] {
        let (code, _, err) = lvs(&[
            "join",
            "--fifo",
            &p.display().to_string(),
            "--service",
            "tcp/10.0.0.1:80",
            "--addr",
            "10.0.0.7",
        ]);
        assert_eq!(code, 2, "{p:?}: {err}");
        assert!(err.contains(want) && err.lines().count() == 1, "{p:?}: {err}");
    }
    assert_eq!(std::fs::read(&plain).unwrap(), b"", "nothing was written");
}

#[test]
fn follow_refuses_a_joinable_service_whose_check_mon_check_does_not_have() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("hakit.yaml");
    std::fs::write(
        &c,
        "lvs-ctl:\n  backend: nft\n  services:\n    - service: tcp 10.0.0.1:80\n      check: web/http\n      join: {allow: ['*']}\nmon-check:\n  hostgroups:\n    web: [10.0.0.2]\n  watches:\n    web:\n      tcp:\n        monitor: tcp -p 80\n",
    )
    .unwrap();
    let cs = c.display().to_string();
    let (code, out, err) = lvs(&[
        "follow",
        "-c",
        &cs,
        "--state",
        &d.path().join("s.json").display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains(&format!("{cs}:5:")) && err.contains("check `web/http'") && err.lines().count() == 1,
        "{err}"
    );
    // And a join key without a check at all.
    std::fs::write(
        &c,
        "lvs-ctl:\n  services:\n    - service: tcp 10.0.0.1:80\n      join: {allow: ['*']}\n",
    )
    .unwrap();
    let (code, _, err) = lvs(&["follow", "-c", &cs]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{cs}:4:")) && err.contains("join needs the service's check"),
        "{err}"
    );
}

/// `status` is a report: an unreadable operator-weights file is named and the table is
/// shown without them, rather than nothing at all (the metrics timer runs it).
#[test]
fn status_names_a_broken_weights_file_and_still_reports() {
    let ns = Ns::new();
    let b = ["--backend", "nft"];
    let (code, _, err) = ns.lvs(&[&b[..], &["-R"]].concat(), RULES);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("lvs-weights.json");
    std::fs::write(&weights, "{ not json").unwrap();
    let state = dir.path().join("lvs-follow.json").display().to_string();
    let (code, out, err) = ns.lvs(&["status", "--backend", "nft", "--state", &state], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("operator weights not shown") && err.contains(&weights.display().to_string()),
        "{err}"
    );
    let first = RULES.lines().next().unwrap().split_whitespace().nth(2).unwrap();
    assert!(out.contains(first), "the table is reported: {out}");
}
