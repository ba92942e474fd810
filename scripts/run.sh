#!/usr/bin/env bash
# `make run`: start the whole platform locally (core and worker in one
# process, `edgefaas dev`, on its default data directory), upload the hello
# example and invoke it, then keep the platform running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/edgefaas
addr=${EDGEFAAS_HTTP_ADDR:-127.0.0.1:4000}

"$bin" dev --http-addr "$addr" &
dev=$!
trap 'kill $dev 2>/dev/null; wait $dev 2>/dev/null' EXIT INT TERM

# `edgefaas dev` writes the client context dev (host + guest token) once it
# listens; wait for the API to answer. The commands name the context: a
# site the user saved stays their current one.
for _ in $(seq 1 100); do
  if "$bin" --context dev fn list >/dev/null 2>&1; then break; fi
  if ! kill -0 $dev 2>/dev/null; then echo "make run: edgefaas dev exited" >&2; exit 1; fi
  sleep 0.1
done

echo
echo "==> uploading examples/hello (build/wasm/hello.wasm)"
if "$bin" --context dev fn get hello >/dev/null 2>&1; then
  "$bin" --context dev fn update hello build/wasm/hello.wasm
else
  "$bin" --context dev fn create hello build/wasm/hello.wasm
fi
echo "==> edgefaas fn invoke hello -a name=edge"
"$bin" --context dev fn invoke hello -a name=edge
echo
echo "The platform is running at http://$addr (Ctrl-C stops it)."
echo "Try: $bin --context dev fn list, $bin --context dev node list, $bin --context dev fn invoke hello -a name=you"
wait $dev
