#!/bin/bash
# Start a real Corosync 3 and Pacemaker 2 (Debian's packages) as cluster node NAME with
# the files in DIR (corosync.conf; hosts, lines added to /etc/hosts; cib.xml if there is
# one), in private mount and UTS namespaces: each node keeps its own /etc/corosync,
# /etc/hosts, /var/lib/{corosync,pacemaker}, logs, /run and /dev/shm (libqb's ring
# buffers live there; its sockets are abstract, so the network namespace already keeps
# them apart), and its own copy of /usr/lib/ocf/resource.d with the agents in AGENTS
# (e.g. contrib/ocf) added as provider `hakit` — nothing is installed on the host.
# Run it inside `ip netns exec NS unshare --mount --uts --propagation private`; it
# writes the pids of corosync and pacemakerd to DIR/corosync.pid and DIR/pacemakerd.pid
# and waits for both.
set -euo pipefail
dir=$1 name=$2 agents=${3:-}
hostname "$name"
cd "$dir"
mkdir -p etc-corosync lib-corosync log-corosync log-crmsh run ocf \
    lib-pacemaker/{cib,pengine,blackbox,cores} log-pacemaker/bundles
cp -a /etc/corosync/. etc-corosync/
cp corosync.conf etc-corosync/
if [ -f cib.xml ]; then cp cib.xml lib-pacemaker/cib/; fi
# The nodes know each other by name (crmsh refuses to act on a node it cannot resolve).
cat /etc/hosts hosts >etc-hosts
cp -a /usr/lib/ocf/resource.d/. ocf/
if [ -n "$agents" ]; then
    mkdir -p ocf/hakit
    find "$agents" -maxdepth 1 -type f -perm -u+x -exec cp {} ocf/hakit/ \;
fi
chown -R hacluster:haclient lib-pacemaker log-pacemaker
chmod 750 lib-pacemaker/cib
mount --bind etc-corosync /etc/corosync
mount --bind etc-hosts /etc/hosts
mount --bind lib-corosync /var/lib/corosync
mount --bind log-corosync /var/log/corosync
mount --bind log-crmsh /var/log/crmsh
mount --bind lib-pacemaker /var/lib/pacemaker
mount --bind log-pacemaker /var/log/pacemaker
mount --bind ocf /usr/lib/ocf/resource.d
mount --bind run /run
mount -t tmpfs -o mode=1777,size=64m shm /dev/shm
# What Debian's tmpfiles.d and the packages' units would have made in /run.
install -d -o hacluster -g haclient -m 750 /run/crm
install -d -m 1755 /run/resource-agents
install -d -m 1777 /run/lock
ln -sfn /dev/shm /run/shm

corosync -f >corosync.out 2>&1 &
echo $! >corosync.pid
# pacemakerd started before Corosync's API answers retries only after whole seconds
# (CMAP) or fails (CFG): start it once corosync answers, within a second.
for _ in $(seq 100); do
    corosync-cmapctl -g totem.cluster_name >/dev/null 2>&1 && break
    sleep 0.05
done
PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
    pacemakerd >pacemakerd.out 2>&1 &
echo $! >pacemakerd.pid
wait
