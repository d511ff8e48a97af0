#!/bin/bash
# Start a real Heartbeat 3.0.6 as node NAME with the configuration files in DIR, in
# private mount and UTS namespaces (Heartbeat names itself by `uname -n` and keeps its
# state under /etc/ha.d, /var/lib/heartbeat and /var/run). Run it inside
# `ip netns exec NS unshare --mount --uts --propagation private`.
set -euo pipefail
dir=$1 name=$2
hostname "$name"
mkdir -p "$dir/ha.d" "$dir/lib" "$dir/run"
cp -a /etc/ha.d/. "$dir/ha.d/"
cp "$dir/ha.cf" "$dir/authkeys" "$dir/haresources" "$dir/ha.d/"
chmod 600 "$dir/ha.d/authkeys"
cp -a /var/lib/heartbeat/. "$dir/lib/"
mount --bind "$dir/ha.d" /etc/ha.d
mount --bind "$dir/lib" /var/lib/heartbeat
mount --bind "$dir/run" /var/run
mkdir -p /var/run/heartbeat/ccm /var/run/heartbeat/dopd
chown -R hacluster:haclient /var/run/heartbeat /var/lib/heartbeat
exec /usr/libexec/heartbeat/heartbeat
