#!/bin/bash
# director.sh — one node of an LVS director cascade (seed 004): a director, a primary
# backup and secondary backups, composed from hb-send, hb-watch, ipfake, mon-check,
# lvs-ctl and conntrackd. Run it on every director, the same way; everything else is in
# hakit.yaml: the `director` section (nodes and roles, addresses, sync; see `lvs-ctl
# director` and hakit.yaml(5)), `cluster` (channels, keys), `lvs-ctl`, `mon-check`.
#
#   director.sh run --node NAME [-c FILE] [--state-dir DIR] [--lib-dir DIR]
#                   [-- more options for hb-send and hb-watch]
#   director.sh standby|active [--state-dir DIR]   # give the addresses up / back in
#
# What runs on every director, so that a backup is ready before it takes over:
# - `lvs-ctl apply` of the same file: the same virtual services everywhere;
# - `mon-check run | lvs-ctl follow`: the real servers' health, followed everywhere;
# - hb-send and hb-watch over every channel of the `cluster` section;
# - one armed `ipfake` per address (a hot standby: taking over starts no process);
# - with `sync: conntrackd`, conntrackd (its configuration made by `lvs-ctl director
#   conntrackd`), whose external cache is committed to the kernel before the addresses
#   are taken, so established connections go on through the new director; with
#   `sync: ipvs`, the kernel's sync daemon: backup everywhere, master on the active one.
#
# Who holds the addresses, in the order the rules are checked:
# - Nobody alive holds them: the live director of the lowest rank takes them (director
#   0, primary backup 1, secondary backups 2...), so a secondary backup takes over only
#   when every director ranked before it is dead. A node decides only when it knows
#   what every peer holds: each has sent its status (which says it) or is declared
#   dead (hb-watch's deadtime, or initdead for one never heard).
# - With failback, a holder that sees a better-ranked director alive hands over (a
#   `t=dir-release` message to it); without, the holder keeps them while it lives.
# - Two holders (a healed partition): every heartbeat says what its node holds
#   (held=ADDR@EPOCH.RANK,...). With failback the lower rank keeps them; without, the
#   most recent takeover (the higher epoch); a tie goes to the lower rank. The other
#   releases at once.
# - If any tool exits (hb-send, hb-watch, mon-check, lvs-ctl follow, conntrackd, an
#   ipfake that holds), the node releases what it holds and exits 1: a director that
#   cannot hear, check or sync must not hold the addresses. systemd
#   (contrib/systemd/hakit-director.service) restarts it, with a limit.
set -euo pipefail

cmd=${1:-}; shift || true
config=${HAKIT_CONFIG:-/etc/hakit/hakit.yaml} state=/run/hakit/director lib=/var/lib/hakit/director me=
while [ $# -gt 0 ]; do
  case $1 in
    --node) me=$2; shift 2 ;;
    -c|--config) config=$2; shift 2 ;;
    --state-dir) state=$2; shift 2 ;;
    --lib-dir) lib=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "director.sh: unknown option $1 (give hb-send's and hb-watch's after --)" >&2; exit 2 ;;
  esac
done
extra=("$@")
# Signal the running director only if the pid file names a director.sh (a stale file
# could name any process by now).
signal() {
  local pid; pid=$(cat "$state/director.pid" 2>/dev/null) || { echo "director.sh: not running ($state)" >&2; exit 1; }
  grep -qa 'director\.sh' "/proc/$pid/cmdline" 2>/dev/null || { echo "director.sh: not running (pid $pid is not one)" >&2; exit 1; }
  kill "-$1" "$pid"
}
case $cmd in
  standby) signal USR1; exit ;;
  active) signal USR2; exit ;;
  run) ;;
  *) echo "usage: director.sh run --node NAME [-c FILE] [...] | standby | active" >&2; exit 2 ;;
