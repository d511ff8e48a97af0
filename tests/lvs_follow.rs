//! `mon-check run | lvs-ctl follow` on a director with real traffic (nftables backend):
//! a real server whose web server dies is quiesced (no new connections, the client's
//! requests all go to the others) and comes back when it does; a maintenance file takes
//! one out; with the others down the sorry server takes the service and gives it back.

mod common;
use common::lvs::*;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Follow {
    lines: mpsc::Receiver<String>,
}

impl Follow {
    /// The next line starting with `prefix` within `d`, or panic with what came.
    fn expect(&self, prefix: &str, d: Duration) -> String {
        let end = Instant::now() + d;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no `{prefix}` event within {d:?}; saw {seen:#?}");
    }
}

fn start(lab: &mut Lab, cfg: &str) -> Follow {
    let c = lab.net.path("hakit.yaml");
    std::fs::write(&c, cfg.replace("DIR", &lab.net.dir.path().display().to_string())).unwrap();
    std::fs::create_dir_all(lab.net.path("maint")).unwrap();
    let out = lab.lvs(&["apply", &c.display().to_string()]);
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    let pipeline = format!(
        "{} run -c {c} | exec {} follow -c {c} --state {state} --interval 200ms",
        bin("mon-check").display(),
        bin("lvs-ctl").display(),
        c = c.display(),
        state = lab.net.path("follow.json").display()
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", lab.net.ns(DIRECTOR), "sh", "-c", &pipeline])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    lab.net.adopt(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    Follow { lines: rx }
}

fn answers(lab: &Lab, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for _ in 0..n {
        *m.entry(lab.fetch().unwrap_or_else(|| "none".into())).or_insert(0) += 1;
    }
    m
}

#[test]
fn a_dead_web_server_is_quiesced_and_comes_back() {
    let mut lab = Lab::nat(3);
    let f = start(&mut lab, FOLLOWED);
    assert_eq!(answers(&lab, 6).len(), 3, "all three answer at first");
    let t = Instant::now();
    lab.kill_server(3);
    let ev = f.expect("real-down", Duration::from_secs(5));
    assert!(ev.contains("10.77.2.3:80") && ev.contains("weight=0"), "{ev}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "taken out within an interval or so: {:?}",
        t.elapsed()
    );
    let saved = String::from_utf8_lossy(&lab.lvs(&["--backend", "nft", "-S", "-n"]).stdout).into_owned();
    assert!(saved.contains("-r 10.77.2.3:80 -m -w 0"), "{saved}");
    let a = answers(&lab, 8);
    assert!(
        !a.contains_key("n3") && !a.contains_key("none"),
        "new connections only to the live ones: {a:?}"
    );
    lab.start_server(3);
    let ev = f.expect("real-up", Duration::from_secs(5));
    assert!(ev.contains("10.77.2.3:80"), "{ev}");
    assert!(answers(&lab, 6).contains_key("n3"));

    // Maintenance: a file named after the real server takes it out, its removal back.
    std::fs::write(lab.net.path("maint/10.77.2.4:80"), "").unwrap();
    f.expect("maintenance-in", Duration::from_secs(3));
    assert!(!answers(&lab, 6).contains_key("n4"));
    std::fs::remove_file(lab.net.path("maint/10.77.2.4:80")).unwrap();
    f.expect("maintenance-out", Duration::from_secs(3));
}

#[test]
fn the_sorry_server_takes_the_service_when_the_quorum_is_lost() {
    let mut lab = Lab::nat(3);
    // n5 is the sorry server; n3 and n4 the pool, quorum 1.
    let cfg = FOLLOWED
        .replace("        - address: 10.77.2.5:80\n", "")
        .replace(
            "      on-failure: quiesce\n",
            "      on-failure: remove\n      sorry: 10.77.2.5:80\n      quorum: 1\n",
        )
        .replace("[10.77.2.3, 10.77.2.4, 10.77.2.5]", "[10.77.2.3, 10.77.2.4]");
    let f = start(&mut lab, &cfg);
    let a = answers(&lab, 6);
    assert!(
        !a.contains_key("n5"),
        "the sorry server is out while the pool lives: {a:?}"
    );
    lab.kill_server(3);
    f.expect("real-down", Duration::from_secs(5));
    lab.kill_server(4);
    f.expect("sorry-in", Duration::from_secs(5));
    let a = answers(&lab, 4);
    assert_eq!(a.get("n5"), Some(&4), "the sorry server answers: {a:?}");
    lab.start_server(4);
    f.expect("sorry-out", Duration::from_secs(5));
    let a = answers(&lab, 4);
    assert_eq!(a.get("n4"), Some(&4), "the pool is back: {a:?}");
}
