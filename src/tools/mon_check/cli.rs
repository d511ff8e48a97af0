use crate::base::duration::clap_parse as duration;
use crate::tools::mon_check::check::icmp::{clap_limit, Limit};
use crate::tools::mon_check::check::range::{clap_parse as range, Range};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Check that services answer: once, as a monitoring plugin (cron, Nagios, Icinga); as
/// a mon monitor over many hosts; or on a schedule with mon's alerts (`run`).
///
/// One-shot: `mon-check tcp -H HOST -p PORT -w 0.5 -c 1 -t 5` prints one status line
/// with performance data (`TCP OK - 0.001 second response time on HOST port
/// PORT|time=...`) and exits with the plugin codes. Warning and critical thresholds
/// are plugin ranges (`10`, `10:`, `~:10`, `10:20`, `@10:20`). A timeout or a name
/// that does not resolve is CRITICAL; a bad argument is UNKNOWN.
///
/// As a mon monitor: `mon-check --mon CHECK [options] host1 host2 ...` checks every
/// host in parallel, prints the failed hosts on the first line and one line of detail
/// per failed host after it, and exits nonzero on any failure — name it as a
/// `monitor` in mon.cf.
///
/// Scheduler: `mon-check run -c FILE` runs the services of the configuration's
/// `mon-check` section (mon's host groups, watches, services, periods and alerts; see
/// hakit.yaml(5)); `mon-check ctl` talks to it; `mon-check import` turns a mon.cf into
/// that section.
///
/// Exit status (the monitoring-plugin codes): 0 OK; 1 WARNING; 2 CRITICAL (a check
/// failed; ctl: the scheduler refused the request or cannot be reached); 3 UNKNOWN (a
/// bad argument or configuration, an internal error). With `--mon`, the worst status
/// of all hosts.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mon-check",
    version,
    after_help = "Examples:\n  mon-check tcp -H 192.0.2.1 -p 22 -w 0.5 -c 1\n  mon-check https -H www.example.org -C 30,14\n  mon-check --mon icmp 192.0.2.1 192.0.2.2     # in mon.cf: monitor mon-check --mon icmp\n  mon-check run -c /etc/hakit/hakit.yaml\n  mon-check ctl disable host web3 --for 2h --reason 'disk swap'"
)]
pub struct MonCheckArgs {
    /// Run as a mon monitor: check every HOST given, print the failed ones on the
    /// first line and the detail after, exit nonzero on any failure.
    #[arg(long, global = true)]
    pub mon: bool,
    /// Print the result as JSON (one object; with --mon, one per host).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print more: the detail lines after the status line.
    #[arg(short = 'v', long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Connect to a TCP port; optionally send a string and expect a reply (check_tcp).
    Tcp(TcpArgs),
    /// Send a datagram and expect a reply (check_udp).
    Udp(TcpArgs),
    /// Fetch a page over HTTP (check_http).
    Http(HttpArgs),
    /// Fetch a page over HTTPS; `-C` checks the certificate's days to expiry.
    Https(HttpArgs),
    /// A TLS handshake on any port (IMAPS, LDAPS, ...): time, certificate expiry,
    /// optionally the chain.
    Tls(TlsArgs),
    /// Ping: round-trip time and loss (check_icmp).
    #[command(alias = "ping")]
    Icmp(IcmpArgs),
    /// Ask a DNS server for a name (check_dns).
    Dns(DnsArgs),
    /// The SMTP banner and EHLO (check_smtp).
    Smtp(SmtpArgs),
    /// Run a monitoring plugin or a mon monitor, bounded by the timeout, and take its
    /// result. With --mon, once per host: `{host}` in the arguments is replaced by
    /// the host, else the host is appended; hosts come from -H, or after a `--hosts`
    /// word (where mon appends them: `exec -- check_ssh -H {host} --hosts`).
    Exec(ExecArgs),
    /// Run the services of the configuration on their schedule, with alerts; one event
    /// per line on stdout when a host goes down or comes up (`host-down HOST ...
    /// service=GROUP/SERVICE status=...`) and when a service starts or stops failing
    /// (`service-failing`, `service-up`), JSON lines with --json.
    Run(RunArgs),
    /// Ask the running scheduler: status, disable, enable, acknowledge, test, reload.
    Ctl(CtlArgs),
    /// Read a mon.cf and write the equivalent `mon-check` configuration section.
    Import(ImportArgs),
}

