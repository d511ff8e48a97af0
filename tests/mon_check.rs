//! mon-check against real servers started by the tests — Python's HTTP and SMTP
//! servers, a TLS server with a certificate made here, dnsmasq, ICMP and UDP in
//! network namespaces — and against Debian's mon and monitoring plugins: the plugin
//! output and exit codes, the mon contract both ways, the scheduler's alerts, state,
//! control socket and the import of a real mon.cf.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mc() -> PathBuf {
    bin("mon-check")
}

fn run(args: &[&str]) -> Output {
    Command::new(mc()).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// mon-check inside a namespace: (exit code, stdout, wall time).
fn run_in(net: &Net, node: usize, args: &[&str]) -> (i32, String, Duration) {
    let t = Instant::now();
    let o = net.run(net.ns(node), &mc(), args);
    (code(&o), text(&o), t.elapsed())
}

/// mon-check run as `nobody` (group `group`, no others), inside a namespace or not.
fn as_nobody(netns: Option<&str>, group: &str, args: &[&str]) -> Output {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "setpriv"]);
            c
        }
        None => Command::new("setpriv"),
    };
    cmd.args(["--reuid", "nobody", "--regid", group, "--clear-groups"])
        .arg(mc())
        .args(args)
        .output()
        .unwrap()
}

/// Who may open ICMP datagram sockets in a node's namespace.
fn ping_group_range(net: &Net, node: usize, range: &str) {
    let setting = format!("net.ipv4.ping_group_range={range}");
    sh(&["ip", "netns", "exec", net.ns(node), "sysctl", "-qw", &setting]);
}

/// A server inside a namespace, started from a shell command line.
fn serve(net: &mut Net, node: usize, cmdline: &str) {
    let ns = net.ns(node).to_string();
    net.spawn(
        &ns,
        Path::new("/bin/sh"),
        &["-c".into(), format!("exec {cmdline} 2>/dev/null")],
        Stdio::null(),
    );
}

fn wait_port(net: &Net, node: usize, host: &str, port: u16) {
    let p = port.to_string();
    assert!(
        wait_for(
            || run_in(net, 1.min(node), &["tcp", "-H", host, "-p", &p, "-t", "1"]).0 == 0,
            Duration::from_secs(10)
        ),
        "{host}:{port} never answered"
    );
}

