#!/usr/bin/env bash
# `make test-deps`: installs what testing edgefaas needs beyond Go, git and
# gcc (building needs none of it: scripts/patch-deps.sh), from Debian's
# packages: clang, lld and wasi-libc for the C example functions,
# iproute2 for the network-namespace tests, mosquitto (an MQTT broker) and
# pouchdb-server (a CouchDB-compatible server, from npm on Debian's nodejs)
# for the trigger and sink tests, lintian for the Debian package's test.
# Idempotent and quiet: it does nothing when everything
# is present.
set -euo pipefail

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need+=(lld)
[ -e /usr/include/wasm32-wasi/stdio.h ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev-wasm32)
# ip and mosquitto live in /usr/sbin, often not on a normal user's PATH.
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
npm_need=()
command -v pouchdb-server >/dev/null 2>&1 || npm_need+=(pouchdb-server)
[ ${#need[@]} -eq 0 ] && [ ${#npm_need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]} ${npm_need[*]}; run as root (apt-get install ${need[*]}; npm install -g ${npm_need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}" >&2
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ${#npm_need[@]} -gt 0 ]; then
  echo "install-deps: installing ${npm_need[*]} (npm)" >&2
  npm install -g --silent --no-audit --no-fund "${npm_need[@]}" >/dev/null 2>&1 ||
    echo "install-deps: npm could not install ${npm_need[*]}; the sink tests that need it are skipped" >&2
fi