/// What every check takes: hosts, and its bounds.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The host to check (a name or an address).
    #[arg(short = 'H', long = "hostname", value_name = "HOST")]
    pub host: Vec<String>,
    /// Hosts, as mon gives them to a monitor (with --mon, any number).
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub bounds: Bounds,
}

/// How long a check may take, what a timeout is, which address family it uses.
#[derive(Debug, Clone, Args)]
pub struct Bounds {
    /// Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`.
    #[arg(short = 't', long, value_name = "TIME", default_value = "10", value_parser = duration)]
    pub timeout: Duration,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// The state a timeout is reported as.
    #[arg(long, value_name = "STATE", default_value = "critical")]
    pub timeout_state: TimeoutState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeoutState {
    Ok,
    Warning,
    Critical,
    Unknown,
}

/// A warning and a critical range on the response time, in seconds.
#[derive(Debug, Clone, Args)]
pub struct TimeThresholds {
    /// Response time (seconds) that is a WARNING, as a plugin range.
    #[arg(short = 'w', long, value_name = "RANGE", value_parser = range, allow_hyphen_values = true)]
    pub warning: Option<Range>,
    /// Response time (seconds) that is CRITICAL, as a plugin range.
    #[arg(short = 'c', long, value_name = "RANGE", value_parser = range, allow_hyphen_values = true)]
    pub critical: Option<Range>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Ok,
    Warn,
    Crit,
}

#[derive(Debug, Clone, Args)]
pub struct TcpArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub thresholds: TimeThresholds,
    /// The port.
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: u16,
    /// A string to send once connected.
    #[arg(short = 's', long, value_name = "STRING")]
    pub send: Option<String>,
    /// A string the reply must contain (repeat: any of them).
    #[arg(short = 'e', long, value_name = "STRING")]
    pub expect: Vec<String>,
    /// Read `\n`, `\r`, `\t` in the send and expect strings as escapes.
    #[arg(short = 'E', long)]
    pub escape: bool,
    /// The state when the connection is refused.
    #[arg(short = 'r', long, value_name = "STATE", default_value = "crit")]
    pub refuse: StateArg,
    /// The state when the reply matches no expected string.
    #[arg(short = 'M', long, value_name = "STATE", default_value = "warn")]
    pub mismatch: StateArg,
    /// Read at most this many bytes of the reply.
    #[arg(short = 'm', long, value_name = "BYTES", default_value_t = 16384)]
    pub maxbytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedirectArg {
    Ok,
    Warning,
    Critical,
    Follow,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub thresholds: TimeThresholds,
    /// The port. [default: 80, or 443 with TLS]
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Connect to this address instead of the host (the host still names the site).
    #[arg(short = 'I', long = "IP-address", value_name = "ADDR")]
    pub ip: Option<String>,
    /// The site's name for the Host header and TLS SNI. [default: the host]
    #[arg(long, value_name = "NAME")]
    pub vhost: Option<String>,
    /// Use TLS (`mon-check https` always does).
    #[arg(short = 'S', long)]
    pub ssl: bool,
    /// The path to fetch.
    #[arg(short = 'u', long, value_name = "PATH", default_value = "/")]
    pub url: String,
    /// The method.
    #[arg(short = 'j', long, value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// Status codes that are OK, comma separated (a prefix like `20` allowed).
    /// [default: 2xx and 3xx OK, 4xx WARNING, 5xx CRITICAL]
    #[arg(short = 'e', long, value_name = "CODES", value_delimiter = ',')]
    pub expect: Vec<String>,
    /// A string the body must contain.
    #[arg(short = 's', long, value_name = "STRING")]
    pub string: Option<String>,
    /// A regular expression the body must match.
    #[arg(short = 'r', long, value_name = "REGEX")]
    pub regex: Option<String>,
    /// CRITICAL if the regex matches, instead of if it does not.
    #[arg(long)]
    pub invert_regex: bool,
    /// Certificate days to expiry: WARNING below the first, CRITICAL below the second
    /// (`30,14`; one number is both). Checks only the certificate unless
    /// --continue-after-certificate.
    #[arg(short = 'C', long, value_name = "DAYS[,DAYS]")]
    pub certificate: Option<String>,
    /// With -C, check the page too.
    #[arg(long)]
    pub continue_after_certificate: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// What a redirect (3xx) is.
    #[arg(short = 'f', long, value_name = "WHAT", default_value = "ok")]
    pub onredirect: RedirectArg,
    /// An extra request header, `Name: value` (repeat).
    #[arg(short = 'k', long, value_name = "HEADER")]
    pub header: Vec<String>,
    /// Basic authentication, `user:password`.
    #[arg(short = 'a', long, value_name = "USER:PASSWORD")]
    pub authorization: Option<String>,
    /// Read at most this many bytes of the answer.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub max_body: usize,
}

/// Whether a TLS certificate chain is verified.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Verify the certificate chain and name (CRITICAL if they do not verify); by
    /// default the certificate is only read, as check_http does.
    #[arg(long)]
    pub verify: bool,
    /// The roots to verify against, PEM (implies --verify).
    /// [default: /etc/ssl/certs/ca-certificates.crt]
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub thresholds: TimeThresholds,
    /// The port.
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: u16,
    /// The TLS server name to ask for. [default: the host]
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Certificate days to expiry: WARNING below the first, CRITICAL below the second.
    #[arg(short = 'C', long, value_name = "DAYS[,DAYS]")]
    pub certificate: Option<String>,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct IcmpArgs {
    #[command(flatten)]
    pub target: Target,
    /// WARNING at this round-trip average (ms) or loss (%).
    #[arg(short = 'w', long, value_name = "RTA,LOSS%", default_value = "200,40%", value_parser = clap_limit)]
    pub warning: Limit,
    /// CRITICAL at this round-trip average (ms) or loss (%); a reply later than the
    /// RTA counts as lost.
    #[arg(short = 'c', long, value_name = "RTA,LOSS%", default_value = "500,80%", value_parser = clap_limit)]
    pub critical: Limit,
    /// How many echo requests.
    #[arg(short = 'n', long, value_name = "COUNT", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub packets: u16,
    /// Time between echo requests.
    #[arg(short = 'i', long, value_name = "TIME", default_value = "80ms", value_parser = duration)]
    pub interval: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// The name to look up (check_dns's -H).
    #[arg(short = 'H', long = "hostname", value_name = "NAME")]
    pub name: String,
    /// The server to ask. [default: the first nameserver of /etc/resolv.conf]
    #[arg(short = 's', long, value_name = "SERVER")]
    pub server: Vec<String>,
    /// Servers, as mon gives them to a monitor (with --mon, any number).
    #[arg(value_name = "SERVER")]
    pub servers: Vec<String>,
    /// The answer expected (addresses or names, comma separated; all of them, no other).
    #[arg(short = 'a', long, value_name = "ADDR", value_delimiter = ',')]
    pub expect: Vec<String>,
    /// The record type: A, AAAA, NS, CNAME, MX.
    #[arg(short = 'q', long, value_name = "TYPE", default_value = "A")]
    pub querytype: String,
    /// The server's port.
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 53)]
    pub port: u16,
    #[command(flatten)]
    pub thresholds: TimeThresholds,
    #[command(flatten)]
    pub bounds: Bounds,
}

