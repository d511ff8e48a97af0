#!/usr/bin/env bash
# The demo: three nodes, two channels, in network namespaces made here and removed on
# exit. Act one shows the events node n1 sees and its Active Stations Table while a link
# is cut and a node is killed and restarted. Act two runs the active/standby pair with a
# client, pulls the primary's cables and prints how long the client went unanswered.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/deps.sh"
if [ -z "${HAKIT_BIN:-}" ]; then
  (cd "$here/.." && cargo build --release --quiet)
fi
bin=${HAKIT_BIN:-$here/../target/release}
. "$here/netns-lib.sh"
work=$(mktemp -d /tmp/hakit-demo.XXXXXX)
stop_all() {
  # Stop the tools (all of them run inside our namespaces), then remove the namespaces.
  local ns
  for ns in "${NODES[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null; done
  sleep 0.3
  net_down
  wait 2>/dev/null || true
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

printf 'auth 1\n1 sha256 demo-secret-%s\n' "$RANDOM$RANDOM" > "$work/authkeys"
chmod 600 "$work/authkeys"
net_up 3 2
common=(--keys "$work/authkeys" --nodes n1,n2,n3 --channel a=bcast:eth0 --channel b=bcast:eth1)

start_send() { # start_send I
  ip netns exec "${PFX}n$1" "$bin/hb-send" --node "n$1" "${common[@]}" --keepalive 100ms --deadtime 500ms \
    --table "$work/n$1.ast" --fifo "$work/n$1.fifo" --generation-file "$work/n$1.gen" -q &
  eval "send$1=$!"
}
for i in 1 2 3; do
  if [ "$i" = 1 ]; then
    ip netns exec "${PFX}n1" "$bin/hb-watch" --node n1 "${common[@]}" --deadtime 500ms \
      --table "$work/n1.ast" -q | sed -u 's/^/  n1 sees: /' &
  else
    ip netns exec "${PFX}n$i" "$bin/hb-watch" --node "n$i" "${common[@]}" --deadtime 500ms --table "$work/n$i.ast" -q >/dev/null &
  fi
  start_send "$i"
done

step() { sleep "${2:-1.5}"; echo; echo "== $1"; }
step "three nodes up, two channels each (keepalive 100ms, deadtime 500ms)" 1.5
ip netns exec "${PFX}n1" "$bin/hb-watch" status --table "$work/n1.ast"
step "cut n3's cable on channel b: link-dead on b only, n3 stays up" 0.2
cut 3 1
step "n1's table" 1.5
ip netns exec "${PFX}n1" "$bin/hb-watch" status --table "$work/n1.ast"
step "kill -9 n2's hb-send: both links die, then node-dead" 0.2
kill -9 "$send2"; wait "$send2" 2>/dev/null || true
step "n2 restarts: node-restart, link-up, node-up" 1.5
start_send 2
step "mend n3's cable: link-up on b" 1.5
mend 3 1
step "the table at the end" 1.5
ip netns exec "${PFX}n1" "$bin/hb-watch" status --table "$work/n1.ast"
echo
echo "== is n2 up? (hb-watch status n2; exit 0 = up)"
ip netns exec "${PFX}n1" "$bin/hb-watch" status n2 --table "$work/n1.ast" && echo "yes, exit status $?"

echo
echo "== act two: an address that moves (contrib/pair.sh with ipfake), a client following"
stop_all
python3 -u "$here/bench-takeover.py" demo
