#!/usr/bin/env bash
# Build hakit's Debian packages (hakit, hakit-ipvsadm) into OUTDIR and print their paths.
#
#   contrib/deb/build.sh [--target-dir DIR] OUTDIR
#
# It builds what git holds (the commit plus changes to tracked files, through
# `git stash create`) from an exported copy (DIR/.deb-build), never the working tree
# itself, with `dpkg-buildpackage -b` and a cargo target directory of its own (DIR,
# default target/deb/cargo), so a build started from `cargo test` never waits on the
# outer cargo's lock. OUTDIR remembers what it was built from (the trees of the paths
# that go into the packages): the same again prints the packages already there.
# DEB_BUILD_OPTIONS=noautodbgsym skips hakit-dbgsym (minutes of xz); parallel=N is -jN.
# Exit: 0 built, 1 the build failed, 2 usage.
set -euo pipefail

# All in one function, read whole before it runs: editing this file during a build
# cannot change what the running build does.
main() {
usage() { echo "build.sh: $1 (usage: build.sh [--target-dir DIR] OUTDIR)" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=
while [ $# -gt 0 ]; do
  case $1 in
    --target-dir) [ $# -ge 2 ] || usage "--target-dir needs a directory"; target=$2; shift 2 ;;
    -*) usage "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage "one OUTDIR expected"
out=$1
target=${target:-$repo/target/deb/cargo}
for c in git dpkg-buildpackage dh cargo rustc; do
  command -v "$c" >/dev/null || { echo "build.sh: $c not found (contrib/deps.sh installs it)" >&2; exit 2; }
done
cd "$repo"
git rev-parse --git-dir >/dev/null 2>&1 || usage "$repo is not a git checkout"

# The package's version is the crate's: refuse a debian/changelog that says otherwise.
crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
deb=$(dpkg-parsechangelog -l debian/changelog -S Version)
[ "$crate" = "$deb" ] ||
  { echo "build.sh: debian/changelog:1: version $deb, Cargo.toml says $crate" >&2; exit 2; }

rev=$(git stash create)
rev=${rev:-HEAD}
# Keyed by what goes into the packages (or into building them): a change to the tests
# or the documents outside does not rebuild them.
# The toolchain and DEB_BUILD_OPTIONS make other packages from the same tree.
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
tree=$({
  git ls-tree "$rev" -- Cargo.toml Cargo.lock src debian contrib man completions benches examples
  rustc -V
  echo "DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-}"
} | git hash-object --stdin)
mkdir -p "$out" "$target"
out=$(cd "$out" && pwd)
target=$(cd "$target" && pwd)
# The copy is built in the same place every time (inside the target directory, which
# is ours alone: nothing beside it is touched), so cargo finds its earlier build of the
# crate; one build at a time there.
work=$target/.deb-build
exec 9>"$target/.deb-build.lock"
flock 9
arch=$(dpkg --print-architecture)
debs=("hakit_${deb}_${arch}.deb" "hakit-ipvsadm_${deb}_all.deb")
if [ "$(cat "$out/source-tree" 2>/dev/null)" = "$tree" ] &&
  [ -f "$out/${debs[0]}" ] && [ -f "$out/${debs[1]}" ]; then
  echo "build.sh: reusing the packages of $tree" >&2
  printf '%s\n' "${debs[@]/#/$out/}"
  exit 0
fi
rm -f "$out/source-tree" "$out"/hakit*.deb "$out"/hakit*.ddeb "$out"/hakit*.buildinfo "$out"/hakit*.changes
rm -rf "$work"
mkdir -p "$work/hakit-$deb"
trap 'rm -rf "$work"' EXIT
git archive "$rev" | tar -x -C "$work/hakit-$deb"

# What `cargo test` sets for its test binaries is not the build's (left in, build
# scripts that watch it would rebuild on every other run; LD_LIBRARY_PATH names the
# outer target directory), nor is a caller's wrapper or cargo configuration: the
# packages are built the same whoever starts the build.
for v in $(compgen -e); do
  case $v in CARGO_PKG_* | CARGO_BIN_* | CARGO_MANIFEST_* | CARGO_CRATE_* | CARGO_PRIMARY_* | \
    CARGO_BUILD_* | CARGO_ENCODED_RUSTFLAGS | CARGO_TARGET_TMPDIR | CARGO_RUSTC_CURRENT_DIR | \
    CARGO | RUSTC_WRAPPER | RUSTC_WORKSPACE_WRAPPER | LD_LIBRARY_PATH) unset "$v" ;; esac
done
export CARGO_TARGET_DIR=$target
# The crates the lock names, fetched now (the only step that may use the network), so
# the package build itself runs offline.
cargo fetch --locked --quiet --manifest-path "$work/hakit-$deb/Cargo.toml" ||
  { echo "build.sh: cargo fetch failed" >&2; exit 1; }
(cd "$work/hakit-$deb" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2
  echo "build.sh: dpkg-buildpackage failed (the log's end is above)" >&2
  exit 1
}
for f in "${debs[@]}"; do
  [ -f "$work/$f" ] || { echo "build.sh: dpkg-buildpackage made no $f" >&2; exit 1; }
done
# The .changes names hakit-dbgsym's .ddeb when one was built: it goes along.
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
for f in "$work"/*.ddeb; do if [ -e "$f" ]; then mv "$f" "$out"/; fi; done
echo "$tree" >"$out/source-tree"
printf '%s\n' "${debs[@]/#/$out/}"
}

main "$@"; exit