#[derive(Debug, Clone, Args)]
pub struct SmtpArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub thresholds: TimeThresholds,
    /// The port.
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = 25)]
    pub port: u16,
    /// What the banner must start with.
    #[arg(short = 'e', long, value_name = "STRING", default_value = "220")]
    pub expect: String,
    /// The name to give in EHLO. [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Upgrade with STARTTLS; CRITICAL if the server does not offer it.
    #[arg(long)]
    pub starttls: bool,
    /// The certificate's days to expiry after STARTTLS (implies --starttls): WARNING
    /// below the first, CRITICAL below the second.
    #[arg(short = 'C', long, value_name = "DAYS[,DAYS]")]
    pub certificate: Option<String>,
    /// The TLS server name. [default: the host]
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StyleArg {
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Plugin,
    /// mon's monitors: 0 fine, anything else CRITICAL.
    Mon,
}

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// How to read the program's exit code.
    #[arg(long, value_name = "STYLE", default_value = "plugin")]
    pub style: StyleArg,
    /// Kill the program (and its process group) after this long; that is CRITICAL.
    #[arg(short = 't', long, value_name = "TIME", default_value = "10", value_parser = duration)]
    pub timeout: Duration,
    /// Keep at most this many bytes of its output.
    #[arg(long, value_name = "BYTES", default_value_t = crate::tools::mon_check::check::exec::MAX_OUTPUT)]
    pub max_output: usize,
    /// The state a timeout is reported as.
    #[arg(long, value_name = "STATE", default_value = "critical")]
    pub timeout_state: TimeoutState,
    /// Hosts, with --mon.
    #[arg(short = 'H', long = "hostname", value_name = "HOST")]
    pub host: Vec<String>,
    /// The program and its arguments (after `--`).
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The configuration file (YAML), with its `mon-check` section.
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        env = "HAKIT_CONFIG",
        default_value = "/etc/hakit/hakit.yaml"
    )]
    pub config: PathBuf,
    /// Where the state is saved. [default: mon-check.state-dir, else /var/lib/hakit/mon]
    ///
    /// One scheduler per directory: a second is refused, naming the pid that holds it
    /// (in DIR/lock). A corrupt state file is set aside as state.json.corrupt and the
    /// scheduler starts afresh.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The control socket. [default: mon-check.socket, else /run/hakit/mon.sock]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Run every service once, wait for the results and their alerts, and exit with
    /// the worst status.
    #[arg(long)]
    pub once: bool,
    /// Only check the configuration: print what it describes and exit 0, or the
    /// error and exit 3.
    #[arg(long, conflicts_with = "once")]
    pub check: bool,
    /// Log to syslog instead of stderr.
    #[arg(long)]
    pub syslog: bool,
    /// Log only warnings and errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// The scheduler's control socket. [default: mon-check.socket of the configuration,
    /// else /run/hakit/mon.sock]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The configuration file, to find the socket in.
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub request: CtlRequest,
}

