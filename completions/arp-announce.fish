# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_arp_announce_global_optspecs
    string join \n i/interface= c/count= w/interval= form= to= mac= q/quiet h/help V/version
end

function __fish_arp_announce_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_arp_announce_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_arp_announce_using_subcommand
    set -l cmd (__fish_arp_announce_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c arp-announce -n "__fish_arp_announce_needs_command" -s i -l interface -d 'The interface to announce on' -r
complete -c arp-announce -n "__fish_arp_announce_needs_command" -s c -l count -d 'How many announcements (each a request/reply pair with --form both)' -r
complete -c arp-announce -n "__fish_arp_announce_needs_command" -s w -l interval -d 'Time between announcements' -r
complete -c arp-announce -n "__fish_arp_announce_needs_command" -l form -d 'Which ARP operation to send' -r -f -a "request\t''
reply\t''
both\t''"
complete -c arp-announce -n "__fish_arp_announce_needs_command" -l to -d 'Send to this host\'s MAC instead of the Ethernet broadcast (one host\'s: not a broadcast, multicast or all-zero MAC)' -r
complete -c arp-announce -n "__fish_arp_announce_needs_command" -l mac -d 'Announce this MAC instead of the interface\'s (one host\'s: not a broadcast, multicast or all-zero MAC)' -r
complete -c arp-announce -n "__fish_arp_announce_needs_command" -s q -l quiet -d 'Log only errors'
complete -c arp-announce -n "__fish_arp_announce_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c arp-announce -n "__fish_arp_announce_needs_command" -s V -l version -d 'Print version'
complete -c arp-announce -n "__fish_arp_announce_needs_command" -a "probe" -d 'Is the address in use on the link? Exit 0 if free, 1 if taken (the MAC that answered is printed)'
complete -c arp-announce -n "__fish_arp_announce_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c arp-announce -n "__fish_arp_announce_using_subcommand probe" -s i -l interface -d 'The interface to probe on' -r
complete -c arp-announce -n "__fish_arp_announce_using_subcommand probe" -s c -l count -d 'How many probes. (RFC 5227 sends 3, 1 to 2 s apart; a takeover cannot wait that long.)' -r
complete -c arp-announce -n "__fish_arp_announce_using_subcommand probe" -s w -l interval -d 'Time between probes' -r
complete -c arp-announce -n "__fish_arp_announce_using_subcommand probe" -l wait -d 'How long to wait for an answer after the last probe' -r
complete -c arp-announce -n "__fish_arp_announce_using_subcommand probe" -s h -l help -d 'Print help'
complete -c arp-announce -n "__fish_arp_announce_using_subcommand help; and not __fish_seen_subcommand_from probe help" -f -a "probe" -d 'Is the address in use on the link? Exit 0 if free, 1 if taken (the MAC that answered is printed)'
complete -c arp-announce -n "__fish_arp_announce_using_subcommand help; and not __fish_seen_subcommand_from probe help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
