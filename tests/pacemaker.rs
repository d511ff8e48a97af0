//! hakit's `ipfake` OCF agent in a real two-node Pacemaker 2 + Corosync 3 cluster
//! (Debian's packages) in network namespaces: n1 and n2 are the cluster's nodes, each
//! with its own mount and UTS namespaces (tests/pcmk-node.sh), n3 a client on the same
//! bridge. Every node runs contrib/line-server.py, which answers with the node's name,
//! so the client sees which node holds the address. The address starts on one node,
//! `crm node standby` moves it, cutting the holder's link moves it; the heal is watched;
//! last, a killed ipfake (its address left behind) moves it.
//!
//! Fencing is disabled (`stonith-enabled=false`): there is no fence device in a
//! namespace. Without fencing a node cut from its peer keeps running its resources, so
//! after the cut both nodes hold the address; that is only safe here because the cut
//! node is cut from the clients too. A real cluster fences.

mod common;
use common::pcmk::*;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const VIP: &str = "10.77.1.100";
const PORT: u16 = 7000;
const CLIENT: usize = 3;

/// The initial CIB, the same on both nodes: what the cluster must know before it
/// decides anything. No fencing (see above); a short dc-deadtime (how long a starting
/// node waits for an existing DC; its default, 20 s, is most of the start-up); a
/// resource fails over at its first failure and stays where it is when a node comes
/// back (stickiness), so each move in the test is one the test made.
fn initial_cib() -> String {
    let props = [
        ("stonith-enabled", "false"),
        ("dc-deadtime", "2s"),
        ("cluster-recheck-interval", "1min"),
    ];
    let defaults = [("migration-threshold", "1"), ("resource-stickiness", "100")];
    let nv = |set: &str, kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| format!("        <nvpair id=\"{set}-{k}\" name=\"{k}\" value=\"{v}\"/>\n"))
            .collect::<String>()
    };
    format!(
        "<cib validate-with=\"pacemaker-3.9\" epoch=\"1\" \
         num_updates=\"0\" admin_epoch=\"0\">\n  <configuration>\n    <crm_config>\n      \
         <cluster_property_set id=\"cib-bootstrap-options\">\n{}      \
         </cluster_property_set>\n    </crm_config>\n    <nodes/>\n    <resources/>\n    \
         <constraints/>\n    <rsc_defaults>\n      <meta_attributes id=\"rsc-options\">\n{}      \
         </meta_attributes>\n    </rsc_defaults>\n  </configuration>\n  <status/>\n</cib>\n",
        nv("cib-bootstrap-options", &props),
        nv("rsc-options", &defaults)
    )
}

/// `crm configure primitive vip ...`'s arguments after the name: hakit's agent with the
/// built ipfake, or with `HAKIT_PCMK_AGENT=IPaddr2` resource-agents' IPaddr2 (the same
/// scenario, to compare the moves' times).
fn primitive() -> Vec<String> {
    let ip = format!("ip={VIP}");
    let mut v: Vec<String> = match std::env::var("HAKIT_PCMK_AGENT").as_deref() {
        Ok("IPaddr2") => vec!["ocf:heartbeat:IPaddr2".into(), "params".into(), ip],
        Ok(other) if other != "ipfake" => panic!("HAKIT_PCMK_AGENT={other}: ipfake or IPaddr2"),
        _ => {
            let bindir = bin("ipfake").parent().unwrap().display().to_string();
            vec![
                "ocf:hakit:ipfake".into(),
                "params".into(),
                ip,
                format!("bindir={bindir}"),
            ]
        }
    };
    v.extend(
        [
            "cidr_netmask=24",
            "nic=eth0",
            "op",
            "monitor",
            "interval=2s",
            "timeout=20s",
        ]
        .map(String::from),
    );
    v
}

/// The node whose line server the client reaches at the address, if any answers.
fn reached(net: &Net) -> Option<String> {
    in_netns(net.ns(CLIENT), || {
        let addr: SocketAddr = format!("{VIP}:{PORT}").parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        s.write_all(b"who\n").ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    })
}

