#!/usr/bin/env bash
# Image pull and import benchmark, every peer in the same run, against a local
# registry (Debian's docker-registry on 127.0.0.1; no other network):
#
#   stack pull            vs  skopeo copy (to an OCI layout) + umoci unpack
#                         vs  podman pull (when podman is installed)
#   stack image import    vs  podman load           (docker-archive)
#   stack image import    vs  tar -xzf of the same layers (unpack throughput)
#
#   bench/pull-import.sh [RUNS]        (needs root, hyperfine, skopeo, umoci)
#
# The image has 5 gzip layers made from host directories (bench/make-image.sh).
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
stack=${STACK:-$repo/target/release/stack}
[[ -x $stack ]] || { echo "build first: cargo build --release" >&2; exit 1; }
for tool in hyperfine skopeo umoci docker-registry; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y $tool)" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/stack-bench.XXXXXX)
registry_pid=""
cleanup() {
    [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

dirs=(/usr/share/doc /usr/share/man /usr/lib/python3.11 /usr/lib/python3 /usr/lib/gcc)
"$here/make-image.sh" "$work/layout" bench "${dirs[@]}"
du -sh "$work/layout/blobs" | sed 's/^/compressed image: /'

port=$(( 20000 + RANDOM % 20000 ))
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done
ref=127.0.0.1:$port/bench:latest
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://$ref"
skopeo copy -q "oci:$work/layout:bench" "docker-archive:$work/bench.tar:bench:latest"

podman=(podman --root "$work/p/root" --runroot "$work/p/run" --storage-driver overlay --events-backend file)
pull_cmds=(
    "$stack --root $work/s pull --quiet $ref"
    "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/o:latest && umoci unpack --image $work/o:latest $work/bundle"
)
pull_prep=("rm -rf $work/s" "rm -rf $work/o $work/bundle")
pull_names=("stack pull" "skopeo copy + umoci unpack")
import_cmds=("$stack --root $work/s load $work/bench.tar")
import_prep=("rm -rf $work/s")
import_names=("stack image import")
if command -v podman >/dev/null; then
    pull_cmds+=("${podman[*]} pull -q --tls-verify=false $ref")
    pull_prep+=("rm -rf $work/p")
    pull_names+=("podman pull")
    import_cmds+=("${podman[*]} load -q -i $work/bench.tar")
    import_prep+=("rm -rf $work/p")
    import_names+=("podman load")
else
    echo "podman not installed: skipping the podman columns"
fi

args=()
for i in "${!pull_cmds[@]}"; do args+=(--prepare "${pull_prep[$i]}" -n "${pull_names[$i]}" "${pull_cmds[$i]}"); done
hyperfine --runs "$runs" --export-markdown "$work/pull.md" "${args[@]}"

args=()
for i in "${!import_cmds[@]}"; do args+=(--prepare "${import_prep[$i]}" -n "${import_names[$i]}" "${import_cmds[$i]}"); done
hyperfine --runs "$runs" --export-markdown "$work/import.md" "${args[@]}"

# Unpack throughput: the same five gzip layers, tar -x versus stack's import of
# the layout (which also copies and verifies the compressed blobs).
layers=$(sed 's/.*"layers":\[//; s/\]}.*//' "$work/layout/blobs/sha256/$(sed 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/' "$work/layout/index.json")" | grep -o 'sha256:[0-9a-f]*' | cut -c8-)
untar="mkdir -p $work/x && for l in $(echo $layers); do tar -xzf $work/layout/blobs/sha256/\$l -C $work/x; done"
hyperfine --runs "$runs" --export-markdown "$work/unpack.md" \
    --prepare "rm -rf $work/x" -n "tar -xzf (5 layers)" "$untar" \
    --prepare "rm -rf $work/s" -n "stack load (OCI layout)" "$stack --root $work/s load $work/layout"

for f in pull import unpack; do echo; cat "$work/$f.md"; done
