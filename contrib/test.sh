#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs them all
# (unit, command-line, network-namespace and Heartbeat interoperation tests) as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: the network tests need root (namespaces)" >&2; exit 2; }
bash contrib/deps.sh
cargo test --all-targets "$@"