esac
[ -n "$me" ] || me=$(uname -n)
export HAKIT_CONFIG=$config
# The section, checked (an error is one line with file:line:column, exit 2): role,
# rank, nodes, watch_nodes (the directors and the workers), failback, addresses
# (ADDR/PREFIX@DEV ...), sync, sync_dev, sync_port, mon_check.
settings=$(lvs-ctl director show --node "$me" "$config") || exit 2
eval "$settings"
mkdir -p -m 0700 "$state" "$lib"
for d in "$state" "$lib"; do   # FIFOs, pid file and conntrackd's socket live there
  [ -O "$d" ] && [ -z "$(find "$d" -maxdepth 0 -perm /022)" ] ||
    { echo "director.sh: $d is not ours alone (owner, or writable by others)" >&2; exit 2; }
done
echo $$ > "$state/director.pid"
log() { echo "director[$me]: $*" >&2; }
IFS=, read -r -a all <<< "$nodes"
read -r -a addrs <<< "$addresses"
peers=()
declare -A rank_of state_of held_of epoch_of
for i in "${!all[@]}"; do rank_of[${all[$i]}]=$i; [ "${all[$i]}" = "$me" ] || peers+=("${all[$i]}"); done
for p in "${peers[@]}"; do state_of[$p]=unknown held_of[$p]= epoch_of[$p]=0; done
first=${addrs[0]%@*}; first=${first%/*}   # the address that names the holding in held=

# The same table on every director; a follower below keeps it as the checks say.
lvs-ctl apply --state "$state/follow.json" "$config" >/dev/null

# Messages to hb-send go through a FIFO held open read-write (a write never blocks on a
# dead hb-send); follow reads mon-check's events on stdin from a FIFO we also hold
# open, and the join/leave/node-dead lines of hb-watch's that concern real servers from
# a second one (--events), so that the two writers' lines never mix.
fifo=$state/fifo follow_in=$state/follow.in follow_ev=$state/follow.events
rm -f "$fifo" "$follow_in" "$follow_ev"; mkfifo -m 0600 "$fifo" "$follow_in" "$follow_ev"
exec 3<>"$fifo" 5<>"$follow_in" 6<>"$follow_ev"
tell() { printf '>>>\n%s\n<<<\n' "$1" >&3; }

ct() { conntrackd -C "$state/conntrackd.conf" "$@" || log "conntrackd $* failed (status $?)"; }
if [ "$sync" = conntrackd ]; then
  lvs-ctl director conntrackd --node "$me" --state-dir "$state" "$config" > "$state/conntrackd.conf"
  rm -f "$state/conntrackd.lock"
  # Mid-stream packets of a committed connection carry windows this kernel never saw.
  sysctl -qw net.netfilter.nf_conntrack_tcp_be_liberal=1
fi

holding=0 epoch=0 standby=0 armed=()
arm() {
  local a
  armed=()
  for a in "${addrs[@]}"; do
    # Four announcements 350 ms apart: a neighbour entry confirmed less than its locktime
    # (1 s) ago ignores a new MAC, so one of them must come after it.
    ipfake --pid-dir "$state/armed" -q up "${a%@*}" dev "${a#*@}" --armed --count 4 --interval 350ms --refresh 2s &
    armed+=($!)
  done
}
# Precedence of our holding, compared between two holders: higher wins.
prec() { if [ "$failback" = 1 ]; then echo $((1000 - $1)); else echo $(($2 * 1000 + 1000 - $1)); fi; }
say_held() {
  local p h= a; p=$(prec "$rank" "$epoch")
  for a in "${addrs[@]}"; do h+=${h:+,}${a%%/*}@$epoch.$p; done
  tell "t=status"$'\n'"held=$h"
}
take() {
  [ "$standby" = 0 ] && [ "$holding" = 0 ] || return 0
  log "taking ${addrs[*]}: $1"
  # The connections first: packets that reach us must find their state. What makes
  # this node the sender of state (conntrackd's resync and bulk send, IPVS's master
  # daemon) can wait until the addresses are ours.
  [ "$sync" = conntrackd ] && ct -c
  kill -USR1 "${armed[@]}"
  holding=1
  local e=$epoch p; for p in "${peers[@]}"; do [ "${epoch_of[$p]}" -gt "$e" ] && e=${epoch_of[$p]}; done
  epoch=$((e + 1))
  say_held
  if [ "$sync" = conntrackd ]; then ct -f internal; ct -R; ct -B; fi
  if [ "$sync" = ipvs ]; then
    lvs-ctl --start-daemon master --mcast-interface "$sync_dev" --syncid "$sync_port" ||
      log "the IPVS master sync daemon did not start"
  fi
}
release() {
  [ "$holding" = 1 ] || return 0
  log "releasing ${addrs[*]}: $1"
  kill "${armed[@]}" 2>/dev/null || true
  wait "${armed[@]}" 2>/dev/null || true
  holding=0
  tell "t=status"$'\n'"held="
  [ "$sync" = ipvs ] && { lvs-ctl --stop-daemon master || true; }
  if [ "$sync" = conntrackd ]; then ct -t; ct -n; fi
  arm
}
# The live director that should hold when nobody does: the lowest rank among us and
# the peers alive; "wait" while a better-ranked peer is neither heard nor dead.
best() {
  local n
  for n in "${all[@]}"; do
    if [ "$n" = "$me" ]; then [ "$standby" = 0 ] && { echo "$me"; return; }; continue; fi
    case ${state_of[$n]} in up) echo "$n"; return ;; unknown|heard) echo wait; return ;; esac
  done
  echo none
}
decide() {
  local p holder= b unsure=0
  for p in "${peers[@]}"; do
    case ${state_of[$p]} in
      up) [ -n "${held_of[$p]}" ] && holder=$p ;;
      unknown|heard) unsure=1 ;;   # it may hold them: we learn it with its status
    esac
  done
  if [ "$holding" = 1 ] && [ -n "$holder" ]; then
    # Two holders: the same comparison on both sides, so exactly one keeps them.
    local mine; mine=$(prec "$rank" "$epoch")
    if [ "$mine" -gt "${held_of[$holder]}" ] || { [ "$mine" = "${held_of[$holder]}" ] && [ "$rank" -lt "${rank_of[$holder]}" ]; }; then
      log "both hold: keeping them (precedence $mine over $holder's ${held_of[$holder]})"; announce
    else
      release "both hold: $holder keeps them"
    fi
    return
  fi
  b=$(best)
  if [ "$holding" = 1 ]; then
    if [ "$failback" = 1 ] && [ "$b" != "$me" ] && [ "$b" != wait ] && [ "$b" != none ]; then
      release "failback to $b"; tell "t=dir-release"$'\n'"to=$b"
    fi
  elif [ -z "$holder" ] && [ "$unsure" = 0 ] && [ "$b" = "$me" ]; then
    take "nobody alive holds them and we rank first among the live"
  fi
}
announce() {
  local a d
  for a in "${addrs[@]}"; do
    d=${a#*@} a=${a%@*}
    arp-announce -q -i "$d" --count 3 --interval 20ms "${a%/*}" || true
  done
}
on_standby() { standby=1; release "standby by hand"; tell "t=status"$'\n'"st=standby"; }
on_active() { standby=0; tell "t=status"$'\n'"st=active"; decide; }
stop() {
  release "$1"
  kill "$tools_pid" "${armed[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  exit "$2"
}
trap on_standby USR1
trap on_active USR2
trap 'stop stopping 0' TERM INT

# Every long-running tool in one group: when one exits, the others are stopped and one
# line says which, so the loop below never goes on with half a director.
# hb-watch also hears the workers that may join (the section's `workers`); hb-send
# names the directors only.
tools=(--node "$me" --table "$state/ast" "${extra[@]}")
coproc TOOLS {
  trap 'kill "${p[@]}" 2>/dev/null' TERM
  declare -A name; p=()
  hb-send --fifo "$fifo" --generation-file "$lib/generation" --nodes "$nodes" "${tools[@]}" >&2 & p+=($!); name[$!]=hb-send
  hb-watch --floors "$lib/floors" --nodes "$watch_nodes" "${tools[@]}" & p+=($!); name[$!]=hb-watch
  lvs-ctl follow -c "$config" --state "$state/follow.json" --events "$follow_ev" <&5 >&2 & p+=($!); name[$!]=lvs-ctl-follow
  if [ "$mon_check" = 1 ]; then mon-check run -c "$config" >&5 & p+=($!); name[$!]=mon-check; fi
  if [ "$sync" = conntrackd ]; then conntrackd -C "$state/conntrackd.conf" >&2 & p+=($!); name[$!]=conntrackd; fi
  rc=0; wait -n -p who "${p[@]}" || rc=$?
  echo "tool-exit ${name[$who]:-?} status=$rc"
  kill "${p[@]}" 2>/dev/null; wait
}
exec 4<&"${TOOLS[0]}"
tools_pid=$TOOLS_PID
if [ "$sync" = ipvs ]; then
  lvs-ctl --start-daemon backup --mcast-interface "$sync_dev" --syncid "$sync_port" ||
    { log "the IPVS backup sync daemon did not start"; stop "no sync" 1; }
fi

arm
# The director itself takes them at start, if no other host answers for them.
if [ "$rank" = 0 ]; then
  a=${addrs[0]%@*}
  if arp-announce probe -i "${addrs[0]#*@}" "${a%/*}" >/dev/null; then take "the director, and the address is free"
  else log "${a%/*} is held elsewhere; waiting"; fi
fi

# Events, one per line: EVENT NODE key=value ... (traps run between reads).
while :; do
  rc=0; read -r event node fields <&4 || rc=$?
  if [ "$rc" != 0 ]; then
    [ "$rc" -gt 128 ] && continue   # interrupted by a trapped signal
    event=tool-exit node=hb-watch fields="status=eof"
  fi
  fields=" $fields "; [ -z "${DIRECTOR_DEBUG:-}" ] || log "event: $event $node$fields"
  case $event in
    tool-exit) log "$node exited ($fields); releasing and stopping"; stop "$node exited" 1 ;;
  esac
  # An ipfake of ours that died (holding, or armed to take over): stop, as for any tool.
  if ! kill -0 "${armed[@]}" 2>/dev/null; then
    log "an ipfake exited; stopping"; stop "ipfake exited" 1
  fi
  # Real servers joining and leaving are follow's business.
  case "$event$fields" in
    message*" t=join "*|message*" t=leave "*|node-dead*) printf '%s %s%s\n' "$event" "$node" "${fields% }" >&6 ;;
  esac
  [ -n "${rank_of[$node]+x}" ] && [ "$node" != "$me" ] || continue
  case $event in
    node-dead) state_of[$node]=dead; held_of[$node]= ;;
    node-up|node-restart)
      # Heard, but what it holds comes with the node-status that always follows: until
      # then it may hold the addresses, and nobody decides on it.
      state_of[$node]=heard
      # Back from a partition? Say what we hold now, not a keepalive from now.
      [ "$holding" = 0 ] || say_held
      continue ;;
    node-status)
      case $fields in *" status=standby "*) state_of[$node]=standby ;; *) state_of[$node]=up ;; esac
      held_of[$node]=
      case $fields in *" held=$first@"*)
        v=${fields#* held="$first"@}; v=${v%%[, ]*}
        epoch_of[$node]=${v%.*}; held_of[$node]=${v#*.} ;;
      esac ;;
    message)
      case $fields in *" t=dir-release "*" to=$me "*|*" to=$me "*" t=dir-release "*) take "$node released them to us" ;; esac
      continue ;;
    *) continue ;;
  esac
  decide
done
