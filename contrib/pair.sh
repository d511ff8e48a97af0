#!/bin/bash
# pair.sh — a two-node active/standby pair for one service address, composed from
# hb-send, hb-watch and ipfake. Run it on both nodes, the same way.
#
#   pair.sh run --node n1 --peer n2 --vip 192.0.2.10/24 --dev eth0 [--preferred]
#               [--failback] [--keepalive 200ms] [--deadtime 1s] [--redundancy N] [--state-dir DIR]
#               [--lib-dir DIR] [--ping ADDR]... [--ping-interval 1s] [--ping-deadtime 3s]
#               [--fence PROGRAM [--fence-timeout 10s]
#               [--fence-optional]] [--mirror udp/PORT[,udp/PORT...] --mirror-peer ADDR]
#               -- [more options for hb-send and hb-watch]
#   pair.sh standby [--state-dir DIR]   # give the address up by hand; the peer takes it
#   pair.sh active  [--state-dir DIR]   # back in the game
#
# Rules, in the order they are checked:
# - A node takes the address when it is not standby and the peer is dead, has gone
#   standby, or has released it to us; the preferred node also takes it at start, and
#   whenever both are up and neither holds it, if no other host answers for it (probe).
# - Ping nodes (--ping, Heartbeat's ipfail): a node that reaches none of them while
#   its peer reaches some does not take the address, and gives it up to the peer.
# - Fencing (--fence): before taking over from a dead peer that was last seen holding
#   the address, run `PROGRAM PEER VIP` and wait for it (--fence-timeout); take over
#   only if it succeeds — or anyway, with --fence-optional.
# - Two holders (a healed partition): every heartbeat says what its node holds
#   (held=VIP@EPOCH.RANK). When both hold it, both sides compare the same two ranks
#   and agree without a word: with --failback the preferred node keeps it, without it
#   the one that took it most recently (the higher takeover epoch) keeps it, so that a
#   healed partition moves nothing; a tie goes to the smaller node name. The other
#   releases at once; the keeper announces again so that every ARP cache ends on it.
# - A node releases the address before saying standby, and — with --failback, on the
#   node that is not preferred — when the preferred node comes back; it then tells the
#   peer (a `t=pair-release` cluster message), which takes it.
# - Roll-forward (--mirror): each node copies every request to those UDP ports to the
#   peer (--mirror-peer, its address on --dev); the standby processes the copies and
#   its answers are dropped (ipfake mirror). Taking over: `ipfake up --mirror` makes
#   the node active before it adds the address, so that no answer is dropped once the
#   clients come (the armed ipfake does it: one netlink transaction); releasing:
#   `ipfake mirror standby` first (silent from then on, and still copying what stale
#   ARP caches send here), then the address: both nodes process every request.
# - If hb-send or hb-watch exits, the pair releases what it holds and exits 1: a node
#   that is silent, or deaf, must not hold the address (its peer takes it). systemd
#   (contrib/systemd/hakit-pair@.service) restarts it, with a limit.
set -euo pipefail

