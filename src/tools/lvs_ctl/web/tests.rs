use super::render::{self, esc, Forms};
use super::request::Request;
use super::settings::Settings;
use super::snapshot::{Cluster, Part, Snapshot};
use super::*;
use crate::table::{LinkRecord, LinkState, NodeRecord, NodeState, FLAG_LOCAL, MAX_CHANNELS};
use crate::tools::lvs_ctl::backend::Kind;
use crate::tools::lvs_ctl::status::{RealView, Report, ServiceView};
use crate::tools::mon_check::sched::ctl::{HostStatus, ServiceStatus, StatusList};
use std::collections::HashMap;

const HOSTILE: &str = "<script>window.pwned=1</script><img src=x onerror=\"alert('x')\">&amp;";

#[test]
fn escaping_leaves_no_markup() {
    assert_eq!(
        esc(HOSTILE),
        "&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;amp;"
    );
    assert_eq!(esc("n1 web-2.example"), "n1 web-2.example");
    assert_eq!(esc("a\0b\u{1b}[31m"), "a\u{fffd}b\u{fffd}[31m");
    assert_eq!(esc("\" onmouseover=x"), "&quot; onmouseover=x");
}

fn node(name: &str, local: bool, held: &str) -> NodeRecord {
    let mut links = [LinkRecord::default(); MAX_CHANNELS];
    links[0] = LinkRecord {
        last_heard_ns: 1_000_000_000,
        state: LinkState::Up,
        ..Default::default()
    };
    links[1].state = LinkState::Dead;
    NodeRecord {
        name: name.into(),
        state: NodeState::Up,
        flags: if local { FLAG_LOCAL } else { 0 },
        held: held.into(),
        links,
        ..Default::default()
    }
}

fn real(addr: &str, host: &str) -> RealView {
    RealView {
        real: addr.into(),
        host: Some(host.into()),
        forward: "masq",
        weight: Some(1),
        kernel_weight: Some(1),
        active: 2,
        inactive: 3,
        health: Some("up"),
        state: Some("in"),
        since: None,
        reason: None,
        file: None,
        until: None,
        joined_by: None,
        lease_until: None,
        operator_weight: None,
    }
}

fn snapshot() -> Snapshot {
    let channels = vec!["a".to_string(), "b<i>".to_string()];
    let records = vec![
        node("n1", true, "10.0.0.100"),
        node(HOSTILE, false, &format!("{HOSTILE},192.0.2.7")),
    ];
    let report = Report {
        backend: "nft",
        follower: None,
        services: vec![service_view()],
    };
    Snapshot {
        generated: "2026-12-01T22:00:00.000Z".into(),
        user: Some(HOSTILE.into()),
        cluster: Part::Ok(Cluster {
            table: "/run/hakit/ast".into(),
            writer_alive: true,
            local: "n1".into(),
            channels: channels.clone(),
            nodes: records
                .iter()
                .map(|r| crate::tools::hb_watch::status::json(r, &channels, 2_000_000_000))
                .collect(),
            torn: vec![],
            records,
            now_mono_ns: 2_000_000_000,
        }),
        lvs: Part::Ok(report),
        mon: Part::Ok(StatusList {
            services: vec![ServiceStatus {
                group: "db".into(),
                service: HOSTILE.into(),
                description: HOSTILE.into(),
                state: "failing".into(),
                summary: HOSTILE.into(),
                since: Some(1_800_000_000),
                last_check: Some(1_800_000_000),
                ack: None,
                consecutive_failures: 0,
                hosts: vec![HostStatus {
                    host: HOSTILE.into(),
                    status: None,
                    line: String::new(),
                    disabled: false,
                }],
            }],
            disabled: Default::default(),
        }),
        maintenance_dir: Some("/etc/hakit/lvs-maintenance".into()),
        drained: vec!["10.0.0.3:80".into()],
    }
}

fn service_view() -> ServiceView {
    // ServiceView has a private field: made through status::report from a configuration.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("hakit.yaml");
    std::fs::write(
        &p,
        format!(
            "lvs-ctl:\n  services:\n    - service: tcp 192.0.2.10:80\n      reals:\n        - {{ address: 10.0.0.2:80, host: {h:?} }}\n        - {{ address: 10.0.0.3:80, host: web3 }}\n",
            h = HOSTILE
        ),
    )
    .unwrap();
    let cfg = crate::tools::lvs_ctl::config::load(&p).unwrap();
    let (kernel, _) =
        crate::tools::lvs_ctl::health::desired(&cfg, &Default::default(), crate::tools::lvs_ctl::health::Stamp::now());
    let r = crate::tools::lvs_ctl::status::report(
        Some(&cfg),
        &kernel,
        None,
        "nft",
        crate::tools::lvs_ctl::health::Stamp::now(),
    );
    let mut sv = r.services.into_iter().next().unwrap();
    sv.reals[0] = RealView {
        host: Some(HOSTILE.into()),
        ..real("10.0.0.2:80", HOSTILE)
    };
    sv
}

