# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lvs_ctl_global_optspecs
    string join \n A/add-service E/edit-service D/delete-service C/clear R/restore S/save a/add-server e/edit-server d/delete-server L/list Z/zero set start-daemon= stop-daemon= t/tcp-service= u/udp-service= sctp-service= f/fwmark-service= 6/ipv6 s/scheduler= p/persistent= M/netmask= o/ops pe= b/sched-flags= r/real-server= g/gatewaying i/ipip m/masquerading tun-type= w/weight= x/u-threshold= y/l-threshold= n/numeric c/connection timeout daemon stats rate thresholds persistent-conn nosort sort X/exact mcast-interface= syncid= mcast-group= mcast-port= mcast-ttl= sync-maxlen= backend= json h/help V/version
end

function __fish_lvs_ctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lvs_ctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lvs_ctl_using_subcommand
    set -l cmd (__fish_lvs_ctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l start-daemon -d 'Start the connection synchronisation daemon (master or backup)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l stop-daemon -d 'Stop the connection synchronisation daemon (master or backup)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s t -l tcp-service -d 'A TCP service: address[:port] (IPv6 as [addr]:port)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s u -l udp-service -d 'A UDP service' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l sctp-service -d 'An SCTP service' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s f -l fwmark-service -d 'A service of packets with this firewall mark' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s s -l scheduler -d 'Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh (default wlc)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s p -l persistent -d 'Persistent service, timeout in seconds (default 360, ipvsadm\'s)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s M -l netmask -d 'Persistence granularity: an IPv4 mask, an IPv6 prefix length' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l pe -d 'Persistence engine (sip)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s b -l sched-flags -d 'Scheduler flags: sh-fallback,sh-port / mh-fallback,mh-port / flag-1,flag-2,flag-3' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s r -l real-server -d 'The real server: address[:port] (the service\'s port if none)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l tun-type -d 'Tunnel type: ipip (the only one lvs-ctl knows; with -i)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s w -l weight -d 'Weight, 0 to 65535 (0: no new connections; default 1)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s x -l u-threshold -d 'Upper connection threshold (0: none)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s y -l l-threshold -d 'Lower connection threshold (0: none)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l mcast-interface -d 'The sync daemon\'s interface' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l syncid -d 'The sync daemon\'s id, 0 to 255' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l mcast-group -d 'The sync daemon\'s multicast group' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l mcast-port -d 'The sync daemon\'s port' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l mcast-ttl -d 'The sync daemon\'s multicast TTL' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l sync-maxlen -d 'The sync daemon\'s largest message' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l backend -d 'The kernel table to drive (default: ipvs where the kernel has it, else nft; or the configuration\'s lvs-ctl.backend)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s A -l add-service -d 'Add a virtual service'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s E -l edit-service -d 'Edit a virtual service'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s D -l delete-service -d 'Delete a virtual service'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s C -l clear -d 'Clear the whole table'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s R -l restore -d 'Restore rules from stdin, all or nothing: a bad line (named stdin:LINE:COLUMN) changes nothing, exit 2'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s S -l save -d 'Save rules to stdout (-A/-a lines, as ipvsadm -S)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s a -l add-server -d 'Add a real server to a virtual service'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s e -l edit-server -d 'Edit a real server of a virtual service'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s d -l delete-server -d 'Delete a real server from a virtual service'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s L -l list -d 'List the table (one service with a service option), as ipvsadm -L prints it'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s Z -l zero -d 'Zero the counters of a service or of all'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l set -d 'Set the connection timeouts: --set TCP TCPFIN UDP (seconds, 0 = unchanged)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s 6 -l ipv6 -d 'The firewall-mark service is IPv6 (after -f)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s o -l ops -d 'One-packet scheduling (UDP)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s g -l gatewaying -d 'Direct routing (the default)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s i -l ipip -d 'IP-in-IP tunnel'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s m -l masquerading -d 'NAT'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s n -l numeric -d 'Numeric addresses and ports (lvs-ctl never resolves names when listing)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s c -l connection -d 'List the connections'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l timeout -d 'List the connection timeouts'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l daemon -d 'List the synchronisation daemons'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l stats -d 'List with counters'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l rate -d 'List with rates'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l thresholds -d 'List with thresholds'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l persistent-conn -d 'List with persistent connections'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l nosort -d 'List in the kernel\'s order'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l sort -d 'List sorted (the default)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s X -l exact -d 'Exact counters (no K, M, G)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -l json -d 'Print listings as JSON'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -s V -l version -d 'Print version'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "apply" -d 'Make the kernel\'s table what the configuration\'s `lvs-ctl` section says: add, change and remove only what differs (an unchanged real server keeps its connections), in one nftables transaction or one IPVS batch rolled back on failure. Applying twice changes nothing; a table that drifted is repaired. Real servers that a running `follow` holds out stay out'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "diff" -d 'Print what `apply` would change, one ipvsadm line each; exit 1 if anything'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "remove" -d 'Remove the services the configuration names, and only those, from the kernel\'s table, in one transaction (those not there are skipped): what `apply --only` added. A running `follow` of the same file would put them back'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "follow" -d 'Read mon-check\'s events (`host-down`, `host-up`, as `mon-check run` prints them) on stdin and take real servers out and back in, as each service\'s `on-failure`, `drain`, `quorum`, `sorry` say, with the maintenance directory and the depool threshold; every change is printed as an event line. hb-watch\'s events, on stdin too or from `--events`, add the real servers that join at run time (`lvs-ctl join` on them) once the service\'s check passes against them, as its `join` rule allows, and take them out when they leave, die or stop renewing'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "status" -d 'The services, their real servers, weights, health as followed, connections'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "cgi" -d 'The cluster\'s status page, a CGI program for any web server (lighttpd, Apache, nginx with fcgiwrap), which does the TLS and the authentication: run with the CGI environment, it answers one request and exits. GET shows the nodes and links of the Active Stations Table, what each node holds, the virtual services with their real servers and the services mon-check watches (`?format=json`: the same as JSON). POST drains or enables a real server (a file in the maintenance directory, which a running `follow` acts on) or acknowledges a mon-check alert: only for a user the web server authenticated (REMOTE_USER), with the page\'s CSRF token, from the page\'s own origin; anything else is refused with 403'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "join" -d 'On a real server: join a service\'s pool at run time. Writes `t=join` (service, address, port, weight) to hb-send\'s FIFO at start and again every `--every` (a lease: a director that starts later or restarts learns of it from the next one; keep it well under the directors\' `join.lease`), and `t=leave` on TERM/INT before it exits. Every director whose `follow` reads hb-watch\'s events adds it once the service\'s check passes against it, if its `join` rule allows this node'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "snmp" -d 'Serve HAKIT-MIB (contrib/snmp/HAKIT-MIB.txt) to snmpd through its `pass_persist` protocol on stdin and stdout: the virtual services, their real servers (weight, health as followed, connections), the services of each real server host, and the cluster\'s nodes, links and address holders from the Active Stations Table. Started by snmpd: `pass_persist .1.3.6.1.4.1.32473.104 /usr/sbin/lvs-ctl snmp` in snmpd.conf. Answers come from a snapshot sorted by OID, taken again when it is older than `--refresh`. A SET of hakitRsWeight (0 to 65535; 0 quiesces) is an operator weight, as `lvs-ctl weight` sets it; who may SET is snmpd\'s access control'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "weight" -d 'Set a real server\'s operator weight, which stands in for the configured one until `--reset`: kept beside the state file (lvs-weights.json) so that neither a running `follow` nor the next `apply` undoes it, and put in the kernel now (a server its check or maintenance holds out stays at 0 until it is back)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "director" -d 'The configuration\'s `director` section, checked, for contrib/director.sh: `show` prints this node\'s role, rank and what the active director holds as shell assignments (for `eval`); `conntrackd` prints conntrackd\'s configuration for this node (FTFW over multicast on `sync-dev`, its files in --state-dir)'
complete -c lvs-ctl -n "__fish_lvs_ctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand apply" -l state -d 'Where a running `follow` keeps the health of the real servers' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand apply" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand apply" -l json -d 'Print JSON instead of text'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand apply" -l only -d 'Only the services FILE names: the table\'s other services are neither compared nor removed, for a table several owners share (Pacemaker resources, a file each). With --json, `diff` also says how many of them the table has (`present`, of `named`)'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand apply" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand diff" -l state -d 'Where a running `follow` keeps the health of the real servers' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand diff" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand diff" -l json -d 'Print JSON instead of text'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand diff" -l only -d 'Only the services FILE names: the table\'s other services are neither compared nor removed, for a table several owners share (Pacemaker resources, a file each). With --json, `diff` also says how many of them the table has (`present`, of `named`)'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand diff" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand remove" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand remove" -l json -d 'Print JSON instead of text'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand remove" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -s c -l config -d 'The configuration file. [default: /etc/hakit/hakit.yaml]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -l state -d 'Where the health of the real servers is kept for `apply` and `status` (written atomically at every change)' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -l interval -d 'How often the maintenance directory is looked at, and the kernel\'s table compared with what it should be (drift is repaired)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -l events -d 'Also read event lines from this FIFO (follow creates it, mode 0600): hb-watch\'s events, for the real servers that join at run time (`message ... t=join`, `t=leave`, `node-dead`), when they do not come on stdin with mon-check\'s' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -l json -d 'Print events as JSON lines'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand follow" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -s c -l config -d 'The configuration file, for the health as followed. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -l state -d 'Where a running `follow` keeps the health of the real servers' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -l prometheus-out -d 'As --prometheus, written to FILE (named *.prom) by replacing it atomically, for node_exporter\'s textfile collector, which may read it at any moment' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -l json -d 'Print JSON'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -l prometheus -d 'Print Prometheus\' text format: the services (scheduler, in the kernel, live weight), their real servers (configured, operator and kernel weight, health and state as followed, connections where the backend counts them: ipvs), the sorry servers, and whether a follower is live (hakit_lvs_follower_up)'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -s c -l config -d 'The configuration file: the lvs-ctl section (services, maintenance-dir) and mon-check\'s socket. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -l table -d 'The Active Stations Table hb-watch writes. [default: the configuration\'s cluster.table, else /run/hakit/ast]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -l state -d 'Where a running `follow` keeps the health of the real servers' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -l mon-socket -d 'mon-check\'s control socket. [default: mon-check.socket of the configuration, else /run/hakit/mon.sock]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -l secret -d 'The key of the CSRF tokens: created (mode 0600, random) if missing; refused if another user owns it or it is open to others' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand cgi" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -l fifo -d 'hb-send\'s FIFO (it must be a FIFO of ours or root\'s; no symlink is followed)' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -l service -d 'The virtual service, as follow\'s events name it: `tcp/192.0.2.10:80`, `udp/[2001:db8::1]:53`, `fwmark/1`' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -l addr -d 'This real server\'s address, as the directors reach it' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -l port -d 'Its port. [default: the service\'s; a fwmark service needs it]' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -l weight -d 'Its weight (0 to 65535; a director cuts it to its `join.weight-max`)' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -l every -d 'How often the join is said again' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand join" -s h -l help -d 'Print help'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -s c -l config -d 'The configuration file, for the health as followed. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -l state -d 'Where a running `follow` keeps the health of the real servers (the operator weights are beside it)' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -l table -d 'The Active Stations Table. [default: the cluster section\'s, else /run/hakit/ast]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -l refresh -d 'How old the snapshot answers come from may be before it is taken again' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -l oid -d 'Where the MIB is rooted: the OID of pass_persist\'s line in snmpd.conf, for an operator who moves HAKIT-MIB under an enterprise number of their own' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand snmp" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand weight" -s c -l config -d 'The configuration file. [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand weight" -l state -d 'Where a running `follow` keeps the health of the real servers (the operator weights are beside it)' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand weight" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand weight" -l reset -d 'Forget the operator weight: the configured one again'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand weight" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand weight" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand director" -l node -d 'This node\'s name, one of the section\'s nodes. [default: `uname -n`]' -r
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand director" -l state-dir -d 'Where conntrackd keeps its lock and control socket' -r -F
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand director" -l backend -d 'The kernel table to drive. [default: the configuration\'s lvs-ctl.backend, else ipvs where the kernel has it, else nft]' -r -f -a "ipvs\t'The kernel\'s IP Virtual Server, over generic netlink'
nft\t'An nftables table of hakit\'s own (`inet hakit_lvs`)'"
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand director" -s q -l quiet -d 'Log only warnings and errors'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand director" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "apply" -d 'Make the kernel\'s table what the configuration\'s `lvs-ctl` section says: add, change and remove only what differs (an unchanged real server keeps its connections), in one nftables transaction or one IPVS batch rolled back on failure. Applying twice changes nothing; a table that drifted is repaired. Real servers that a running `follow` holds out stay out'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "diff" -d 'Print what `apply` would change, one ipvsadm line each; exit 1 if anything'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "remove" -d 'Remove the services the configuration names, and only those, from the kernel\'s table, in one transaction (those not there are skipped): what `apply --only` added. A running `follow` of the same file would put them back'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "follow" -d 'Read mon-check\'s events (`host-down`, `host-up`, as `mon-check run` prints them) on stdin and take real servers out and back in, as each service\'s `on-failure`, `drain`, `quorum`, `sorry` say, with the maintenance directory and the depool threshold; every change is printed as an event line. hb-watch\'s events, on stdin too or from `--events`, add the real servers that join at run time (`lvs-ctl join` on them) once the service\'s check passes against them, as its `join` rule allows, and take them out when they leave, die or stop renewing'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "status" -d 'The services, their real servers, weights, health as followed, connections'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "cgi" -d 'The cluster\'s status page, a CGI program for any web server (lighttpd, Apache, nginx with fcgiwrap), which does the TLS and the authentication: run with the CGI environment, it answers one request and exits. GET shows the nodes and links of the Active Stations Table, what each node holds, the virtual services with their real servers and the services mon-check watches (`?format=json`: the same as JSON). POST drains or enables a real server (a file in the maintenance directory, which a running `follow` acts on) or acknowledges a mon-check alert: only for a user the web server authenticated (REMOTE_USER), with the page\'s CSRF token, from the page\'s own origin; anything else is refused with 403'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "join" -d 'On a real server: join a service\'s pool at run time. Writes `t=join` (service, address, port, weight) to hb-send\'s FIFO at start and again every `--every` (a lease: a director that starts later or restarts learns of it from the next one; keep it well under the directors\' `join.lease`), and `t=leave` on TERM/INT before it exits. Every director whose `follow` reads hb-watch\'s events adds it once the service\'s check passes against it, if its `join` rule allows this node'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "snmp" -d 'Serve HAKIT-MIB (contrib/snmp/HAKIT-MIB.txt) to snmpd through its `pass_persist` protocol on stdin and stdout: the virtual services, their real servers (weight, health as followed, connections), the services of each real server host, and the cluster\'s nodes, links and address holders from the Active Stations Table. Started by snmpd: `pass_persist .1.3.6.1.4.1.32473.104 /usr/sbin/lvs-ctl snmp` in snmpd.conf. Answers come from a snapshot sorted by OID, taken again when it is older than `--refresh`. A SET of hakitRsWeight (0 to 65535; 0 quiesces) is an operator weight, as `lvs-ctl weight` sets it; who may SET is snmpd\'s access control'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "weight" -d 'Set a real server\'s operator weight, which stands in for the configured one until `--reset`: kept beside the state file (lvs-weights.json) so that neither a running `follow` nor the next `apply` undoes it, and put in the kernel now (a server its check or maintenance holds out stays at 0 until it is back)'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "director" -d 'The configuration\'s `director` section, checked, for contrib/director.sh: `show` prints this node\'s role, rank and what the active director holds as shell assignments (for `eval`); `conntrackd` prints conntrackd\'s configuration for this node (FTFW over multicast on `sync-dev`, its files in --state-dir)'
complete -c lvs-ctl -n "__fish_lvs_ctl_using_subcommand help; and not __fish_seen_subcommand_from apply diff remove follow status cgi join snmp weight director help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
