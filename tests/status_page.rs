//! `lvs-ctl cgi` behind a real web server, in a real browser: in namespaces made here,
//! Debian's lighttpd serves the page with HTTP basic authentication on the director;
//! the director runs hb-watch (peers n3 and n5 send heartbeats, so the Active Stations
//! Table is a real one), an nft virtual service applied by lvs-ctl with a running
//! `lvs-ctl follow` (its stdin a pipe held here) and `mon-check run` with a failing
//! service. Headless Chromium on the client node (tests/status-page.py) loads the page
//! at a phone's width and a desktop's: the screenshots are read back with tesseract and
//! must show the real servers and the nodes, the phone layout must not scroll sideways,
//! a hostile host name must show as text; it drains a real server (the maintenance file
//! appears, follow takes the kernel's weight to 0, the page refreshes itself to show
//! it) and acknowledges the alert. curl then shows that a POST without a token, with a
//! wrong one, without authentication or from another origin is refused and changes
//! nothing. If Chromium cannot start, the test fails.

mod common;
use common::lvs::*;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const HOSTILE: &str = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>";
const URL: &str = "http://10.77.1.2:8080/hakit/status.cgi";
const OPEN_URL: &str = "http://10.77.1.2:8080/open/status.cgi";
const ORIGIN: &str = "http://10.77.1.2:8080";

fn config(dir: &Path) -> String {
    format!(
        "cluster:
  table: {d}/n2.ast
lvs-ctl:
  backend: nft
  maintenance-dir: {d}/maint
  services:
    - service: tcp 10.77.1.100:80
      scheduler: rr
      forward: masq
      on-failure: quiesce
      reals:
        - {{ address: 10.77.2.3:80, host: {h:?} }}
        - {{ address: 10.77.2.4:80, host: web4 }}
mon-check:
  state-dir: {d}/mon
  socket: {d}/mon.sock
  hostgroups:
    db: [10.77.2.3]
  watches:
    db:
      pgsql:
        interval: 300ms
        description: {h:?}
        monitor: tcp -p 5432 -t 1
",
        d = dir.display(),
        h = HOSTILE
    )
}

/// The README's lighttpd snippet (under /hakit/), and the same CGI without
/// authentication under /open/.
fn lighttpd_conf(dir: &Path) -> String {
    format!(
        r#"server.modules = ("mod_access", "mod_alias", "mod_auth", "mod_authn_file", "mod_cgi")
server.document-root = "{d}/www"
server.bind = "10.77.1.2"
server.port = 8080
server.errorlog = "{d}/lighttpd.log"
alias.url += ("/hakit/" => "{d}/www/auth/")
$HTTP["url"] =^ "/hakit/" {{ cgi.assign = (".cgi" => "") }}
$HTTP["url"] =^ "/open/" {{ cgi.assign = (".cgi" => "") }}
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "{d}/htpasswd"
auth.require += ("/hakit/" => ("method" => "basic", "realm" => "hakit", "require" => "valid-user"))
"#,
        d = dir.display()
    )
}