#[test]
fn tcp_plugin_output_and_exit_codes() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    // An echo server for the send/expect case.
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 64];
            if let Ok(n) = c.read(&mut buf) {
                let _ = c.write_all(&buf[..n]);
            }
        }
    });
    let o = run(&[
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-w",
        "0.5",
        "-c",
        "1",
        "-t",
        "5",
        "-s",
        "x",
    ]);
    let line = text(&o);
    assert_eq!(code(&o), 0, "{line}");
    assert!(
        line.starts_with("TCP OK - 0.0")
            && line.contains(&format!("second response time on 127.0.0.1 port {port}|time=")),
        "{line}"
    );
    assert!(
        line.trim_end().ends_with("s;0.5;1;0;5"),
        "perfdata with thresholds and bounds: {line}"
    );
    // Ranges: `@0:100` alerts inside, so any response time raises it.
    assert_eq!(code(&run(&["tcp", "-H", "127.0.0.1", "-p", &port, "-w", "@0:100"])), 1);
    assert_eq!(
        code(&run(&[
            "tcp",
            "-H",
            "127.0.0.1",
            "-p",
            &port,
            "-w",
            "@0:100",
            "-c",
            "@0:100"
        ])),
        2
    );
    assert_eq!(code(&run(&["tcp", "-H", "127.0.0.1", "-p", &port, "-c", "10:"])), 2);
    // send and expect
    let o = run(&[
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-E",
        "-s",
        "hello\\n",
        "-e",
        "hello",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = run(&[
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-s",
        "hello",
        "-e",
        "nope",
        "-t",
        "1",
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("Unexpected response"), "{}", text(&o));
    // refused: CRITICAL, or what -r says
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let o = run(&["tcp", "-H", "127.0.0.1", "-p", &closed]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("Connection refused"), "{}", text(&o));
    assert_eq!(code(&run(&["tcp", "-H", "127.0.0.1", "-p", &closed, "-r", "ok"])), 0);
    // a name that does not resolve is CRITICAL; bad arguments are UNKNOWN
    let o = run(&["tcp", "-H", "nosuch.invalid", "-p", "80", "-t", "3"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    for bad in [
        vec!["tcp", "-H", "127.0.0.1"],
        vec!["tcp", "-H", "127.0.0.1", "-p", "80", "--bogus"],
        vec!["tcp", "-H", "127.0.0.1", "-p", "80", "-w", "5:1"],
        vec!["nosuchcheck", "-H", "x"],
        vec!["tcp", "-p", "80"],
        vec!["tcp", "-p", "80", "-H", "a", "-H", "b"],
        vec!["http", "-H", "x", "-r", "("],
        vec!["udp", "-H", "x", "-p", "1"],
    ] {
        let o = run(&bad);
        assert_eq!(
            code(&o),
            3,
            "{bad:?}: {}{}",
            text(&o),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // --json: one object with the same line and the perfdata split out
    let o = run(&["--json", "tcp", "-H", "127.0.0.1", "-p", &port]);
    let v: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    assert_eq!(v["status"], "OK");
    assert_eq!(v["code"], 0);
    assert_eq!(v["perf"][0]["label"], "time");
    assert!(v["line"].as_str().unwrap().starts_with("TCP OK"));
}

#[test]
fn side_by_side_with_check_tcp() {
    let plugin = Path::new("/usr/lib/nagios/plugins/check_tcp");
    assert!(plugin.exists(), "monitoring-plugins-basic is not installed");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    for p in [&port, &closed] {
        let theirs = Command::new(plugin)
            .args(["-H", "127.0.0.1", "-p", p])
            .output()
            .unwrap();
        let ours = run(&["tcp", "-H", "127.0.0.1", "-p", p]);
        assert_eq!(code(&ours), code(&theirs), "{} vs {}", text(&ours), text(&theirs));
        // Same shape: `TCP OK - N second response time on H port P|time=...`
        let (t, o) = (text(&theirs), text(&ours));
        if code(&ours) == 0 {
            let strip = |s: &str| {
                s.split('|')
                    .next()
                    .unwrap()
                    .split(" second")
                    .nth(1)
                    .unwrap()
                    .to_string()
            };
            assert_eq!(strip(&o), strip(&t), "{o} vs {t}");
        } else {
            assert!(
                o.contains("Connection refused") && t.contains("Connection refused"),
                "{o} vs {t}"
            );
        }
    }
    // Any plugin becomes a mon monitor over many hosts: mon appends them after --hosts.
    let o = run(&[
        "--mon",
        "exec",
        "--",
        "/usr/lib/nagios/plugins/check_tcp",
        "-H",
        "{host}",
        "-p",
        &port,
        "--hosts",
        "127.0.0.1",
        "127.0.0.2",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert_eq!(text(&o).lines().next(), Some("127.0.0.2"), "{}", text(&o));
    // and mon-check exec runs the plugin and takes its result
    let o = run(&[
        "exec",
        "--",
        "/usr/lib/nagios/plugins/check_tcp",
        "-H",
        "127.0.0.1",
        "-p",
        &closed,
    ]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("Connection refused"), "{}", text(&o));
}

#[test]
fn timeouts_are_critical_and_bounded_and_output_is_cut() {
    let net = Net::new(2, 1);
    // A port whose packets vanish: the connection neither opens nor is refused.
    let ns2 = net.ns(2).to_string();
    net.nft(
        &ns2,
        "table inet t {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 9 drop\n    udp dport 9 drop\n  }\n}\n",
    );
    let (c, out, took) = run_in(&net, 1, &["tcp", "-H", "10.77.1.2", "-p", "9", "-t", "1"]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("Socket timeout after 1 seconds"), "{out}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // ... unless the operator says what a timeout is (the users' wish; the plugins' -t N:STATE)
    let (c, out, _) = run_in(
        &net,
        1,
        &[
            "tcp",
            "-H",
            "10.77.1.2",
            "-p",
            "9",
            "-t",
            "1",
            "--timeout-state",
            "unknown",
        ],
    );
    assert_eq!(c, 3, "{out}");
    let (c, out, took) = run_in(&net, 1, &["udp", "-H", "10.77.1.2", "-p", "9", "-s", "x", "-t", "1"]);
    assert_eq!(c, 2, "{out}");
    assert!(
        out.contains("Socket timeout after 1 seconds"),
        "a silence, not a refusal: {out}"
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // A hung plugin is killed with its whole process group.
    let t = Instant::now();
    let o = run(&["exec", "-t", "1", "--", "sh", "-c", "sleep 30 & sleep 30"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("timed out after 1 seconds"), "{}", text(&o));
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    // A plugin that prints megabytes is cut at the bound.
    let o = run(&[
        "-v",
        "exec",
        "--max-output",
        "1000",
        "--",
        "sh",
        "-c",
        "yes | head -c 5000000; exit 1",
    ]);
    assert_eq!(code(&o), 1);
    assert!(o.stdout.len() < 1200, "{} bytes", o.stdout.len());
}

/// Issue 8, defect 8: a plugin that leaves a child in the background (which holds its
/// output pipe) is answered as soon as the plugin itself exits, and what it left in its
/// process group is ended, not left to pile up.
#[test]
fn a_plugins_background_children_end_with_it() {
    let d = tempfile::tempdir().unwrap();
    let pidf = d.path().join("bg.pid");
    let script = format!("sleep 1000 & echo $! > {}; echo 'OK - done'", pidf.display());
    let t = Instant::now();
    let o = run(&["exec", "-t", "5", "--", "sh", "-c", &script]);
    let took = t.elapsed();
    let pid = pid_in(&pidf, Duration::from_secs(1));
    let gone = wait_for(|| process_gone(pid), Duration::from_secs(2));
    if !gone {
        kill_leftover(pid, "sleep");
    }
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(text(&o).trim_end(), "OK - done");
    assert!(
        took < Duration::from_secs(1),
        "answered after {took:?}, not when the plugin exited"
    );
    assert!(gone, "the plugin's background child {pid} outlived it");
}

/// A CA of the test's own (`ca.pem`), and a 10-day server certificate it signs for
/// www.hakit.test (`cert.pem`, `key.pem`; webpki reads the name from the
/// subjectAltName), in `dir`.
fn make_certificates(dir: &Path) {
    let p = |n: &str| dir.join(n).display().to_string();
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:www.hakit.test\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    for cmd in [
        format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=hakit-test-ca -keyout {} -out {}",
            p("ca.key"),
            p("ca.pem")
        ),
        format!(
            "openssl req -newkey rsa:2048 -nodes -subj /CN=www.hakit.test -keyout {} -out {}",
            p("key.pem"),
            p("leaf.csr")
        ),
        format!(
            "openssl x509 -req -in {} -CA {} -CAkey {} -CAcreateserial -days 10 -extfile {} -out {}",
            p("leaf.csr"),
            p("ca.pem"),
            p("ca.key"),
            p("ext.cnf"),
            p("cert.pem")
        ),
    ] {
        let o = Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// An HTTPS server on node 2, port 8443, serving `dir/site` with those certificates.
fn python_https(dir: &Path) -> String {
    make_certificates(dir);
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let script = dir.join("https.py");
    std::fs::write(
        &script,
        format!(
            "import http.server, ssl, os\nos.chdir('{site}')\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nctx.load_cert_chain('{cert}', '{key}')\ns = http.server.HTTPServer(('10.77.1.2', 8443), http.server.SimpleHTTPRequestHandler)\ns.socket = ctx.wrap_socket(s.socket, server_side=True)\ns.serve_forever()\n",
            site = dir.join("site").display(),
            cert = cert.display(),
            key = key.display()
        ),
    )
    .unwrap();
    format!("python3 {}", script.display())
}

#[test]
fn http_and_https_against_real_servers() {
    let mut net = Net::new(2, 1);
    net.ip(net.ns(1), &["addr", "add", "fd77::1/64", "dev", "eth0", "nodad"]);
    net.ip(net.ns(2), &["addr", "add", "fd77::2/64", "dev", "eth0", "nodad"]);
    let site = net.dir.path().join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    std::fs::write(site.join("index.html"), "<html>hakit-ok 42</html>\n").unwrap();
    std::fs::write(site.join("sub/index.html"), "inner\n").unwrap();
    let py = format!("python3 -m http.server 8080 --bind :: --directory {}", site.display());
    serve(&mut net, 2, &py);
    let https = python_https(net.dir.path());
    serve(&mut net, 2, &https);
    wait_port(&net, 2, "10.77.1.2", 8080);
    wait_port(&net, 2, "10.77.1.2", 8443);

    let h = |args: &[&str]| run_in(&net, 1, args);
    let (c, out, _) = h(&["http", "-H", "10.77.1.2", "-p", "8080", "-s", "hakit-ok"]);
    assert_eq!(c, 0, "{out}");
    assert!(
        out.starts_with("HTTP OK: HTTP/1.0 200 OK - ") && out.contains("|time="),
        "{out}"
    );
    assert!(out.contains(" size="), "{out}");
    let (c, out, _) = h(&["http", "-H", "10.77.1.2", "-p", "8080", "-s", "absent"]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("string 'absent' not found"), "{out}");
    assert_eq!(
        h(&["http", "-H", "10.77.1.2", "-p", "8080", "-r", "hakit-ok [0-9]+"]).0,
        0
    );
    assert_eq!(
        h(&[
            "http",
            "-H",
            "10.77.1.2",
            "-p",
            "8080",
            "-r",
            "hakit-ok",
            "--invert-regex"
        ])
        .0,
        2
    );
    let (c, out, _) = h(&["http", "-H", "10.77.1.2", "-p", "8080", "-u", "/missing"]);
    assert_eq!(c, 1, "a 404 is a WARNING: {out}");
    assert_eq!(
        h(&["http", "-H", "10.77.1.2", "-p", "8080", "-u", "/missing", "-e", "404"]).0,
        0
    );
    // /sub redirects to /sub/
    assert_eq!(
        h(&["http", "-H", "10.77.1.2", "-p", "8080", "-u", "/sub", "-f", "critical"]).0,
        2
    );
    let (c, out, _) = h(&[
        "http",
        "-H",
        "10.77.1.2",
        "-p",
        "8080",
        "-u",
        "/sub",
        "-f",
        "follow",
        "-s",
        "inner",
    ]);
    assert_eq!(c, 0, "{out}");
    // IPv6
    let (c, out, _) = h(&["http", "-6", "-H", "fd77::2", "-p", "8080", "-s", "hakit-ok"]);
    assert_eq!(c, 0, "{out}");
    let (c, out, _) = h(&["tcp", "-H", "fd77::2", "-p", "8080"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("on fd77::2 port 8080"), "{out}");
    assert_eq!(
        h(&["tcp", "-4", "-H", "fd77::2", "-p", "8080"]).0,
        2,
        "-4 refuses a v6 address"
    );
    // Nothing listening: CRITICAL
    assert_eq!(h(&["http", "-H", "10.77.1.2", "-p", "8081", "-t", "2"]).0, 2);

    // HTTPS: the page over TLS, and the certificate's days (it was made for 10).
    let (c, out, _) = h(&["https", "-H", "10.77.1.2", "-p", "8443", "-s", "hakit-ok"]);
    assert_eq!(c, 0, "{out}");
    let (c, out, _) = h(&[
        "https",
        "-H",
        "10.77.1.2",
        "-p",
        "8443",
        "--vhost",
        "www.hakit.test",
        "-C",
        "30,5",
    ]);
    assert_eq!(c, 1, "{out}");
    assert!(
        out.starts_with("SSL WARNING - Certificate 'www.hakit.test' will expire in 9 days")
            || out.contains("in 10 days"),
        "{out}"
    );
    assert_eq!(h(&["https", "-H", "10.77.1.2", "-p", "8443", "-C", "5"]).0, 0);
    assert_eq!(h(&["https", "-H", "10.77.1.2", "-p", "8443", "-C", "30,20"]).0, 2);
    assert_eq!(
        h(&[
            "https",
            "-H",
            "10.77.1.2",
            "-p",
            "8443",
            "-C",
            "5",
            "--continue-after-certificate",
            "-s",
            "absent"
        ])
        .0,
        2
    );
    // TLS against a plain HTTP port fails cleanly, CRITICAL.
    let (c, out, _) = h(&["https", "-H", "10.77.1.2", "-p", "8080", "-t", "3"]);
    assert_eq!(c, 2, "{out}");
    // --verify: against the test's CA it verifies; against the system's roots, or for
    // another name, it does not.
    let ca = net.dir.path().join("ca.pem").display().to_string();
    let v = |extra: &[&str]| {
        let mut a = vec!["https", "-H", "10.77.1.2", "-p", "8443", "-s", "hakit-ok"];
        a.extend_from_slice(extra);
        run_in(&net, 1, &a)
    };
    let (c, out, _) = v(&["--vhost", "www.hakit.test", "--ca-file", &ca]);
    assert_eq!(c, 0, "{out}");
    let (c, out, _) = v(&["--vhost", "www.hakit.test", "--verify"]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("UnknownIssuer"), "{out}");
    let (c, out, _) = v(&["--vhost", "other.hakit.test", "--ca-file", &ca]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("not valid for name"), "{out}");
    // The tls check: any TLS port, the handshake and the certificate.
    let (c, out, _) = h(&[
        "tls",
        "-H",
        "10.77.1.2",
        "-p",
        "8443",
        "--sni",
        "www.hakit.test",
        "-C",
        "30,5",
    ]);
    assert_eq!(c, 1, "{out}");
    assert!(
        out.starts_with("TLS WARNING - 0.0") && out.contains("second handshake on 10.77.1.2 port 8443"),
        "{out}"
    );
    let (c, out, _) = h(&[
        "tls",
        "-H",
        "10.77.1.2",
        "-p",
        "8443",
        "--ca-file",
        &ca,
        "--sni",
        "www.hakit.test",
        "-C",
        "5",
    ]);
    assert_eq!(c, 0, "{out}");
    assert_eq!(h(&["tls", "-H", "10.77.1.2", "-p", "8080", "-t", "3"]).0, 2);
}

#[test]
fn dns_against_dnsmasq() {
    let mut net = Net::new(2, 1);
    let pid = net.path("dnsmasq.pid").display().to_string();
    serve(
        &mut net,
        2,
        &format!(
            "dnsmasq --no-daemon --port 53 --listen-address 10.77.1.2 --bind-interfaces --no-resolv --no-hosts --local=/hakit.test/ --address=/www.hakit.test/10.77.1.80 --address=/v6.hakit.test/fd77::80 --pid-file={pid} --user=root"
        ),
    );
    let ok = || run_in(&net, 1, &["dns", "-H", "www.hakit.test", "-s", "10.77.1.2", "-t", "1"]);
    assert!(wait_for(|| ok().0 == 0, Duration::from_secs(10)), "{:?}", ok());
    let (_, out, _) = ok();
    assert!(
        out.starts_with("DNS OK: ") && out.contains("www.hakit.test returns 10.77.1.80|time="),
        "{out}"
    );
    let d = |args: &[&str]| run_in(&net, 1, args).0;
    assert_eq!(
        d(&["dns", "-H", "www.hakit.test", "-s", "10.77.1.2", "-a", "10.77.1.80"]),
        0
    );
    assert_eq!(
        d(&["dns", "-H", "www.hakit.test", "-s", "10.77.1.2", "-a", "10.77.1.81"]),
        2
    );
    assert_eq!(
        d(&[
            "dns",
            "-H",
            "v6.hakit.test",
            "-s",
            "10.77.1.2",
            "-q",
            "AAAA",
            "-a",
            "fd77:0::80"
        ]),
        0
    );
    let (c, out, _) = run_in(&net, 1, &["dns", "-H", "nx.hakit.test", "-s", "10.77.1.2"]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("was not found"), "{out}");
    // No server there: a timeout, CRITICAL, on time.
    let (c, _, took) = run_in(
        &net,
        1,
        &[
            "dns",
            "-H",
            "www.hakit.test",
            "-s",
            "10.77.1.2",
            "-p",
            "5353",
            "-t",
            "1",
        ],
    );
    assert_eq!(c, 2);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // As a mon monitor over servers: the dead one is named.
    let (c, out, _) = run_in(
        &net,
        1,
        &[
            "--mon",
            "dns",
            "-H",
            "www.hakit.test",
            "-t",
            "1",
            "10.77.1.2",
            "10.77.1.3",
        ],
    );
    assert_eq!(c, 2, "{out}");
    assert_eq!(out.lines().next(), Some("10.77.1.3"), "{out}");
}

#[test]
fn smtp_udp_and_icmp_in_namespaces() {
    let mut net = Net::new(2, 1);
    net.ip(net.ns(1), &["addr", "add", "fd77::1/64", "dev", "eth0", "nodad"]);
    net.ip(net.ns(2), &["addr", "add", "fd77::2/64", "dev", "eth0", "nodad"]);
    serve(
        &mut net,
        2,
        "python3 -W ignore -m smtpd -n -c DebuggingServer 10.77.1.2:2525",
    );
    make_certificates(net.dir.path());
    let starttls = net.dir.path().join("starttls.py");
    std::fs::write(
        &starttls,
        format!(
            r#"import socket, ssl, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('{d}/cert.pem', '{d}/key.pem')
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('10.77.1.2', 2587))
srv.listen(16)
def handle(c):
    f = c.makefile('rb')
    c.sendall(b'220 tls.hakit.test ESMTP\r\n')
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.strip().upper()
        if cmd.startswith(b'EHLO'):
            c.sendall(b'250-tls.hakit.test\r\n250 STARTTLS\r\n')
        elif cmd == b'STARTTLS':
            c.sendall(b'220 go ahead\r\n')
            c = ctx.wrap_socket(c, server_side=True)
            f = c.makefile('rb')
        elif cmd == b'QUIT':
            c.sendall(b'221 bye\r\n')
            c.close()
            return
        else:
            c.sendall(b'250 ok\r\n')
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#,
            d = net.dir.path().display()
        ),
    )
    .unwrap();
    serve(&mut net, 2, &format!("python3 {}", starttls.display()));
    let udp = net.dir.path().join("udp.py");
    std::fs::write(
        &udp,
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('10.77.1.2', 7007))\nwhile True:\n    d, a = s.recvfrom(2048)\n    s.sendto(b'pong ' + d, a)\n",
    )
    .unwrap();
    serve(&mut net, 2, &format!("python3 {}", udp.display()));
    wait_port(&net, 2, "10.77.1.2", 2525);
    let (c, out, _) = run_in(
        &net,
        1,
        &["smtp", "-H", "10.77.1.2", "-p", "2525", "--helo", "client.hakit.test"],
    );
    assert_eq!(c, 0, "{out}");
    assert!(out.starts_with("SMTP OK - ") && out.contains(", 220 "), "{out}");
    assert_eq!(
        run_in(&net, 1, &["smtp", "-H", "10.77.1.2", "-p", "2525", "-e", "250"]).0,
        1
    );
    assert_eq!(run_in(&net, 1, &["smtp", "-H", "10.77.1.2", "-p", "2526"]).0, 2);
    // STARTTLS: the certificate of a mail server (10 days left), verified against the
    // test's CA; a server that does not offer it is CRITICAL.
    wait_port(&net, 2, "10.77.1.2", 2587);
    let ca = net.dir.path().join("ca.pem").display().to_string();
    let smtp_tls = |extra: &[&str]| {
        let mut a = vec!["smtp", "-H", "10.77.1.2", "-p", "2587", "--sni", "www.hakit.test"];
        a.extend_from_slice(extra);
        run_in(&net, 1, &a)
    };
    let (c, out, _) = smtp_tls(&["-C", "30,5", "--ca-file", &ca]);
    assert_eq!(c, 1, "{out}");
    assert!(
        out.contains(", 220 tls.hakit.test ESMTP; Certificate 'www.hakit.test' will expire in"),
        "{out}"
    );
    assert_eq!(smtp_tls(&["-C", "5", "--ca-file", &ca]).0, 0);
    assert_eq!(smtp_tls(&["-C", "5", "--verify"]).0, 2, "not signed by a system root");
    let (c, out, _) = run_in(&net, 1, &["smtp", "-H", "10.77.1.2", "-p", "2525", "--starttls"]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("does not offer STARTTLS"), "{out}");

    let u = |args: &[&str]| run_in(&net, 1, args);
    assert!(wait_for(
        || u(&[
            "udp",
            "-H",
            "10.77.1.2",
            "-p",
            "7007",
            "-s",
            "ping",
            "-e",
            "pong ping",
            "-t",
            "1"
        ])
        .0 == 0,
        Duration::from_secs(5)
    ));
    let (c, out, _) = u(&["udp", "-H", "10.77.1.2", "-p", "7008", "-s", "ping", "-t", "2"]);
    assert_eq!(c, 2, "{out}");
    assert!(
        out.contains("Connection refused"),
        "the port unreachable is heard: {out}"
    );

    // ICMP: as root over a raw socket, v4 and v6; a silent address loses everything.
    let (c, out, _) = u(&["icmp", "-H", "10.77.1.2", "-n", "3", "-i", "20ms"]);
    assert_eq!(c, 0, "{out}");
    assert!(
        out.starts_with("PING OK - 10.77.1.2 rta ") && out.contains("lost 0%|rta="),
        "{out}"
    );
    assert_eq!(u(&["icmp", "-6", "-H", "fd77::2", "-n", "3", "-i", "20ms"]).0, 0);
    let (c, out, took) = u(&["icmp", "-H", "10.77.1.99", "-n", "3", "-i", "20ms", "-c", "200,80%"]);
    assert_eq!(c, 2, "{out}");
    assert!(out.contains("lost 100%"), "{out}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Unprivileged, where the namespace allows ICMP datagram sockets.
    ping_group_range(&net, 1, "0 2147483647");
    let o = as_nobody(
        Some(net.ns(1)),
        "nogroup",
        &["icmp", "-H", "10.77.1.2", "-n", "2", "-i", "20ms"],
    );
    assert_eq!(code(&o), 0, "{}{}", text(&o), String::from_utf8_lossy(&o.stderr));
    // Without the namespace's permission and without CAP_NET_RAW: UNKNOWN, and why.
    ping_group_range(&net, 1, "1 0");
    let o = as_nobody(Some(net.ns(1)), "nogroup", &["icmp", "-H", "10.77.1.2", "-n", "1"]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(text(&o).contains("ping_group_range"), "{}", text(&o));
    assert!(
        text(&o).contains("lacks CAP_NET_RAW"),
        "names what is missing: {}",
        text(&o)
    );
    // --mon over hosts: the failed one first, with its detail.
    let (c, out, _) = u(&[
        "--mon",
        "icmp",
        "-n",
        "2",
        "-i",
        "20ms",
        "-c",
        "200,80%",
        "10.77.1.2",
        "10.77.1.98",
    ]);
    assert_eq!(c, 2, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("10.77.1.98"));
    assert!(lines.next().unwrap().starts_with("10.77.1.98: PING CRITICAL"), "{out}");
}

/// A web server on node 2, port 8080 (node 1, where the checks run, has none).
fn web_on_n2(net: &mut Net) {
    let site = net.dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let cmd = format!(
        "python3 -m http.server 8080 --bind 10.77.1.2 --directory {}",
        site.display()
    );
    serve(net, 2, &cmd);
    wait_port(net, 2, "10.77.1.2", 8080);
}

/// An alert script that records how it was called, for both mon and mon-check.
fn recorder(dir: &Path, name: &str, log: &Path) {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\n{{ echo \"ARGS $*\"; echo \"TYPE=$MON_ALERTTYPE GROUP=$MON_GROUP SERVICE=$MON_SERVICE RETVAL=$MON_RETVAL\"; cat; echo END; }} >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    set_mode(&p, 0o755);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn mon_check_is_a_monitor_under_debians_mon() {
    let mut net = Net::new(2, 1);
    let d = net.dir.path().to_path_buf();
    for sub in ["mon.d", "alert.d", "state", "log"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::os::unix::fs::symlink(mc(), d.join("mon.d/mon-check")).unwrap();
    // mon will not start without an auth.cf; Debian's own is the one to use.
    std::fs::copy("/etc/mon/auth.cf", d.join("auth.cf")).unwrap();
    let log = d.join("alerts.log");
    recorder(&d.join("alert.d"), "record.alert", &log);
    web_on_n2(&mut net);
    // 10.77.1.1 is the mon node itself, where nothing listens on 8080.
    std::fs::write(
        d.join("mon.cf"),
        format!(
            "alertdir = {d}/alert.d\nmondir = {d}/mon.d\nauthfile = {d}/auth.cf\nstatedir = {d}/state\nlogdir = {d}/log\ncfbasedir = {d}\nmaxprocs = 20\nserverbind = 127.0.0.1\ntrapbind = 127.0.0.1\ndtlogging = no\n\nhostgroup web 10.77.1.2 10.77.1.1\n\nwatch web\n    service http\n        interval 2s\n        monitor mon-check --mon tcp -p 8080 -t 2\n        period\n            alert record.alert\n",
            d = d.display()
        ),
    )
    .unwrap();
    let ns1 = net.ns(1).to_string();
    net.spawn(
        &ns1,
        Path::new("/usr/sbin/mon"),
        &["-c".into(), d.join("mon.cf").display().to_string()],
        Stdio::null(),
    );
    assert!(
        wait_for(|| read(&log).contains("END"), Duration::from_secs(20)),
        "mon never alerted; alerts: {}",
        read(&log)
    );
    let got = read(&log);
    // mon gives its alerts the whole group in -h; the summary (our first line) names
    // the failed host.
    assert!(got.contains("-s http -g web -h 10.77.1.2 10.77.1.1 -t "), "{got}");
    assert!(
        got.contains("TYPE=failure GROUP=web SERVICE=http RETVAL=2\n10.77.1.1\n"),
        "{got}"
    );
    assert!(
        got.contains("10.77.1.1: TCP CRITICAL - connect to address 10.77.1.1 and port 8080: Connection refused"),
        "{got}"
    );
    assert!(!got.contains("10.77.1.2:"), "the answering host is not reported: {got}");
}

#[test]
fn mons_tcp_monitor_runs_under_mon_check() {
    let mut net = Net::new(2, 1);
    let d = net.dir.path().to_path_buf();
    let log = d.join("alerts.log");
    recorder(&d, "record.alert", &log);
    web_on_n2(&mut net);
    let cfg = d.join("hakit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mon-check:\n  state-dir: {d}/state\n  alertdir: [{d}]\n  hostgroups:\n    web: [10.77.1.2, 10.77.1.1]\n  watches:\n    web:\n      http:\n        monitor: tcp.monitor -p 8080\n        periods:\n          - alert: record.alert\n",
            d = d.display()
        ),
    )
    .unwrap();
    let (c, _, _) = run_in(&net, 1, &["run", "--once", "-c", &cfg.display().to_string()]);
    assert_eq!(c, 2);
    let got = read(&log);
    assert!(got.contains("-s http -g web -h 10.77.1.1 "), "{got}");
    assert!(
        got.contains("TYPE=failure GROUP=web SERVICE=http RETVAL=1"),
        "mon's monitor exits 1: {got}"
    );
    assert!(
        got.contains("10.77.1.1 could not connect"),
        "tcp.monitor's own detail: {got}"
    );
    let st: serde_json::Value = serde_json::from_str(&read(&d.join("state/state.json"))).unwrap();
    let hosts = &st["services"]["web/http"]["hosts"];
    assert_eq!(hosts["10.77.1.1"]["status"], "CRITICAL", "{st}");
    assert_eq!(hosts["10.77.1.2"]["status"], "OK", "{st}");
}

/// A running scheduler in the test's own temporary directory, on loopback.
struct Sched {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Sched {
    fn new(yaml: &str) -> Sched {
        let dir = tempfile::tempdir().unwrap();
        let y = yaml.replace("DIR", &dir.path().display().to_string());
        std::fs::write(dir.path().join("hakit.yaml"), y).unwrap();
        Sched { dir, child: None }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn start(&mut self) {
        let append = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.p(name))
                .unwrap()
        };
        let child = Command::new(mc())
            .args(["run", "-c"])
            .arg(self.p("hakit.yaml"))
            .stdout(append("events.log"))
            .stderr(append("sched.log"))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let sock = self.p("mon.sock");
        assert!(wait_for(|| sock.exists(), Duration::from_secs(5)), "no socket");
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let st = c.wait().unwrap();
            assert_eq!(st.code(), Some(0), "SIGTERM stops it cleanly");
        }
    }
    fn ctl(&self, args: &[&str]) -> Output {
        let sock = self.p("mon.sock").display().to_string();
        let mut v = vec!["ctl", "--socket", &sock];
        v.extend_from_slice(args);
        run(&v)
    }
    fn list(&self) -> serde_json::Value {
        let sock = self.p("mon.sock").display().to_string();
        let o = run(&["--json", "ctl", "--socket", &sock, "list"]);
        let v: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
        v["status"].clone()
    }
    fn alerts(&self) -> Vec<String> {
        read(&self.p("alerts.log"))
            .lines()
            .filter(|l| l.starts_with("ARGS"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn alerts_are_suppressed_over_time_and_state_survives_a_restart() {
    let port = free_port();
    let mut s = Sched::new(&format!(
        "mon-check:\n  state-dir: DIR/state\n  socket: DIR/mon.sock\n  alertdir: [DIR]\n  hostgroups:\n    local: [127.0.0.1]\n  watches:\n    local:\n      svc:\n        interval: 300ms\n        monitor: tcp -p {port} -t 1\n        periods:\n          - alert: record.alert\n            upalert: record.alert\n            alertevery: 1h\n      slow:\n        interval: 300ms\n        monitor: tcp -p {port} -t 1\n        periods:\n          - alert: slow.alert\n"
    ));
    recorder(s.dir.path(), "record.alert", &s.p("alerts.log"));
    std::fs::write(s.p("slow.alert"), "#!/bin/sh\nsleep 20\n").unwrap();
    set_mode(&s.p("slow.alert"), 0o755);
    s.start();
    assert!(wait_for(|| s.alerts().len() == 1, Duration::from_secs(5)));
    // Several more failures, one alert: alertevery holds an unchanged summary.
    let first = s.list();
    std::thread::sleep(Duration::from_millis(1500));
    let later = s.list();
    assert_eq!(s.alerts().len(), 1, "{:?}", s.alerts());
    assert!(
        s.alerts()[0].contains("-s svc -g local -h 127.0.0.1 "),
        "{:?}",
        s.alerts()
    );
    // A slow alert (20 s) did not hold the schedule: `slow` kept being checked.
    let last = |v: &serde_json::Value| v["services"][0]["last_check"].as_i64().unwrap_or(0);
    assert!(last(&later) > last(&first), "{first}\n{later}");
    // Events for scripts on stdout: the host and the service went down, once.
    let events = |s: &Sched, prefix: &str| {
        read(&s.p("events.log"))
            .lines()
            .filter(|l| l.starts_with(prefix) && l.contains("local/svc"))
            .count()
    };
    let log = read(&s.p("events.log"));
    assert!(
        log.lines().any(|l| l.starts_with("host-down 127.0.0.1 ts=")
            && l.contains(" service=local/svc status=CRITICAL was=untested ")),
        "{log}"
    );
    assert_eq!(events(&s, "service-failing local/svc "), 1, "{log}");
    // Restart: nothing is re-alerted, the failure is remembered.
    s.stop();
    s.start();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.alerts().len(), 1, "re-alerted after a restart: {:?}", s.alerts());
    assert_eq!(events(&s, "host-down 127.0.0.1 "), 1, "no new event after a restart");
    let since = |v: &serde_json::Value| v["services"][1]["since"].as_i64();
    assert_eq!(since(&s.list()), since(&first), "the episode's start survives");
    // Recovery: one up alert, with -u, naming the host that was down.
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(
        wait_for(|| s.alerts().len() == 2, Duration::from_secs(5)),
        "{:?}",
        s.alerts()
    );
    assert!(
        s.alerts()[1].contains("-h 127.0.0.1 -t ") && s.alerts()[1].ends_with(" -u"),
        "{:?}",
        s.alerts()
    );
    assert_eq!(s.list()["services"][1]["state"], "ok");
    assert_eq!(events(&s, "host-up 127.0.0.1 "), 1, "{}", read(&s.p("events.log")));
    assert_eq!(events(&s, "service-up local/svc "), 1);
    drop(l);
    s.stop();
}

#[test]
fn the_control_commands() {
    let port = free_port();
    let mut s = Sched::new(&format!(
        "mon-check:\n  state-dir: DIR/state\n  socket: DIR/mon.sock\n  alertdir: [DIR]\n  hostgroups:\n    local: [127.0.0.1, 127.0.0.2]\n  watches:\n    local:\n      svc:\n        interval: 1h\n        failure-interval: 200ms\n        monitor: tcp -p {port} -t 1\n        periods:\n          - alert: [missing.alert, record.alert]\n            alertevery: 1h\n"
    ));
    recorder(s.dir.path(), "record.alert", &s.p("alerts.log"));
    s.start();
    // A missing alert is logged; the next one in the list still runs.
    assert!(
        wait_for(|| s.alerts().len() == 1, Duration::from_secs(5)),
        "{}",
        read(&s.p("sched.log"))
    );
    assert!(read(&s.p("sched.log")).contains("alert `missing.alert` not found"));
    // A failing service is checked at its failure-interval, not its interval (1 h).
    let last = |s: &Sched| s.list()["services"][0]["last_check"].as_i64().unwrap_or(0);
    let first = last(&s);
    assert!(
        wait_for(|| last(&s) > first, Duration::from_secs(3)),
        "re-checked while failing"
    );
    let o = s.ctl(&["list"]);
    assert_eq!(code(&o), 0);
    assert!(
        text(&o).contains("local/svc") && text(&o).contains("failing"),
        "{}",
        text(&o)
    );

    // disable a host for a while, with a reason; it leaves the next run
    assert_eq!(
        code(&s.ctl(&["disable", "host", "127.0.0.2", "--for", "1h", "--reason", "disk swap"])),
        0
    );
    let l = s.list();
    assert_eq!(l["disabled"]["hosts"]["127.0.0.2"]["reason"], "disk swap");
    assert!(l["services"][0]["hosts"][1]["disabled"].as_bool().unwrap());
    assert_eq!(code(&s.ctl(&["disable", "host", "nosuch"])), 2);
    assert_eq!(code(&s.ctl(&["enable", "host", "127.0.0.2"])), 0);
    assert_eq!(
        code(&s.ctl(&["enable", "host", "127.0.0.2"])),
        2,
        "not disabled any more"
    );
    assert_eq!(code(&s.ctl(&["disable", "service", "local", "svc"])), 0);
    assert_eq!(s.list()["services"][0]["state"], "disabled");
    assert_eq!(code(&s.ctl(&["enable", "service", "local", "svc"])), 0);
    assert_eq!(code(&s.ctl(&["disable", "watch", "local"])), 0);
    assert_eq!(code(&s.ctl(&["enable", "watch", "local"])), 0);

    // acknowledge: only a failing service
    assert_eq!(code(&s.ctl(&["ack", "local", "svc", "on", "it"])), 0);
    assert_eq!(s.list()["services"][0]["ack"]["comment"], "on it");
    assert_eq!(code(&s.ctl(&["ack", "local", "nosuch"])), 2);

    // test an alert: it runs now, as a test
    assert_eq!(code(&s.ctl(&["test", "local", "svc"])), 0);
    assert!(wait_for(
        || read(&s.p("alerts.log")).contains("TYPE=test"),
        Duration::from_secs(5)
    ));

    // run the monitor now: it recovers, which clears the ack
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let l2 = TcpListener::bind(("127.0.0.2", port)).unwrap();
    assert_eq!(code(&s.ctl(&["check", "local", "svc"])), 0);
    assert!(wait_for(
        || s.list()["services"][0]["state"] == "ok",
        Duration::from_secs(5)
    ));
    assert!(s.list()["services"][0]["ack"].is_null());
    drop((l, l2));

    // reload: a broken file is refused and the running configuration kept
    let good = read(&s.p("hakit.yaml"));
    std::fs::write(s.p("hakit.yaml"), good.replace("interval: 1h", "interval: soon")).unwrap();
    let o = s.ctl(&["reload"]);
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hakit.yaml:10:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(s.p("hakit.yaml"), good.replace("svc:", "svc2:")).unwrap();
    assert_eq!(code(&s.ctl(&["reload"])), 0);
    assert_eq!(s.list()["services"][0]["service"], "svc2");

    // a user without access is refused: the directory lets anyone through, the
    // socket (0600) does not
    set_mode(s.dir.path(), 0o755);
    let sock = s.p("mon.sock").display().to_string();
    let o = as_nobody(None, "nogroup", &["ctl", "--socket", &sock, "list"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    // and the state file holds what was said
    s.stop();
    assert!(read(&s.p("state/state.json")).contains("svc2"));
}

#[test]
fn configuration_errors_name_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("hakit.yaml");
    for (yaml, want) in [
        ("mon-check:\n  hostgroups:\n    web: [a]\n  watches:\n    web:\n      x:\n        monitor: tcp -p 80 --nope\n", ":7:9: "),
        ("mon-check:\n  hostgroups:\n    web: [a]\n  watches:\n    web:\n      x:\n        monitor: tcp -p 80\n        intervl: 5s\n", ":8:9: "),
        ("mon-check:\n  hostgroups:\n    web: [a]\n  watches:\n    db:\n      x:\n        monitor: tcp -p 80\n", ":5:5: "),
        ("mon-check:\n  watches: [\n", ":"),
    ] {
        std::fs::write(&p, yaml).unwrap();
        let o = run(&["run", "--check", "-c", &p.display().to_string()]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(code(&o), 3, "{err}");
        assert!(err.contains(&format!("hakit.yaml{want}")), "{yaml}\n{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    let o = run(&["run", "--check", "-c", "/nonexistent/hakit.yaml"]);
    assert_eq!(code(&o), 3);
}

#[test]
fn import_debians_mon_cf() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("imported.yaml");
    let o = run(&["import", "/etc/mon/mon.cf", "-o", &out.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    // Debian's file has a trap service, which is reported and left out.
    assert!(String::from_utf8_lossy(&o.stderr).contains("traptimeout"));
    let yaml = read(&out);
    assert!(yaml.contains("monitor: fping.monitor"), "{yaml}");
    assert!(yaml.contains("- when: 'wd {Mon-Fri} hr {7am-10pm}'"), "{yaml}");
    // The result is a configuration the scheduler accepts as it is.
    let o = run(&["run", "--check", "-c", &out.display().to_string()]);
    assert_eq!(code(&o), 0, "{}{}", text(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        text(&o).contains("localhost/ping every 5m: fping.monitor"),
        "{}",
        text(&o)
    );
    // mon's larger example imports too; what is not installed here is named.
    let ex = d.path().join("example.cf");
    let gz = Command::new("zcat")
        .arg("/usr/share/doc/mon/examples/example.cf.gz")
        .output()
        .unwrap();
    std::fs::write(&ex, &gz.stdout).unwrap();
    let o = run(&["import", &ex.display().to_string()]);
    assert_eq!(code(&o), 0);
    let y: serde_yaml::Value = serde_yaml::from_str(&text(&o)).unwrap();
    let watches = &y["mon-check"]["watches"];
    assert_eq!(
        watches["serversbd2"]["telnet"]["depend"], "routers:ping serversbd2:ping",
        "{y:?}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("watch mailhost: no hostgroup of that name"));
}

#[test]
fn a_hung_monitor_is_killed_and_a_failing_dependency_holds_alerts() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let log = dir.join("alerts.log");
    recorder(dir, "record.alert", &log);
    for (name, body) in [
        ("hang.monitor", "sleep 30 & sleep 30"),
        ("late.monitor", "sleep 1.5; echo \"$@\"; exit 1"),
    ] {
        std::fs::write(dir.join(name), format!("#!/bin/sh\n{body}\n")).unwrap();
        set_mode(&dir.join(name), 0o755);
    }
    let cfg = dir.join("hakit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mon-check:\n  state-dir: {d}/state\n  mondir: [{d}]\n  alertdir: [{d}]\n  hostgroups:\n    local: [127.0.0.1]\n  watches:\n    local:\n      hang:\n        monitor: hang.monitor\n        timeout: 1s\n        periods:\n          - alert: record.alert\n      app:\n        monitor: late.monitor\n        timeout: 5s\n        depend: local:hang\n        periods:\n          - alert: record.alert\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let o = run(&["run", "--once", "-c", &cfg.display().to_string()]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let st: serde_json::Value = serde_json::from_str(&read(&dir.join("state/state.json"))).unwrap();
    let hang = &st["services"]["local/hang"];
    assert_eq!(hang["failing"], true);
    assert!(
        hang["summary"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s and was killed"),
        "{hang}"
    );
    assert_eq!(st["services"]["local/app"]["failing"], true, "{st}");
    let alerts = read(&log);
    assert!(alerts.contains("-s hang -g local"), "{alerts}");
    assert!(
        !alerts.contains("-s app "),
        "app depends on a failing service: {alerts}"
    );
}

#[test]
fn the_socket_group_may_use_ctl_and_nobody_else() {
    let mut s = Sched::new(
        "mon-check:\n  state-dir: DIR/state\n  socket: DIR/mon.sock\n  socket-group: nogroup\n  hostgroups:\n    local: [127.0.0.1]\n  watches:\n    local:\n      svc:\n        interval: 1h\n        monitor: tcp -p 1 -t 1\n",
    );
    // The test's temporary directory must be reachable by the other users.
    set_mode(s.dir.path(), 0o755);
    s.start();
    let sock = s.p("mon.sock").display().to_string();
    let as_user = |group: &str| as_nobody(None, group, &["ctl", "--socket", &sock, "list"]);
    let o = as_user("nogroup");
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text(&o).contains("local/svc"));
    let o = as_user("daemon");
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    s.stop();
}

#[test]
fn startup_alerts_exclude_periods_and_monitor_dependencies() {
    let mut s = Sched::new(
        "mon-check:\n  state-dir: DIR/state\n  socket: DIR/mon.sock\n  mondir: [DIR]\n  alertdir: [DIR]\n  hostgroups:\n    local: [127.0.0.1]\n  watches:\n    local:\n      never:\n        interval: 200ms\n        monitor: tcp -p 1 -t 1\n        exclude-period: wd {Sun-Sat}\n        periods:\n          - alert: record.alert\n      base:\n        interval: 200ms\n        monitor: tcp -p 1 -t 1\n        periods:\n          - startupalert: record.alert\n      app:\n        interval: 200ms\n        monitor: count.monitor\n        depend: local:base\n        dep-behavior: m\n",
    );
    recorder(s.dir.path(), "record.alert", &s.p("alerts.log"));
    // The monitor counts its runs; it waits so that `base` has failed before its first
    // run ends, and succeeds.
    std::fs::write(
        s.p("count.monitor"),
        format!("#!/bin/sh\nsleep 0.3\necho run >> {}\n", s.p("runs").display()),
    )
    .unwrap();
    set_mode(&s.p("count.monitor"), 0o755);
    s.start();
    assert!(
        wait_for(
            || read(&s.p("alerts.log")).contains("TYPE=startup GROUP=local SERVICE=base"),
            Duration::from_secs(5)
        ),
        "{}",
        read(&s.p("alerts.log"))
    );
    std::thread::sleep(Duration::from_millis(1500));
    let l = s.list();
    let svc = |name: &str| {
        l["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["service"] == name)
            .unwrap()
            .clone()
    };
    // Always inside its exclude-period: never run, never alerted.
    assert_eq!(svc("never")["state"], "untested", "{l}");
    assert!(!read(&s.p("alerts.log")).contains("SERVICE=never"));
    assert_eq!(svc("base")["state"], "failing");
    // `app` ran once at start, then its failing dependency held its monitor.
    let runs = read(&s.p("runs")).lines().count();
    assert_eq!(runs, 1, "dep-behavior m: the monitor waits for its dependency");
    s.stop();
}

#[test]
fn the_example_configuration_in_contrib_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/mon-check/hakit.yaml");
    let o = run(&["run", "--check", "-c", &path.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text(&o).contains("6 services"), "{}", text(&o));
}

/// A scheduler configuration on loopback: one service checking a port that listens.
fn one_service(port: u16) -> String {
    format!(
        "mon-check:\n  state-dir: DIR/state\n  socket: DIR/mon.sock\n  hostgroups:\n    local: [127.0.0.1]\n  watches:\n    local:\n      svc:\n        interval: 300ms\n        monitor: tcp -p {port} -t 1\n"
    )
}

#[test]
fn a_state_file_of_invalid_utf8_is_set_aside_and_the_scheduler_starts() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = Sched::new(&one_service(l.local_addr().unwrap().port()));
    std::fs::create_dir(s.p("state")).unwrap();
    std::fs::write(s.p("state/state.json"), b"{\"services\": {\"web/\xff\xfe\": {}}}").unwrap();
    let cfg = s.p("hakit.yaml").display().to_string();
    let o = run(&["run", "--once", "-c", &cfg]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(code(&o), 0, "the round ran: {err}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("state.json")).collect();
    assert_eq!(said.len(), 1, "one line about it: {err}");
    assert!(
        said[0].contains("moved to") && said[0].contains("state.json.corrupt"),
        "{err}"
    );
    assert!(s.p("state/state.json.corrupt").exists());
    let saved: serde_json::Value = serde_json::from_str(&read(&s.p("state/state.json"))).unwrap();
    assert_eq!(saved["services"]["local/svc"]["failing"], false, "{saved}");
}

/// mon-check, killed if it has not exited within `within` (a scheduler that should
/// have refused to start must not hang the test).
fn run_within(args: &[&str], within: Duration) -> Output {
    let mut c = Command::new(mc())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if !wait_for(|| c.try_wait().unwrap().is_some(), within) {
        let _ = c.kill();
    }
    c.wait_with_output().unwrap()
}

#[test]
fn a_second_scheduler_on_the_same_state_directory_is_refused() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = Sched::new(&one_service(l.local_addr().unwrap().port()));
    s.start();
    let pid = s.child.as_ref().unwrap().id();
    // Another control socket, the same state directory.
    let other = s.p("other.yaml");
    std::fs::write(&other, read(&s.p("hakit.yaml")).replace("mon.sock", "other.sock")).unwrap();
    let cfg = other.display().to_string();
    for extra in [&[][..], &["--once"][..]] {
        let mut args = vec!["run", "-c", &cfg];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let o = run_within(&args, Duration::from_secs(5));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(code(&o), 3, "refused as a setup error: {err}");
        assert!(t.elapsed() < Duration::from_secs(5), "at start");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&s.p("state").display().to_string()) && err.contains(&format!("pid {pid}")),
            "names the directory and its holder: {err}"
        );
        assert!(!s.p("other.sock").exists(), "nothing was started");
    }
    // The lock goes with its holder: killed (no clean exit), its lock file left behind
    // does not block the next scheduler.
    let mut c = s.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    assert!(s.p("state").read_dir().unwrap().count() > 0);
    let o = run(&["run", "--once", "-c", &cfg]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

/// An HTTP server on loopback that answers one request with `answer` and then keeps
/// the connection open for `linger` (0: closes at once). Returns its port.
fn http_answering(answer: &'static [u8], linger: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = c.write_all(answer);
            std::thread::sleep(linger);
        }
    });
    port.to_string()
}

#[test]
fn malformed_http_answers_are_critical_with_the_reason() {
    for (answer, why) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"[..],
            "body ends after 9 of the 100 bytes of its Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            "invalid chunk size 'zz'",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "chunked body ends before its last chunk",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx",
            "invalid chunk size 'ffffffffffffffffffff'",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
            "invalid Content-Length '-5'",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
            "conflicting Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 7\r\n\r\nhello",
            "conflicting Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "both Transfer-Encoding and Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "Invalid HTTP response"),
    ] {
        let port = http_answering(answer, Duration::ZERO);
        let o = run(&["http", "-H", "127.0.0.1", "-p", &port, "-t", "5"]);
        let line = text(&o);
        assert_eq!(code(&o), 2, "{}: {line}", String::from_utf8_lossy(answer));
        assert!(line.starts_with("HTTP CRITICAL") && line.contains(why), "{why}: {line}");
        assert_eq!(line.trim_end().lines().count(), 1, "{line}");
    }
    // What is well framed still passes: repeated identical lengths, a chunked body
    // with extensions and trailers, an interim 103, and a body complete by its
    // Content-Length on a connection the server keeps open (read to its length, not
    // to a timeout).
    for answer in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let port = http_answering(answer, Duration::from_secs(10));
        let t = Instant::now();
        let o = run(&["http", "-H", "127.0.0.1", "-p", &port, "-t", "5", "-s", "hello"]);
        assert_eq!(code(&o), 0, "{}: {}", String::from_utf8_lossy(answer), text(&o));
        assert!(t.elapsed() < Duration::from_secs(3), "{}", text(&o));
    }
}

/// What a test's DNS server answers to a query.
type Answerer = fn(&[u8]) -> Vec<u8>;

/// A DNS server on loopback that answers every query with `answer(query)`.
fn dns_answering(answer: Answerer) -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&answer(&b[..n]), from);
        }
    });
    port.to_string()
}

#[test]
fn garbage_dns_answers_say_what_was_wrong() {
    // The query made a response with one A record for the name asked.
    fn respond(q: &[u8]) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        r
    }
    let cases: [(Answerer, &str); 5] = [
        (|_| vec![0x12, 0x34, 0x81], "truncated header"),
        (
            |q| {
                let mut r = respond(q);
                r[0] ^= 0xff;
                r
            },
            "wrong id",
        ),
        (|q| q.to_vec(), "not a response"),
        (
            |q| {
                let mut r = respond(q);
                r[13] = b'x'; // www → xww
                r
            },
            "question mismatch",
        ),
        (
            |q| {
                let mut r = respond(q);
                r.truncate(r.len() - 2);
                r
            },
            "truncated record",
        ),
    ];
    for (answer, why) in cases {
        let port = dns_answering(answer);
        let o = run(&["dns", "-H", "www.hakit.test", "-s", "127.0.0.1", "-p", &port, "-t", "1"]);
        let line = text(&o);
        assert_eq!(code(&o), 2, "{line}");
        assert!(
            line.starts_with("DNS CRITICAL: answer from 127.0.0.1 is malformed: ") && line.contains(why),
            "{why}: {line}"
        );
    }
    let port = dns_answering(respond);
    let o = run(&["dns", "-H", "www.hakit.test", "-s", "127.0.0.1", "-p", &port, "-t", "1"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

/// A scheduler stopped while a check runs ends that plugin and its group: a plugin does
/// not outlive its scheduler (a Pacemaker stop, a restart by hand).
#[test]
fn a_stopped_scheduler_ends_the_plugins_it_runs() {
    let mut s = Sched::new(
        "mon-check:\n  state-dir: DIR/state\n  socket: DIR/mon.sock\n  mondir: [DIR]\n  hostgroups:\n    local: [127.0.0.1]\n  watches:\n    local:\n      slow:\n        interval: 1h\n        monitor: plug.sh\n",
    );
    let pidf = s.p("plugin.pid");
    let script = format!("#!/bin/sh\necho $$ > {}\nexec sleep 1000\n", pidf.display());
    std::fs::write(s.p("plug.sh"), script).unwrap();
    set_mode(&s.p("plug.sh"), 0o755);
    s.start();
    let pid = pid_in(&pidf, Duration::from_secs(5));
    assert!(!process_gone(pid), "the plugin runs");
    s.stop();
    let gone = wait_for(|| process_gone(pid), Duration::from_secs(2));
    if !gone {
        kill_leftover(pid, "sleep");
    }
    assert!(gone, "the plugin {pid} outlived its scheduler");
}
