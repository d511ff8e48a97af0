#!/usr/bin/env bash
# Install what hakit's demo and tests need from Debian's packages (as root): iproute2
# for namespaces, nftables for loss injection, Heartbeat 3.0.6 as a real peer, tcpdump
# and iputils' arping to compare ARP frames with; for mon-check, mon and the
# monitoring plugins as real peers, dnsmasq, Python's HTTP and SMTP servers and
# openssl for the servers the checks run against, util-linux's setpriv to act as an
# unprivileged user; Pacemaker, Corosync, resource-agents, promtool, lintian, debootstrap
# and debhelper (issue 13); for the IPVS tests, qemu, static busybox, kmod and cpio to boot
# Debian's own kernel (contrib/ipvs-vm.sh), xz to unpack it, ipvsadm and ldirectord.
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
command -v curl >/dev/null || need+=(curl)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
  need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
command -v ipvsadm >/dev/null || need+=(ipvsadm)
[ -x /usr/sbin/ldirectord ] || need+=(ldirectord)
[ -x /usr/sbin/conntrackd ] || need+=(conntrackd)
[ -x /usr/sbin/conntrack ] || need+=(conntrack)
[ -x /usr/sbin/keepalived ] || need+=(keepalived)
[ -x /usr/sbin/snmpd ] || need+=(snmpd)
command -v snmpwalk >/dev/null || need+=(snmp)
command -v smilint >/dev/null || need+=(smitools)
[ -x /usr/sbin/lighttpd ] || need+=(lighttpd)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
python3 -c 'import selenium' 2>/dev/null || need+=(python3-selenium)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-eng)
# Issue 13: a real Pacemaker + Corosync cluster and ocf-tester for the OCF agents,
# promtool for the metrics, and what builds and checks the Debian package.
command -v pacemakerd >/dev/null || need+=(pacemaker pacemaker-cli-utils)
command -v corosync >/dev/null || need+=(corosync)
command -v crm >/dev/null || need+=(crmsh)
command -v ocf-tester >/dev/null || need+=(resource-agents)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v promtool >/dev/null || need+=(prometheus)
command -v lintian >/dev/null || need+=(lintian)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
command -v dh >/dev/null || need+=(debhelper)
command -v fakeroot >/dev/null || need+=(fakeroot)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts nothing we want running: Heartbeat is started by the tests only.
  systemctl disable --now heartbeat >/dev/null 2>&1 || true
  # Nor mon: the tests start their own, each in a namespace of its own.
  systemctl disable --now mon >/dev/null 2>&1 || true
  # Nor ldirectord: the IPVS tests run their own, inside the VM.
  systemctl disable --now ldirectord >/dev/null 2>&1 || true
  # Nor the director's daemons: the tests start their own, in namespaces.
  for s in conntrackd keepalived snmpd lighttpd corosync pacemaker prometheus; do
    systemctl disable --now "$s" >/dev/null 2>&1 || true
  done
fi
# Debian's kernel, unpacked once into the cache, so the IPVS tests boot without a download.
bash "$(dirname "$0")/ipvs-vm.sh" prepare
