# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_chan_switch_global_optspecs
    string join \n h/help V/version
end

function __fish_chan_switch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_chan_switch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_chan_switch_using_subcommand
    set -l cmd (__fish_chan_switch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c chan-switch -n "__fish_chan_switch_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chan-switch -n "__fish_chan_switch_needs_command" -s V -l version -d 'Print version'
complete -c chan-switch -n "__fish_chan_switch_needs_command" -f -a "run" -d 'Follow hb-watch\'s events on stdin, decide, order and apply switches'
complete -c chan-switch -n "__fish_chan_switch_needs_command" -f -a "status" -d 'The active channel of every node, as each node reported it'
complete -c chan-switch -n "__fish_chan_switch_needs_command" -f -a "to" -d 'Switch the whole cluster to this channel by hand (maintenance); it stays until `back` or a failure of that channel'
complete -c chan-switch -n "__fish_chan_switch_needs_command" -f -a "back" -d 'Switch the whole cluster back to the preferred channel, nobody moved'
complete -c chan-switch -n "__fish_chan_switch_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -s c -l config -d 'The configuration file (YAML); flags given here win over it. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -s n -l node -d 'This node\'s name. [default: the cluster section\'s, else `uname -n`]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l status-file -d 'What the running chan-switch reports (every node\'s channel, the order), for status, to and back. [default: /run/hakit/chan-switch.json]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l channel -d 'A channel, `NAME=DEV` (or the cluster section\'s), in the channels\' order. Repeat for every channel' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l member -d 'A node: `NAME=CLUSTER_ADDR,ADDR_ON_CHANNEL_1,ADDR_ON_CHANNEL_2...`. Repeat for every node (this one too)' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l policy -d '`all`: every node moves to the standby channel; `per-peer`: only the traffic to and from the node whose link failed. [default: all]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l preferred -d 'The preferred channel, which `back` returns to. [default: the first]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l back -d 'Switch back to the preferred channel by itself once it has carried every pair for this long (`none`: only by hand). [default: none]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l deadtime -d 'The hb-watch deadtime the cluster runs with (for the hold-down and the start). [default: hb-watch\'s section, else 30s]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l keepalive -d 'The hb-send keepalive (orders are sent again after two). [default: hb-send\'s section, else 1s]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l hold-down -d 'The least time between two automatic switches; each flap doubles it. [default: 3 x deadtime, which is also the least]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l settle -d 'How long a fault must last before it is acted on, so that a node dying (all its links at once) is not taken for a channel failure. [default: keepalive/2]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l fifo -d 'hb-send\'s FIFO, through which orders and reports go to every channel. [default: hb-send\'s section, else /run/hakit/fifo]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -s t -l table -d 'The Active Stations Table. [default: the cluster section\'s, else /run/hakit/ast]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l state -d 'Where the epoch and the last order are kept across restarts (on a disk). [default: /var/lib/hakit/chan-switch]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l route-table -d 'The routing table of the first channel; channel i uses this + i. [default: 6940]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l rule-priority -d 'The priority of chan-switch\'s rules (it owns this one and the next 15). [default: 1000]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l syslog -d 'Log to syslog instead of stderr'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -s v -l verbose -d 'Log more (debug)'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -s q -l quiet -d 'Log only warnings and errors'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l json -d 'Print events as JSON lines'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -l realtime -d 'Run with SCHED_FIFO and locked memory, as hb-send and hb-watch do, so that load does not delay a switch (needs CAP_SYS_NICE and CAP_IPC_LOCK)'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand run" -s h -l help -d 'Print help'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -s c -l config -d 'The configuration file (YAML); flags given here win over it. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -s n -l node -d 'This node\'s name. [default: the cluster section\'s, else `uname -n`]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -l status-file -d 'What the running chan-switch reports (every node\'s channel, the order), for status, to and back. [default: /run/hakit/chan-switch.json]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -l syslog -d 'Log to syslog instead of stderr'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -s v -l verbose -d 'Log more (debug)'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -s q -l quiet -d 'Log only warnings and errors'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -l json -d 'Print JSON'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand status" -s h -l help -d 'Print help'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -s c -l config -d 'The configuration file (YAML); flags given here win over it. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -s n -l node -d 'This node\'s name. [default: the cluster section\'s, else `uname -n`]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -l status-file -d 'What the running chan-switch reports (every node\'s channel, the order), for status, to and back. [default: /run/hakit/chan-switch.json]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -l wait -d 'How long to wait for every live node to apply it. [default: 5s]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -l syslog -d 'Log to syslog instead of stderr'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -s v -l verbose -d 'Log more (debug)'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -s q -l quiet -d 'Log only warnings and errors'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand to" -s h -l help -d 'Print help'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -s c -l config -d 'The configuration file (YAML); flags given here win over it. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -s n -l node -d 'This node\'s name. [default: the cluster section\'s, else `uname -n`]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -l status-file -d 'What the running chan-switch reports (every node\'s channel, the order), for status, to and back. [default: /run/hakit/chan-switch.json]' -r -F
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -l wait -d 'How long to wait for every live node to apply it. [default: 5s]' -r
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -l syslog -d 'Log to syslog instead of stderr'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -s v -l verbose -d 'Log more (debug)'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -s q -l quiet -d 'Log only warnings and errors'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand back" -s h -l help -d 'Print help'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand help; and not __fish_seen_subcommand_from run status to back help" -f -a "run" -d 'Follow hb-watch\'s events on stdin, decide, order and apply switches'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand help; and not __fish_seen_subcommand_from run status to back help" -f -a "status" -d 'The active channel of every node, as each node reported it'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand help; and not __fish_seen_subcommand_from run status to back help" -f -a "to" -d 'Switch the whole cluster to this channel by hand (maintenance); it stays until `back` or a failure of that channel'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand help; and not __fish_seen_subcommand_from run status to back help" -f -a "back" -d 'Switch the whole cluster back to the preferred channel, nobody moved'
complete -c chan-switch -n "__fish_chan_switch_using_subcommand help; and not __fish_seen_subcommand_from run status to back help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