/// What `disable` and `enable` name (the control socket has its own wire type for it,
/// `sched::ctl::Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Host,
    Service,
    Watch,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CtlRequest {
    /// Everything in one answer: every service with its hosts, what is disabled and
    /// acknowledged.
    List(ListArgs),
    /// Disable a host (everywhere), a service (`GROUP SERVICE`) or a watch (`GROUP`).
    Disable {
        #[arg(value_name = "KIND")]
        kind: Kind,
        /// HOST, GROUP SERVICE, or GROUP.
        #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
        names: Vec<String>,
        /// Enable it again by itself after this long.
        #[arg(long = "for", value_name = "TIME", value_parser = duration)]
        for_: Option<Duration>,
        /// Why (shown by `list`).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Enable what was disabled.
    Enable {
        #[arg(value_name = "KIND")]
        kind: Kind,
        #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
        names: Vec<String>,
    },
    /// Acknowledge a failing service: no more failure alerts until it recovers.
    Ack {
        group: String,
        service: String,
        /// A comment.
        #[arg(value_name = "TEXT", trailing_var_arg = true)]
        comment: Vec<String>,
    },
    /// Run a service's alerts (`alert`, the default, or `upalert`) now, as a test.
    Test {
        group: String,
        service: String,
        #[arg(long)]
        up: bool,
    },
    /// Run a service's monitor now.
    Check { group: String, service: String },
    /// Re-read the configuration (a broken one keeps the running one).
    Reload,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Print Prometheus' text format: every service's state, when it was last checked
    /// and since when it is in its state, its consecutive failures, whether it is
    /// acknowledged, and each host's last result (ok, warning, critical, unknown).
    #[arg(long)]
    pub prometheus: bool,
    /// As --prometheus, written to FILE (named *.prom) by replacing it atomically, for
    /// node_exporter's textfile collector, which may read it at any moment.
    #[arg(long, value_name = "FILE", value_parser = crate::base::prom::out_path, conflicts_with = "prometheus")]
    pub prometheus_out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The mon.cf to read.
    #[arg(value_name = "MON.CF", default_value = "/etc/mon/mon.cf")]
    pub file: PathBuf,
    /// Write here instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
