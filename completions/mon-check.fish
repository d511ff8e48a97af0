# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mon_check_global_optspecs
    string join \n mon json v/verbose h/help V/version
end

function __fish_mon_check_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mon_check_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mon_check_using_subcommand
    set -l cmd (__fish_mon_check_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mon-check -n "__fish_mon_check_needs_command" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_needs_command" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_needs_command" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mon-check -n "__fish_mon_check_needs_command" -s V -l version -d 'Print version'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "tcp" -d 'Connect to a TCP port; optionally send a string and expect a reply (check_tcp)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "udp" -d 'Send a datagram and expect a reply (check_udp)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "http" -d 'Fetch a page over HTTP (check_http)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "https" -d 'Fetch a page over HTTPS; `-C` checks the certificate\'s days to expiry'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "tls" -d 'A TLS handshake on any port (IMAPS, LDAPS, ...): time, certificate expiry, optionally the chain'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "icmp" -d 'Ping: round-trip time and loss (check_icmp)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "dns" -d 'Ask a DNS server for a name (check_dns)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "smtp" -d 'The SMTP banner and EHLO (check_smtp)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "exec" -d 'Run a monitoring plugin or a mon monitor, bounded by the timeout, and take its result. With --mon, once per host: `{host}` in the arguments is replaced by the host, else the host is appended; hosts come from -H, or after a `--hosts` word (where mon appends them: `exec -- check_ssh -H {host} --hosts`)'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "run" -d 'Run the services of the configuration on their schedule, with alerts; one event per line on stdout when a host goes down or comes up (`host-down HOST ... service=GROUP/SERVICE status=...`) and when a service starts or stops failing (`service-failing`, `service-up`), JSON lines with --json'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "ctl" -d 'Ask the running scheduler: status, disable, enable, acknowledge, test, reload'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "import" -d 'Read a mon.cf and write the equivalent `mon-check` configuration section'
complete -c mon-check -n "__fish_mon_check_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s p -l port -d 'The port' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s s -l send -d 'A string to send once connected' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s e -l expect -d 'A string the reply must contain (repeat: any of them)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s r -l refuse -d 'The state when the connection is refused' -r -f -a "ok\t''
warn\t''
crit\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s M -l mismatch -d 'The state when the reply matches no expected string' -r -f -a "ok\t''
warn\t''
crit\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s m -l maxbytes -d 'Read at most this many bytes of the reply' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s E -l escape -d 'Read `\\n`, `\\r`, `\\t` in the send and expect strings as escapes'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand tcp" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s p -l port -d 'The port' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s s -l send -d 'A string to send once connected' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s e -l expect -d 'A string the reply must contain (repeat: any of them)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s r -l refuse -d 'The state when the connection is refused' -r -f -a "ok\t''
warn\t''
crit\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s M -l mismatch -d 'The state when the reply matches no expected string' -r -f -a "ok\t''
warn\t''
crit\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s m -l maxbytes -d 'Read at most this many bytes of the reply' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s E -l escape -d 'Read `\\n`, `\\r`, `\\t` in the send and expect strings as escapes'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand udp" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s p -l port -d 'The port. [default: 80, or 443 with TLS]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s I -l IP-address -d 'Connect to this address instead of the host (the host still names the site)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l vhost -d 'The site\'s name for the Host header and TLS SNI. [default: the host]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s u -l url -d 'The path to fetch' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s j -l method -d 'The method' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s e -l expect -d 'Status codes that are OK, comma separated (a prefix like `20` allowed). [default: 2xx and 3xx OK, 4xx WARNING, 5xx CRITICAL]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s s -l string -d 'A string the body must contain' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s r -l regex -d 'A regular expression the body must match' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s C -l certificate -d 'Certificate days to expiry: WARNING below the first, CRITICAL below the second (`30,14`; one number is both). Checks only the certificate unless --continue-after-certificate' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l ca-file -d 'The roots to verify against, PEM (implies --verify). [default: /etc/ssl/certs/ca-certificates.crt]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s f -l onredirect -d 'What a redirect (3xx) is' -r -f -a "ok\t''
warning\t''
critical\t''
follow\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s k -l header -d 'An extra request header, `Name: value` (repeat)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s a -l authorization -d 'Basic authentication, `user:password`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l max-body -d 'Read at most this many bytes of the answer' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s S -l ssl -d 'Use TLS (`mon-check https` always does)'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l invert-regex -d 'CRITICAL if the regex matches, instead of if it does not'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l continue-after-certificate -d 'With -C, check the page too'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l verify -d 'Verify the certificate chain and name (CRITICAL if they do not verify); by default the certificate is only read, as check_http does'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand http" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s p -l port -d 'The port. [default: 80, or 443 with TLS]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s I -l IP-address -d 'Connect to this address instead of the host (the host still names the site)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l vhost -d 'The site\'s name for the Host header and TLS SNI. [default: the host]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s u -l url -d 'The path to fetch' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s j -l method -d 'The method' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s e -l expect -d 'Status codes that are OK, comma separated (a prefix like `20` allowed). [default: 2xx and 3xx OK, 4xx WARNING, 5xx CRITICAL]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s s -l string -d 'A string the body must contain' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s r -l regex -d 'A regular expression the body must match' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s C -l certificate -d 'Certificate days to expiry: WARNING below the first, CRITICAL below the second (`30,14`; one number is both). Checks only the certificate unless --continue-after-certificate' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l ca-file -d 'The roots to verify against, PEM (implies --verify). [default: /etc/ssl/certs/ca-certificates.crt]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s f -l onredirect -d 'What a redirect (3xx) is' -r -f -a "ok\t''
warning\t''
critical\t''
follow\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s k -l header -d 'An extra request header, `Name: value` (repeat)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s a -l authorization -d 'Basic authentication, `user:password`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l max-body -d 'Read at most this many bytes of the answer' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s S -l ssl -d 'Use TLS (`mon-check https` always does)'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l invert-regex -d 'CRITICAL if the regex matches, instead of if it does not'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l continue-after-certificate -d 'With -C, check the page too'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l verify -d 'Verify the certificate chain and name (CRITICAL if they do not verify); by default the certificate is only read, as check_http does'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand https" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s p -l port -d 'The port' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -l sni -d 'The TLS server name to ask for. [default: the host]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s C -l certificate -d 'Certificate days to expiry: WARNING below the first, CRITICAL below the second' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -l ca-file -d 'The roots to verify against, PEM (implies --verify). [default: /etc/ssl/certs/ca-certificates.crt]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -l verify -d 'Verify the certificate chain and name (CRITICAL if they do not verify); by default the certificate is only read, as check_http does'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand tls" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s w -l warning -d 'WARNING at this round-trip average (ms) or loss (%)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s c -l critical -d 'CRITICAL at this round-trip average (ms) or loss (%); a reply later than the RTA counts as lost' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s n -l packets -d 'How many echo requests' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s i -l interval -d 'Time between echo requests' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand icmp" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s H -l hostname -d 'The name to look up (check_dns\'s -H)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s s -l server -d 'The server to ask. [default: the first nameserver of /etc/resolv.conf]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s a -l expect -d 'The answer expected (addresses or names, comma separated; all of them, no other)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s q -l querytype -d 'The record type: A, AAAA, NS, CNAME, MX' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s p -l port -d 'The server\'s port' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand dns" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s H -l hostname -d 'The host to check (a name or an address)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s t -l timeout -d 'Give up after this long; a timeout is CRITICAL. Written `5` (seconds), `500ms`' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s w -l warning -d 'Response time (seconds) that is a WARNING, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s c -l critical -d 'Response time (seconds) that is CRITICAL, as a plugin range' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s p -l port -d 'The port' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s e -l expect -d 'What the banner must start with' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l helo -d 'The name to give in EHLO. [default: this host\'s name]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s C -l certificate -d 'The certificate\'s days to expiry after STARTTLS (implies --starttls): WARNING below the first, CRITICAL below the second' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l sni -d 'The TLS server name. [default: the host]' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l ca-file -d 'The roots to verify against, PEM (implies --verify). [default: /etc/ssl/certs/ca-certificates.crt]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s 4 -d 'Use IPv4 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s 6 -d 'Use IPv6 only'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l starttls -d 'Upgrade with STARTTLS; CRITICAL if the server does not offer it'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l verify -d 'Verify the certificate chain and name (CRITICAL if they do not verify); by default the certificate is only read, as check_http does'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand smtp" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -l style -d 'How to read the program\'s exit code' -r -f -a "plugin\t'0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'
mon\t'mon\'s monitors: 0 fine, anything else CRITICAL'"
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -s t -l timeout -d 'Kill the program (and its process group) after this long; that is CRITICAL' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -l max-output -d 'Keep at most this many bytes of its output' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -l timeout-state -d 'The state a timeout is reported as' -r -f -a "ok\t''
warning\t''
critical\t''
unknown\t''"
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -s H -l hostname -d 'Hosts, with --mon' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -s c -l config -d 'The configuration file (YAML), with its `mon-check` section' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l state-dir -d 'Where the state is saved. [default: mon-check.state-dir, else /var/lib/hakit/mon]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l socket -d 'The control socket. [default: mon-check.socket, else /run/hakit/mon.sock]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l once -d 'Run every service once, wait for the results and their alerts, and exit with the worst status'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l check -d 'Only check the configuration: print what it describes and exit 0, or the error and exit 3'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l syslog -d 'Log to syslog instead of stderr'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -s q -l quiet -d 'Log only warnings and errors'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -l socket -d 'The scheduler\'s control socket. [default: mon-check.socket of the configuration, else /run/hakit/mon.sock]' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -s c -l config -d 'The configuration file, to find the socket in' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "list" -d 'Everything in one answer: every service with its hosts, what is disabled and acknowledged'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "disable" -d 'Disable a host (everywhere), a service (`GROUP SERVICE`) or a watch (`GROUP`)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "enable" -d 'Enable what was disabled'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "ack" -d 'Acknowledge a failing service: no more failure alerts until it recovers'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "test" -d 'Run a service\'s alerts (`alert`, the default, or `upalert`) now, as a test'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "check" -d 'Run a service\'s monitor now'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "reload" -d 'Re-read the configuration (a broken one keeps the running one)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and not __fish_seen_subcommand_from list disable enable ack test check reload help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from list" -l prometheus-out -d 'As --prometheus, written to FILE (named *.prom) by replacing it atomically, for node_exporter\'s textfile collector, which may read it at any moment' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from list" -l prometheus -d 'Print Prometheus\' text format: every service\'s state, when it was last checked and since when it is in its state, its consecutive failures, whether it is acknowledged, and each host\'s last result (ok, warning, critical, unknown)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from list" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from list" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from disable" -l for -d 'Enable it again by itself after this long' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from disable" -l reason -d 'Why (shown by `list`)' -r
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from disable" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from disable" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from disable" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from enable" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from enable" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from enable" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from ack" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from ack" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from ack" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from ack" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from test" -l up
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from test" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from test" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from check" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from check" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from reload" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "list" -d 'Everything in one answer: every service with its hosts, what is disabled and acknowledged'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a host (everywhere), a service (`GROUP SERVICE`) or a watch (`GROUP`)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable what was disabled'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "ack" -d 'Acknowledge a failing service: no more failure alerts until it recovers'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "test" -d 'Run a service\'s alerts (`alert`, the default, or `upalert`) now, as a test'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "check" -d 'Run a service\'s monitor now'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Re-read the configuration (a broken one keeps the running one)'
complete -c mon-check -n "__fish_mon_check_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mon-check -n "__fish_mon_check_using_subcommand import" -s o -l output -d 'Write here instead of stdout' -r -F
complete -c mon-check -n "__fish_mon_check_using_subcommand import" -l mon -d 'Run as a mon monitor: check every HOST given, print the failed ones on the first line and the detail after, exit nonzero on any failure'
complete -c mon-check -n "__fish_mon_check_using_subcommand import" -l json -d 'Print the result as JSON (one object; with --mon, one per host)'
complete -c mon-check -n "__fish_mon_check_using_subcommand import" -s v -l verbose -d 'Print more: the detail lines after the status line'
complete -c mon-check -n "__fish_mon_check_using_subcommand import" -s h -l help -d 'Print help'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "tcp" -d 'Connect to a TCP port; optionally send a string and expect a reply (check_tcp)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "udp" -d 'Send a datagram and expect a reply (check_udp)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "http" -d 'Fetch a page over HTTP (check_http)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "https" -d 'Fetch a page over HTTPS; `-C` checks the certificate\'s days to expiry'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "tls" -d 'A TLS handshake on any port (IMAPS, LDAPS, ...): time, certificate expiry, optionally the chain'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "icmp" -d 'Ping: round-trip time and loss (check_icmp)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "dns" -d 'Ask a DNS server for a name (check_dns)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "smtp" -d 'The SMTP banner and EHLO (check_smtp)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "exec" -d 'Run a monitoring plugin or a mon monitor, bounded by the timeout, and take its result. With --mon, once per host: `{host}` in the arguments is replaced by the host, else the host is appended; hosts come from -H, or after a `--hosts` word (where mon appends them: `exec -- check_ssh -H {host} --hosts`)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "run" -d 'Run the services of the configuration on their schedule, with alerts; one event per line on stdout when a host goes down or comes up (`host-down HOST ... service=GROUP/SERVICE status=...`) and when a service starts or stops failing (`service-failing`, `service-up`), JSON lines with --json'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "ctl" -d 'Ask the running scheduler: status, disable, enable, acknowledge, test, reload'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "import" -d 'Read a mon.cf and write the equivalent `mon-check` configuration section'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and not __fish_seen_subcommand_from tcp udp http https tls icmp dns smtp exec run ctl import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "list" -d 'Everything in one answer: every service with its hosts, what is disabled and acknowledged'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "disable" -d 'Disable a host (everywhere), a service (`GROUP SERVICE`) or a watch (`GROUP`)'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "enable" -d 'Enable what was disabled'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "ack" -d 'Acknowledge a failing service: no more failure alerts until it recovers'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "test" -d 'Run a service\'s alerts (`alert`, the default, or `upalert`) now, as a test'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "check" -d 'Run a service\'s monitor now'
complete -c mon-check -n "__fish_mon_check_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "reload" -d 'Re-read the configuration (a broken one keeps the running one)'
