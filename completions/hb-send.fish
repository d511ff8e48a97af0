complete -c hb-send -s c -l config -d 'The configuration file (YAML); flags given here win over it. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c hb-send -s n -l node -d 'This node\'s name. [default: `uname -n`]' -r
complete -c hb-send -l nodes -d 'The cluster\'s members, comma separated; messages from anyone else are refused. [default: any node that signs with a known key]' -r
complete -c hb-send -l ha-cf -d 'Heartbeat\'s ha.cf: its node, keepalive, deadtime, warntime, initdead, udpport, bcast, mcast, ucast, ping and deadping lines stand for the YAML\'s keys (a key given in both places is an error; flags still win), and its `authkeys` beside it for --keys. What hakit does not do (crm, respawn, serial, logfile, ...) is named with its line in a warning and skipped; auto_failback belongs to the composition (contrib/pair.sh --failback). It is read as Heartbeat 3.0.6 reads it: node names lowercased (this node\'s too), host names resolved once, a directive set twice taken last with a warning, warntime above deadtime clamped with one. Refused on purpose: an mcast port other than the one port hakit uses for every channel (udpport; without it 694 beside bcast or ucast). A bad line: FILE:LINE:COLUMN, exit status 2' -r -F
complete -c hb-send -s k -l keys -d 'The keys file, in Heartbeat\'s authkeys format, mode 0600. [default: /etc/hakit/authkeys, or the authkeys beside --ha-cf]' -r -F
complete -c hb-send -l channel -d 'A channel: `bcast:DEV`, `mcast:DEV:GROUP[:TTL]` or `ucast:DEV:PEER[,PEER...]`, optionally named `NAME=...`. Repeat for every channel, in the same order on every node' -r
complete -c hb-send -s p -l port -d 'The UDP port. [default: 694]' -r
complete -c hb-send -s t -l table -d 'The Active Stations Table file. [default: /run/hakit/ast]' -r -F
complete -c hb-send -l keepalive -d 'Interval between heartbeats. [default: 1s]' -r
complete -c hb-send -l deadtime -d 'The deadtime announced to receivers (`dt`): they declare this node\'s links dead after this much silence. More than twice --keepalive; with --redundancy, at least twice. [default: 30s]' -r
complete -c hb-send -l redundancy -d 'Send every message K+1 times on each channel, to survive K losses in a row. [default: 0]' -r
complete -c hb-send -l fifo -d 'The FIFO to read cluster messages from. hb-send creates it (mode 0600) and refuses an existing one that is not a FIFO, not its own, or writable by others. [default: /run/hakit/fifo]' -r -F
complete -c hb-send -l fifo-group -d 'Let this group write to the FIFO too (mode 0620), for scripts that do not run as hb-send\'s user' -r
complete -c hb-send -l generation-file -d 'Where the generation is saved (fsync) at every start. [default: /var/lib/hakit/generation]' -r -F
complete -c hb-send -l status -d 'The status to announce at start (`st`). [default: active]' -r
complete -c hb-send -l count -d 'Send this many heartbeats, then stop (for scripts and tests)' -r
complete -c hb-send -l syslog -d 'Log to syslog instead of stderr'
complete -c hb-send -s v -l verbose -d 'Log more (debug)'
complete -c hb-send -s q -l quiet -d 'Log only warnings and errors'
complete -c hb-send -l no-fifo -d 'Read no FIFO'
complete -c hb-send -l realtime -d 'Run with SCHED_FIFO and locked memory so that load does not delay heartbeats; with two CPUs or more, a second thread pinned to another CPU sends a heartbeat the main thread could not send on time (a CPU the host or a cgroup quota holds up for 100 ms would otherwise silence the node)'
complete -c hb-send -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hb-send -s V -l version -d 'Print version'
