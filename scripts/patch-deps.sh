#!/usr/bin/env bash
# Makes the patched copies of pinned dependencies that edgefaas builds with.
#
# Each folder patches/<module path>@<version>/ holds reviewed diffs (*.patch,
# applied in name order with `git apply -p1`) against that exact module
# version, and a README saying why and which upstream issue or PR each one
# tracks. This script copies the pristine module from the module cache
# (downloading it if needed), applies the diffs and leaves the result in
# build/patched-by-make-deps/<last path element>/, where go.mod's replace directives
# point. A stamp (hash of the version and the diffs) makes it a no-op when
# nothing changed; a changed diff rebuilds the copy from scratch.
#
# `make patch-deps` (and so build, examples, test, dist, bench and run)
# runs it. A plain `go build` without it fails with go's
# "replacement directory ./build/patched-by-make-deps/... does not exist":
# run `make patch-deps` (or this script).
#
# It needs go, git and POSIX tools only, as any user, on Linux and macOS
# (bash 3.2, BSD sed and cp, shasum where sha256sum is missing).
set -euo pipefail

# sha256 prints "<hex>  <name>" like sha256sum, which macOS may lack.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

cd "$(dirname "$0")/.."
root=$PWD
GO=${GO:-go}
out=$root/build/patched-by-make-deps
mkdir -p "$out"

# Driven by go.mod's replace directives, not by the folders under patches/:
# every replacement directory must exist, even for a module whose folder
# holds no diff yet (git keeps no empty folder), and a patch folder that
# go.mod does not name is reported rather than silently ignored.
replaces=$(sed -n 's|^[[:space:]]*\([^[:space:]]*\) \(v[^[:space:]]*\) => \./build/patched-by-make-deps/\([^[:space:]]*\)$|\1 \2 \3|p' go.mod)
for dir in patches/*/*/*@*/ patches/*/*@*/; do
  [ -d "$dir" ] || continue
  spec=${dir#patches/}; spec=${spec%/}
  if ! grep -qx "${spec%@*} ${spec##*@} .*" <<<"$replaces"; then
    echo "patch-deps: $dir is not named by a replace directive in go.mod" >&2
    exit 1
  fi
done

while read -r mod ver name; do
  [ -n "$mod" ] || continue
  spec=$mod@$ver                # e.g. github.com/tetratelabs/wazero@v1.12.0
  dir=patches/$spec
  dest=$out/$name               # build/patched-by-make-deps/wazero
  shopt -s nullglob
  diffs=("$dir"/*.patch)
  shopt -u nullglob
  stamp=$( { echo "$spec"; for d in ${diffs[@]+"${diffs[@]}"} "$dir/postpatch.sh"; do [ ! -f "$d" ] || sha256 "$d"; done; } | sha256 | cut -d' ' -f1)
  if [ -f "$dest/.edgefaas-patched" ] && [ "$(cat "$dest/.edgefaas-patched")" = "$stamp" ]; then
    continue
  fi

  # The pristine module: go mod download outside any module, so that this
  # works before the replace targets exist.
  src=$(cd /tmp && GOFLAGS=-mod=mod GO111MODULE=on "$GO" mod download -json "$mod@$ver" </dev/null |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  if [ -z "$src" ] || [ ! -d "$src" ]; then
    echo "patch-deps: cannot download $mod@$ver" >&2
    exit 1
  fi

  work=$(mktemp -d "${TMPDIR:-/tmp}/edgefaas-patch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cp -R "$src/." "$work/"
  chmod -R u+w "$work"
  # ${a[@]+...}: bash before 4.4 (macOS's 3.2) calls an empty array unbound.
  for d in ${diffs[@]+"${diffs[@]}"}; do
    if ! (cd "$work" && git apply -p1 --whitespace=nowarn "$root/$d" </dev/null); then
      echo "patch-deps: $d does not apply to $mod@$ver" >&2
      exit 1
    fi
  done
  # An optional hook (postpatch.sh beside the diffs) runs in the copy with
  # PATCH_STAMP set, e.g. to stamp the module's own version string.
  if [ -f "$dir/postpatch.sh" ]; then
    (cd "$work" && PATCH_STAMP=$stamp MODULE_VERSION=$ver bash "$root/$dir/postpatch.sh")
  fi
  echo "$stamp" > "$work/.edgefaas-patched"
  rm -rf "$dest"
  mv "$work" "$dest"
  trap - EXIT
  echo "patch-deps: $mod@$ver with ${#diffs[@]} patch(es) in build/patched-by-make-deps/$name" >&2
done <<<"$replaces"
