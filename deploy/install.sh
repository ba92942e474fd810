#!/usr/bin/env bash
# Installs edgefaas on a bare-metal edge node (Debian, Ubuntu, Raspberry Pi
# OS, any systemd Linux): the binary in /usr/local/bin, the systemd units,
# the settings in /etc/edgefaas, and a dedicated system user `edgefaas`.
# Idempotent: existing settings files are kept.
#
#   sudo deploy/install.sh core                       # the core node
#   sudo deploy/install.sh worker --join 10.0.0.5:4001 --join-token TOKEN
#   sudo deploy/install.sh core worker                # a single-box site
#
# Options:
#   --binary PATH       the edgefaas binary (default: dist/edgefaas-linux-ARCH
#                       for this machine, from `make dist`)
#   --join HOST:PORT    worker: the core's node address (written to worker.env)
#   --join-token TOKEN  worker: a one-time token from `edgefaas node token
#                       create` on the core (written to worker.env)
#   --cookie-file FILE  worker: the core's cookie (copied to /etc/edgefaas/cookie;
#                       joins only a core run with EDGEFAAS_NODE_JOIN=any)
#   --node-addr H:P     this node's address (written to the role's .env)
#   --no-start          install, but neither enable nor start the units
# Environment: DESTDIR installs under another root (packaging, tests; it
# implies --no-start and skips creating the user).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
DESTDIR=${DESTDIR:-}
roles=() binary="" join="" jointoken="" cookie="" nodeaddr="" start=1

die() { echo "install.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    core|worker) roles+=("$1") ;;
    --binary) binary=${2:?}; shift ;;
    --join) join=${2:?}; shift ;;
    --join-token) jointoken=${2:?}; shift ;;
    --cookie-file) cookie=${2:?}; shift ;;
    --node-addr) nodeaddr=${2:?}; shift ;;
    --no-start) start=0 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[ ${#roles[@]} -gt 0 ] || die "name a role: core, worker, or both"
[ -n "$DESTDIR" ] && start=0
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then die "run as root (or set DESTDIR)"; fi

case $(uname -m) in
  x86_64|amd64) arch=amd64 dist=amd64 ;;
  aarch64|arm64) arch=arm64 dist=arm64 ;;
  armv7l|armv8l|armhf) arch=arm dist=armv7 ;;
  *) die "unsupported machine $(uname -m): build with GOOS=linux GOARCH=... and pass --binary" ;;
esac
binary=${binary:-$root/dist/edgefaas-linux-$dist}
[ -x "$binary" ] || die "no binary at $binary: run 'make dist' or pass --binary"

if [ -z "$DESTDIR" ] && ! id edgefaas >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/edgefaas --no-create-home \
    --shell /usr/sbin/nologin --comment "edgefaas FaaS" edgefaas
fi

install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system"
install -d -m 0750 "$DESTDIR/etc/edgefaas"
install -m 0755 "$binary" "$DESTDIR/usr/local/bin/edgefaas.new"
mv -f "$DESTDIR/usr/local/bin/edgefaas.new" "$DESTDIR/usr/local/bin/edgefaas"

# set_env FILE KEY VALUE replaces (or appends) KEY=VALUE in an env file.
set_env() {
  if grep -q "^#\?$2=" "$1"; then sed -i "s|^#\?$2=.*|$2=$3|" "$1"; else echo "$2=$3" >> "$1"; fi
}

for role in "${roles[@]}"; do
  install -m 0644 "$here/systemd/edgefaas-$role.service" "$DESTDIR/etc/systemd/system/"
  env="$DESTDIR/etc/edgefaas/$role.env"
  if [ ! -e "$env" ]; then
    install -m 0640 "$here/systemd/$role.env" "$env"
    if [ "$role" = worker ]; then set_env "$env" EDGEFAAS_TAG "$arch"; fi
  fi
  if [ -n "$nodeaddr" ]; then set_env "$env" EDGEFAAS_NODE_ADDR "$nodeaddr"; fi
  if [ "$role" = worker ]; then
    if [ -n "$join" ]; then set_env "$env" EDGEFAAS_JOIN "$join"; fi
    if [ -n "$jointoken" ]; then set_env "$env" EDGEFAAS_JOIN_TOKEN "$jointoken"; fi
    if [ -n "$cookie" ]; then
      install -m 0640 "$cookie" "$DESTDIR/etc/edgefaas/cookie"
    elif [[ " ${roles[*]} " == *" core "* ]]; then
      # A single-box site: the worker reads the core's own cookie, so the
      # core admits cookie certificates (docs/install.md: moving to tokens).
      set_env "$env" EDGEFAAS_COOKIE_FILE /var/lib/edgefaas/core/cookie
      set_env "$env" EDGEFAAS_JOIN 127.0.0.1:4001
      set_env "$env" EDGEFAAS_NODE_ADDR 127.0.0.1:0
      set_env "$DESTDIR/etc/edgefaas/core.env" EDGEFAAS_NODE_JOIN any
    fi
  fi
done
if [ -z "$DESTDIR" ]; then
  chown -R root:edgefaas /etc/edgefaas
fi

echo "installed $("$binary" --version 2>/dev/null || echo edgefaas) for ${roles[*]} ($arch)"
if [ "$start" = 1 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  for role in "${roles[@]}"; do systemctl enable --now "edgefaas-$role.service"; done
  systemctl --no-pager --lines=0 status "${roles[@]/#/edgefaas-}" || true
  if [[ " ${roles[*]} " == *" core "* ]]; then
    echo "tokens: /var/lib/edgefaas/core/tokens; a worker joins with a token from 'edgefaas node token create'"
  fi
else
  echo "not started: edit /etc/edgefaas/*.env, then: systemctl daemon-reload && systemctl enable --now ${roles[*]/#/edgefaas-}"
fi
