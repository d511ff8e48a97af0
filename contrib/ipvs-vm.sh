#!/usr/bin/env bash
# A real IPVS kernel for the tests. This machine's kernel may have no IPVS; Debian 12's
# own kernel has it. This script boots that kernel under qemu (TCG, one vCPU) with the
# host's root read-only over virtio-9p, a tmpfs overlay on top and a chroot into it, so
# every host binary runs inside at its own path and nothing written inside reaches the
# host. See /work/shared/reference/ipvs-vm.md for the measured facts behind each choice.
#
#   contrib/ipvs-vm.sh prepare
#       Download (never install) the kernel package linux-image-amd64 depends on, unpack
#       it into the cache, extract the ELF vmlinux from its bzImage and build a small
#       initramfs. Idempotent: a second run finds the cache and returns at once.
#   contrib/ipvs-vm.sh run [--timeout SECS] CMD ARGS...
#       Boot, run CMD in the caller's working directory with PATH, HOME, HAKIT_*, RUST_*
#       and CARGO_* passed through (and HAKIT_IN_VM=1), copy its stdout and stderr back,
#       power off, and exit with CMD's status. 125 if the VM failed or timed out
#       (--timeout, default HAKIT_VM_TIMEOUT or 600 s). Inside, / is the host's under a
#       tmpfs overlay; /proc /sys /dev /dev/shm /run and /tmp are the guest's own (so a
#       file in the host's /tmp is not seen inside); lo is up; modules autoload.
#
# HAKIT_VM_CACHE overrides the cache directory (default /var/cache/hakit/ipvs-vm).
# Needs qemu-system-x86, busybox-static, kmod, cpio, xz-utils (contrib/deps.sh).
set -euo pipefail

cache=${HAKIT_VM_CACHE:-/var/cache/hakit/ipvs-vm}
vm_failed=125

usage() {
  echo "usage: $0 prepare | run [--timeout SECS] CMD [ARGS...]" >&2
  exit 2
}

# ---------------------------------------------------------------------------- prepare

# The guest's /init, run by the kernel from the initramfs. The kernel command line
# names the job directory (on the host, read through 9p) and the unpacked modules.
guest_init() {
  cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "hakit-vm: $*" >/dev/console; }
halt() { say "$*"; sync; reboot -f; }
for m in $(cat /modules/order); do insmod "/modules/$m" || halt "insmod $m failed"; done
job= mods=
for arg in $(cat /proc/cmdline); do
  case $arg in hakit.job=*) job=${arg#*=} ;; hakit.mods=*) mods=${arg#*=} ;; esac
done
mkdir -p /lower /upper /root
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose host /lower ||
  halt "mounting the host's root over 9p failed"
mount -t tmpfs -o mode=755 upper /upper
mkdir /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work root /root ||
  halt "the overlay failed"
cp "/lower$job/job" /job # before /tmp is covered by the guest's own tmpfs
mount -t proc proc /root/proc
mount -t sysfs sys /root/sys
mount -t devtmpfs dev /root/dev
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts devpts /root/dev/pts
mount -t tmpfs -o mode=1777 shm /root/dev/shm
mount -t tmpfs -o mode=755 run /root/run
mount -t tmpfs -o mode=1777 tmp /root/tmp
mount -t cgroup2 cgroup2 /root/sys/fs/cgroup 2>/dev/null
mount --make-rshared /root
# The kernel's own module loading (genl family IPVS → ip_vs, `-s rr` → ip_vs_rr,
# nf_tables) runs /proc/sys/kernel/modprobe in the initramfs: send it into the chroot.
kver=$(uname -r)
rm -rf "/root/lib/modules/$kver"
mkdir -p /root/lib/modules
ln -s "$mods" "/root/lib/modules/$kver"
echo /sbin/chroot-modprobe >/proc/sys/kernel/modprobe
port() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name")" = "$1" ] && { echo "/dev/${p##*/}"; return; }
  done
  halt "no virtio port $1"
}
out=$(port hakit.out) err=$(port hakit.err) status=$(port hakit.status)
chroot /root /usr/sbin/ip link set lo up
cp /job /root/run/hakit-job
chroot /root /bin/sh /run/hakit-job >"$out" 2>"$err"
echo $? >"$status"
sync
reboot -f
EOF
}

chroot_modprobe() {
  printf '#!/bin/busybox sh\nexec /bin/busybox chroot /root /usr/sbin/modprobe "$@"\n'
}

