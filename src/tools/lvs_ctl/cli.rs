use super::backend::Kind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Linux Virtual Server control on IPVS and on nftables.
///
/// With ipvsadm's options (`lvs-ctl -A -t 192.0.2.10:80 -s rr`, `lvs-ctl -L -n`, ...;
/// every ipvsadm option is listed below) lvs-ctl is ipvsadm: the same command line, the
/// same output byte for byte for `-L -n` and `-S -n`, so that ldirectord and scripts use
/// it unchanged — and invoked as `ipvsadm` (a symlink) it is nothing else. Two things
/// differ: `-R` is all or nothing (a bad line, named `stdin:LINE:COLUMN`, changes
/// nothing and exits 2; ipvsadm stops half way), and names are never resolved.
///
/// `--backend` chooses the kernel table: `ipvs` (the kernel's IP Virtual Server, over
/// generic netlink) or `nft` (a table of lvs-ctl's own, `inet hakit_lvs`, changed only
/// in whole transactions; for kernels without IPVS). The default is the configuration's
/// `lvs-ctl.backend`, else ipvs where the kernel has it, else nft.
///
/// The subcommands do what ipvsadm cannot: `apply` makes the kernel's table what the
/// configuration says, changing only what differs, in one transaction; `diff` shows
/// what that would change; `follow` takes real servers out and back as mon-check's
/// events say; `status` shows it all.
///
/// Exit status: 0 done; 1 the kernel refused or failed (nothing changed: a batch is
/// rolled back), `diff` found differences, or `-L` named no such service; 2 a usage or
/// configuration error, a change the table refuses before anything is sent (a service
/// that exists, a real server of a missing service) or one the backend cannot make:
/// nothing changed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lvs-ctl",
    version,
    after_help = "Examples:\n  lvs-ctl -A -t 192.0.2.10:80 -s wrr\n  lvs-ctl -a -t 192.0.2.10:80 -r 10.0.0.2:80 -m -w 2\n  lvs-ctl -L -n\n  lvs-ctl -S -n > rules; lvs-ctl -C; lvs-ctl -R < rules\n  lvs-ctl diff /etc/hakit/hakit.yaml || lvs-ctl apply /etc/hakit/hakit.yaml\n  mon-check run | lvs-ctl follow"
)]
pub struct LvsCtlArgs {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Make the kernel's table what the configuration's `lvs-ctl` section says: add,
    /// change and remove only what differs (an unchanged real server keeps its
    /// connections), in one nftables transaction or one IPVS batch rolled back on
    /// failure. Applying twice changes nothing; a table that drifted is repaired.
    /// Real servers that a running `follow` holds out stay out.
    Apply(ApplyArgs),
    /// Print what `apply` would change, one ipvsadm line each; exit 1 if anything.
    Diff(ApplyArgs),
    /// Remove the services the configuration names, and only those, from the kernel's
    /// table, in one transaction (those not there are skipped): what `apply --only`
    /// added. A running `follow` of the same file would put them back.
    Remove(RemoveArgs),
    /// Read mon-check's events (`host-down`, `host-up`, as `mon-check run` prints them)
    /// on stdin and take real servers out and back in, as each service's `on-failure`,
    /// `drain`, `quorum`, `sorry` say, with the maintenance directory and the depool
    /// threshold; every change is printed as an event line. hb-watch's events, on stdin
    /// too or from `--events`, add the real servers that join at run time (`lvs-ctl
    /// join` on them) once the service's check passes against them, as its `join` rule
    /// allows, and take them out when they leave, die or stop renewing.
    Follow(FollowArgs),
    /// The services, their real servers, weights, health as followed, connections.
    Status(StatusArgs),
    /// The cluster's status page, a CGI program for any web server (lighttpd, Apache,
    /// nginx with fcgiwrap), which does the TLS and the authentication: run with the CGI
    /// environment, it answers one request and exits. GET shows the nodes and links of
    /// the Active Stations Table, what each node holds, the virtual services with their
    /// real servers and the services mon-check watches (`?format=json`: the same as
    /// JSON). POST drains or enables a real server (a file in the maintenance
    /// directory, which a running `follow` acts on) or acknowledges a mon-check alert:
    /// only for a user the web server authenticated (REMOTE_USER), with the page's CSRF
    /// token, from the page's own origin; anything else is refused with 403.
    Cgi(CgiArgs),
    /// On a real server: join a service's pool at run time. Writes `t=join` (service,
    /// address, port, weight) to hb-send's FIFO at start and again every `--every` (a
    /// lease: a director that starts later or restarts learns of it from the next one;
    /// keep it well under the directors' `join.lease`), and `t=leave` on TERM/INT before
    /// it exits. Every director whose `follow` reads hb-watch's events adds it once the
    /// service's check passes against it, if its `join` rule allows this node.
    Join(JoinArgs),
    /// Serve HAKIT-MIB (contrib/snmp/HAKIT-MIB.txt) to snmpd through its `pass_persist`
    /// protocol on stdin and stdout: the virtual services, their real servers (weight,
    /// health as followed, connections), the services of each real server host, and
    /// the cluster's nodes, links and address holders from the Active Stations Table.
    /// Started by snmpd: `pass_persist .1.3.6.1.4.1.32473.104 /usr/sbin/lvs-ctl snmp`
    /// in snmpd.conf. Answers come from a snapshot sorted by OID, taken again when it
    /// is older than `--refresh`. A SET of hakitRsWeight (0 to 65535; 0 quiesces) is
    /// an operator weight, as `lvs-ctl weight` sets it; who may SET is snmpd's access
    /// control.
    Snmp(SnmpArgs),
    /// Set a real server's operator weight, which stands in for the configured one
    /// until `--reset`: kept beside the state file (lvs-weights.json) so that neither a
    /// running `follow` nor the next `apply` undoes it, and put in the kernel now
    /// (a server its check or maintenance holds out stays at 0 until it is back).
    Weight(WeightArgs),
    /// The configuration's `director` section, checked, for contrib/director.sh: `show`
    /// prints this node's role, rank and what the active director holds as shell
    /// assignments (for `eval`); `conntrackd` prints conntrackd's configuration for this
    /// node (FTFW over multicast on `sync-dev`, its files in --state-dir).
    Director(DirectorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// hb-send's FIFO (it must be a FIFO of ours or root's; no symlink is followed).
    #[arg(long, value_name = "PATH", default_value = "/run/hakit/fifo")]
    pub fifo: PathBuf,
    /// The virtual service, as follow's events name it: `tcp/192.0.2.10:80`,
    /// `udp/[2001:db8::1]:53`, `fwmark/1`.
    #[arg(long, value_name = "SERVICE")]
    pub service: String,
    /// This real server's address, as the directors reach it.
    #[arg(long, value_name = "ADDR")]
    pub addr: String,
    /// Its port. [default: the service's; a fwmark service needs it]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Its weight (0 to 65535; a director cuts it to its `join.weight-max`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub weight: u32,
    /// How often the join is said again.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::base::duration::parse)]
    pub every: Duration,
    /// Log only warnings and errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectorWhat {
    Show,
    Conntrackd,
}

#[derive(Debug, Clone, Args)]
pub struct DirectorArgs {
    /// What to print.
    #[arg(value_enum)]
    pub what: DirectorWhat,
    /// The configuration file. [default: /etc/hakit/hakit.yaml]
    #[arg(value_name = "FILE", env = "HAKIT_CONFIG")]
    pub file: Option<PathBuf>,
    /// This node's name, one of the section's nodes. [default: `uname -n`]
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Where conntrackd keeps its lock and control socket.
    #[arg(long, value_name = "DIR", default_value = "/run/hakit/director")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// What every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The kernel table to drive. [default: the configuration's lvs-ctl.backend, else
    /// ipvs where the kernel has it, else nft]
    #[arg(long, value_enum)]
    pub backend: Option<Kind>,
    /// Log only warnings and errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The configuration file. [default: /etc/hakit/hakit.yaml]
    #[arg(value_name = "FILE", env = "HAKIT_CONFIG")]
    pub file: Option<PathBuf>,
    /// Where a running `follow` keeps the health of the real servers.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only the services FILE names: the table's other services are neither compared
    /// nor removed, for a table several owners share (Pacemaker resources, a file
    /// each). With --json, `diff` also says how many of them the table has
    /// (`present`, of `named`).
    #[arg(long)]
    pub only: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// The configuration file. [default: /etc/hakit/hakit.yaml]
    #[arg(value_name = "FILE", env = "HAKIT_CONFIG")]
    pub file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// The configuration file. [default: /etc/hakit/hakit.yaml]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the health of the real servers is kept for `apply` and `status` (written
    /// atomically at every change).
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_STATE)]
    pub state: PathBuf,
    /// How often the maintenance directory is looked at, and the kernel's table
    /// compared with what it should be (drift is repaired).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::base::duration::parse)]
    pub interval: Duration,
    /// Also read event lines from this FIFO (follow creates it, mode 0600): hb-watch's
    /// events, for the real servers that join at run time (`message ... t=join`,
    /// `t=leave`, `node-dead`), when they do not come on stdin with mon-check's.
    #[arg(long, value_name = "FIFO")]
    pub events: Option<PathBuf>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The configuration file, for the health as followed. [default:
    /// /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where a running `follow` keeps the health of the real servers.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_STATE)]
    pub state: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print Prometheus' text format: the services (scheduler, in the kernel, live
    /// weight), their real servers (configured, operator and kernel weight, health and
    /// state as followed, connections where the backend counts them: ipvs), the sorry
    /// servers, and whether a follower is live (hakit_lvs_follower_up).
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
    /// As --prometheus, written to FILE (named *.prom) by replacing it atomically, for
    /// node_exporter's textfile collector, which may read it at any moment.
    #[arg(long, value_name = "FILE", value_parser = crate::base::prom::out_path, conflicts_with_all = ["json", "prometheus"])]
    pub prometheus_out: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Reading the kernel's table needs CAP_NET_ADMIN, a drain write access to the maintenance directory, an ack access to mon-check's socket: a part the CGI's user cannot read shows why, the others still show.\n\nExample wrapper (the CGI the web server runs; the query string never becomes arguments):\n  #!/bin/sh\n  PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n  exec /usr/sbin/lvs-ctl cgi -c /etc/hakit/hakit.yaml\n\nExit status: 0 an answer was written (a refusal is one: 403 with the reason); 1 it could not be written; 2 a configuration error (answered with 500 and the error's file:line:column)."
)]
pub struct CgiArgs {
    /// The configuration file: the lvs-ctl section (services, maintenance-dir) and
    /// mon-check's socket. [default: /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The Active Stations Table hb-watch writes. [default: the configuration's
    /// cluster.table, else /run/hakit/ast]
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Where a running `follow` keeps the health of the real servers.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_STATE)]
    pub state: PathBuf,
    /// mon-check's control socket. [default: mon-check.socket of the configuration,
    /// else /run/hakit/mon.sock]
    #[arg(long, value_name = "PATH")]
    pub mon_socket: Option<PathBuf>,
    /// The key of the CSRF tokens: created (mode 0600, random) if missing; refused if
    /// another user owns it or it is open to others.
    #[arg(long, value_name = "FILE", default_value = super::web::DEFAULT_SECRET)]
    pub secret: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct SnmpArgs {
    /// The configuration file, for the health as followed. [default:
    /// /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where a running `follow` keeps the health of the real servers (the operator
    /// weights are beside it).
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_STATE)]
    pub state: PathBuf,
    /// The Active Stations Table. [default: the cluster section's, else /run/hakit/ast]
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// How old the snapshot answers come from may be before it is taken again.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::base::duration::parse)]
    pub refresh: Duration,
    /// Where the MIB is rooted: the OID of pass_persist's line in snmpd.conf, for an
    /// operator who moves HAKIT-MIB under an enterprise number of their own.
    #[arg(long, value_name = "OID", default_value = super::snmp::DEFAULT_ROOT)]
    pub oid: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct WeightArgs {
    /// The virtual service, as events name it: `tcp/192.0.2.10:80`, `fwmark/1`.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The real server, `ADDRESS:PORT` (`[2001:db8::2]:80`).
    #[arg(value_name = "REAL")]
    pub real: String,
    /// The weight, 0 to 65535 (0: no new connections).
    #[arg(value_name = "WEIGHT", required_unless_present = "reset", conflicts_with = "reset",
          value_parser = clap::value_parser!(u32).range(0..=65535))]
    pub weight: Option<u32>,
    /// Forget the operator weight: the configured one again.
    #[arg(long)]
    pub reset: bool,
    /// The configuration file. [default: /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where a running `follow` keeps the health of the real servers (the operator
    /// weights are beside it).
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_STATE)]
    pub state: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// The clap definition with ipvsadm's options, for the man page and the completions:
/// lvs-ctl parses them itself (`ipvsadm::OPTIONS`, the one table of them).
pub fn command_with_ipvsadm_options() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = LvsCtlArgs::command().next_help_heading("ipvsadm options");
    for o in super::ipvsadm::OPTIONS {
        // -h and -V/--version are clap's own in the page; -l is -L.
        if matches!(o.long, "help" | "version") || o.short == Some('l') {
            continue;
        }
        let mut a = clap::Arg::new(o.long).long(o.long).help(o.help);
        if let Some(c) = o.short {
            a = a.short(c);
        }
        a = match o.arg {
            super::ipvsadm::Arg::None => a.action(clap::ArgAction::SetTrue),
            super::ipvsadm::Arg::Required(v) => a.value_name(v).num_args(1),
            super::ipvsadm::Arg::Optional(v) => a.value_name(v).num_args(0..=1),
        };
        cmd = cmd.arg(a);
    }
    cmd
}
