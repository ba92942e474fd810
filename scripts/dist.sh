#!/usr/bin/env bash
# Builds a release into dist/ (docs/packaging.md): the static edgefaas
# binary for linux amd64/arm64/armv7 (the platform) and darwin/windows
# amd64/arm64 (the client), their archives, the Debian packages, the
# multi-arch OCI image (layout and tar), the Kubernetes manifests naming
# that image's tag, and SHA256SUMS over everything. CGO is off: each binary
# runs on any OS of its platform.
#
#   scripts/dist.sh               # into dist/
#   DIST_DIR=/tmp/d VERSION=v1.2.3 IMAGE=registry.example/edgefaas scripts/dist.sh
#   DIST_PLATFORMS="linux/amd64 windows/amd64" scripts/dist.sh
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
DIST_DIR=${DIST_DIR:-dist}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
IMAGE=${IMAGE:-edgefaas}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
LDFLAGS="-s -w -X github.com/edgefaas/edgefaas/internal/version.version=$VERSION"

# The binaries build with the patched dependencies (patches/README.md).
bash scripts/patch-deps.sh
rm -rf "$DIST_DIR"
mkdir -p "$DIST_DIR/bin"
root=$(pwd)
dist=$(cd "$DIST_DIR" && pwd)
mkdir -p build
(cd tools/dist && "$GO" build -o "$root/build/dist-tool" .)
tool="$root/build/dist-tool"

# DIST_PLATFORMS narrows the release to some of them (tests/arch builds one
# per OS and every linux architecture, not all seven).
PLATFORMS=${DIST_PLATFORMS:-linux/amd64 linux/arm64 linux/arm/v7 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}

image_args=()
for p in $PLATFORMS; do
  IFS=/ read -r os arch variant <<<"$p"
  name=$arch goarm=""
  if [ "$arch" = arm ]; then goarm=${variant#v}; name=armv$goarm; fi
  exe="$dist/bin/edgefaas-$os-$name"
  [ "$os" = windows ] && exe="$exe.exe"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$goarm \
    "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$exe" ./cmd/edgefaas
  "$tool" archive -version "$VERSION" -os "$os" -arch "$name" -binary "$exe" -root "$root" -out "$dist"
  if [ "$os" = linux ]; then
    "$tool" deb -version "$VERSION" -arch "$name" -binary "$exe" -root "$root" -out "$dist"
    image_args+=(-binary "$p=$exe")
  fi
done
ca=()
[ -r /etc/ssl/certs/ca-certificates.crt ] && ca=(-ca-certs /etc/ssl/certs/ca-certificates.crt)
"$tool" image -version "$VERSION" -name "$IMAGE" "${ca[@]}" "${image_args[@]}" \
  -layout "$dist/edgefaas-$VERSION-oci" -tar "$dist/edgefaas-$VERSION-oci.tar"

# The manifests name the image by this release's tag.
mkdir -p "$dist/kubernetes"
for f in deploy/kubernetes/*.yaml; do
  sed "s|@EDGEFAAS_IMAGE@|$IMAGE:$VERSION|g" "$f" > "$dist/kubernetes/$(basename "$f")"
done
rm -rf "$dist/bin"
"$tool" sums "$dist"
echo "version $VERSION; checksums in $DIST_DIR/SHA256SUMS"
