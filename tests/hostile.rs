//! The tools tried as an attacker (or a crash) would leave things: a torn table record,
//! a planted FIFO, a pid reused by a stranger, an address ipfake did not add. Each test
//! here failed before its fix.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run a command; kill it (it is ours) if it has not finished within `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child: Child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn keys(dir: &Path) -> String {
    let p = dir.join("authkeys");
    std::fs::write(&p, "auth 1\n1 sha256 hostile-test\n").unwrap();
    set_mode(&p, 0o600);
    p.display().to_string()
}

/// A table with three records, the middle one left half written (odd sequence), as a
/// writer killed between its two stores leaves it.
fn torn_table(dir: &Path) -> std::path::PathBuf {
    use hakit::table::{NodeRecord, NodeState, TableWriter, HEADER_SIZE, RECORD_SIZE};
    use std::io::{Seek, SeekFrom, Write};
    let p = dir.join("ast");
    let mut w = TableWriter::create(&p, 8, &["a".into()], "n1").unwrap();
    for (i, n) in ["n1", "n2", "n3"].iter().enumerate() {
        let r = NodeRecord {
            name: n.to_string(),
            state: NodeState::Up,
            generation: 1,
            ..Default::default()
        };
        w.write(i, &r).unwrap();
    }
    drop(w);
    let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.seek(SeekFrom::Start((HEADER_SIZE + RECORD_SIZE) as u64)).unwrap();
    f.write_all(&9u64.to_le_bytes()).unwrap();
    p
}

