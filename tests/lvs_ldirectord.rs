//! Debian's ldirectord, unchanged, with lvs-ctl as its ipvsadm (bind-mounted over
//! /usr/sbin/ipvsadm in a mount namespace of the test's own, on the nftables backend
//! since this kernel has no IPVS): it adds the real servers, takes one out when its web
//! server dies, and puts it back when it returns. ldirectord parses `ipvsadm -L -n` to
//! know what is there, so this is also the test of that output's compatibility.

mod common;
use common::lvs::*;
use common::*;
use std::process::Stdio;
use std::time::Duration;

fn weights(lab: &Lab) -> String {
    String::from_utf8_lossy(&lab.lvs(&["--backend", "nft", "-S", "-n"]).stdout).into_owned()
}

#[test]
fn ldirectord_drives_lvs_ctl_as_its_ipvsadm() {
    assert!(
        std::path::Path::new("/usr/sbin/ldirectord").exists(),
        "Debian's ldirectord is needed (contrib/deps.sh installs it)"
    );
    let mut lab = Lab::nat(2);
    let cfg = lab.net.path("hkt-ldirectord.cf");
    let log = lab.net.path("ldirectord.log");
    std::fs::write(
        &cfg,
        format!(
            "checktimeout=1\ncheckinterval=1\nautoreload=no\nquiescent=yes\nlogfile=\"{}\"\n\
             virtual={VIP}:80\n\treal=10.77.2.3:80 masq\n\treal=10.77.2.4:80 masq\n\tservice=http\n\
             \trequest=\"index.html\"\n\treceive=\"Test Page\"\n\tscheduler=rr\n\tprotocol=tcp\n\tchecktype=negotiate\n",
            log.display()
        ),
    )
    .unwrap();
    // lvs-ctl's own config says nft; ldirectord passes nothing but ipvsadm's options.
    let hakit_cfg = lab.net.path("hakit.yaml");
    std::fs::write(&hakit_cfg, "lvs-ctl:\n  backend: nft\n").unwrap();
    let lvs = bin("lvs-ctl");
    let script = format!(
        "mount --bind {} /usr/sbin/ipvsadm && mount -t tmpfs tmpfs /run && exec /usr/sbin/ldirectord -d {} start",
        lvs.display(),
        cfg.display()
    );
    let child = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.net.ns(DIRECTOR),
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .env("HAKIT_CONFIG", &hakit_cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.net.adopt(child);

    let both = "-A -t 10.77.1.100:80 -s rr\n-a -t 10.77.1.100:80 -r 10.77.2.3:80 -m -w 1\n-a -t 10.77.1.100:80 -r 10.77.2.4:80 -m -w 1\n";
    let ok = wait_for(|| weights(&lab) == both, Duration::from_secs(30));
    let logtext = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ok,
        "ldirectord added the real servers: {}\n{}",
        weights(&lab),
        logtext()
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        seen.extend(lab.fetch());
    }
    assert_eq!(seen.len(), 2, "both real servers answer through the director: {seen:?}");

    lab.kill_server(3);
    let quiesced = both.replace("10.77.2.3:80 -m -w 1", "10.77.2.3:80 -m -w 0");
    assert!(
        wait_for(|| weights(&lab) == quiesced, Duration::from_secs(20)),
        "ldirectord quiesced n3 after its web server died: {}\n{}",
        weights(&lab),
        logtext()
    );
    for _ in 0..4 {
        assert_eq!(lab.fetch().as_deref(), Some("n4"), "only n4 takes new connections");
    }
    lab.start_server(3);
    assert!(
        wait_for(|| weights(&lab) == both, Duration::from_secs(20)),
        "ldirectord put n3 back: {}\n{}",
        weights(&lab),
        logtext()
    );
}
