#!/usr/bin/env bash
# Install what hakit's demo and tests need from Debian's packages (as root): iproute2
# for namespaces, nftables for loss injection, Heartbeat 3.0.6 as a real peer, tcpdump
# and iputils' arping to compare ARP frames with; for mon-check, mon and the
# monitoring plugins as real peers, dnsmasq, Python's HTTP and SMTP servers and
# openssl for the servers the checks run against, util-linux's setpriv to act as an
# unprivileged user.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v cl_status >/dev/null || need+=(heartbeat)
command -v tcpdump >/dev/null || need+=(tcpdump)
[ -x /usr/bin/arping ] || need+=(iputils-arping)
command -v pgrep >/dev/null || need+=(procps)
[ -x /usr/sbin/mon ] || need+=(mon)
[ -x /usr/lib/nagios/plugins/check_tcp ] || need+=(monitoring-plugins-basic)
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v python3 >/dev/null || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
command -v setpriv >/dev/null || need+=(util-linux)
command -v zcat >/dev/null || need+=(gzip)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts nothing we want running: Heartbeat is started by the tests only.
  systemctl disable --now heartbeat >/dev/null 2>&1 || true
  # Nor mon: the tests start their own, each in a namespace of its own.
  systemctl disable --now mon >/dev/null 2>&1 || true
fi