/// Wait until the client reaches `node` at the address; how long that took from `since`.
fn client_follows(net: &Net, cl: &Cluster, node: &str, since: Instant, within: Duration) -> Duration {
    let mut last = None;
    let ok = wait_for(
        || {
            last = reached(net);
            last.as_deref() == Some(node)
        },
        within,
    );
    assert!(
        ok,
        "the client did not reach {node} at {VIP} within {within:?} (last answer: {last:?}); \
         addresses on n1 and n2: {} {}\n{}\n{}",
        has_vip(net, 1),
        has_vip(net, 2),
        cl.status(node),
        cl.logs()
    );
    since.elapsed()
}

/// Whether hakit's agent holds the address on node `name`: `ipfake status` there (the
/// node's own /run/hakit) names it. None with IPaddr2.
fn held_by_ipfake(cl: &Cluster, name: &str) -> Option<bool> {
    if std::env::var("HAKIT_PCMK_AGENT").as_deref() == Ok("IPaddr2") {
        return None;
    }
    let ipfake = bin("ipfake").display().to_string();
    Some(cl.run(name, &[&ipfake, "-q", "status", VIP]).status.success())
}

/// ipfake holds the address on `holder`, and not on `other`.
fn assert_ipfake_on(cl: &Cluster, holder: &str, other: &str) {
    if let (Some(h), Some(o)) = (held_by_ipfake(cl, holder), held_by_ipfake(cl, other)) {
        assert!(h && !o, "ipfake status: {h} on {holder}, {o} on {other}");
    }
}

