#!/usr/bin/env bash
# Builds the JavaScript engine that edgefaas embeds: QuickJS (2021-03-27,
# from the npm package qjsc, which carries its C sources) with the runner
# internal/jsengine/runner/runner.c, compiled to wasm32-wasi, written to
# internal/jsengine/dist/engine.wasm for go:embed. docs/RATIONALE.md says
# why this engine and this source.
#
# The source is fetched with npm, pinned by version and checked against its
# sha256; patches/quickjs/*.patch are applied to it (git apply -p1). The
# engine's objects are cached under build/jsengine/ keyed by the source's
# checksum and the patches' and flags', so only the first build compiles QuickJS (about
# a minute on two cores); the runner is compiled and linked every time the
# runner, the key or the flags change (a second).
#
# Without npm or a clang that targets wasm32-wasi it says so in one line and
# exits 0: the binary is then built without JavaScript (it says so when a JS
# function is uploaded). JSENGINE_REQUIRED=1 (the test goals) makes that an
# error.
set -euo pipefail

PKG=qjsc@0.3.0
PKG_SHA256=4a9ed1852b334d842d5dac42d1782817ae26310b448de39532451fd45c9ba0ee
SRC_DIR=package/deps/quickjs_2021_03_27
QJS_VERSION=2021-03-27
CFLAGS=(--target=wasm32-wasi -O2 -D_GNU_SOURCE "-DCONFIG_VERSION=\"$QJS_VERSION\"")
# 1 MiB of stack (clang's default is 64 KiB); the runner lets QuickJS use
# 768 KiB of it and throws "InternalError: stack overflow" beyond.
LDFLAGS=(-mexec-model=reactor -s -Wl,-z,stack-size=1048576)

cd "$(dirname "$0")/.."
root=$PWD
out=$root/internal/jsengine/dist/engine.wasm

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

unavailable() {
  if [ "${JSENGINE_REQUIRED:-}" = 1 ]; then
    echo "build-jsengine: $1" >&2
    exit 1
  fi
  echo "build-jsengine: $1; building edgefaas without JavaScript functions"
  rm -f "$out"
  exit 0
}

bash scripts/have-wasi-clang.sh || unavailable "no clang that targets wasm32-wasi (wasi-libc, lld; scripts/install-deps.sh installs them)"

patches_sum=$( (echo "${CFLAGS[*]}"; cat patches/quickjs/*.patch) | sha256 | cut -c1-16)
key=${PKG_SHA256:0:16}-$patches_sum
cache=$root/build/jsengine/$key
if [ ! -f "$cache/objs.done" ]; then
  command -v npm >/dev/null 2>&1 || unavailable "no npm to fetch the QuickJS source ($PKG)"
  rm -rf "$cache"
  mkdir -p "$cache/fetch" "$cache/obj"
  (cd "$cache/fetch" && npm pack --silent "$PKG" >/dev/null 2>npm.log) ||
    unavailable "npm could not fetch $PKG ($(tail -1 "$cache/fetch/npm.log" 2>/dev/null))"
  tgz=$(ls "$cache"/fetch/*.tgz)
  got=$(sha256 "$tgz" | cut -d' ' -f1)
  if [ "$got" != "$PKG_SHA256" ]; then
    echo "build-jsengine: $PKG has sha256 $got, not the pinned $PKG_SHA256: refusing it" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$cache/fetch" "$SRC_DIR"
  mv "$cache/fetch/$SRC_DIR" "$cache/src"
  rm -rf "$cache/fetch"
  for p in patches/quickjs/*.patch; do
    # Outside any repository (build/ is inside this one), as a plain patch.
    (cd "$cache/src" && GIT_DIR=/nonexistent GIT_CEILING_DIRECTORIES="$cache" git apply -p1 "$root/$p")
  done
  echo "build-jsengine: compiling QuickJS $QJS_VERSION to wasm32-wasi (once; cached in build/jsengine/$key)"
  for f in quickjs cutils libregexp libunicode; do
    clang "${CFLAGS[@]}" -w -c "$cache/src/$f.c" -o "$cache/obj/$f.o" &
  done
  wait
  for f in quickjs cutils libregexp libunicode; do
    [ -f "$cache/obj/$f.o" ] || { echo "build-jsengine: compiling $f.c failed" >&2; exit 1; }
  done
  touch "$cache/objs.done"
fi

runner=internal/jsengine/runner/runner.c
link_key=$( (echo "$key ${CFLAGS[*]} ${LDFLAGS[*]}"; cat "$runner") | sha256 | cut -c1-16)
linked=$cache/engine-$link_key.wasm
if [ ! -f "$linked" ]; then
  clang "${CFLAGS[@]}" -I"$cache/src" -c "$runner" -o "$cache/runner.o"
  clang "${CFLAGS[@]}" "${LDFLAGS[@]}" -o "$linked.tmp" "$cache/runner.o" "$cache"/obj/*.o
  mv "$linked.tmp" "$linked"
fi
if ! cmp -s "$linked" "$out"; then
  cp "$linked" "$out.tmp" && mv "$out.tmp" "$out"
  echo "build-jsengine: internal/jsengine/dist/engine.wasm ($(wc -c < "$out") bytes)"
fi