/// No hostile string survives as markup anywhere in the page: every `<` in it is one
/// of the page's own tags.
#[test]
fn hostile_names_show_escaped() {
    let snap = snapshot();
    let forms = Forms {
        script: "/cgi-bin/status\"><script>x</script>",
        token: Some("tok\"en"),
    };
    let page = render::page(&snap, &forms, Some(HOSTILE));
    assert!(!page.contains("<script>window"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("onerror=\""), "{page}");
    assert!(!page.contains("<i>"), "the channel name too");
    assert!(!page.contains("\"><script>x"), "the form's action attribute too");
    assert_eq!(page.matches("<script>").count(), 1, "only the page's own script");
    let escaped = esc(HOSTILE);
    // The node, what it holds, the real server's host, the user, the result line, the
    // mon-check service, its description, summary and host.
    assert!(page.matches(escaped.as_str()).count() >= 9, "{page}");
    assert!(page.contains("value=\"tok&quot;en\""), "{page}");
    // Drain for a real server in service, enable for the drained one.
    assert!(page.contains("name=\"real\" value=\"10.0.0.2:80\"><button type=\"submit\">drain</button>"));
    assert!(page.contains("name=\"real\" value=\"10.0.0.3:80\"><button type=\"submit\">enable</button>"));
    assert!(page.contains(">acknowledge</button>"));
    assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    assert!(page.contains("<noscript><meta http-equiv=\"refresh\""));

    // JSON: the same strings, correctly escaped, and the fragment the script shows.
    let j: serde_json::Value = serde_json::from_str(&render::json(&snap, &forms)).unwrap();
    assert_eq!(j["cluster"]["ok"]["nodes"][1]["node"], HOSTILE);
    assert_eq!(j["lvs"]["ok"]["services"][0]["reals"][0]["host"], HOSTILE);
    assert_eq!(j["mon"]["ok"]["services"][0]["summary"], HOSTILE);
    assert_eq!(j["html"], render::fragment(&snap, &forms));
    assert!(!j["html"].as_str().unwrap().contains("<img"));
}

#[test]
fn without_a_user_there_are_no_actions() {
    let mut snap = snapshot();
    snap.user = None;
    let page = render::page(
        &snap,
        &Forms {
            script: "/s",
            token: None,
        },
        None,
    );
    assert!(!page.contains("<form"), "{page}");
    assert!(page.contains("not signed in"));
}

#[test]
fn the_policy_allows_exactly_the_inline_script_and_style() {
    let page = render::page(
        &snapshot(),
        &Forms {
            script: "/s",
            token: None,
        },
        None,
    );
    let inner = |open: &str, close: &str| {
        let a = page.find(open).unwrap() + open.len();
        let b = a + page[a..].find(close).unwrap();
        page[a..b].to_string()
    };
    let csp = render::csp();
    for text in [inner("<script>", "</script>"), inner("<style>", "</style>")] {
        use base64::Engine as _;
        use sha2::Digest as _;
        let h = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()));
        assert!(csp.contains(&format!("'sha256-{h}'")), "{csp}");
    }
    assert!(csp.starts_with("default-src 'none';"));
    // Every column width the tables use has its class in the style.
    for part in page.split("<col class=\"w").skip(1) {
        let w = &part[..part.find('"').unwrap()];
        assert!(page.contains(&format!(".w{w}{{width:{w}%}}")), "no class w{w}");
    }
}

