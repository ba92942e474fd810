#!/usr/bin/env bash
# Exits 0 when clang can build a WebAssembly (wasm32-wasi) command: clang
# itself, wasm-ld (lld), wasi-libc and the wasm32 builtins. Apple's clang,
# for one, has no wasm-ld. The Makefile skips the C example without it.
set -eu
command -v clang >/dev/null 2>&1 || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgefaas-wasi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' > "$tmp/t.c"
clang --target=wasm32-wasi -O2 -o "$tmp/t.wasm" "$tmp/t.c" >/dev/null 2>&1
