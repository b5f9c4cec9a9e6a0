#!/usr/bin/env bash
# System tools the test suite drives for real: the adb server (remote-device tests), sshd (SSH-board tests),
# Chromium (HTML report rendering), qemu-user and mmdebstrap (the emulated ARM64 board, scripts/arm-board.sh).
# Installed with apt-get when we are root; otherwise the tests that need a missing tool skip with the reason.
set -u
need=()
command -v adb >/dev/null 2>&1 || need+=(adb)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "apt-get failed: tests needing ${need[*]} will skip"
else
  echo "not installed: ${need[*]} (tests needing them will skip; as root: apt-get install ${need[*]})"
fi
exit 0
