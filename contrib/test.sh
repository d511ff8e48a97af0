#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs them all
# (unit, command-line, network-namespace and Heartbeat interoperation tests, and the
# benchmarks once each in test mode) as root, and closes with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: the network tests need root (namespaces)" >&2; exit 2; }
bash contrib/deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --all-targets "$@" 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