cmd=${1:-}; shift || true
state=/run/hakit/pair lib=/var/lib/hakit/pair
me= peer= vip= dev= preferred=0 failback=0 keepalive=200ms deadtime=1s redundancy=0
fence= fence_timeout=10s fence_optional=0 pings=() pingopts=() mirror= mirror_peer=
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
    --redundancy) redundancy=$2; shift 2 ;;
    --state-dir) state=$2; shift 2 ;;
    --lib-dir) lib=$2; shift 2 ;;
    --ping) pings+=(--ping "$2"); shift 2 ;;
    --ping-interval|--ping-deadtime) pingopts+=("$1" "$2"); shift 2 ;;
    --fence) fence=$2; shift 2 ;;
    --fence-timeout) fence_timeout=$2; shift 2 ;;
    --fence-optional) fence_optional=1; shift ;;
    --mirror) mirror=$2; shift 2 ;;
    --mirror-peer) mirror_peer=$2; shift 2 ;;
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
[ ${#pings[@]} -gt 0 ] || [ ${#pingopts[@]} = 0 ] || { echo "pair.sh: --ping-interval and --ping-deadtime need --ping" >&2; exit 2; }
[ -z "$fence" ] || [ -x "$fence" ] || { echo "pair.sh: --fence $fence is not an executable file" >&2; exit 2; }
{ [ -n "$mirror" ] && [ -n "$mirror_peer" ]; } || [ -z "$mirror$mirror_peer" ] ||
  { echo "pair.sh: --mirror and --mirror-peer go together" >&2; exit 2; }
mirror_to=(--vip "${vip%/*}" --peer "$mirror_peer" --dev "$dev" --service "$mirror") mirror_up=()
if [ -n "$mirror" ]; then
  ipfake mirror active --check "${mirror_to[@]}" || exit 2
  mirror_up=(--mirror "$mirror" --mirror-peer "$mirror_peer")
fi
mkdir -p "$state" "$lib"
echo $$ > "$state/pair.pid"
tools=(--node "$me" --nodes "$me,$peer" --table "$state/ast" "${extra[@]}")

log() { echo "pair[$me]: $*" >&2; }
# Messages to hb-send go through a FIFO held open read-write, so that a write never
# blocks on a dead hb-send (and a printf this small is one atomic write).
fifo=$state/fifo
rm -f "$fifo"; mkfifo -m 0600 "$fifo"; exec 3<>"$fifo"
tell() { printf '>>>\n%s\n<<<\n' "$1" >&3; }

# An armed ipfake waits, link open, for SIGUSR1: taking over starts no process.
holder= armed= epoch=0 standby=0
peer_state=unknown peer_held= peer_epoch=0 peer_rank=0 my_pings=unknown peer_pings=0
arm() {
  ipfake --pid-dir "$state/armed" -q up "$vip" dev "$dev" --armed --count 3 --interval 20ms --refresh 2s "${mirror_up[@]}" &
  armed=$!
}
# Our rank, in $rank (no $(...): a fork costs a millisecond on the paths that use it).
set_rank() { if [ "$failback" = 1 ]; then rank=$((preferred * 1000000000 + epoch)); else rank=$((epoch * 2 + preferred)); fi; }
# Whether the ping nodes let us serve: not when we reach none and the peer reaches some.
# Until our first ping result comes (ping-up or ping-dead), ours are not known to be down.
pings_ok() { [ ${#pings[@]} = 0 ] || [ "$my_pings" = unknown ] || [ "$my_pings" -gt 0 ] || [ "$peer_state" != up ] || [ "$peer_pings" = 0 ]; }
# Holding it while the peer reaches the ping nodes and we do not: hand it over.
ipfail() {
  if ! pings_ok && [ -n "$holder" ]; then
    release "no ping node answers here; $peer reaches $peer_pings"
    tell "t=pair-release"$'\n'"to=$peer"
  fi
}
take() {
  [ "$standby" = 0 ] || return 0
  if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then return 0; fi
  pings_ok || { log "not taking $vip ($1): no ping node answers here, $peer reaches $peer_pings"; return 0; }
  log "taking $vip: $1"
  if [ -n "$armed" ] && kill -USR1 "$armed" 2>/dev/null; then
    holder=$armed
  else
    ipfake --pid-dir "$state/armed" -q up "$vip" dev "$dev" --count 3 --interval 20ms --refresh 2s "${mirror_up[@]}" &
    holder=$!
  fi
  armed=
  epoch=$(( (epoch > peer_epoch ? epoch : peer_epoch) + 1 ))
  set_rank; tell "t=status"$'\n'"held=$vip@$epoch.$rank"
  # Standby by hand may have come (USR1) while we were taking it.
  [ "$standby" = 0 ] || release "standby by hand"
}
release() {
  [ -n "$holder" ] || return 0
  log "releasing $vip: $1"
  [ -z "$mirror" ] || ipfake -q mirror standby "${mirror_to[@]}" || log "ipfake mirror standby failed"
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  holder=
  tell "t=status"$'\n'"held="
  arm
}
announce() { arp-announce -q -i "$dev" --count 3 --interval 20ms "${vip%/*}" || true; }
# A dead peer that was last seen holding the address is fenced before we take it.
fence_then_take() {
  if [ -n "$fence" ] && [ -n "$peer_held" ]; then
    log "fencing $peer, which held $vip: $fence $peer $vip"
    local rc=0; timeout -k 1 "$fence_timeout" "$fence" "$peer" "$vip" || rc=$?
    if [ "$rc" = 0 ]; then
      log "fenced $peer"
    elif [ "$fence_optional" = 1 ]; then
      log "fencing $peer failed (status $rc); taking over anyway (--fence-optional)"
    else
      log "fencing $peer failed or timed out (status $rc, 124 = timeout); NOT taking $vip"
      return 0
    fi
  fi
  take "$1"
}
# What the peer says it holds: held=VIP@EPOCH.RANK (or nothing).
peer_says() {
  local h=" ${1//,/ } " tok
  peer_held=   # the last epoch it announced stays known
  case $h in *" $vip@"*) tok=${h#* "$vip"@}; tok=${tok%% *}; peer_held=1; peer_epoch=${tok%.*}; peer_rank=${tok#*.} ;; esac
}
# Both hold it: the higher rank keeps it, a tie goes to the smaller name.
resolve_two_holders() {
  [ -n "$holder" ] && [ -n "$peer_held" ] || return 0
  set_rank; local mine=$rank
  if [ "$mine" -gt "$peer_rank" ] || { [ "$mine" = "$peer_rank" ] && [[ "$me" < "$peer" ]]; }; then
    log "both hold $vip: keeping it (rank $mine over $peer's $peer_rank)"
    announce
  else
    release "both hold $vip: $peer keeps it (rank $peer_rank over our $mine)"
  fi
}

on_standby() { standby=1; release "standby by hand"; tell "t=status"$'\n'"st=standby"; }
on_active() {
  standby=0; tell "t=status"$'\n'"st=active"
  case $peer_state in dead|standby) take "active again, $peer is $peer_state" ;; esac
}
stop() {
  release "$1"
  [ -z "$mirror" ] || ipfake -q mirror off --vip "${vip%/*}" || true
  kill "$tools_pid" ${armed:+"$armed"} 2>/dev/null || true
  wait 2>/dev/null || true
  exit "$2"
}
trap on_standby USR1
trap on_active USR2
trap 'stop stopping 0' TERM INT

# hb-send and hb-watch together: when either exits, the other is stopped and one line
# says which, so that the loop below never goes on with half a node.
coproc TOOLS {
  trap 'kill $s $w 2>/dev/null' TERM
  hb-send --fifo "$fifo" --generation-file "$lib/generation" --keepalive "$keepalive" \
    --deadtime "$deadtime" --redundancy "$redundancy" "${tools[@]}" >&2 & s=$!
  hb-watch --deadtime "$deadtime" --floors "$lib/floors" "${pings[@]}" "${pingopts[@]}" "${tools[@]}" & w=$!
  rc=0; wait -n -p who || rc=$?
  [ "${who:-}" = "$s" ] && who=hb-send || who=hb-watch
  echo "tool-exit $who status=$rc"
  kill $s $w 2>/dev/null; wait
}
exec 4<&"${TOOLS[0]}"
tools_pid=$TOOLS_PID   # bash unsets TOOLS_PID once the coproc is reaped

arm
# Every node starts as the standby; taking the address makes it the active one.
[ -z "$mirror" ] || ipfake -q mirror standby "${mirror_to[@]}" || { log "ipfake mirror standby failed"; stop "mirror" 1; }
if [ "$preferred" = 1 ]; then
  if arp-announce probe -i "$dev" "${vip%/*}" >/dev/null; then
    take "preferred node, the address is free"
  else
    log "$vip is held elsewhere; waiting for it"
  fi
fi

# Events, one per line: EVENT NODE key=value ... (traps run between reads).
while :; do
  rc=0; read -r event node fields <&4 || rc=$?
  if [ "$rc" != 0 ]; then
    [ "$rc" -gt 128 ] && continue   # interrupted (by a trapped signal, in POSIX mode)
    event=tool-exit node=hb-watch fields="status=eof"
  fi
  fields=" $fields "; [ -z "${PAIR_DEBUG:-}" ] || log "event: $event $node$fields"
  case $event in
    tool-exit) log "$node exited ($fields); releasing and stopping"; stop "$node exited" 1 ;;
    ping-up|ping-dead)
      r=${fields#* reachable=}; my_pings=${r%%/*}
      ipfail
      continue ;;
  esac
  [ "$node" = "$peer" ] || continue
  case $event in
    node-dead)
      peer_state=dead
      case $fields in *" held="*) v=${fields#* held=}; peer_says "${v%% *}" ;; *) peer_held= ;; esac
      fence_then_take "$peer is dead" ;;
    node-status)
      was_held=$peer_held
      v=${fields#* held=}; [ "$v" != "$fields" ] && peer_says "${v%% *}"
      case $fields in *" pings="*) v=${fields#* pings=}; peer_pings=${v%%/*} ;; *) peer_pings=0 ;; esac
      case $fields in
        *" status=standby "*) peer_state=standby; take "$peer went standby" ;;
        *" status=active "*) peer_state=up ;;
      esac
      resolve_two_holders
      # The other holder has let go: every cache must now end on us.
      [ -n "$holder" ] && [ -n "$was_held" ] && [ -z "$peer_held" ] && announce
      ipfail   # the peer's ping nodes may have changed
      # Both up and nobody in the pair holds it (a lost pair-release, a peer
      # restarted within deadtime): the preferred node takes it, if no other host
      # answers for it.
      if [ -z "$holder" ] && [ -z "$peer_held" ] && [ "$peer_state" = up ] && [ "$preferred" = 1 ] &&
        [ "$standby" = 0 ] && arp-announce probe -i "$dev" "${vip%/*}" >/dev/null; then
        take "nobody holds $vip"
      fi
      ;;
    node-up|node-restart)
      peer_state=up
      # Back from a partition? Say what we hold now, not a keepalive from now.
      [ -z "$holder" ] || { set_rank; tell "t=status"$'\n'"held=$vip@$epoch.$rank"; }
      if [ "$preferred" = 0 ] && [ "$failback" = 1 ] && [ -n "$holder" ]; then
        release "failback to $peer"
        tell "t=pair-release"$'\n'"to=$peer"
      fi ;;
    message)
      case $fields in *" t=pair-release "*) case $fields in *" to=$me "*)
        take "$peer released it to us" ;; esac ;; esac ;;
  esac
done
