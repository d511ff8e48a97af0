#!/usr/bin/env bash
# Install what hakit's demo and tests need from Debian's packages (as root): iproute2
# for namespaces, nftables for loss injection, Heartbeat 3.0.6 as a real peer, tcpdump
# and iputils' arping to compare ARP frames with.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v cl_status >/dev/null || need+=(heartbeat)
command -v tcpdump >/dev/null || need+=(tcpdump)
[ -x /usr/bin/arping ] || need+=(iputils-arping)
command -v pgrep >/dev/null || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts nothing we want running: Heartbeat is started by the tests only.
  systemctl disable --now heartbeat >/dev/null 2>&1 || true
fi
