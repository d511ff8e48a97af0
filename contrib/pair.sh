#!/bin/bash
# pair.sh — a two-node active/standby pair for one service address, composed from
# hb-send, hb-watch and ipfake. Run it on both nodes, the same way.
#
#   pair.sh run --node n1 --peer n2 --vip 192.0.2.10/24 --dev eth0 [--preferred]
#               [--failback] [--keepalive 200ms] [--deadtime 1s] [--state-dir DIR]
#               -- [more options for hb-send and hb-watch: --keys, --channel ...]
#   pair.sh standby [--state-dir DIR]   # give the address up by hand; the peer takes it
#   pair.sh active  [--state-dir DIR]   # back in the game
#
# Rules, in the order they are checked:
# - A node takes the address when it is not standby and the peer is dead, has gone
#   standby, or has released it to us; the preferred node also takes it at start if no
#   other host answers for it (ipfake --probe).
# - A node releases the address before saying standby, and — with --failback, on the
#   node that is not preferred — when the preferred node comes back; it then tells the
#   peer (a `t=pair-release` cluster message), which takes it.
# - Without --failback the address stays where it is when the preferred node returns.
set -euo pipefail

cmd=${1:-}; shift || true
state=/run/hakit/pair
me= peer= vip= dev= preferred=0 failback=0 keepalive=200ms deadtime=1s
while [ $# -gt 0 ]; do
  case $1 in
    --node) me=$2; shift 2 ;;
    --peer) peer=$2; shift 2 ;;
    --vip) vip=$2; shift 2 ;;
    --dev) dev=$2; shift 2 ;;
    --preferred) preferred=1; shift ;;
    --failback) failback=1; shift ;;
    --keepalive) keepalive=$2; shift 2 ;;
    --deadtime) deadtime=$2; shift 2 ;;
    --state-dir) state=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "pair.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
extra=("$@")

case $cmd in
  standby) kill -USR1 "$(cat "$state/pair.pid")"; exit ;;
  active) kill -USR2 "$(cat "$state/pair.pid")"; exit ;;
  run) ;;
  *) echo "usage: pair.sh run --node N --peer N --vip ADDR/PREFIX --dev IFACE [...] | standby | active" >&2; exit 2 ;;
esac
[ -n "$me" ] && [ -n "$peer" ] && [ -n "$vip" ] && [ -n "$dev" ] ||
  { echo "pair.sh: --node, --peer, --vip and --dev are required" >&2; exit 2; }
mkdir -p "$state"
echo $$ > "$state/pair.pid"
fifo=$state/fifo
tools=(--node "$me" --nodes "$me,$peer" --table "$state/ast" "${extra[@]}")

log() { echo "pair[$me]: $*" >&2; }
tell() { printf '>>>\n%s\n<<<\n' "$1" > "$fifo"; }   # a message to the cluster

# An armed ipfake waits, link open, for SIGUSR1: taking over starts no process.
holder= armed=
arm() {
  ipfake --pid-dir "$state/armed" -q up "$vip" dev "$dev" --armed --count 3 --interval 20ms --refresh 2s &
  armed=$!
}
take() {
  [ "$standby" = 0 ] || return 0
  if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then return 0; fi
  log "taking $vip: $1"
  if [ -n "$armed" ] && kill -USR1 "$armed" 2>/dev/null; then
    holder=$armed
  else
    ipfake --pid-dir "$state/armed" -q up "$vip" dev "$dev" --count 3 --interval 20ms --refresh 2s &
    holder=$!
  fi
  armed=
}
release() {
  [ -n "$holder" ] || return 0
  log "releasing $vip: $1"
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  holder=
  arm
}

standby=0
on_standby() { standby=1; release "standby by hand"; tell "t=status"$'\n'"st=standby"; }
on_active() {
  standby=0; tell "t=status"$'\n'"st=active"
  case $peer_state in dead|standby) take "active again, $peer is $peer_state" ;; esac
}
trap on_standby USR1
trap on_active USR2
trap 'release "stopping"; kill "$sender" "$watcher" "$armed" 2>/dev/null; exit 0' TERM INT

hb-send --fifo "$fifo" --generation-file "$state/generation" --keepalive "$keepalive" \
  --deadtime "$deadtime" "${tools[@]}" &
sender=$!
coproc WATCH { exec hb-watch --deadtime "$deadtime" "${tools[@]}"; }
watcher=$WATCH_PID

peer_state=unknown
arm
if [ "$preferred" = 1 ]; then
  if arp-announce probe -i "$dev" "${vip%/*}" >/dev/null; then
    take "preferred node, the address is free"
  else
    log "$vip is held elsewhere; waiting for it"
  fi
fi

# Events, one per line: EVENT NODE key=value ... (a trapped signal interrupts read).
while :; do
  if ! read -r event node fields <&"${WATCH[0]}"; then
    [ $? -gt 128 ] && continue
    break
  fi
  [ "$node" = "$peer" ] || continue
  case $event in
    node-dead) peer_state=dead; take "$peer is dead" ;;
    node-status)
      case " $fields " in
        *" status=standby "*) peer_state=standby; take "$peer went standby" ;;
        *" status=active "*) peer_state=up ;;
      esac ;;
    node-up|node-restart)
      peer_state=up
      if [ "$preferred" = 0 ] && [ "$failback" = 1 ] && [ -n "$holder" ]; then
        release "failback to $peer"
        tell "t=pair-release"$'\n'"to=$peer"
      fi ;;
    message)
      case " $fields " in *" t=pair-release "*" to=$me "*|*" to=$me "*" t=pair-release "*)
        take "$peer released it to us" ;; esac ;;
  esac
done