struct Lab {
    dir: tempfile::TempDir,
    s: Settings,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hakit.yaml");
    std::fs::write(
        &p,
        format!(
            "lvs-ctl:\n  maintenance-dir: {d}/maint\n  services:\n    - service: tcp 192.0.2.10:80\n      reals:\n        - {{ address: 10.0.0.2:80, host: ../victim }}\n        - {{ address: 10.0.0.3:80, host: web3 }}\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let s = Settings {
        lvs: Some(crate::tools::lvs_ctl::config::load(&p).unwrap()),
        table: dir.path().join("ast"),
        state: dir.path().join("state.json"),
        mon_socket: dir.path().join("mon.sock"),
        secret: dir.path().join("secret"),
        backend: Kind::Nft,
    };
    Lab { dir, s }
}

fn post(l: &Lab, vars: &[(&str, &str)], body: &str) -> Response {
    let mut m: HashMap<String, String> = [
        ("REQUEST_METHOD", "POST"),
        ("HTTP_HOST", "10.0.0.1:8080"),
        ("SCRIPT_NAME", "/status"),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        m.insert(k.to_string(), v.to_string());
    }
    m.insert("CONTENT_LENGTH".into(), body.len().to_string());
    let req = Request::from_vars(|k| m.get(k).cloned());
    answer(&l.s, &req, &mut body.as_bytes())
}

fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn an_action_needs_a_user_the_site_and_the_token() {
    let l = lab();
    let secret = csrf::load_or_create(&l.s.secret).unwrap();
    let good = csrf::token(&secret, "alice", now_secs());
    let user = ("REMOTE_USER", "alice");
    let origin = ("HTTP_ORIGIN", "http://10.0.0.1:8080");
    let drain = format!("token={good}&action=drain&real=10.0.0.3%3A80");
    let file = l.dir.path().join("maint/10.0.0.3:80");

    for (vars, body, code, why) in [
        (vec![origin], drain.clone(), 403, "no authenticated user"),
        (vec![user], drain.clone(), 403, "neither Origin nor Referer"),
        (
            vec![user, ("HTTP_ORIGIN", "http://evil.example")],
            drain.clone(),
            403,
            "cross-site",
        ),
        (
            vec![user, origin],
            "action=drain&real=10.0.0.3%3A80".to_string(),
            403,
            "no CSRF token",
        ),
        (vec![user, origin], drain.replace(&good, "AAAA"), 403, "not valid"),
        // Bob's request with Alice's token.
        (vec![("REMOTE_USER", "bob"), origin], drain.clone(), 403, "not valid"),
        (
            vec![user, origin],
            format!("token={good}&action=drain&real=10.9.9.9%3A80"),
            400,
            "no real server of the configuration",
        ),
        (vec![user, origin], format!("token={good}&action=rm"), 400, "no action"),
    ] {
        let r = post(&l, &vars, &body);
        assert_eq!(r.status, code, "{vars:?} {body}: {}", body_text(&r));
        assert!(body_text(&r).contains(why), "{}", body_text(&r));
        assert!(!file.exists(), "nothing changed: {vars:?}");
    }

    let r = post(&l, &[user, origin], &drain);
    assert_eq!(r.status, 303, "{}", body_text(&r));
    assert!(file.is_file());
    let loc = &r.headers.iter().find(|(k, _)| k == "Location").unwrap().1;
    assert!(loc.starts_with("/status?result=10.0.0.3%3A80%20drained"), "{loc}");
    let r = post(&l, &[user, ("HTTP_REFERER", "http://10.0.0.1:8080/status")], &drain);
    assert!(body_text(&r).contains("already in maintenance"), "{}", body_text(&r));

    // Enable removes its names with this port; one for the whole host (made by hand)
    // stays, and the result says so.
    std::fs::write(l.dir.path().join("maint/web3"), "").unwrap();
    let r = post(&l, &[user, origin], &drain.replace("drain", "enable"));
    assert_eq!(r.status, 303);
    assert!(!file.exists() && l.dir.path().join("maint/web3").exists());
    let loc = &r.headers.iter().find(|(k, _)| k == "Location").unwrap().1;
    assert!(loc.contains("still%20in%20maintenance%20by%20web3"), "{loc}");
    std::fs::remove_file(l.dir.path().join("maint/web3")).unwrap();

    // A host name with a slash reaches nothing outside the directory.
    std::fs::write(l.dir.path().join("victim"), "keep").unwrap();
    let r = post(
        &l,
        &[user, origin],
        &format!("token={good}&action=enable&real=10.0.0.2%3A80"),
    );
    assert!(body_text(&r).contains("was not in maintenance"), "{}", body_text(&r));
    assert!(l.dir.path().join("victim").exists());

    // The ack goes to mon-check's socket; none listens here, and the result says so.
    let r = post(
        &l,
        &[user, origin],
        &format!("token={good}&action=ack&group=db&service=pg"),
    );
    assert_eq!(r.status, 303);
    assert!(
        body_text(&r).contains("not acknowledged: cannot reach the scheduler"),
        "{}",
        body_text(&r)
    );
}

#[test]
fn only_get_and_post() {
    let l = lab();
    let req = Request {
        method: "DELETE".into(),
        ..Default::default()
    };
    assert_eq!(answer(&l.s, &req, &mut std::io::empty()).status, 405);
}
