#!/usr/bin/env bash
# Installs qemu-user-static (and binfmt-support) from Debian's packages, so
# the arm64 and arm (v7) edgefaas binaries can run on an amd64 machine: the
# heterogeneity test in tests/arch runs them with qemu-aarch64-static and
# qemu-arm-static. Idempotent and quiet: it does nothing when they are
# present. Exit 0: ready; exit 1: cannot install, with the reason on stderr.
set -euo pipefail

need=()
if ! command -v qemu-aarch64-static >/dev/null 2>&1 || ! command -v qemu-arm-static >/dev/null 2>&1; then
  need+=(qemu-user-static)
fi
command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-qemu: missing ${need[*]}; run as root: apt-get install ${need[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-qemu: missing ${need[*]} and no apt-get on this system" >&2
  exit 1
fi
echo "install-qemu: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >/dev/null 2>&1; then
  echo "install-qemu: apt-get update failed (no network to the Debian mirror?)" >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
  echo "install-qemu: apt-get install ${need[*]} failed" >&2
  exit 1
fi
command -v qemu-aarch64-static >/dev/null 2>&1 && command -v qemu-arm-static >/dev/null 2>&1 || {
  echo "install-qemu: installed, but qemu-aarch64-static/qemu-arm-static are not on PATH" >&2
  exit 1
}