# The kernel version linux-image-amd64 depends on now, e.g. 6.1.0-57-amd64. apt-cache
# takes a second, so its answer is kept until apt's package lists change.
current_kver() {
  local pkg
  if [ -s "$cache/current" ] && [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' \
    -newer "$cache/current" 2>/dev/null | head -n1)" ]; then
    cat "$cache/current"
    return
  fi
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }') || true
  if [ -z "$pkg" ]; then
    apt-get update -qq >&2
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  [ -n "$pkg" ] || { echo "ipvs-vm: apt-cache names no kernel for linux-image-amd64" >&2; exit 1; }
  mkdir -p "$cache"
  echo "${pkg#linux-image-}" | tee "$cache/current"
}

# Unpack the kernel package into $1/kernel and extract $1/vmlinux.
unpack_kernel() {
  local dir=$1 kver=$2 off
  (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver" >&2)
  dpkg-deb -x "$dir"/linux-image-"$kver"_*.deb "$dir/kernel"
  rm -f "$dir"/*.deb
  depmod -b "$dir/kernel" "$kver"
  # The bzImage carries the kernel as an xz stream; its payload is the ELF vmlinux,
  # which qemu boots directly (PVH entry), twice as fast as the bzImage under TCG.
  off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "$dir/kernel/boot/vmlinuz-$kver" | head -n1 | cut -d: -f1)
  [ -n "$off" ] || { echo "ipvs-vm: no xz stream in vmlinuz-$kver" >&2; exit 1; }
  # (xz stops at the stream's end; tail, cut short, is not waited for.)
  xz -dc --single-stream <(tail -c +$((off + 1)) "$dir/kernel/boot/vmlinuz-$kver" || true) >"$dir/vmlinux"
  [ "$(head -c4 "$dir/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
    { echo "ipvs-vm: what vmlinuz-$kver holds is not an ELF" >&2; exit 1; }
}

# Build $1/initramfs.cpio: static busybox, the modules to reach the host, /init.
build_initramfs() {
  local dir=$1 kver=$2 root m name
  root=$(mktemp -d "$dir/initramfs.XXXXXX")
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,modules}
  cp /bin/busybox "$root/bin/busybox"
  guest_init >"$root/init"
  chroot_modprobe >"$root/sbin/chroot-modprobe"
  chmod 755 "$root/init" "$root/sbin/chroot-modprobe"
  for m in virtio_pci virtio_console 9pnet_virtio 9p overlay; do
    modprobe --show-depends -d "$dir/kernel" -S "$kver" "$m"
  done | awk '$1 == "insmod" { print $2 }' | while read -r m; do
      name=${m##*/}
      [ -e "$root/modules/${name%.xz}" ] && continue
      case $name in
        *.xz) xz -dc "$m" >"$root/modules/${name%.xz}" ;;
        *) cp "$m" "$root/modules/$name" ;;
      esac
      echo "${name%.xz}" >>"$root/modules/order"
    done
  (cd "$root" && find . | cpio -o -H newc --quiet) >"$dir/initramfs.cpio.new"
  mv "$dir/initramfs.cpio.new" "$dir/initramfs.cpio"
  rm -rf "$root"
}

prepare() {
  command -v busybox >/dev/null && command -v depmod >/dev/null &&
    command -v cpio >/dev/null && command -v xz >/dev/null ||
    { echo "ipvs-vm: needs busybox-static, kmod, cpio, xz-utils (contrib/deps.sh)" >&2; exit 1; }
  local kver dir sum
  kver=$(current_kver)
  dir=$cache/$kver
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9 # two test binaries preparing at once do it once
  if [ ! -e "$dir/vmlinux" ]; then
    echo "ipvs-vm: downloading and unpacking linux-image-$kver into $dir" >&2
    rm -rf "$dir.new"
    mkdir -p "$dir.new"
    unpack_kernel "$dir.new" "$kver"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
    # An older kernel's tree (470 MB) is of no more use once a newer one is here.
    find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$kver" -exec rm -rf {} +
  fi
  # The initramfs is rebuilt whenever this script's /init or its recipe changes.
  sum=$( (guest_init; chroot_modprobe; declare -f build_initramfs; sha256sum /bin/busybox) | sha256sum | cut -c1-16)
  if [ ! -e "$dir/initramfs.cpio" ] || [ "$(cat "$dir/initramfs.sum" 2>/dev/null)" != "$sum" ]; then
    build_initramfs "$dir" "$kver"
    echo "$sum" >"$dir/initramfs.sum"
  fi
  exec 9>&-
}

# -------------------------------------------------------------------------------- run

tmp= qpid=
copiers=()