/// The pid of the ipfake holding the address on node `name`, from its pid file (the
/// node's /run is its directory's `run`).
fn ipfake_pid(cl: &Cluster, name: &str) -> i32 {
    let file = cl.node(name).dir.join(format!("run/hakit/ipfake.{VIP}.pid"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{}: no pid in {text:?}", file.display()))
}

/// Who the client reaches now ("nobody" if no one answers), noted with the time since
/// `since` when it differs from the last answer.
fn note_answer(net: &Net, since: Instant, answers: &mut Vec<(Duration, String)>) {
    let who = reached(net).unwrap_or_else(|| "nobody".into());
    if answers.last().is_none_or(|(_, last)| *last != who) {
        answers.push((since.elapsed(), who));
    }
}

fn has_vip(net: &Net, i: usize) -> bool {
    net.has_addr(i, &format!("{VIP}/24"))
}

fn index(name: &str) -> usize {
    name[1..].parse().unwrap()
}

fn other(name: &str) -> &'static str {
    if name == "n1" {
        "n2"
    } else {
        "n1"
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[test]
fn pacemaker_moves_the_ipfake_address() {
    require_installed();
    let agents = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/ocf"));
    assert!(agents.join("ipfake").exists(), "contrib/ocf/ipfake is missing");
    let mut net = Net::new(3, 1);
    let line_server = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/line-server.py");
    let mut servers = Vec::new();
    for i in 1..=2 {
        let ns = net.ns(i).to_string();
        let args = [
            line_server.to_string(),
            format!("n{i}"),
            "0.0.0.0".into(),
            PORT.to_string(),
        ];
        servers.push(net.spawn(&ns, Path::new("/usr/bin/python3"), &args, Stdio::null()));
    }

    // Start-up: processes started → a DC elected → both nodes online.
    let t0 = Instant::now();
    let mut cl = Cluster::start(
        &net,
        &[1, 2],
        &corosync_conf(&[1, 2], 1000),
        &initial_cib(),
        Some(agents),
    );
    let mut dc = None;
    let elected = wait_for(
        || {
            cl.assert_running();
            dc = cl.dc("n1");
            dc.is_some()
        },
        Duration::from_secs(30),
    );
    assert!(elected, "no DC elected within 30 s\n{}", cl.logs());
    let t_dc = t0.elapsed();
    assert!(
        wait_for(
            || cl.online("n1", "n1", true) && cl.online("n1", "n2", true),
            Duration::from_secs(20)
        ),
        "both nodes not online within 20 s:\n{}\n{}",
        cl.status("n1"),
        cl.logs()
    );
    let t_online = t0.elapsed();

    // 1. The address, configured with crmsh on n1, starts on one node; the client
    // reaches it there, and only there.
    let t_conf = Instant::now();
    let primitive = primitive();
    let mut args = vec!["crm", "configure", "primitive", "vip"];
    args.extend(primitive.iter().map(String::as_str));
    cl.must("n1", &args);
    let t_crm = t_conf.elapsed();
    let mut holder = Vec::new();
    assert!(
        wait_for(
            || {
                holder = cl.locate("n1", "vip");
                holder.len() == 1
            },
            Duration::from_secs(20)
        ),
        "vip not started on one node within 20 s: {holder:?}\n{}",
        cl.logs()
    );
    let t_started = t_conf.elapsed();
    let a = holder[0].clone();
    let t_reached = client_follows(&net, &cl, &a, t_conf, Duration::from_secs(10));
    assert!(has_vip(&net, index(&a)) && !has_vip(&net, index(other(&a))));
    assert_ipfake_on(&cl, &a, other(&a));
    println!(
        "start-up: DC {} elected after {}, both nodes online after {}; `crm configure \
         primitive` took {}, vip started on {a} {} after it, the client reached it {} after it",
        dc.unwrap(),
        ms(t_dc),
        ms(t_online),
        ms(t_crm),
        ms(t_started),
        ms(t_reached)
    );

    // 2. `crm node standby` of the holder moves the address; the client follows and the
    // old node no longer has it.
    let b = other(&a);
    let t = Instant::now();
    cl.must("n1", &["crm", "node", "standby", &a]);
    let t_cmd = t.elapsed();
    // crmsh says nothing and exits 0 when it did not do it (a node name it cannot
    // resolve): see that it did.
    assert!(
        wait_for(
            || cl.online(b, &a, false) && !cl.online(b, &a, true),
            Duration::from_secs(2)
        ),
        "crm node standby {a} did nothing"
    );
    let moved = client_follows(&net, &cl, b, t, Duration::from_secs(20));
    assert!(
        wait_for(|| !has_vip(&net, index(&a)), Duration::from_secs(5)),
        "{a} still has {VIP} after its standby"
    );
    assert!(has_vip(&net, index(b)));
    assert_ipfake_on(&cl, b, &a);
    println!(
        "standby {a}: the client reached {b} {} after `crm node standby` began ({} after \
         it returned)",
        ms(moved),
        ms(moved - t_cmd)
    );
    cl.must("n1", &["crm", "node", "online", &a]);
    assert!(
        wait_for(|| cl.online(b, &a, true), Duration::from_secs(10)),
        "{a} not back online:\n{}",
        cl.status(b)
    );
    cl.settle(b, Duration::from_secs(20));
    assert_eq!(
        cl.locate(b, "vip"),
        vec![b.to_string()],
        "vip did not stay on {b} when {a} came back (resource-stickiness)"
    );

    // 3. The holder's link cut (its port on the bridge down): the other node takes the
    // address; the client follows.
    let t = Instant::now();
    net.cut(index(b), 0);
    let moved = client_follows(&net, &cl, &a, t, Duration::from_secs(30));
    assert_ne!(
        held_by_ipfake(&cl, &a),
        Some(false),
        "ipfake does not hold the address on {a}"
    );
    // Without fencing the cut node still holds the address (see the top of the file).
    let both = has_vip(&net, index(b));
    println!(
        "cut {b}: the client reached {a} {} after the cut; the cut node {} the address{}",
        ms(moved),
        if both { "still holds" } else { "released" },
        if held_by_ipfake(&cl, b) == Some(true) {
            " (its ipfake runs on)"
        } else {
            ""
        }
    );

    // Healed: the cluster reforms (each node sees the other online again); then watch
    // where the address ends up, and whom the client reaches meanwhile (the cut node's
    // ipfake goes on announcing the address).
    let t = Instant::now();
    net.mend(index(b), 0);
    let mut answers = Vec::new();
    assert!(
        wait_for(
            || {
                note_answer(&net, t, &mut answers);
                cl.online(&a, b, false) && cl.online(b, &a, false)
            },
            Duration::from_secs(30)
        ),
        "the cluster did not reform within 30 s:\n{}\n{}",
        cl.status(&a),
        cl.logs()
    );
    let reformed = t.elapsed();
    // Both held it: Pacemaker's scheduler sees the resource active on two nodes once
    // the partitions' status is merged, and recovers by its multiple-active policy
    // (stop_start by default: stop it everywhere, start it on one node). Wait for that
    // decision, then for its transition to end, before looking.
    let recovery_seen = wait_for(
        || !both || !cl.log_lines("active on 2 nodes").is_empty(),
        Duration::from_secs(20),
    );
    let recovery = cl.log_lines("active on 2 nodes");
    assert!(
        recovery_seen,
        "both nodes held the address, yet no scheduler saw it active on 2 nodes\n{}",
        cl.logs()
    );
    // How long the heal left two holders on the link.
    wait_for(
        || {
            note_answer(&net, t, &mut answers);
            !(has_vip(&net, 1) && has_vip(&net, 2))
        },
        Duration::from_secs(20),
    );
    let doubled = t.elapsed();
    cl.settle(&a, Duration::from_secs(20));
    let settled = t.elapsed();
    let holders: Vec<String> = (1..=2).filter(|&i| has_vip(&net, i)).map(|i| format!("n{i}")).collect();
    let holder_now = cl.locate(&a, "vip");
    let client_now = reached(&net);
    println!(
        "healed: both nodes online again {} after the heal, the address on both until {} \
         after it (the client meanwhile reached {}); settled (crm_resource --wait) after {}: the address on {holders:?}, \
         Pacemaker says vip is on {holder_now:?}, the client reaches {client_now:?}",
        ms(reformed),
        ms(doubled),
        answers.iter().map(|(at, who)| format!("{who} from {}", ms(*at))).collect::<Vec<_>>().join(", "),
        ms(settled),
    );
    for l in recovery.iter().take(2) {
        println!("  {l}");
    }
    assert!(
        holders.len() == 1 && holder_now == holders,
        "after the heal the address is on {holders:?}, vip on {holder_now:?}\n{}",
        cl.logs()
    );
    assert_eq!(client_now.as_ref(), Some(&holders[0]));
    assert_ipfake_on(&cl, &holders[0], other(&holders[0]));

    // 4. The holder's ipfake killed (SIGKILL leaves the address behind): the agent's
    // monitor reports the address present but not held, Pacemaker stops it there
    // (`ipfake down` removes it) and, at migration-threshold 1, starts it on the other
    // node; the client follows.
    if held_by_ipfake(&cl, &holders[0]).is_some() {
        let (x, y) = (holders[0].as_str(), other(&holders[0]));
        let pid = ipfake_pid(&cl, x);
        let t = Instant::now();
        kill_leftover(pid, "ipfake");
        let moved = client_follows(&net, &cl, y, t, Duration::from_secs(20));
        assert!(
            wait_for(|| !has_vip(&net, index(x)), Duration::from_secs(5)),
            "{x} still has {VIP} after its ipfake was killed and the address moved"
        );
        assert_ipfake_on(&cl, y, x);
        println!(
            "ipfake killed on {x}: the client reached {y} {} after the kill",
            ms(moved)
        );
    }

    for s in servers {
        net.kill(s, nix::sys::signal::Signal::SIGKILL);
    }
    let stopped = cl.stop(&net);
    println!("stop: {:?}; the whole test took {}", stopped, ms(t0.elapsed()));
    stopped.unwrap();
}
