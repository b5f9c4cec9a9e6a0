#!/usr/bin/env bash
# An emulated ARM64 Linux board on this x86-64 machine, reachable over SSH on loopback like a real one:
#
#   scripts/arm-board.sh up                       # build (first time, ~1 min) and start the board's sshd
#   pytest --aiotbench $(scripts/arm-board.sh args)   # run the benchmark on it
#   scripts/arm-board.sh status | env | down | run CMD | destroy
#
# What it is: Debian's own arm64 userland (mmdebstrap, from the archive this machine's apt uses) with Python and
# PyPI's aarch64 wheels of numpy, ai-edge-litert, onnxruntime, ncnn, MNN and OpenVINO (its 2026 wheels need
# glibc >= 2.35: Debian 12 has 2.36), executed by QEMU user-mode emulation. Every SSH
# session enters the board through `unshare --user --mount`: a private binfmt_misc (Linux >= 6.7) maps aarch64 ELF
# files to a static qemu-aarch64, the board gets the host's /proc, /sys and /dev plus an ARM /proc/cpuinfo
# (qemu 7.2 would hand the runtimes the host's x86 one, and they crash parsing it), then chroot. Nothing is
# mounted or registered outside that namespace: the host's /proc, binfmt registrations and sshd are untouched.
# A second Python env, /opt/rpi/bin/python3, is the Raspberry-Pi stack: tflite-runtime 2.14 + numpy 1.26 (TFLite only:
# a device without the other runtimes).
#
# The board says it is emulated (/etc/aiotbench-emulated): its latencies are never a device's speed.
# Folder: $ARM_BOARD_DIR (default ~/.cache/aiotbench-board), or `--dir DIR` before the command. Needs root.
# Exit codes: 0 ok, 1 failed, 3 this machine cannot emulate (no qemu-user/mmdebstrap, kernel without
# binfmt_misc namespaces): callers such as the tests skip on 3.
set -euo pipefail

RECIPE=2  # bump when the board's content changes: stamps of an older recipe are rebuilt (2: ncnn, MNN, OpenVINO)
MAIN_PACKAGES=${ARM_BOARD_PACKAGES:-"numpy ai-edge-litert==2.3.0 onnxruntime==1.32.0 ncnn==1.0.20261020 MNN==3.6.1"}
# OpenVINO's aarch64 wheels are manylinux_2_35: added when the board's glibc allows, else left out (and said why);
# its cases then skip on the board naming the glibc (frameworks/openvino.py).
OPENVINO_PACKAGE=${ARM_BOARD_OPENVINO:-"openvino==2026.4.1"}
OPENVINO_MIN_GLIBC_MINOR=35
BOARD_CPU=cortex-a72  # what qemu emulates and /proc/cpuinfo says (CPU part 0xd08)
RPI_PACKAGES=${ARM_BOARD_RPI_PACKAGES:-"tflite-runtime==2.14.0 numpy==1.26.4"}
DEB_PACKAGES="python3,libstdc++6,libgcc-s1,dash,coreutils,grep,sed,base-files,openssh-sftp-server"

say() { echo "arm-board: $*" >&2; }
die() { say "$*"; exit 1; }
cannot() { say "cannot emulate here: $*"; exit 3; }
# `pytest --aiotbench $(scripts/arm-board.sh args)` must not benchmark the host when the board is down (the `$(...)`
# would expand to nothing): a failed `args` also prints a device the plugin refuses at start, naming this script.
fail_args() { say "$*"; [ "${CMD:-}" = args ] && echo "--aiotbench-device=unavailable:arm-board"; exit 1; }

