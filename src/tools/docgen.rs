//! Man pages and shell completions, generated from the clap definitions. The files
//! are committed under man/ and completions/; a test regenerates them and fails when
//! they differ (`HAKIT_REGENERATE=1 cargo test --test generated` rewrites them).

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::PathBuf;

/// Every tool's command definition.
pub fn commands() -> Vec<clap::Command> {
    vec![
        crate::tools::hb_send::cli::HbSendArgs::command(),
        crate::tools::hb_watch::cli::HbWatchArgs::command(),
        crate::tools::ipfake::cli::IpfakeArgs::command(),
        crate::tools::arp_announce::cli::ArpAnnounceArgs::command(),
        crate::tools::mon_check::cli::MonCheckArgs::command(),
        crate::tools::lvs_ctl::cli::command_with_ipvsadm_options(),
        crate::tools::chan_switch::cli::ChanSwitchArgs::command(),
    ]
}

const TABLE_PAGE: &str = r#".TH HAKIT-TABLE 5 "" "hakit" "File Formats"
.SH NAME
hakit-table \- the Active Stations Table file kept by hb-watch
.SH DESCRIPTION
One file (default \fI/run/hakit/ast\fR), written by exactly one \fBhb-watch\fR (it holds
an exclusive \fBflock\fR(2) on the file) and read by any number of processes that map it
read-only. Readers never block the writer and never see a torn record: every record
begins with a sequence word that is odd while the record is being written; a reader
copies the record between two reads of that word and retries when they differ. A
record whose word stays odd (its writer was killed between its two stores) is
reported unreadable at once when no writer holds the table, after 1 s of the word not
moving when one does, never spun on; the next writer clears such records when it
takes the table. \fBhb-watch status\fR then exits 1 and names the record. The file never shrinks while mapped; a
new writer only grows it.
.PP
The writer creates the file mode 0644. Neither the writer nor a reader follows a
symbolic link to it, or uses one that others can write; the writer uses only its own
or root's, a reader also one owned by the owner of its directory (root's
\fBhb-watch status\fR reads the table an unprivileged hb-watch keeps in its own
/run/hakit).
.SH LAYOUT
All integers little-endian; every field sits in naturally aligned 64-bit words.
.TP
.B Header (512 bytes)
0: magic "HAKITAST"; 8: version (u32, 1); 12: header size (u32, 512); 16: record size
(u32, 512); 20: capacity in records (u32); 24: channel count (u32, at most 8); 28:
writer pid (u32); 32: header sequence (u64); 40: node count (u64); 48: writer start,
Unix ms (u64); 64: eight channel names of 16 bytes; 192: eight u64 counters of packets
rejected before a node could be named; 256: the local node's name (64 bytes).
.TP
.B Record (512 bytes each, from offset 512)
word 0: sequence; words 1\-8: node name (NUL padded); word 9: byte 0 node state (0
unknown, 1 up, 2 unreachable, 3 dead), byte 1 flags (1 local, 2 configured member,
4 a ping node: an address hb-watch pings, named by the address),
bytes 4\-7 the deadtime the node announced in ms; words 10\-11: status (as announced,
e.g. active, standby); word 12: generation; word 13: last sequence number; word 14:
1, 5 and 15 minute load in hundredths (three u16); word 15: last state change, Unix
ms; word 16: last state change, CLOCK_MONOTONIC ns; then from word 18, five words per
channel: last heard (CLOCK_MONOTONIC ns, comparable with the reader's own clock on
the same host), link state (0 unknown, 1 up, 2 late, 3 dead), lost, duplicate and
rejected message counts; word 58: ping nodes, how many the node reaches (u16) of how
many it has (u16) \- the local node's as its hb-watch measures them, a peer's as its
heartbeats (BpnR) say; words 59\-63: what the node says it holds (its heartbeats'
BheldR, NUL padded, cut to 39 bytes and a B+R when longer). Records written by
an hb-watch older than these two fields have zeros there.
.SH COMPATIBILITY
A reader refuses a file whose magic, version, header size or record size differ; so
does a writer, which never rewrites a table of another version.
.SH SEE ALSO
.BR hb-watch (1),
.BR hb-send (1)
"#;

