#!/bin/bash
# dual-channel.sh — one node of a dual-channel cluster, composed from hb-send, hb-watch
# and chan-switch: heartbeats on every channel, and the cluster's traffic (between the
# nodes' cluster addresses) moved to the standby channel on every node when one fails.
# Run it on every node; everything else is in hakit.yaml (cluster, hb-send, hb-watch
# and chan-switch sections).
#
#   dual-channel.sh [-c /etc/hakit/hakit.yaml] [-- more options for chan-switch run]
#
# - hb-watch's events go to chan-switch run through a FIFO in a private directory;
#   chan-switch's own events (chan-ordered, chan-applied, chan-complete, ...) are this
#   script's stdout.
# - HUP is passed on to the three (each reads hakit.yaml again).
# - If any of the three exits, the others are stopped and the script exits 1: a node
#   that cannot speak, hear or switch must not go on pretending (systemd's
#   hakit-dual-channel.service restarts it, with a limit). The routes stay as they
#   were, so the cluster keeps talking meanwhile.
set -euo pipefail

config=${HAKIT_CONFIG:-/etc/hakit/hakit.yaml}
while [ $# -gt 0 ]; do
  case $1 in
    -c|--config) config=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "dual-channel.sh: unknown option $1 (give chan-switch's after --)" >&2; exit 2 ;;
  esac
done
[ -r "$config" ] || { echo "dual-channel.sh: $config: cannot read it" >&2; exit 2; }
export HAKIT_CONFIG=$config

dir=$(mktemp -d /run/hakit/dual.XXXXXX 2>/dev/null || mktemp -d)   # 0700, ours
events=$dir/events
mkfifo -m 0600 "$events"
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap 'stop; exit 0' TERM INT
trap 'stop' EXIT

# HUP (systemctl reload) goes to the three tools: each reads the file again.
trap 'kill -HUP "${pids[@]}" 2>/dev/null || true' HUP
chan-switch run --realtime "$@" < "$events" & pids+=($!)
hb-watch --realtime > "$events" & pids+=($!)
hb-send --realtime & pids+=($!)

while :; do
  unset who; rc=0; wait -n -p who "${pids[@]}" || rc=$?
  [ -n "${who:-}" ] && break    # a signal interrupted the wait, no tool exited
done
names=([${pids[0]}]=chan-switch [${pids[1]}]=hb-watch [${pids[2]}]=hb-send)
echo "dual-channel.sh: ${names[$who]:-a tool} exited ($rc); stopping the others" >&2
exit 1
