//! A director lab for lvs-ctl's tests: a client, a director and real servers in
//! namespaces, on the harness's two bridges. Channel a (10.77.1.0/24) is the client's
//! side, where the director holds the virtual address 10.77.1.100; channel b
//! (10.77.2.0/24) the servers' side, and the real servers route back through the
//! director (10.77.2.2), as NAT needs. Each real server runs a small HTTP server that
//! answers `Test Page nI` (ldirectord's negotiate check expects a string).

#![allow(dead_code)]

use super::*;

pub const VIP: &str = "10.77.1.100";
pub const CLIENT: usize = 1;
pub const DIRECTOR: usize = 2;

/// A configuration for `mon-check run | lvs-ctl follow` on the NAT lab's three real
/// servers: one round-robin service of the virtual address, quiesced on failure, and
/// the http check of its web servers (DIR: the Net's directory).
pub const FOLLOWED: &str = "lvs-ctl:
  backend: nft
  maintenance-dir: DIR/maint
  services:
    - service: tcp 10.77.1.100:80
      scheduler: rr
      forward: masq
      check: web/http
      on-failure: quiesce
      reals:
        - address: 10.77.2.3:80
        - address: 10.77.2.4:80
        - address: 10.77.2.5:80
mon-check:
  state-dir: DIR/mon
  socket: DIR/mon.sock
  hostgroups:
    web: [10.77.2.3, 10.77.2.4, 10.77.2.5]
  watches:
    web:
      http:
        interval: 300ms
        monitor: http -p 80 -s 'Test Page' -t 1
";

pub struct Lab {
    pub net: Net,
    pub reals: usize,
    servers: Vec<Option<u32>>,
    /// Web servers listen on every address (direct routing: the VIP on lo too).
    bind_all: bool,
}

impl Lab {
    /// Nodes: n1 the client, n2 the director, n3.. the `reals` real servers.
    pub fn nat(reals: usize) -> Lab {
        let net = Net::new(2 + reals, 2);
        let c = net.ns(CLIENT).to_string();
        net.ip(&c, &["addr", "flush", "dev", "eth1"]);
        net.ip(&c, &["link", "set", "eth1", "down"]);
        let d = net.ns(DIRECTOR).to_string();
        net.ip(&d, &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"]);
        sh(&["ip", "netns", "exec", &d, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for i in 3..3 + reals {
            let r = net.ns(i).to_string();
            net.ip(&r, &["addr", "flush", "dev", "eth0"]);
            net.ip(&r, &["link", "set", "eth0", "down"]);
            net.ip(&r, &["route", "add", "default", "via", "10.77.2.2"]);
        }
        let mut lab = Lab {
            net,
            reals,
            servers: vec![None; reals],
            bind_all: false,
        };
        for i in 3..3 + reals {
            lab.start_server(i);
        }
        lab
    }

    /// Direct routing: as [`Lab::nat`], but the real servers are on the client's LAN too
    /// (eth0, 10.77.1.I) and answer the client from there; each holds the virtual
    /// address on lo, never answers ARP for it (arp_ignore 1, arp_announce 2), and its
    /// web server listens on every address. The director rewrites only the frame.
    pub fn dr(reals: usize) -> Lab {
        let mut lab = Lab::nat(reals);
        for i in 3..3 + reals {
            lab.kill_server(i);
            let r = lab.net.ns(i).to_string();
            for (k, v) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    &r,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.all.{k}={v}"),
                ]);
            }
            lab.net.ip(&r, &["addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            lab.net
                .ip(&r, &["addr", "add", &format!("10.77.1.{i}/24"), "dev", "eth0"]);
            lab.net.ip(&r, &["link", "set", "eth0", "up"]);
            lab.net.ip(&r, &["route", "del", "default"]);
            lab.bind_all = true;
            lab.start_server(i);
        }
        lab
    }

    pub fn real_addr(i: usize) -> String {
        format!("10.77.2.{i}")
    }

    /// (Re)start real server `i`'s web server on port 80.
    pub fn start_server(&mut self, i: usize) {
        let dir = self.net.path(&format!("www{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), format!("Test Page n{i}\n")).unwrap();
        let ns = self.net.ns(i).to_string();
        let pid = self.net.spawn(
            &ns,
            Path::new("/usr/bin/python3"),
            &[
                "-m".into(),
                "http.server".into(),
                "80".into(),
                "--bind".into(),
                if self.bind_all {
                    "0.0.0.0".into()
                } else {
                    Lab::real_addr(i)
                },
                "--directory".into(),
                dir.display().to_string(),
            ],
            Stdio::null(),
        );
        self.servers[i - 3] = Some(pid);
        let addr = Lab::real_addr(i);
        assert!(
            wait_for(
                || self
                    .net
                    .run(
                        &ns,
                        Path::new("/usr/bin/curl"),
                        &["-s", "-m", "1", &format!("http://{addr}/")]
                    )
                    .status
                    .success(),
                Duration::from_secs(10)
            ),
            "the web server of n{i} did not start"
        );
    }

    /// Kill real server `i`'s web server (the host stays up).
    pub fn kill_server(&mut self, i: usize) {
        if let Some(pid) = self.servers[i - 3].take() {
            self.net.kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// One HTTP request from the client to the virtual address: which server answered.
    pub fn fetch(&self) -> Option<String> {
        let out = self.net.run(
            self.net.ns(CLIENT),
            Path::new("/usr/bin/curl"),
            &["-s", "-m", "2", &format!("http://{VIP}/")],
        );
        let body = String::from_utf8_lossy(&out.stdout);
        body.trim().strip_prefix("Test Page ").map(String::from)
    }

    /// lvs-ctl in the director's namespace.
    pub fn lvs(&self, args: &[&str]) -> std::process::Output {
        self.net.run(self.net.ns(DIRECTOR), &bin("lvs-ctl"), args)
    }
}
