# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ipfake_global_optspecs
    string join \n pid-dir= c/config= q/quiet h/help V/version
end

function __fish_ipfake_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ipfake_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ipfake_using_subcommand
    set -l cmd (__fish_ipfake_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ipfake -n "__fish_ipfake_needs_command" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_needs_command" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_needs_command" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ipfake -n "__fish_ipfake_needs_command" -s V -l version -d 'Print version'
complete -c ipfake -n "__fish_ipfake_needs_command" -f -a "up" -d 'Take the address over and hold it until stopped'
complete -c ipfake -n "__fish_ipfake_needs_command" -f -a "down" -d 'Stop the holder of the address and remove it'
complete -c ipfake -n "__fish_ipfake_needs_command" -f -a "status" -d 'Which addresses this node holds; exit 0 if the one asked about is held'
complete -c ipfake -n "__fish_ipfake_needs_command" -f -a "fake" -d 'Do what Fake\'s `fake IP` (or `fake remove IP`) does, from Fake\'s own `.fakerc` and `instance_config/IP.cfg`'
complete -c ipfake -n "__fish_ipfake_needs_command" -f -a "mirror" -d 'Roll-forward for UDP services: the active node copies every request to the standby, which processes it silently, so that it answers with current state when it takes over'
complete -c ipfake -n "__fish_ipfake_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l label -d 'An IPv4 label for the address (`eth0:vip`), as Fake\'s TARGET_INTERFACE: the interface\'s name or `IFACE:...`, at most 15 characters (the kernel\'s limit)' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l count -d 'Announcements in the first burst. [default: 5]' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l interval -d 'Time between the burst\'s announcements. [default: 200ms]' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l refresh -d 'Re-announce this often while holding the address (0 = never). [default: 10s]' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l router -d 'Also announce straight to this router\'s MAC (repeatable; one host\'s: not a broadcast, multicast or all-zero MAC)' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l mirror -d 'Roll-forward: before the address is added, make this node the active one of `ipfake mirror` for it on IFACE, copying these UDP ports (`udp/PORT`, comma-separated) to the --mirror-peer: `ipfake mirror active` done in this process, one element transaction, so an armed takeover still starts nothing' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l mirror-peer -d 'With --mirror: where the copies go (comma-separated or repeated); without it the node\'s peers stay what they were' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l probe -d 'First ask whether another host answers for the address; refuse (exit 1) if so'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l force -d 'With --probe: take the address even if another host answers'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l once -d 'Announce the burst, then exit leaving the address up'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l armed -d 'Get everything ready (the link open, the capabilities checked), then wait for SIGUSR1 before taking the address (the pid file is written once it is taken): a hot standby that takes over without starting a process. SIGTERM before then exits without touching the address'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -l check -d 'Check the settings and that the interface exists, and exit (0, or 2 with the error), changing nothing: what a resource agent\'s validate-all asks'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand up" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand down" -l owner-mac -d 'Announce the address at this MAC (the original owner\'s) after releasing it' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand down" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand down" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand down" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand down" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand status" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand status" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand status" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand status" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand fake" -l rc -d 'Fake\'s `.fakerc`. [default: /etc/fake/.fakerc, then ~/.fakerc]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand fake" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand fake" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand fake" -l remove -d 'Release the address instead (Fake\'s `fake remove IP`), announcing FOREIGN_MACADDR if the instance file sets it'
complete -c ipfake -n "__fish_ipfake_using_subcommand fake" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand fake" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -f -a "active" -d 'Answer, and copy every request to the peers'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -f -a "standby" -d 'Process the copies, say nothing as the address, and still copy what arrives to the peers'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -f -a "off" -d 'Remove the address\'s mirroring (with no --vip: all of it): the tables go when nothing is left in them, and so does the `lo` copy'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -f -a "status" -d 'Each mirrored address with its mode; exit 0 if the one asked about is mirrored'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and not __fish_seen_subcommand_from active standby off status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -l vip -d 'The service address (IPv4, one host\'s)' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -l peer -d 'Where the copies go (comma-separated or repeated; at most 4). Give every mode the same: the tables are made for them once, and a takeover changes one set element. Without it the node\'s peers stay what they were' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -l dev -d 'The interface the address and the peers are on' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -l service -d 'The UDP ports copied to the peers: `udp/PORT`, comma-separated or repeated' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -l check -d 'Check the settings and exit (0, or 2 with the error), changing nothing'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from active" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -l vip -d 'The service address (IPv4, one host\'s)' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -l peer -d 'Where the copies go (comma-separated or repeated; at most 4). Give every mode the same: the tables are made for them once, and a takeover changes one set element. Without it the node\'s peers stay what they were' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -l dev -d 'The interface the address and the peers are on' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -l service -d 'The UDP ports copied to the peers: `udp/PORT`, comma-separated or repeated' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -l check -d 'Check the settings and exit (0, or 2 with the error), changing nothing'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from standby" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from off" -l vip -d 'The address; without it, every address this node mirrors' -r
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from off" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from off" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from off" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from off" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from status" -l pid-dir -d 'Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from status" -s c -l config -d 'The configuration file (YAML; its `ipfake.addresses` describe addresses by name). [default: /etc/hakit/hakit.yaml when it exists]' -r -F
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Log only warnings and errors'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "active" -d 'Answer, and copy every request to the peers'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "standby" -d 'Process the copies, say nothing as the address, and still copy what arrives to the peers'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "off" -d 'Remove the address\'s mirroring (with no --vip: all of it): the tables go when nothing is left in them, and so does the `lo` copy'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "status" -d 'Each mirrored address with its mode; exit 0 if the one asked about is mirrored'
complete -c ipfake -n "__fish_ipfake_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and not __fish_seen_subcommand_from up down status fake mirror help" -f -a "up" -d 'Take the address over and hold it until stopped'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and not __fish_seen_subcommand_from up down status fake mirror help" -f -a "down" -d 'Stop the holder of the address and remove it'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and not __fish_seen_subcommand_from up down status fake mirror help" -f -a "status" -d 'Which addresses this node holds; exit 0 if the one asked about is held'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and not __fish_seen_subcommand_from up down status fake mirror help" -f -a "fake" -d 'Do what Fake\'s `fake IP` (or `fake remove IP`) does, from Fake\'s own `.fakerc` and `instance_config/IP.cfg`'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and not __fish_seen_subcommand_from up down status fake mirror help" -f -a "mirror" -d 'Roll-forward for UDP services: the active node copies every request to the standby, which processes it silently, so that it answers with current state when it takes over'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and not __fish_seen_subcommand_from up down status fake mirror help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "active" -d 'Answer, and copy every request to the peers'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "standby" -d 'Process the copies, say nothing as the address, and still copy what arrives to the peers'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "off" -d 'Remove the address\'s mirroring (with no --vip: all of it): the tables go when nothing is left in them, and so does the `lo` copy'
complete -c ipfake -n "__fish_ipfake_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "status" -d 'Each mirrored address with its mode; exit 0 if the one asked about is mirrored'