const CONFIG_PAGE: &str = r#".TH HAKIT.YAML 5 "" "hakit" "File Formats"
.SH NAME
hakit.yaml \- the configuration of a hakit cluster
.SH DESCRIPTION
One YAML file (default \fI/etc/hakit/hakit.yaml\fR, or \fB--config\fR, or
\fBHAKIT_CONFIG\fR) describes the cluster; each tool reads the shared \fBcluster\fR
section and its own. Every setting is also a command-line flag, and flags win.
An unknown key, a bad value or a missing file is a one-line error naming the file,
line and column, and exit status 2 (mon-check: 3). So is nesting deeper than 64
levels (the deepest section has five), refused before the file is parsed.
.PP
Times are written \fB250ms\fR, \fB2s\fR, \fB1m\fR, \fB500us\fR; a bare number is
seconds (decimals allowed), as in Heartbeat's ha.cf.
.SH SECTIONS
.TP
.B cluster
\fBnode\fR (this node's name, default \fBuname -n\fR), \fBnodes\fR (the members;
messages from anyone else are refused; default: any node that signs correctly),
\fBkeys\fR (default /etc/hakit/authkeys, see \fBhakit-authkeys\fR(5)), \fBport\fR
(694), \fBtable\fR (/run/hakit/ast, see \fBhakit-table\fR(5)), \fBchannels\fR: a
list of maps with \fBname\fR (default the device), \fBdev\fR, \fBmode\fR
(\fBbcast\fR, \fBmcast\fR with \fBgroup\fR and \fBttl\fR, \fBucast\fR with
\fBpeers\fR). Every node lists the same channels in the same order.
.TP
.B hb-send
\fBkeepalive\fR (1s), \fBdeadtime\fR (30s; announced to receivers, must exceed
twice keepalive), \fBredundancy\fR (0), \fBfifo\fR (/run/hakit/fifo; created by
hb-send mode 0600, an existing one refused unless it is a FIFO of its own that nobody
else can write), \fBfifo-group\fR (a group whose members may write to the FIFO too:
mode 0620), \fBgeneration-file\fR (/var/lib/hakit/generation), \fBstatus\fR (active),
\fBrealtime\fR (false).
.TP
.B hb-watch
\fBdeadtime\fR (30s), \fBwarntime\fR (deadtime/2), \fBinitdead\fR (2 x deadtime),
\fBmax-nodes\fR (256), \fBexec\fR (a hook program, run for every event, one at a
time, in order), \fBhook-timeout\fR (30s; a hook running longer is killed with its
process group), \fBhook-queue\fR (1024 events waiting for the hook; beyond it an event
is dropped for the hook, counted and logged), \fBnotify\fR (a list of PIDs or pid files,
each optionally \fB:SIGNAL\fR), \fBjson\fR, \fBrealtime\fR.
.TP
.B ipfake
\fBpid-dir\fR (/run/hakit), \fBaddresses\fR: a list of maps with \fBaddr\fR
(\fB192.0.2.10/24\fR, or an IPv6 address with its prefix), \fBdev\fR, \fBlabel\fR,
\fBcount\fR (5), \fBinterval\fR (200ms), \fBrefresh\fR (10s), \fBrouters\fR (MACs
to announce to directly), \fBprobe\fR; \fBipfake up ADDR\fR takes from the entry for
ADDR what the flags do not give.
.TP
.B mon-check
Read by \fBmon-check run\fR (mon's model; \fBmon-check import\fR writes it from a
mon.cf). \fBstate-dir\fR (/var/lib/hakit/mon), \fBsocket\fR (/run/hakit/mon.sock,
mode 0600), \fBsocket-group\fR (a group that may use \fBmon-check ctl\fR; the socket
becomes 0660), \fBmondir\fR and \fBalertdir\fR (lists of directories where monitor and
alert programs named without a slash are found; default mon's, /usr/lib/mon/mon.d and
/usr/lib/mon/alert.d, then /usr/local/lib/mon/...), \fBmax-parallel\fR (checks running
at once, 4096), \fBalert-timeout\fR (60s), \fBhostgroups\fR (a map of group name to
its hosts), \fBwatches\fR: a map of group name to its services, each a map of
service name to:
\fBmonitor\fR (required: a built-in check with its flags, e.g. \fBtcp -p 80 -t 5\fR,
\fBhttp -u /health -s ok\fR, \fBicmp -n 3\fR; or a program with its arguments, run
as mon runs monitors with the hosts appended \(em unless it ends in \fB;;\fR \(em
or once per host where an argument holds \fB{host}\fR),
\fBdescription\fR, \fBinterval\fR (1m), \fBfailure-interval\fR, \fBrandskew\fR,
\fBtimeout\fR (a program monitor's, 30s; a built-in takes its \fB-t\fR),
\fBexclude-hosts\fR, \fBexclude-period\fR, \fBdepend\fR (\fBgroup:service\fR
terms with \fB&&\fR, \fB||\fR, \fB!\fR and parentheses; terms side by side must all
hold), \fBdep-behavior\fR (\fBa\fR: a failing dependency suppresses alerts, the
default; \fBm\fR: it suppresses the monitor), \fBperiods\fR: a list of maps with
\fBwhen\fR (a Time::Period as in mon.cf, \fBwd {Mon-Fri} hr {7am-10pm}\fR; default
always), \fBalert\fR, \fBupalert\fR, \fBstartupalert\fR (a command or a list of
them, found in \fBalertdir\fR), \fBalertevery\fR, \fBalertafter\fR (\fBN\fR,
\fB"N T"\fR or \fBT\fR), \fBnumalerts\fR, \fBno-comp-alerts\fR.
.TP
.B chan-switch
Read by \fBchan-switch run\fR, with the \fBcluster\fR section's channels and the
\fBhb-send\fR keepalive and \fBhb-watch\fR deadtime: \fBpolicy\fR (\fBall\fR, every
node moves to the standby channel; \fBper-peer\fR, only the traffic to and from the
node whose link failed), \fBpreferred\fR (the channel \fBback\fR returns to; the
first), \fBback\fR (\fBnone\fR, or a duration: back by itself once the preferred
channel has carried every pair that long), \fBhold-down\fR (3 x deadtime, also the
least), \fBsettle\fR (keepalive/2), \fBstate\fR (/var/lib/hakit/chan-switch),
\fBstatus-file\fR (/run/hakit/chan-switch.json), \fBroute-table\fR (6940: channel
i uses this + i), \fBrule-priority\fR (1000, and the 15 after it), \fBjson\fR, \fBrealtime\fR,
\fBmembers\fR: a list of maps with \fBname\fR, \fBaddress\fR (the node's cluster
address, put on \fBlo\fR) and \fBvia\fR (its address on each channel, in the
channels' order).
.TP
.B director
Read by \fBlvs-ctl director\fR for \fBcontrib/director.sh\fR: \fBnodes\fR (a
list of maps with \fBname\fR and \fBrole\fR, the cascade in order: one
\fBdirector\fR, then one \fBprimary-backup\fR, then any \fBsecondary-backup\fR),
\fBfailback\fR (false: the holder keeps the addresses while it lives; true: a
better-ranked director back takes them again), \fBaddresses\fR (a list of maps with
\fBaddress\fR, ADDR/PREFIX, and \fBdev\fR: what the active director holds, e.g. the
virtual address and the real servers' gateway), \fBsync\fR (\fBconntrackd\fR: connection
state synchronised by conntrackd and committed at takeover, for NAT on nftables;
\fBipvs\fR: the kernel's sync daemon; \fBnone\fR, the default), \fBsync-dev\fR (the
link the state travels on), \fBsync-group\fR (conntrackd's multicast group,
225.0.0.50), \fBsync-port\fR (conntrackd's port, 3780; with \fBipvs\fR the syncid,
1).
.PP
Sections of the other tools (\fBarp-announce\fR, \fBlvs-ctl\fR)
are accepted and left to them.
.SH EXAMPLE
.nf
cluster:
  nodes: [n1, n2, n3]
  channels:
    - {name: a, dev: eth0, mode: bcast}
    - {name: b, dev: eth1, mode: mcast, group: 225.0.0.1, ttl: 1}
hb-send:
  keepalive: 200ms
  deadtime: 1s
hb-watch:
  deadtime: 1s
  exec: /etc/hakit/on-event
.fi
.SH SEE ALSO
.BR hb-send (1),
.BR hb-watch (1),
.BR ipfake (1),
.BR mon-check (1),
.BR hakit-authkeys (5)
"#;

const AUTHKEYS_PAGE: &str = r#".TH HAKIT-AUTHKEYS 5 "" "hakit" "File Formats"
.SH NAME
hakit-authkeys \- the keys that sign and verify cluster messages
.SH DESCRIPTION
Heartbeat's \fBauthkeys\fR format. The file is refused (exit status 2, one line
naming it) unless it is a regular file (not a symbolic link, FIFO or device), owned by
the user the tool runs as or by root (another user could read and replace the key),
and only its owner can read it (\fBchmod 600\fR); and unless exactly one \fBauth\fR
line selects the signing key.
.PP
.nf
auth 1
1 sha256 a long random secret
2 sha1 the secret Heartbeat nodes use
3 crc
.fi
.PP
\fBauth N\fR selects the key that signs; every listed key verifies. Indexes 0 to 15.
Methods: \fBsha256\fR (HMAC-SHA256, hakit's default and the one to use),
\fBsha1\fR and \fBmd5\fR (HMACs, as Heartbeat computes them, for clusters mixing
hakit and Heartbeat 3 nodes), \fBcrc\fR (CRC-32, no key: integrity only, no
authentication: anyone on the LAN can forge messages, and every start warns so).
The key is the rest of the line. To change keys without a gap, add
the new key under a new index everywhere, reload (SIGHUP), then select it with
\fBauth\fR and reload again.
.SH SEE ALSO
.BR hb-send (1),
.BR hb-watch (1)
"#;

/// The page of each subcommand, which its parent's page lists as NAME-SUB(1), and of
/// theirs (`ipfake mirror active` is ipfake-mirror-active(1)).
fn sub_pages(cmd: &clap::Command, name: &str, section: &str, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for sub in cmd.get_subcommands() {
        let full = format!("{name}-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(full.clone()))
            .section(section)
            .render(&mut page)
            .expect("render to memory");
        out.push((PathBuf::from(format!("man/{full}.{section}")), page));
        sub_pages(sub, &full, section, out);
    }
}

/// Every generated file: its path under the package root and its contents.
pub fn generate() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        // lvs-ctl and chan-switch are system administrators' commands, as ipvsadm(8) is.
        let section = if name == "lvs-ctl" || name == "chan-switch" {
            "8"
        } else {
            "1"
        };
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .section(section)
            .render(&mut page)
            .expect("render to memory");
        out.push((PathBuf::from(format!("man/{name}.{section}")), page));
        sub_pages(&cmd, &name, section, &mut out);
        for (shell, file) in [
            (Shell::Bash, format!("completions/{name}.bash")),
            (Shell::Zsh, format!("completions/_{name}")),
            (Shell::Fish, format!("completions/{name}.fish")),
        ] {
            let mut buf = Vec::new();
            let mut c = cmd.clone();
            clap_complete::generate(shell, &mut c, name.clone(), &mut buf);
            out.push((PathBuf::from(file), buf));
        }
    }
    out.push((PathBuf::from("man/hakit-table.5"), TABLE_PAGE.as_bytes().to_vec()));
    out.push((PathBuf::from("man/hakit.yaml.5"), CONFIG_PAGE.as_bytes().to_vec()));
    out.push((PathBuf::from("man/hakit-authkeys.5"), AUTHKEYS_PAGE.as_bytes().to_vec()));
    out
}
