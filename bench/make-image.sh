#!/usr/bin/env bash
# Build an OCI image layout with one gzip layer per host directory, for benchmarks.
#
#   bench/make-image.sh OUT_DIR TAG DIR...
#
# Layers hold the directories with their absolute paths (minus the leading /).
# Reproducible (sorted names, fixed mtimes); uses coreutils, tar, gzip, sha256sum.
set -euo pipefail
out=$1 tag=$2
shift 2
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"
put() {
    local hex
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    mv "$1" "$work/blobs/sha256/$hex"
    echo "sha256:$hex $(stat -c %s "$work/blobs/sha256/$hex")"
}
layers="" diff_ids=""
for dir in "$@"; do
    tar -C / --format=posix --pax-option=delete=atime,delete=ctime --sort=name --mtime=@1704067200 \
        --numeric-owner -cf "$work/layer.tar" "${dir#/}"
    diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)\""
    gzip -n -6 "$work/layer.tar"
    read -r d s < <(put "$work/layer.tar.gz")
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s}"
done
printf '%s' "{\"architecture\":\"$arch\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}}" >"$work/config"
read -r cd cs < <(put "$work/config")
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd\",\"size\":$cs},\"layers\":[$layers]}" >"$work/manifest"
read -r md ms < <(put "$work/manifest")
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$md\",\"size\":$ms,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$tag\"}}]}" >"$work/index.json"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$work" "$out"
chmod 0755 "$out"
echo "built $out ($md)"