DIR=${ARM_BOARD_DIR:-$HOME/.cache/aiotbench-board}
case "${1:-}" in
  --dir) [ $# -ge 2 ] && [ -n "$2" ] || { CMD=${3:-}; fail_args "--dir needs a folder: scripts/arm-board.sh --dir DIR COMMAND"; }
         DIR=$2; shift 2 ;;
  --dir=*) DIR=${1#--dir=}; shift
           [ -n "$DIR" ] || { CMD=${1:-}; fail_args "--dir needs a folder: scripts/arm-board.sh --dir DIR COMMAND"; } ;;
esac
CMD=${1:-status}
shift || true
[ -n "$DIR" ] || fail_args "ARM_BOARD_DIR is empty: give a folder"
if [ -e "$DIR" ] && [ ! -d "$DIR" ]; then fail_args "$DIR is not a folder (--dir or ARM_BOARD_DIR)"; fi
mkdir -p "$DIR" 2>/dev/null || fail_args "cannot create the board folder $DIR"
DIR=$(cd "$DIR" 2>/dev/null && pwd) || fail_args "cannot enter the board folder $DIR"
ROOT=$DIR/root
SSHD_DIR=$DIR/ssh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# -- can this machine emulate at all? -------------------------------------------------------------------------------
check_machine() {
  [ "$(id -u)" = 0 ] || cannot "needs root (mmdebstrap --mode=root, sshd, user namespaces)"
  command -v unshare >/dev/null && command -v chroot >/dev/null || cannot "util-linux unshare/chroot missing"
  command -v mmdebstrap >/dev/null || cannot "mmdebstrap missing (apt-get install mmdebstrap qemu-user)"
  command -v qemu-aarch64 >/dev/null || cannot "qemu-user missing (apt-get install qemu-user)"
  grep -qw binfmt_misc /proc/filesystems || cannot "kernel has no binfmt_misc"
}

# -- the Debian archive this machine's apt reads (never a hard-coded host) --------------------------------------------
# `apt-cache policy` lists every configured source, whatever the file format: keep Debian's own (o=Debian) entries of
# this release, as "deb URI SUITE COMPONENTS" lines.
debian_sources() {
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "cannot tell this machine's Debian release from /etc/os-release"
  apt-cache policy | awk -v cn="$codename" '
    /^ *[0-9]+ (https?|file):/ { uri=$2; split($3, sc, "/"); suite=sc[1]; comp=sc[2]; next }
    /^ +release / && uri != "" {
      if ($0 ~ /o=Debian,/ && (suite == cn || index(suite, cn "-") == 1)) {
        key = uri " " suite
        if (!(key in comps)) { order[++n] = key; comps[key] = comp }
        else if (index(" " comps[key] " ", " " comp " ") == 0) { comps[key] = comps[key] " " comp }
      }
      uri = ""
    }
    END { for (i = 1; i <= n; i++) print "deb " order[i] " " comps[order[i]] }'
}

# A step is done when its stamp holds this recipe and the same inputs (e.g. the package list).
stamp_ok() { [ "$(cat "$DIR/$1.done" 2>/dev/null)" = "$RECIPE ${2:-}" ]; }
stamp() { echo "$RECIPE ${2:-}" > "$DIR/$1.done"; }

pip_cmd() {
  if [ -n "${ARM_BOARD_PIP:-}" ]; then echo "$ARM_BOARD_PIP"
  elif [ -x "$HERE/../.venv/bin/python" ]; then echo "$HERE/../.venv/bin/python -m pip"
  else echo "python3 -m pip"; fi
}

# -- build ---------------------------------------------------------------------------------------------------------
build_root() {
  stamp_ok root && return 0
  local codename sources
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  mapfile -t sources < <(debian_sources)
  [ ${#sources[@]} -gt 0 ] || die "no Debian archive in this machine's apt sources (apt-get update first?)"
  say "arm64 root from ${sources[*]}"
  rm -rf "$ROOT" "$ROOT.new" "$DIR"/wheels-*.done  # the wheels lived in the old root
  mmdebstrap --quiet --variant=extract --arch=arm64 --mode=root --include="$DEB_PACKAGES" --format=directory \
    "$codename" "$ROOT.new" "${sources[@]}" >/dev/null 2>"$DIR/mmdebstrap.log" \
    || die "mmdebstrap failed: $(tail -n 1 "$DIR/mmdebstrap.log")"
  # extract runs no maintainer scripts: add what they would (users, mount points, a writable /tmp)
  mkdir -p "$ROOT.new"/{proc,sys,dev,tmp,root,run,opt}
  chmod 1777 "$ROOT.new/tmp"
  [ -s "$ROOT.new/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT.new/etc/passwd"
  [ -s "$ROOT.new/etc/group" ] || printf 'root:x:0:\n' > "$ROOT.new/etc/group"
  mv "$ROOT.new" "$ROOT"
  stamp root
}

extract_qemu_static() {
  # A static qemu: binfmt's F flag opens it once, before the chroot, so the board needs no x86 libraries.
  # Taken out of Debian's qemu-user-static package without installing it (its postinst would register binfmt).
  [ -x "$DIR/qemu-aarch64-static" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download qemu-user-static >/dev/null 2>"$DIR/apt-download.log") \
    || { rm -rf "$tmp"; die "apt-get download qemu-user-static failed: $(tail -n 1 "$DIR/apt-download.log")"; }
  dpkg-deb --fsys-tarfile "$tmp"/qemu-user-static_*.deb | tar -x -C "$tmp" ./usr/bin/qemu-aarch64-static
  mv "$tmp/usr/bin/qemu-aarch64-static" "$DIR/qemu-aarch64-static"
  rm -rf "$tmp"
}

root_python_version() {  # "3.11" from the root's interpreter
  local py
  py=$(readlink "$ROOT/usr/bin/python3")
  echo "${py#python}"
}

root_glibc_minor() {  # 36 for the root's glibc 2.36
  local minor
  minor=$(grep -aoE 'release version 2\.[0-9]+' "$ROOT"/lib/aarch64-linux-gnu/libc.so.6 | head -n 1 | sed 's/.*2\.//')
  [ -n "$minor" ] || die "cannot read the root's glibc version"
  echo "$minor"
}

aarch64_platforms() {  # every manylinux tag the root's glibc satisfies
  local minor tags=(--platform manylinux2014_aarch64)
  minor=$(root_glibc_minor)
  for m in $(seq 17 "$minor"); do tags+=(--platform "manylinux_2_${m}_aarch64"); done
  echo "${tags[@]}"
}

main_packages() {  # MAIN_PACKAGES, plus OpenVINO where the root's glibc runs its wheel
  local minor
  minor=$(root_glibc_minor)
  if [ -z "$OPENVINO_PACKAGE" ]; then echo "$MAIN_PACKAGES"
  elif [ "$minor" -ge "$OPENVINO_MIN_GLIBC_MINOR" ]; then echo "$MAIN_PACKAGES $OPENVINO_PACKAGE"
  else
    say "no $OPENVINO_PACKAGE on this board: its aarch64 wheels need glibc >= 2.$OPENVINO_MIN_GLIBC_MINOR, the board has 2.$minor"
    echo "$MAIN_PACKAGES"
  fi
}

# Wheels are unpacked, not installed: a wheel is a zip laid out for site-packages (dist-info included).
install_wheels() {  # NAME TARGET_SITE PACKAGES...
  local name=$1 site=$2
  shift 2
  stamp_ok "wheels-$name" "$*" && return 0
  local wheels=$DIR/wheels/$name
  rm -rf "$wheels"
  mkdir -p "$wheels"
  # shellcheck disable=SC2046
  $(pip_cmd) download --quiet --only-binary=:all: $(aarch64_platforms) --python-version "$(root_python_version)" \
    --implementation cp -d "$wheels" "$@" >"$DIR/pip-$name.log" 2>&1 \
    || die "pip download $* failed: $(grep -v WARNING "$DIR/pip-$name.log" | tail -n 1)"
  mkdir -p "$site"
  for w in "$wheels"/*.whl; do python3 -m zipfile -e "$w" "$site" || die "cannot unpack $w"; done
  stamp "wheels-$name" "$*"
}

build_rpi_env() {
  # A venv by hand (pyvenv.cfg + symlink): the board's own python3 without /usr/lib/python3/dist-packages, so
  # ai-edge-litert is invisible and the plugin falls back to tflite-runtime, as on a Raspberry Pi.
  local py
  py=python$(root_python_version)
  mkdir -p "$ROOT/opt/rpi/bin" "$ROOT/opt/rpi/lib/$py/site-packages"
  printf 'home = /usr/bin\ninclude-system-site-packages = false\n' > "$ROOT/opt/rpi/pyvenv.cfg"
  ln -sfn "/usr/bin/$py" "$ROOT/opt/rpi/bin/python3"
  install_wheels rpi "$ROOT/opt/rpi/lib/$py/site-packages" $RPI_PACKAGES
}

write_board_files() {
  # An ARM cpuinfo, one block per host core (the emulated board has the host's cores), Cortex-A72 as a Pi 4.
  local n
  n=$(nproc)
  : > "$DIR/cpuinfo"
  for i in $(seq 0 $((n - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i" >> "$DIR/cpuinfo"
  done
  printf 'Hardware\t: aiotbench emulated ARM64 board (qemu-user on %s)\nModel\t\t: aiotbench emulated ARM64 board\n' \
    "$(uname -m)" >> "$DIR/cpuinfo"
  # The marker the device runner reads into the device facts: emulated latencies are not this board's speed.
  printf 'qemu-user %s on %s\n' "$(qemu-aarch64 --version | head -n 1 | awk '{print $3}')" "$(uname -m)" \
    > "$ROOT/etc/aiotbench-emulated"
  mkdir -p "$DIR/bin" "$DIR/binfmt"
  # Runs inside the private user+mount namespace: binfmt, mounts, chroot. $1 = the command ("" = login shell).
  cat > "$DIR/bin/board-enter" <<EOF
#!/bin/bash
set -e
mount -t binfmt_misc binfmt_misc "$DIR/binfmt" 2>/dev/null \\
  || { echo "arm-board: this kernel cannot give a namespace its own binfmt_misc (needs Linux >= 6.7)" >&2; exit 3; }
printf '%s' ':aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:$DIR/qemu-aarch64-static:F' > "$DIR/binfmt/register"
mount --rbind /proc "$ROOT/proc"
mount --bind "$DIR/cpuinfo" "$ROOT/proc/cpuinfo"
mount --rbind /sys "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# qemu emulates the Cortex-A72 the cpuinfo names (a Pi 4), not its default "max" CPU: with SVE/SME advertised the
# runtimes pick SVE kernels, which qemu runs an order of magnitude slower (OpenVINO ~14x) than NEON ones.
export QEMU_CPU=$BOARD_CPU
if [ -z "\$1" ]; then exec chroot "$ROOT" /bin/sh -l; fi
exec chroot "$ROOT" /bin/sh -c "\$1"
EOF
  # sshd's ForceCommand: every session (commands, sftp subsystem, shells) runs inside the board.
  cat > "$DIR/bin/board-session" <<EOF
#!/bin/bash
exec unshare --user --map-root-user --mount --propagation private -- "$DIR/bin/board-enter" "\${SSH_ORIGINAL_COMMAND:-}"
EOF
  chmod 755 "$DIR/bin/board-enter" "$DIR/bin/board-session"
}

build() {
  check_machine
  build_root
  extract_qemu_static
  install_wheels main "$ROOT/usr/lib/python3/dist-packages" $(main_packages)
  build_rpi_env
  write_board_files
  local out
  out=$(run_in_board 'uname -m' 2>&1) || { [ $? = 3 ] && cannot "$out"; die "board does not start: $out"; }
  [ "$out" = aarch64 ] || die "board says uname -m = $out, expected aarch64"
}

run_in_board() {
  unshare --user --map-root-user --mount --propagation private -- "$DIR/bin/board-enter" "$*"
}

# -- sshd ----------------------------------------------------------------------------------------------------------
sshd_pid() {  # the running board sshd's PID, or nothing
  local pid
  pid=$(cat "$SSHD_DIR/sshd.pid" 2>/dev/null) || return 0
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$SSHD_DIR/sshd_config"; then
    echo "$pid"
  fi
}

free_port() {  # the board's previous port when it is still free (a restarted board keeps its address)
  python3 - "$(cat "$SSHD_DIR/port" 2>/dev/null || echo 0)" <<'PY'
import socket, sys
for port in (int(sys.argv[1]), 0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as sshd binds: a closed session's TIME_WAIT is no owner
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(s.getsockname()[1])
    break
PY
}

start_sshd() {
  [ -n "$(sshd_pid)" ] && return 0
  local sshd
  sshd=$(command -v sshd || echo /usr/sbin/sshd)
  [ -x "$sshd" ] || cannot "sshd missing (apt-get install openssh-server)"
  mkdir -p "$SSHD_DIR"
  chmod 700 "$SSHD_DIR"
  [ -f "$SSHD_DIR/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C aiotbench-board-host -f "$SSHD_DIR/host_key"
  [ -f "$SSHD_DIR/user_key" ] || ssh-keygen -q -t ed25519 -N '' -C aiotbench-board-user -f "$SSHD_DIR/user_key"
  cp "$SSHD_DIR/user_key.pub" "$SSHD_DIR/authorized_keys"
  local port
  port=$(free_port)
  cat > "$SSHD_DIR/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_key
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
Subsystem sftp /usr/lib/openssh/sftp-server
ForceCommand $DIR/bin/board-session
LogLevel ERROR
EOF
  mkdir -p /run/sshd  # sshd's privilege-separation directory (what its service unit creates)
  "$sshd" -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/sshd.log" || die "sshd did not start: $(tail -n 1 "$SSHD_DIR/sshd.log")"
  echo "$port" > "$SSHD_DIR/port"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_key.pub")" > "$SSHD_DIR/known_hosts"
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "sshd does not answer on 127.0.0.1:$port"
}

descendants() {  # every process below PID, from one pass over /proc/*/stat (pid, then ppid after "(comm)")
  local f line
  for f in /proc/[0-9]*/stat; do
    { read -r line < "$f"; } 2>/dev/null || continue  # a process may end while we look
    echo "$line"
  done | awk -v root="$1" '
    { pid = $1; sub(/^.*\) /, ""); parent[pid] = $2 }
    END {
      want[root] = 1
      do { grown = 0
           for (p in parent) if ((parent[p] in want) && !(p in want)) { want[p] = 1; grown = 1 }
      } while (grown)
      for (p in want) if (p != root) print p
    }'
}

stop_sshd() {
  # The listener and every session under it (sessions outlive a killed listener): a board that goes away.
  local pid
  pid=$(sshd_pid)
  [ -n "$pid" ] || return 0
  local tree
  tree="$pid $(descendants "$pid" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  kill -9 $tree 2>/dev/null || true
  rm -f "$SSHD_DIR/sshd.pid"
}

spec() { echo "ssh://root@127.0.0.1:$(cat "$SSHD_DIR/port")"; }

require_up() { [ -n "$(sshd_pid)" ] || fail_args "the board is not up (scripts/arm-board.sh up)"; }

with_lock() {  # one builder at a time per board folder (parallel test sessions, two shells)
  exec 9>"$DIR/.lock"
  flock -w 600 9 || die "another arm-board.sh holds $DIR/.lock"
  "$@"
}

case "$CMD" in
  up) with_lock build; with_lock start_sshd
      say "up: $(spec) (emulated aarch64, $(cat "$ROOT/etc/aiotbench-emulated"))"
      say "run: pytest --aiotbench \$(scripts/arm-board.sh args)" ;;
  build) with_lock build ;;
  down) stop_sshd ;;
  destroy) stop_sshd
           # only a folder this script made: never whatever --dir happened to name
           [ -f "$DIR/root.done" ] || [ -f "$DIR/.lock" ] || die "$DIR does not look like a board folder"
           rm -rf "$DIR" ;;
  status) if [ -n "$(sshd_pid)" ]; then echo "up $(spec) pid $(sshd_pid) dir $DIR"; else echo "down (dir $DIR)"; exit 1; fi ;;
  spec) require_up; spec ;;
  args) require_up
        echo "--device=$(spec) --aiotbench-ssh-key=$SSHD_DIR/user_key --aiotbench-ssh-known-hosts=$SSHD_DIR/known_hosts" ;;
  env) require_up
       printf 'ARM_BOARD_SPEC=%s\nARM_BOARD_KEY=%s\nARM_BOARD_KNOWN_HOSTS=%s\nARM_BOARD_PID=%s\nARM_BOARD_ROOT=%s\n' \
         "$(spec)" "$SSHD_DIR/user_key" "$SSHD_DIR/known_hosts" "$(sshd_pid)" "$ROOT" ;;
  run) [ -x "$DIR/bin/board-enter" ] || die "the board is not built (scripts/arm-board.sh up)"; run_in_board "$*" ;;
  can-emulate) check_machine; echo yes ;;
  *) die "unknown command $CMD (up, down, status, args, env, spec, run CMD, build, destroy, can-emulate)" ;;
esac
