#!/usr/bin/env bash
# The demo: three nodes, two channels, in network namespaces made here and removed on
# exit. Act one shows the events node n1 sees and its Active Stations Table while a link
# is cut and a node is killed and restarted. Act two runs the active/standby pair with a
# client, pulls the primary's cables and prints how long the client went unanswered.
# Act three watches two web servers with mon-check: one-shot checks, then the
# scheduler, an alert when a server dies, an acknowledgement, an up alert. Act four is
# a director: lvs-ctl on nftables spreading a client's requests over three real
# servers, mon-check's events taking a dead one out and putting it back. Act five is a
# dual-channel cluster: one node loses LAN a silently, chan-switch moves every node to b.
# Act six is the virtual server: two directors (contrib/director.sh) in front of three
# real servers, one killed and brought back, then the director killed under open
# connections, which conntrackd keeps.
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
  for ns in "${NODES[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  sleep 0.3
  net_down
  wait 2>/dev/null || true
}
cleanup() {
  [ -n "${tailpid:-}" ] && kill "$tailpid" 2>/dev/null || true
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

echo
echo "== act three: service checks (mon-check), node n3 watching web servers on n1 and n2"
net_up 3 1
mkdir -p "$work/site" "$work/alert.d"
echo "hello from the demo" > "$work/site/index.html"
web() { # web I: a web server on node I, its PID in web$I
  ip netns exec "${PFX}n$1" python3 -m http.server 8080 --bind "10.77.1.$1" --directory "$work/site" >/dev/null 2>&1 &
  eval "web$1=$!"
}
web 1; web 2
cat > "$work/alert.d/say.alert" <<'ALERT'
#!/bin/sh
# A mon-style alert: -s SERVICE -g GROUP -h HOSTS -t TIME [-u], the output on stdin.
up=""; for a in "$@"; do [ "$a" = -u ] && up=" (recovered)"; done
{ echo "  ALERT$up: $MON_GROUP/$MON_SERVICE type=$MON_ALERTTYPE hosts: $6"
  sed 's/^/    | /'; } >> "$(dirname "$0")/../alerts.log"
ALERT
chmod +x "$work/alert.d/say.alert"
cat > "$work/mon.yaml" <<YAML
mon-check:
  state-dir: $work/mon-state
  socket: $work/mon.sock
  alertdir: [$work/alert.d]
  hostgroups:
    web: [10.77.1.1, 10.77.1.2]
  watches:
    web:
      http:
        interval: 1s
        monitor: http -p 8080 -s hello -t 2
        periods:
          - alert: say.alert
            upalert: say.alert
            alertevery: 1h
YAML
: > "$work/alerts.log"
tail -f "$work/alerts.log" & tailpid=$!
in3() { ip netns exec "${PFX}n3" "$bin/mon-check" "$@"; }
show() { local rc=0; "$@" || rc=$?; echo "  [exit $rc]"; }
sleep 0.5
step "one-shot, as a monitoring plugin (exit status in brackets)" 0
show in3 http -H 10.77.1.1 -p 8080 -s hello
show in3 tcp -H 10.77.1.3 -p 8080
show in3 icmp -H 10.77.1.2 -n 3 -i 20ms
step "as a mon monitor over both servers: nothing to say, exit 0" 0
show in3 --mon http -p 8080 10.77.1.1 10.77.1.2
step "the scheduler on n3 (mon-check run), every second" 0
in3 run -q -c "$work/mon.yaml" &
sleep 1.5
in3 ctl --socket "$work/mon.sock" list
step "n2's web server dies: one alert (alertevery 1h holds the next ones)" 0
kill "$web2"; wait "$web2" 2>/dev/null || true
sleep 2.5
in3 ctl --socket "$work/mon.sock" list
step "acknowledge it, as the operator on call" 0
in3 ctl --socket "$work/mon.sock" ack web http restarting it
step "it comes back: an up alert" 0
web 2
sleep 2
in3 ctl --socket "$work/mon.sock" list
kill "$tailpid" 2>/dev/null || true
stop_all

echo
echo "== act four: a director (lvs-ctl on nftables): a client n1, the director n2, real servers n3-n5"
net_up 5 2
vip=10.77.1.100
ip -n "${PFX}n1" addr flush dev eth1; ip -n "${PFX}n1" link set eth1 down
ip -n "${PFX}n2" addr add "$vip/32" dev eth0
ip netns exec "${PFX}n2" sysctl -qw net.ipv4.ip_forward=1
for i in 3 4 5; do
  ip -n "${PFX}n$i" addr flush dev eth0; ip -n "${PFX}n$i" link set eth0 down
  ip -n "${PFX}n$i" route add default via 10.77.2.2
  mkdir -p "$work/www$i"; echo "served by n$i" > "$work/www$i/index.html"
  ip netns exec "${PFX}n$i" python3 -m http.server 80 --bind "10.77.2.$i" --directory "$work/www$i" >/dev/null 2>&1 &
  eval "rs$i=$!"
done
cat > "$work/director.yaml" <<YAML
lvs-ctl:
  backend: nft
  services:
    - service: tcp $vip:80
      scheduler: wrr
      forward: masq
      check: web/http
      on-failure: quiesce
      reals:
        - { address: 10.77.2.3:80, weight: 2 }
        - { address: 10.77.2.4:80, weight: 1 }
        - { address: 10.77.2.5:80, weight: 1 }
mon-check:
  state-dir: $work/lvs-mon
  socket: $work/lvs-mon.sock
  hostgroups:
    web: [10.77.2.3, 10.77.2.4, 10.77.2.5]
  watches:
    web:
      http: {interval: 500ms, monitor: http -p 80 -s served -t 1}
YAML
in2() { ip netns exec "${PFX}n2" "$bin/lvs-ctl" "$@"; }
clients() { # clients N: N requests from n1 to the virtual address, counted by server
  for _ in $(seq "$1"); do ip netns exec "${PFX}n1" curl -s -m 1 "http://$vip/" || echo "no answer"; done | sort | uniq -c | sed 's/^/  /'
}
sleep 0.5
step "what apply would change (lvs-ctl diff; exit 1: there are changes)" 0
show in2 diff "$work/director.yaml"
step "apply it, then list it as ipvsadm does" 0
in2 apply "$work/director.yaml" >/dev/null
in2 -L -n
step "12 requests from the client: wrr 2:1:1" 0
clients 12
step "health from mon-check: mon-check run | lvs-ctl follow; n3's web server dies" 0
ip netns exec "${PFX}n2" sh -c "'$bin/mon-check' run -q -c '$work/director.yaml' | exec '$bin/lvs-ctl' follow -q -c '$work/director.yaml' --state '$work/lvs-follow.json'" &
sleep 1.5
kill "$rs3"; wait "$rs3" 2>/dev/null || true
sleep 1.5
in2 -L -n
clients 8
step "it comes back" 0
ip netns exec "${PFX}n3" python3 -m http.server 80 --bind 10.77.2.3 --directory "$work/www3" >/dev/null 2>&1 &
sleep 1.5
in2 status -c "$work/director.yaml" --state "$work/lvs-follow.json"
stop_all

echo
echo "== act five: two LANs, one cluster (chan-switch): n3 loses LAN a, the whole cluster moves to b"
net_up 3 2
members=()
for i in 1 2 3; do
  members+=(--member "n$i=10.77.100.$i,10.77.1.$i,10.77.2.$i")
  ip netns exec "${PFX}n$i" sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2
done
for i in 1 2 3; do
  ns=${PFX}n$i
  ip netns exec "$ns" "$bin/hb-send" --node "n$i" "${common[@]}" --keepalive 20ms --deadtime 100ms \
    --table "$work/c$i.ast" --fifo "$work/c$i.fifo" --generation-file "$work/c$i.gen" -q &
  out=/dev/null; [ "$i" = 1 ] && out=/dev/stdout
  ip netns exec "$ns" sh -c "'$bin/hb-watch' --node n$i ${common[*]} --deadtime 100ms --table '$work/c$i.ast' \
    --floors '$work/c$i.floors' -q | exec '$bin/chan-switch' run --node n$i ${members[*]} --channel a=bcast:eth0 \
    --channel b=bcast:eth1 --keepalive 20ms --deadtime 100ms --fifo '$work/c$i.fifo' --table '$work/c$i.ast' \
    --state '$work/c$i.state' --status-file '$work/c$i.json'" | sed -u 's/^/  n1: /' > "$out" &
done
cs() { "$bin/chan-switch" "$@" --node n1 --status-file "$work/c1.json"; }
step "every node's cluster address (10.77.100.N on lo) reached over LAN a; n1's rules:" 1.5
ip -n "${PFX}n1" rule | grep 'lookup 69' | sed 's/^/  /'
ip netns exec "${PFX}n1" ping -c1 -W1 -I 10.77.100.1 10.77.100.3 | grep -E 'bytes from' | sed 's/^/  /'
step "n3's port on LAN a drops everything (the link stays up): silent loss" 0
ip netns exec "$SW" nft -f - <<'NFT'
table bridge demo {
  chain f {
    type filter hook forward priority 0;
    iifname n3c0 drop
    oifname n3c0 drop
  }
}
NFT
step "every node now uses LAN b (chan-switch status on n1):" 1
cs status | sed 's/^/  /'
ip -n "${PFX}n1" rule | grep 'lookup 69' | sed 's/^/  /'
ip netns exec "${PFX}n1" ping -c1 -W1 -I 10.77.100.1 10.77.100.3 | grep -E 'bytes from' | sed 's/^/  /'
step "LAN a mended; no switch back by itself (back: none); by hand: chan-switch back" 0
ip netns exec "$SW" nft delete table bridge demo
sleep 0.5
cs back | sed 's/^/  /'
stop_all
echo
echo "== act six: the virtual server (contrib/director.sh): client n1, directors n2 (director) and"
echo "   n3 (primary backup), real servers n4-n6 behind NAT; conntrackd keeps connections"
net_up 6 2
ip -n "${PFX}n1" addr flush dev eth1; ip -n "${PFX}n1" link set eth1 down
cat > "$work/hold.py" <<'PY'
import random, socket, sys, time
cs = [socket.create_connection(("10.77.1.100", 9000), timeout=2).makefile("rwb") for _ in range(20)]
bad = set(); end = time.time() + float(sys.argv[1])
while time.time() < end:
    for i in random.sample(range(20), 20):
        if i in bad: continue
        try:
            cs[i].write(b"x\n"); cs[i].flush()
            if not cs[i].readline(): bad.add(i)
        except OSError:
            bad.add(i)
    time.sleep(0.05)
print("  the client's 20 open connections: %d broke, %d went on through the new director" % (len(bad), 20 - len(bad)))
PY
line() { ip netns exec "${PFX}n$1" python3 "$here/line-server.py" "n$1" "10.77.2.$1" 9000 >/dev/null 2>&1 & eval "line$1=$!"; }
for i in 4 5 6; do
  ip -n "${PFX}n$i" addr flush dev eth0; ip -n "${PFX}n$i" link set eth0 down
  ip -n "${PFX}n$i" route add default via 10.77.2.100
  line "$i"
done
for d in 2 3; do
  ip netns exec "${PFX}n$d" sysctl -qw net.ipv4.ip_forward=1
  mkdir -p "$work/d$d"
  cat > "$work/d$d/hakit.yaml" <<YAML
cluster:
  keys: $work/authkeys
  channels:
    - { name: a, dev: eth0, mode: bcast }
    - { name: b, dev: eth1, mode: bcast }
hb-send: { keepalive: 50ms, deadtime: 300ms }
hb-watch: { deadtime: 300ms, initdead: 1s }
lvs-ctl:
  backend: nft
  services:
    - service: tcp 10.77.1.100:9000
      scheduler: rr
      forward: masq
      check: rs/tcp
      on-failure: remove
      reals:
        - { address: 10.77.2.4:9000, host: 10.77.2.4 }
        - { address: 10.77.2.5:9000, host: 10.77.2.5 }
        - { address: 10.77.2.6:9000, host: 10.77.2.6 }
mon-check:
  state-dir: $work/d$d/mon
  socket: $work/d$d/mon.sock
  hostgroups: { rs: [10.77.2.4, 10.77.2.5, 10.77.2.6] }
  watches: { rs: { tcp: { interval: 500ms, monitor: tcp -p 9000 -t 1 } } }
director:
  nodes:
    - { name: n2, role: director }
    - { name: n3, role: primary-backup }
  addresses:
    - { address: 10.77.1.100/24, dev: eth0 }
    - { address: 10.77.2.100/24, dev: eth1 }
  sync: conntrackd
  sync-dev: eth1
YAML
  ip netns exec "${PFX}n$d" env PATH="$bin:$PATH" bash "$here/director.sh" run --node "n$d" -c "$work/d$d/hakit.yaml" \
    --state-dir "$work/d$d/state" --lib-dir "$work/d$d/lib" -- -q 2>&1 | grep --line-buffered -E 'taking|releasing' | sed -u 's/^/  /' &
  disown   # its death (act six kills n2) is the story, not a job report
done
many() { ip netns exec "${PFX}n1" python3 -c "
import socket
out = []
for i in range($1):
    try:
        c = socket.create_connection(('10.77.1.100', 9000), timeout=1); f = c.makefile('rwb')
        f.write(b'x\n'); f.flush(); out.append(f.readline().decode().strip() or '-')
    except OSError:
        out.append('-')
print('  ' + ' '.join(out))"; }
step "n2 holds the virtual address and the servers' gateway; 9 new connections, rr:" 3
many 9
step "n5's server dies: mon-check says host-down, lvs-ctl follow takes it out (on every director)" 0
kill "$line5"; wait "$line5" 2>/dev/null || true
sleep 1.5
ip netns exec "${PFX}n3" "$bin/lvs-ctl" -L -n | sed 's/^/  n3: /'
many 6
step "it comes back" 0
line 5
sleep 1.5
many 6
step "20 connections open, a line on each every 50 ms; n2 dies (every process killed, both cables out)" 0
ip netns exec "${PFX}n1" python3 "$work/hold.py" 5 &
hold=$!
sleep 1.5
ip netns pids "${PFX}n2" | xargs -r kill -9
cut 2 0; cut 2 1
wait "$hold" || true
many 6
stop_all
echo
echo "demo done; the namespaces are gone."
