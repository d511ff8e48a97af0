# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hb_watch_global_optspecs
    string join \n c/config= n/node= nodes= ha-cf= k/keys= channel= p/port= t/table= syslog v/verbose q/quiet deadtime= warntime= initdead= max-nodes= exec= hook-timeout= hook-queue= notify= json realtime floors= ping= ping-interval= ping-deadtime= h/help V/version
end

function __fish_hb_watch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hb_watch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hb_watch_using_subcommand
    set -l cmd (__fish_hb_watch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hb-watch -n "__fish_hb_watch_needs_command" -s c -l config -d 'The configuration file (YAML); flags given here win over it. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s n -l node -d 'This node\'s name. [default: `uname -n`]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l nodes -d 'The cluster\'s members, comma separated; messages from anyone else are refused. [default: any node that signs with a known key]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l ha-cf -d 'Heartbeat\'s ha.cf: its node, keepalive, deadtime, warntime, initdead, udpport, bcast, mcast, ucast, ping and deadping lines stand for the YAML\'s keys (a key given in both places is an error; flags still win), and its `authkeys` beside it for --keys. What hakit does not do (crm, respawn, serial, logfile, ...) is named with its line in a warning and skipped; auto_failback belongs to the composition (contrib/pair.sh --failback). It is read as Heartbeat 3.0.6 reads it: node names lowercased (this node\'s too), host names resolved once, a directive set twice taken last with a warning, warntime above deadtime clamped with one. Refused on purpose: an mcast port other than the one port hakit uses for every channel (udpport; without it 694 beside bcast or ucast). A bad line: FILE:LINE:COLUMN, exit status 2' -r -F
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s k -l keys -d 'The keys file, in Heartbeat\'s authkeys format, mode 0600. [default: /etc/hakit/authkeys, or the authkeys beside --ha-cf]' -r -F
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l channel -d 'A channel: `bcast:DEV`, `mcast:DEV:GROUP[:TTL]` or `ucast:DEV:PEER[,PEER...]`, optionally named `NAME=...`. Repeat for every channel, in the same order on every node' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s p -l port -d 'The UDP port. [default: 694]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s t -l table -d 'The Active Stations Table file. [default: /run/hakit/ast]' -r -F
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l deadtime -d 'Silence after which a link is dead (a peer\'s announced `dt` wins). [default: 30s]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l warntime -d 'Silence after which a heartbeat is reported late. [default: deadtime/2]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l initdead -d 'Deadtime right after start, while links come up. [default: 2 x deadtime]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l max-nodes -d 'Room in the table. [default: 256]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l exec -d 'Run this program for every event, one at a time, in order, with the event\'s fields in its environment' -r -F
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l hook-timeout -d 'A hook still running after this long is killed with its process group, and reported. [default: 30s]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l hook-queue -d 'Events waiting for the hook at most; one more is dropped, counted and logged (stdout and --notify never wait for hooks). [default: 1024]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l notify -d 'Signal this process on every event: a PID or a pid file, optionally `:SIGNAL` (default SIGUSR2). Repeatable' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l floors -d 'Where every peer\'s generation and sequence floor is kept across restarts and reboots, so that old heartbeats replayed to a fresh table are refused. Keep it on a disk, not in /run. [default: /var/lib/hakit/floors for the default table, else TABLE.floors]' -r -F
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l ping -d 'A ping node: an address on the service network (the gateway, say) pinged every --ping-interval, as Heartbeat\'s `ping`. Its state is a record in the table, a `ping-up` or `ping-dead` event, and travels in this node\'s heartbeats (`pn`), so that a pair can tell which side still reaches the network. Repeatable' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l ping-interval -d 'How often each ping node is pinged. [default: 1s]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l ping-deadtime -d 'A ping node that has not answered for this long is dead. [default: 3 x ping-interval]' -r
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l syslog -d 'Log to syslog instead of stderr'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s v -l verbose -d 'Log more (debug)'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s q -l quiet -d 'Log only warnings and errors'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l json -d 'Print events as JSON lines'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -l realtime -d 'Run with SCHED_FIFO and locked memory so that load does not delay detection'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -s V -l version -d 'Print version'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -f -a "status" -d 'Print the Active Stations Table (like cl_status), or answer whether a node (or one of its links) is up through the exit status'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -f -a "forget" -d 'Clear a node\'s replay floor (its generation and sequence), when a node can no longer be heard because a floor was set above anything it sends (a forged generation, a clock that was far ahead). A running hb-watch applies it at once (it is sent SIGHUP), a stopped one at its next start'
complete -c hb-watch -n "__fish_hb_watch_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -l link -d 'With NODE: ask about this channel\'s link (its name or number) instead' -r
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -l prometheus-out -d 'As --prometheus, written to FILE (named *.prom) by replacing it atomically, for node_exporter\'s textfile collector (/var/lib/prometheus/node-exporter/ on Debian), which may read it at any moment' -r -F
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -s t -l table -d 'The Active Stations Table file. [default: /run/hakit/ast]' -r -F
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -s c -l config -d 'The configuration file, for the table\'s path' -r -F
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -l json -d 'Print JSON'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -l prometheus -d 'Print the table in Prometheus\' text format: nodes (state, what they hold, generation, load, ping nodes), links (state, last heard, lost, duplicate and rejected messages), packets rejected before a node could be named, ping nodes, and whether a writer holds the table (hakit_table_writer_up)'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand status" -s h -l help -d 'Print help'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand forget" -l floors -d 'The floors file. [default: as hb-watch\'s --floors]' -r -F
complete -c hb-watch -n "__fish_hb_watch_using_subcommand forget" -s t -l table -d 'The Active Stations Table file (its writer is told). [default: /run/hakit/ast]' -r -F
complete -c hb-watch -n "__fish_hb_watch_using_subcommand forget" -s c -l config -d 'The configuration file, for the paths' -r -F
complete -c hb-watch -n "__fish_hb_watch_using_subcommand forget" -s h -l help -d 'Print help'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand help; and not __fish_seen_subcommand_from status forget help" -f -a "status" -d 'Print the Active Stations Table (like cl_status), or answer whether a node (or one of its links) is up through the exit status'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand help; and not __fish_seen_subcommand_from status forget help" -f -a "forget" -d 'Clear a node\'s replay floor (its generation and sequence), when a node can no longer be heard because a floor was set above anything it sends (a forged generation, a clock that was far ahead). A running hb-watch applies it at once (it is sent SIGHUP), a stopped one at its next start'
complete -c hb-watch -n "__fish_hb_watch_using_subcommand help; and not __fish_seen_subcommand_from status forget help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