cleanup() {
  set +e
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null # timeout(1), which passes it on to qemu
  [ -n "$tmp" ] && [ -s "$tmp/qemu.pid" ] && kill "$(cat "$tmp/qemu.pid" 2>/dev/null)" 2>/dev/null
  [ -n "$qpid" ] && wait "$qpid" 2>/dev/null
  unblock_fifos
  for p in "${copiers[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$tmp" ] && rm -rf "$tmp"
  return 0
}

# A copier still waiting for qemu to open its FIFO is let go: an O_RDWR open of a FIFO
# never blocks, and its close is the end of file.
unblock_fifos() {
  local f
  for f in out err; do
    [ -p "$tmp/$f" ] && { exec 8<>"$tmp/$f"; exec 8>&-; }
  done
  return 0
}

vm_fail() {
  echo "ipvs-vm: FAILED: $* (exit $vm_failed)" >&2
  echo "--- kernel console, last 25 lines ---" >&2
  tail -n 25 "$tmp/console" >&2 2>/dev/null || true
  [ -s "$tmp/qemu.log" ] && { echo "--- qemu ---" >&2; tail -n 10 "$tmp/qemu.log" >&2; }
  exit $vm_failed
}

# The newest prepared kernel in the cache.
prepared() {
  local d
  for d in $(ls -d "$cache"/*/ 2>/dev/null | sort -V -r); do
    [ -e "$d/vmlinux" ] && [ -e "$d/initramfs.cpio" ] && { echo "${d%/}"; return; }
  done
  return 1
}

run() {
  local timeout=${HAKIT_VM_TIMEOUT:-600} dir kver status rc=0 v
  while [ $# -gt 0 ]; do
    case $1 in
      --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
      --timeout=*) timeout=${1#*=}; shift ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || usage
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  tmp=$(mktemp -d /tmp/hakit-vm.XXXXXX)
  command -v qemu-system-x86_64 >/dev/null ||
    vm_fail "qemu-system-x86_64 is not installed (contrib/deps.sh installs it)"
  if ! dir=$(prepared); then
    bash "$0" prepare || vm_fail "contrib/ipvs-vm.sh prepare failed"
    dir=$(prepared) || vm_fail "no kernel prepared in $cache"
  fi
  kver=${dir##*/}

  # The job: the caller's environment that matters, its directory, its command.
  {
    echo "export HAKIT_IN_VM=1"
    for v in PATH HOME USER LANG TERM $(compgen -e | grep -E '^(HAKIT|RUST|CARGO)_'); do
      if [ -n "${!v+x}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
    done
    printf 'cd %q || { echo "ipvs-vm: FAILED: no %q inside the VM (its /tmp is its own)" >&2; exit 125; }\n' "$PWD" "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    echo
  } >"$tmp/job"
  mkfifo "$tmp/out" "$tmp/err"
  cat "$tmp/out" &
  copiers+=($!)
  cat "$tmp/err" >&2 &
  copiers+=($!)

  timeout -k 5 "$timeout" qemu-system-x86_64 -nodefaults -machine pc \
    -accel tcg,thread=multi -cpu max -m 512M -smp 1 -display none -no-reboot \
    -pidfile "$tmp/qemu.pid" \
    -kernel "$dir/vmlinux" -initrd "$dir/initramfs.cpio" \
    -append "console=ttyS0 quiet panic=-1 oops=panic hakit.job=$tmp hakit.mods=$dir/kernel/lib/modules/$kver" \
    -chardev file,id=console,path="$tmp/console" -serial chardev:console \
    -fsdev local,id=host,path=/,readonly=on,security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=host,mount_tag=host \
    -device virtio-serial-pci \
    -chardev file,id=out,path="$tmp/out" -device virtserialport,chardev=out,name=hakit.out \
    -chardev file,id=err,path="$tmp/err" -device virtserialport,chardev=err,name=hakit.err \
    -chardev file,id=status,path="$tmp/status" \
    -device virtserialport,chardev=status,name=hakit.status \
    </dev/null >"$tmp/qemu.log" 2>&1 &
  qpid=$!
  wait "$qpid" || rc=$?
  qpid=
  unblock_fifos
  wait "${copiers[@]}" 2>/dev/null || true
  copiers=()
  [ "$rc" = 124 ] && vm_fail "the VM did not finish within $timeout s"
  status=$(tr -dc 0-9 <"$tmp/status" 2>/dev/null || true)
  [ -n "$status" ] || vm_fail "the VM gave no exit status (qemu exited $rc)"
  exit "$status"
}

case ${1:-} in
  prepare)
    shift
    [ $# = 0 ] || usage
    set -E
    trap 'echo "ipvs-vm: prepare failed at line $LINENO: $BASH_COMMAND" >&2' ERR
    prepare
    ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