/// curl from the client node; returns (HTTP code, headers and body).
fn curl(lab: &Lab, args: &[&str]) -> (u16, String) {
    let mut v = vec!["-s", "-m", "10", "-i", "-w", "\n%{http_code}"];
    v.extend_from_slice(args);
    let out = lab.net.run(lab.net.ns(CLIENT), Path::new("/usr/bin/curl"), &v);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn token(lab: &Lab) -> String {
    let (code, page) = curl(lab, &["-u", "alice:s3cret", URL]);
    assert_eq!(code, 200, "{page}");
    let at = page.find("name=\"token\" value=\"").expect("a token in the page") + 20;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

fn weight(lab: &Lab, real: &str) -> Option<String> {
    let out = lab.lvs(&["--backend", "nft", "-L", "-n"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.contains(real))
        .and_then(|l| l.split_whitespace().nth(3).map(String::from))
}

fn ocr(png: &Path) -> String {
    let out = Command::new("tesseract")
        .arg(png)
        .arg("-")
        .output()
        .expect("tesseract (tesseract-ocr) must be installed");
    assert!(
        out.status.success(),
        "tesseract: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_status_page_in_a_browser() {
    let mut lab = Lab::nat(2);
    lab.net.add_node(5);
    let dir = lab.net.dir.path().to_path_buf();
    let d2 = lab.net.ns(DIRECTOR).to_string();

    // The Active Stations Table: hb-watch on the director, n5 on both channels, n3
    // (a real server, only on the servers' LAN) on channel b.
    let hb = ["--keepalive", "100ms", "--deadtime", "1s"];
    lab.net.send(DIRECTOR, &hb);
    lab.net.send(5, &hb);
    // n3's channel a is down: the common flags but `--channel a=...`.
    let common = lab.net.common(3);
    let at = common.iter().position(|a| a.starts_with("a=bcast")).unwrap();
    let mut n3: Vec<String> = [&common[..at - 1], &common[at + 1..]].concat();
    n3.extend(hb.iter().map(|s| s.to_string()));
    n3.extend(["--generation-file".into(), dir.join("n3.gen").display().to_string()]);
    n3.extend(["--fifo".into(), dir.join("n3.fifo").display().to_string()]);
    let ns3 = lab.net.ns(3).to_string();
    lab.net.spawn(&ns3, &bin("hb-send"), &n3, Stdio::null());
    let mut ev = lab.net.watch(DIRECTOR, &["--deadtime", "1s"]);
    ev.expect("node-up n5", Duration::from_secs(10));
    ev.expect("node-up n3", Duration::from_secs(10));
    // The CGI finds the table through the configuration's cluster.table.
    assert!(lab.net.path("n2.ast").exists());
    // What a node holds, as its scripts tell its hb-send.
    // The node-status that follows n5's node-up first, then what the FIFO said.
    ev.expect("node-status n5 ", Duration::from_secs(5));
    ev.clear();
    std::fs::write(lab.net.path("n5.fifo"), ">>>\nt=status\nheld=10.77.1.200\n<<<\n").unwrap();
    let st = ev.expect("node-status n5 ", Duration::from_secs(5));
    assert_eq!(field(&st, "held"), Some("10.77.1.200"), "{st}");

    // The virtual service, its follower fed from a pipe held here, mon-check.
    let cfg = dir.join("hakit.yaml");
    std::fs::write(&cfg, config(&dir)).unwrap();
    std::fs::create_dir_all(dir.join("maint")).unwrap();
    let out = lab.lvs(&["apply", &cfg.display().to_string()]);
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    let state = dir.join("follow.json");
    let mut follow = Command::new("ip")
        .args(["netns", "exec", &d2])
        .arg(bin("lvs-ctl"))
        .args(["follow", "-c"])
        .arg(&cfg)
        .arg("--state")
        .arg(&state)
        .args(["--interval", "200ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _follow_stdin = follow.stdin.take().unwrap();
    let follow_out = follow.stdout.take().unwrap();
    lab.net.adopt(follow);
    let (tx, follow_events) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(follow_out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mon_args: Vec<String> = vec!["run".into(), "-c".into(), cfg.display().to_string(), "-q".into()];
    lab.net.spawn(&d2, &bin("mon-check"), &mon_args, Stdio::null());
    assert!(
        wait_for(|| state.exists(), Duration::from_secs(5)),
        "follow wrote no state"
    );

    // lighttpd with basic authentication under /hakit/, the same CGI unauthenticated
    // under /open/ (to show that a POST there is refused).
    let www = dir.join("www");
    for sub in ["auth", "open"] {
        std::fs::create_dir_all(www.join(sub)).unwrap();
        let cgi = www.join(sub).join("status.cgi");
        std::fs::write(
            &cgi,
            format!(
                "#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH\nexec {} cgi --config {} --state {} --secret {}/cgi-secret\n",
                bin("lvs-ctl").display(),
                cfg.display(),
                state.display(),
                dir.display()
            ),
        )
        .unwrap();
        set_mode(&cgi, 0o755);
    }
    sh(&[
        "htpasswd",
        "-b",
        "-c",
        "-m",
        &dir.join("htpasswd").display().to_string(),
        "alice",
        "s3cret",
    ]);
    let conf = dir.join("lighttpd.conf");
    std::fs::write(&conf, lighttpd_conf(&dir)).unwrap();
    let httpd = Command::new("ip")
        .args(["netns", "exec", &d2, "/usr/sbin/lighttpd", "-D", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .spawn()
        .expect("lighttpd (Debian's lighttpd) must be installed");
    lab.net.adopt(httpd);
    let mut last = (0, String::new());
    let ready = wait_for(
        || {
            last = curl(&lab, &["-u", "alice:s3cret", URL]);
            last.0 == 200 && last.1.contains("failing") && last.1.contains("n5")
        },
        Duration::from_secs(20),
    );
    assert!(
        ready,
        "the page did not come up: {last:?}\nlighttpd: {}",
        std::fs::read_to_string(dir.join("lighttpd.log")).unwrap_or_default()
    );
    let (code, _) = curl(&lab, &[URL]);
    assert_eq!(code, 401, "lighttpd asks for credentials");
    assert_eq!(weight(&lab, "10.77.2.3:80").as_deref(), Some("1"));

    // The browser, on the client node.
    let shots = dir.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/status-page.py");
    let out = Command::new("ip")
        .args(["netns", "exec", lab.net.ns(CLIENT), "/usr/bin/python3"])
        .arg(&script)
        .args(["--url", URL, "--user", "alice", "--password", "s3cret", "--out"])
        .arg(&shots)
        .args(["--drain", "10.77.2.3:80", "--ack", "db/pgsql"])
        .env("HOME", &shots)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser failed (Chromium, chromedriver and python3-selenium are needed): {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // For a person to look at: HAKIT_SHOTS=DIR keeps the screenshots.
    if let Some(keep) = std::env::var_os("HAKIT_SHOTS") {
        for png in ["phone.png", "desktop.png"] {
            let _ = std::fs::copy(shots.join(png), Path::new(&keep).join(png));
        }
    }
    eprintln!("browser: {}", serde_json::to_string_pretty(&r).unwrap());

    // What the browser saw in the DOM.
    for size in ["phone", "desktop"] {
        let s = &r[size];
        let text = s["text"].as_str().unwrap();
        for want in [
            "10.77.2.3:80",
            "10.77.2.4:80",
            "n2",
            "n3",
            "n5",
            "db/pgsql",
            "failing",
            HOSTILE,
        ] {
            assert!(text.contains(want), "{size}: no {want:?} in the page's text:\n{text}");
        }
        assert_eq!(s["pwned"], false, "{size}: a hostile name ran as script");
        assert_eq!(s["imgs"], 0, "{size}: a hostile name became an element");
        assert_eq!(s["scripts"], 1, "{size}: only the page's own script");
        assert_eq!(s["viewport"], true);
        let nodes = s["nodes"].as_str().unwrap();
        assert!(
            nodes.contains("n5") && nodes.contains("10.77.1.200"),
            "{size}: who holds what: {nodes}"
        );
        assert!(
            s["tables"].as_u64().unwrap() >= 3,
            "{size}: nodes, a service, mon-check"
        );
    }
    let phone = &r["phone"];
    assert!(
        phone["scroll_width"].as_f64() <= phone["inner_width"].as_f64()
            && phone["widest_table"].as_f64().unwrap() <= phone["inner_width"].as_f64().unwrap(),
        "the phone layout scrolls sideways: {phone}"
    );
    assert_eq!(phone["inner_width"], 390);

    // What the screenshots show, read back by OCR.
    for png in ["desktop.png", "phone.png"] {
        let text = ocr(&shots.join(png));
        for want in ["10.77.2.3:80", "10.77.2.4:80", "n5", "Virtual services"] {
            assert!(text.contains(want), "{png}: OCR found no {want:?} in:\n{text}");
        }
    }

    // The drain went through: the file, follow's event, the kernel's weight, the page.
    assert!(
        r["drain_result"].as_str().unwrap().contains("10.77.2.3:80 drained"),
        "{}",
        r["drain_result"]
    );
    assert!(dir.join("maint/10.77.2.3:80").is_file(), "the maintenance file");
    let ev = std::iter::from_fn(|| follow_events.recv_timeout(Duration::from_secs(3)).ok())
        .find(|l| l.starts_with("maintenance-in"));
    assert!(
        ev.as_deref().is_some_and(|l| l.contains("10.77.2.3:80")),
        "follow took it out for maintenance: {ev:?}"
    );
    assert!(
        wait_for(
            || weight(&lab, "10.77.2.3:80").as_deref() == Some("0"),
            Duration::from_secs(3)
        ),
        "lvs-ctl -L -n shows weight 0 after the drain"
    );
    assert_eq!(
        weight(&lab, "10.77.2.4:80").as_deref(),
        Some("1"),
        "the other untouched"
    );
    assert!(
        r["drained_row"].as_str().unwrap().contains("kernel 0"),
        "{}",
        r["drained_row"]
    );
    assert_eq!(r["drained_button"], "enable");
    assert!(r["refreshed_after_s"].as_f64().unwrap() < 5.0, "the live refresh: {r}");

    // The alert was acknowledged, and mon-check says so.
    assert!(
        r["ack_result"].as_str().unwrap().contains("acknowledged db/pgsql"),
        "{}",
        r["ack_result"]
    );
    let list = lab.net.run(
        &d2,
        &bin("mon-check"),
        &["ctl", "--socket", &dir.join("mon.sock").display().to_string(), "list"],
    );
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.contains("failing(ack)"), "{list}");

    // Refusals: each changes nothing (10.77.2.4:80 stays in, no file).
    let good = token(&lab);
    let drain4 = |t: &str| format!("token={t}&action=drain&real=10.77.2.4%3A80");
    let auth = ["-u", "alice:s3cret"];
    let origin = format!("Origin: {ORIGIN}");
    for (name, args, why) in [
        (
            "no token",
            vec![
                auth[0],
                auth[1],
                "-H",
                &origin,
                "-d",
                "action=drain&real=10.77.2.4%3A80",
                URL,
            ],
            "no CSRF token",
        ),
        (
            "a wrong token",
            vec![auth[0], auth[1], "-H", &origin, "-d", &drain4("AAAAAAAA"), URL],
            "not valid",
        ),
        (
            "no authentication",
            vec!["-H", &origin, "-d", &drain4(&good), OPEN_URL],
            "no authenticated user",
        ),
        (
            "another origin",
            vec![
                auth[0],
                auth[1],
                "-H",
                "Origin: http://evil.example",
                "-d",
                &drain4(&good),
                URL,
            ],
            "cross-site",
        ),
        (
            "no origin at all",
            vec![auth[0], auth[1], "-d", &drain4(&good), URL],
            "neither Origin nor Referer",
        ),
    ] {
        let (code, body) = curl(&lab, &args);
        assert_eq!(code, 403, "{name}: {body}");
        assert!(body.contains(why), "{name}: {body}");
        assert!(!dir.join("maint/10.77.2.4:80").exists(), "{name} changed nothing");
    }
    // A result line comes only with the page's own Referer, not from a link elsewhere.
    let forged = format!("{URL}?result=call%20this%20number");
    let (_, page) = curl(&lab, &[auth[0], auth[1], "-e", "http://evil.example/", &forged]);
    assert!(!page.contains("call this number"), "{page}");
    let (_, page) = curl(&lab, &[auth[0], auth[1], "-e", URL, &forged]);
    assert!(
        page.contains("<p id=\"result\" role=\"status\">call this number</p>"),
        "{page}"
    );
    // The unauthenticated page shows, without buttons.
    let (code, page) = curl(&lab, &[OPEN_URL]);
    assert_eq!(code, 200);
    assert!(!page.contains("<form") && page.contains("not signed in"), "{page}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        weight(&lab, "10.77.2.4:80").as_deref(),
        Some("1"),
        "refused: nothing changed"
    );

    // The same token, from the page's origin, enables the drained one again.
    let enable = format!("token={good}&action=enable&real=10.77.2.3%3A80");
    let (code, head) = curl(&lab, &[auth[0], auth[1], "-H", &origin, "-d", &enable, URL]);
    assert_eq!(code, 303, "{head}");
    assert!(
        head.contains("Location: /hakit/status.cgi?result=10.77.2.3%3A80%20enabled"),
        "{head}"
    );
    assert!(!dir.join("maint/10.77.2.3:80").exists());
    assert!(
        wait_for(
            || weight(&lab, "10.77.2.3:80").as_deref() == Some("1"),
            Duration::from_secs(3)
        ),
        "back to weight 1"
    );
}

/// A configuration error: one line naming file:line:column on stderr (the web
/// server's log), 500 with the same line to the browser, exit 2.
#[test]
fn a_bad_configuration_is_one_line_and_a_500() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("hakit.yaml");
    std::fs::write(
        &cfg,
        "lvs-ctl:\n  services:\n    - service: tcp 192.0.2.10:80\n      schedulr: rr\n",
    )
    .unwrap();
    let out = Command::new(bin("lvs-ctl"))
        .args(["cgi", "-c"])
        .arg(&cfg)
        .arg("--secret")
        .arg(d.path().join("secret"))
        .env("REQUEST_METHOD", "GET")
        .env("QUERY_STRING", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("Status: 500 "), "{stdout}");
    let place = format!("{}:4:7", cfg.display());
    assert!(stdout.contains(&place) && stdout.contains("schedulr"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&place), "{stderr}");
    assert!(!d.path().join("secret").exists(), "nothing made");
}
