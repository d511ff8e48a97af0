# Shared by the demo and the failover benchmark: a cluster of network namespaces.
# One "switch" namespace holds one bridge per channel; each node has one veth per
# channel (eth0 on channel a, eth1 on channel b), addresses 10.77.<chan>.<node>/24.
# Everything is named with $PFX and deleted by net_down, also on failure (trap).

PFX=${PFX:-hk$$}
SW="${PFX}sw"
NODES=()

net_up() { # net_up NODES CHANNELS
  local n=$1 c=$2 i k
  ip netns add "$SW"
  ip -n "$SW" link set lo up
  for k in $(seq 0 $((c - 1))); do
    ip -n "$SW" link add "br$k" type bridge
    ip -n "$SW" link set "br$k" type bridge forward_delay 0 stp_state 0
    ip -n "$SW" link set "br$k" up
  done
  for i in $(seq 1 "$n"); do
    local ns="${PFX}n$i"
    NODES+=("$ns")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    for k in $(seq 0 $((c - 1))); do
      ip -n "$SW" link add "n${i}c$k" type veth peer name "eth$k" netns "$ns"
      ip -n "$SW" link set "n${i}c$k" master "br$k" up
      ip -n "$ns" addr add "10.77.$((k + 1)).$i/24" brd + dev "eth$k"
      ip -n "$ns" link set "eth$k" up
    done
  done
}

net_down() {
  local ns
  for ns in "${NODES[@]}" "$SW"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  NODES=()
}

# cut NODE CHANNEL: take the switch port of that node's channel down, as a pulled
# cable: the node's own device loses its carrier, the others see only silence.
cut() { ip -n "$SW" link set "n${1}c$2" down; }
mend() { ip -n "$SW" link set "n${1}c$2" up; }
