#!/usr/bin/env bash
# Cross-compiles the static edgefaas binary for the edge: linux/amd64,
# linux/arm64 and linux/arm (v7, e.g. a Raspberry Pi 2/3 on a 32-bit OS).
# CGO is off, so each binary runs on any Linux of its architecture (glibc,
# musl, distroless). The version is stamped in (`edgefaas --version`).
#
#   scripts/dist.sh               # into dist/
#   DIST_DIR=/tmp/d scripts/dist.sh
#   VERSION=v1.2.3 PLATFORMS="linux/arm64" scripts/dist.sh
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
DIST_DIR=${DIST_DIR:-dist}
PLATFORMS=${PLATFORMS:-"linux/amd64 linux/arm64 linux/arm/v7"}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}

# The binaries build with the patched dependencies (patches/README.md):
# make sure their copies are current (a no-op when they are).
bash scripts/patch-deps.sh
mkdir -p "$DIST_DIR"
printf '%-28s %12s  %s\n' binary bytes MiB
for p in $PLATFORMS; do
  IFS=/ read -r os arch variant <<<"$p"
  name="edgefaas-$os-$arch"
  goarm=""
  if [ "$arch" = arm ]; then
    variant=${variant:-v7}
    goarm=${variant#v}
    name="edgefaas-$os-armv$goarm"
  fi
  out="$DIST_DIR/$name"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$goarm \
    "$GO" build -trimpath -ldflags "-s -w -X github.com/edgefaas/edgefaas/internal/version.version=$VERSION" -o "$out" ./cmd/edgefaas
  size=$(stat -c %s "$out")
  printf '%-28s %12d  %.1f\n' "$name" "$size" "$(awk "BEGIN{print $size/1048576}")"
done
(cd "$DIST_DIR" && sha256sum edgefaas-* > SHA256SUMS)
echo "version $VERSION; checksums in $DIST_DIR/SHA256SUMS"
