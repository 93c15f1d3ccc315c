#!/usr/bin/env bash
# Build a reproducible OCI image layout of Debian's busybox-static.
#
#   examples/images/build.sh [OUT_DIR]      (default: examples/images/busybox)
#
# The layout holds one single-layer image tagged `latest`: /bin/busybox, one symlink
# per applet (from `busybox --list-full`), /etc/passwd, /etc/group and the usual empty
# directories. Stack files refer to it as `image = "oci:../../images/busybox:latest"`.
#
# Only coreutils, tar, gzip and sha256sum are used. Every mtime, owner and mode is
# fixed, so two runs produce byte-identical blobs (same digests); the result replaces
# OUT_DIR atomically, so running it again is harmless.
set -euo pipefail

BUSYBOX=${BUSYBOX:-/bin/busybox}
EPOCH=${SOURCE_DATE_EPOCH:-1704067200} # 2024-01-01T00:00:00Z
CREATED=2024-01-01T00:00:00Z
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/busybox}

if [[ ! -x $BUSYBOX ]]; then
    echo "build.sh: $BUSYBOX not found; install it with: apt-get install -y busybox-static" >&2
    exit 1
fi
if ! "$BUSYBOX" --list-full >/dev/null 2>&1; then
    echo "build.sh: $BUSYBOX has no --list-full; it must be busybox-static" >&2
    exit 1
fi

case $(uname -m) in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    armv7l) arch=arm ;;
    i?86) arch=386 ;;
    ppc64le) arch=ppc64le ;;
    s390x) arch=s390x ;;
    riscv64) arch=riscv64 ;;
    *) echo "build.sh: unknown machine $(uname -m)" >&2; exit 1 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/busybox-oci.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
layout=$work/layout
umask 022

# --- the root filesystem -------------------------------------------------------
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var,home}
cp "$BUSYBOX" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
"$BUSYBOX" --list-full | while IFS= read -r applet; do
    [[ -z $applet || $applet == bin/busybox ]] && continue
    [[ -e $root/$applet || -L $root/$applet ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

# --- blobs ---------------------------------------------------------------------
mkdir -p "$layout/blobs/sha256"

# put FILE: move FILE into the blob store, print "sha256:HEX SIZE".
put() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$layout/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

# Sorted names, fixed mtime, numeric root owner: the tarball depends only on content.
(cd "$root" && ls -A | LC_ALL=C sort) >"$work/top"
tar -C "$root" --format=gnu --sort=name --mtime="@$EPOCH" --owner=0 --group=0 \
    --numeric-owner -cf "$work/layer.tar" -T "$work/top"
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
read -r layer_digest layer_size < <(put "$work/layer.tar.gz")

printf '%s' "{\"created\":\"$CREATED\",\"architecture\":\"$arch\",\"os\":\"linux\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\
\"Cmd\":[\"sh\"]},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$diff_id\"]},\
\"history\":[{\"created\":\"$CREATED\",\"created_by\":\"examples/images/build.sh\"}]}" >"$work/config.json"
read -r config_digest config_size < <(put "$work/config.json")

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$layer_digest\",\"size\":$layer_size}]}" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put "$work/manifest.json")

printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$manifest_digest\",\"size\":$manifest_size,\
\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\
\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}" >"$layout/index.json"

# --- replace OUT_DIR ------------------------------------------------------------
mkdir -p "$(dirname "$out")"
staged=$(mktemp -d "$(dirname "$out")/.busybox-new.XXXXXX")
cp -a "$layout/." "$staged/"
chmod 0755 "$staged"
# The build is reproducible: leave an identical image alone, so a stack that
# is reading it (a concurrent `stack up`, another test) never sees it vanish.
if [ -d "$out" ] && diff -r "$staged" "$out" >/dev/null 2>&1; then
  rm -rf "$staged"
  echo "unchanged $out ($manifest_digest)"
  exit 0
fi
rm -rf "$out"
mv "$staged" "$out"
echo "built $out ($manifest_digest)"