#[test]
fn a_torn_table_record_hangs_no_reader() {
    let d = tempfile::tempdir().unwrap();
    let t = torn_table(d.path());
    let ts = t.display().to_string();
    // hb-watch status: answers (not up, 1) instead of spinning for ever.
    let out = run_within(
        Command::new(bin("hb-watch")).args(["status", "-t", &ts]),
        Duration::from_secs(5),
    )
    .expect("hb-watch status finished");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("record 1 is half written"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("n3"));
    let out = run_within(
        Command::new(bin("hb-watch")).args(["status", "-t", &ts, "n3"]),
        Duration::from_secs(5),
    )
    .expect("hb-watch status n3 finished");
    assert_eq!(out.status.code(), Some(1), "no writer: not up");
    // hb-send reads the table at every heartbeat: it keeps heartbeating.
    let out = hb_send(d.path(), "47694", &["--no-fifo", "--count", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// hb-send on loopback for `count` heartbeats, with its files in `dir`; `extra` adds
/// flags. Its table is `dir/ast`.
fn hb_send(dir: &Path, port: &str, extra: &[&str]) -> Output {
    let k = keys(dir);
    let g = dir.join("gen").display().to_string();
    let t = dir.join("ast").display().to_string();
    let mut args = vec![
        "--node",
        "n1",
        "--keys",
        &k,
        "--channel",
        "ucast:lo:127.0.0.1",
        "--port",
        port,
        "--table",
        &t,
        "--generation-file",
        &g,
        "--keepalive",
        "10ms",
        "--deadtime",
        "100ms",
    ];
    args.extend_from_slice(extra);
    run_within(Command::new(bin("hb-send")).args(&args), Duration::from_secs(5)).expect("hb-send finished")
}

fn hb_send_with_fifo(dir: &Path, fifo: &Path) -> Output {
    hb_send(dir, "47695", &["--fifo", &fifo.display().to_string(), "--count", "2"])
}

#[test]
fn a_planted_fifo_is_refused() {
    assert!(is_root(), "this test needs root (to plant files as another user)");
    let d = tempfile::tempdir().unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    // A FIFO created 0666 by another user, in a directory they can write.
    let planted = d.path().join("fifo");
    nix::unistd::mkfifo(&planted, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    nix::unistd::chown(&planted, Some(nobody), None).unwrap();
    let out = hb_send_with_fifo(d.path(), &planted);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("owned by uid"), "{err}");
    // Ours but writable by everyone: refused too.
    nix::unistd::chown(&planted, Some(nix::unistd::Uid::effective()), None).unwrap();
    let out = hb_send_with_fifo(d.path(), &planted);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("lets other users write"), "{err}");
    // A symlink to a FIFO, and a regular file: refused.
    std::fs::remove_file(&planted).unwrap();
    let real = d.path().join("real-fifo");
    nix::unistd::mkfifo(&real, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, &planted).unwrap();
    let out = hb_send_with_fifo(d.path(), &planted);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    std::fs::remove_file(&planted).unwrap();
    std::fs::write(&planted, "").unwrap();
    let out = hb_send_with_fifo(d.path(), &planted);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a FIFO"));
    // Created by hb-send itself: mode 0600, ours; and used again at the next start.
    std::fs::remove_file(&planted).unwrap();
    for _ in 0..2 {
        let out = hb_send_with_fifo(d.path(), &planted);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let m = std::fs::symlink_metadata(&planted).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
        assert_eq!(m.uid(), nix::unistd::geteuid().as_raw());
    }
}

/// A stranger's process: ours to start and end, never ipfake's to signal.
fn stranger() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

/// `ipfake ARGS` in node 1's namespace, its pid files in the net's `pids`; the status.
fn ipfake(net: &Net, args: &[&str]) -> Output {
    let pd = net.path("pids").display().to_string();
    let mut a = vec!["--pid-dir", &pd];
    a.extend_from_slice(args);
    net.run(net.ns(1), &bin("ipfake"), &a)
}

/// Assert that an ipfake command succeeded.
fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `ipfake up CIDR dev eth0` held in node 1 in the background: its pid, and its pid
/// file once written.
fn hold(net: &mut Net, cidr: &str) -> (u32, PathBuf) {
    let pids = net.path("pids");
    let args: Vec<String> = ["--pid-dir", &pids.display().to_string(), "up", cidr, "dev", "eth0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let pid_file = pids.join(format!("ipfake.{}.pid", cidr.split('/').next().unwrap()));
    let before = std::fs::read_to_string(&pid_file).ok();
    let ns = net.ns(1).to_string();
    let pid = net.spawn(&ns, &bin("ipfake"), &args, Stdio::null());
    assert!(
        wait_for(
            || std::fs::read_to_string(&pid_file)
                .ok()
                .is_some_and(|t| Some(&t) != before.as_ref()),
            Duration::from_secs(3)
        ),
        "the holder of {cidr} wrote its pid file"
    );
    (pid, pid_file)
}

/// Make a pid file name `pid` instead, keeping the rest (start time and all).
fn repoint(pid_file: &Path, pid: u32) {
    let text = std::fs::read_to_string(pid_file).unwrap();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap();
    std::fs::write(pid_file, format!("{pid}{}", &text[digits..])).unwrap();
}

#[test]
fn ipfake_never_signals_a_process_that_reused_the_holders_pid() {
    let mut net = Net::new(1, 1);
    let vip = "10.77.1.120";
    let (holder, pid_file) = hold(&mut net, &format!("{vip}/24"));
    // The holder is killed with SIGKILL and its pid is taken by a stranger: the file
    // now names the stranger's pid (with the holder's start time, as the file recorded).
    net.kill(holder, Signal::SIGKILL);
    let mut s = stranger();
    repoint(&pid_file, s.id());
    let saved = std::fs::read_to_string(&pid_file).unwrap();
    let st = ipfake(&net, &["status", vip]);
    let out = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(1), "not held: {out}");
    assert!(out.contains("stale"), "{out}");
    ok(&ipfake(&net, &["down", vip]));
    // `up` replaces a running holder: it must not take the stranger for one either.
    std::fs::write(&pid_file, saved).unwrap();
    ok(&ipfake(&net, &["up", &format!("{vip}/24"), "dev", "eth0", "--once"]));
    std::thread::sleep(Duration::from_millis(100));
    let alive = s.try_wait().unwrap().is_none();
    let _ = s.kill();
    let _ = s.wait();
    assert!(alive, "the stranger was signalled");
}

#[test]
fn ipfake_down_leaves_an_address_it_did_not_add() {
    let mut net = Net::new(1, 1);
    let cidr = "10.77.1.5/24";
    let ns = net.ns(1).to_string();
    net.ip(&ns, &["addr", "add", cidr, "dev", "eth0"]);
    let (_, pid_file) = hold(&mut net, cidr);
    ok(&ipfake(&net, &["down", "10.77.1.5"]));
    assert!(!pid_file.exists());
    assert!(
        net.has_addr(1, cidr),
        "the address configured before ipfake is still there"
    );
    // One ipfake added is removed by down, even after its holder was killed.
    let vip = "10.77.1.6/24";
    let (h, _) = hold(&mut net, vip);
    net.kill(h, Signal::SIGKILL);
    ok(&ipfake(&net, &["down", "10.77.1.6"]));
    assert!(!net.has_addr(1, vip), "what ipfake added is gone");
}

#[test]
fn a_holder_killed_and_restarted_still_removes_what_the_first_added() {
    let mut net = Net::new(1, 1);
    let cidr = "10.77.1.7/24";
    let (first, _) = hold(&mut net, cidr);
    // SIGKILL (the OOM killer, systemd's last resort), then a restart (Restart=).
    net.kill(first, Signal::SIGKILL);
    hold(&mut net, cidr);
    ok(&ipfake(&net, &["down", "10.77.1.7"]));
    assert!(
        !net.has_addr(1, cidr),
        "the address ipfake added is gone after the restart"
    );
}

#[test]
fn a_pid_file_of_an_older_ipfake_is_still_believed() {
    let mut net = Net::new(1, 1);
    let cidr = "10.77.1.8/24";
    let (h, pid_file) = hold(&mut net, cidr);
    // What the previous version wrote: a bare pid, the interface, the prefix.
    std::fs::write(&pid_file, format!("{h}\neth0\n24\n")).unwrap();
    let st = ipfake(&net, &["status", "10.77.1.8"]);
    assert_eq!(
        st.status.code(),
        Some(0),
        "held: {}",
        String::from_utf8_lossy(&st.stdout)
    );
    ok(&ipfake(&net, &["down", "10.77.1.8"]));
    assert!(
        !net.has_addr(1, cidr),
        "the old holder was stopped and the address removed"
    );
    assert!(
        wait_for(
            || hakit::base::pidfile::start_time(h as i32).is_none(),
            Duration::from_secs(2)
        ),
        "the old holder stopped"
    );
}

#[test]
fn a_fifo_planted_where_the_table_goes_hangs_nothing() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("ast");
    nix::unistd::mkfifo(&t, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let ts = t.display().to_string();
    let out = run_within(
        Command::new(bin("hb-watch")).args(["status", "-t", &ts]),
        Duration::from_secs(5),
    )
    .expect("hb-watch status did not hang on open");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // hb-send keeps heartbeating (it reads the table at every heartbeat).
    let out = hb_send(d.path(), "47696", &["--no-fifo", "--count", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fifo_group_makes_it_0620_to_that_group() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("fifo");
    let out = hb_send(
        d.path(),
        "47698",
        &[
            "--fifo",
            &fifo.display().to_string(),
            "--fifo-group",
            "nogroup",
            "--count",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let m = std::fs::symlink_metadata(&fifo).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o620);
    assert_eq!(
        m.gid(),
        nix::unistd::Group::from_name("nogroup").unwrap().unwrap().gid.as_raw()
    );
    // Group-writable to that group is ours again at the next start; without the
    // setting it is refused (another group's members could write it).
    let out = hb_send(
        d.path(),
        "47698",
        &["--fifo", &fifo.display().to_string(), "--count", "2"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
