#!/usr/bin/env bash
# Runs a command in a new network namespace whose only interface is
# loopback, so nothing it does can reach another machine. `make
# test-patched` runs ergo's own upstream tests through it (`go test
# -exec`): they start nodes without DisableAnonMetrics, listening on all
# interfaces (the name service on *:4369), and a node that lives a minute
# looks up and sends to metrics.ergo.services.
#
#   scripts/loopback-only.sh CMD [ARGS...]
#
# As root it uses `unshare -n`; otherwise a user namespace too (`unshare -rn`).
# Exit status: the command's; 1 with the reason on stderr if no namespace can
# be made (the tests are not run outside one).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
flags=-n
[ "$(id -u)" -eq 0 ] || flags=-rn
if ! unshare $flags true 2>/dev/null; then
  echo "loopback-only: cannot make a network namespace (unshare $flags); not running $1 outside one" >&2
  exit 1
fi
exec unshare $flags -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
