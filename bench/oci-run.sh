#!/bin/sh
# Container start+stop latency: `stack oci run` vs `crun run` vs `runc run` of
# /bin/true from the same busybox bundle, in one hyperfine run; prints the ratio
# of each runtime to crun and the peak RSS of each runtime process during `run`.
#
# Usage: bench/oci-run.sh [path/to/stack]   (default: target/release/stack)
# ROUNDS (10) rounds of RUNS (20) runs per runtime.
# Needs root, hyperfine, crun, runc, busybox-static, python3.
#
# Notes for this host:
# - Config: the `stack oci spec` default (pid, net, ipc, uts, mount, cgroup
#   namespaces, default mounts, masked/read-only paths) with process.args
#   ["/bin/true"], terminal false, and an explicit cgroupsPath per runtime so the
#   three never share a cgroup. No rlimit is raised (no CAP_SYS_RESOURCE here).
# - State roots (--root) are on a tmpfs for all three runtimes, like their
#   defaults under /run; the bundle is on /tmp.
# - crun 1.8 refuses hybrid hosts whose cgroup2 tree offers any controller
#   ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2");
#   here /sys/fs/cgroup/unified offers hugetlb. So the whole benchmark (all three
#   runtimes alike) runs in a private mount namespace where that file is covered
#   by an empty one; the host is not changed.
set -eu

if [ -z "${OCI_BENCH_NS:-}" ]; then
    exec env OCI_BENCH_NS=1 unshare -m --propagation private "$0" "$@"
fi
UNIFIED=/sys/fs/cgroup/unified/cgroup.controllers
if [ -n "$(cat "$UNIFIED" 2>/dev/null)" ]; then
    EMPTY=$(mktemp /tmp/oci-bench-empty.XXXXXX)
    mount --bind "$EMPTY" "$UNIFIED"
    rm -f "$EMPTY"
fi

STACK=${1:-target/release/stack}
STACK=$(realpath "$STACK")
ROUNDS=${ROUNDS:-10}
RUNS=${RUNS:-20}
WORK=$(mktemp -d /tmp/oci-bench.XXXXXX)
trap 'umount "$WORK/state" 2>/dev/null; rm -rf "$WORK"' EXIT
# State roots on tmpfs, as each runtime's default root (/run/...) is; the
# bundle stays on /tmp. Private to this mount namespace.
mkdir -p "$WORK/state"
mount -t tmpfs -o size=64m bench-state "$WORK/state"

# The bundle: busybox-static with every applet as a symlink.
ROOTFS=$WORK/bundle/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev" "$ROOTFS/tmp" "$ROOTFS/etc"
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$ROOTFS/bin/$applet"
done
"$STACK" oci spec --bundle "$WORK/bundle"

# One config per runtime (same content, own cgroupsPath).
for rt in stack crun runc; do
    mkdir -p "$WORK/$rt"
    python3 - "$WORK/bundle/config.json" "$WORK/$rt/config.json" "$rt" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"]["path"] = sys.argv[1].rsplit("/", 1)[0] + "/rootfs"
c["linux"]["cgroupsPath"] = "/oci-bench/" + sys.argv[3]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
done

# Sanity: each runtime can run the bundle once.
for rt in stack crun runc; do
    case $rt in
        stack) cmd="$STACK --root $WORK/state/stack oci" ;;
        *) cmd="$rt --root $WORK/state/$rt" ;;
    esac
    $cmd run --bundle "$WORK/$rt" "bench-$rt" >/dev/null || { echo "$rt cannot run the bundle" >&2; exit 1; }
done

# Rounds of a few runs each, the three runtimes in turn: this VM's speed
# drifts over seconds, and one long block per runtime lets the drift decide the
# ratio. Every run of every round is pooled.
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    i=$((i + 1))
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/round-$i.json" \
        -n stack "$STACK --root $WORK/state/stack oci run --bundle $WORK/stack bench-stack" \
        -n crun "crun --root $WORK/state/crun run --bundle $WORK/crun bench-crun" \
        -n runc "runc --root $WORK/state/runc run --bundle $WORK/runc bench-runc" >/dev/null
done

python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
times = {}
for i in range(1, int(sys.argv[2]) + 1):
    for x in json.load(open(f"{sys.argv[1]}/round-{i}.json"))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
mean = {k: statistics.mean(v) for k, v in times.items()}
median = {k: statistics.median(v) for k, v in times.items()}
for name in ("stack", "crun", "runc"):
    t = times[name]
    print(f"{name:6} runs {len(t):4}  mean {mean[name]*1000:6.2f} ms  median {median[name]*1000:6.2f} ms"
          f"  min {min(t)*1000:6.2f} ms  ratio to crun: mean {mean[name]/mean['crun']:4.2f}x"
          f"  median {median[name]/median['crun']:4.2f}x")
PY

# Peak RSS of the runtime process itself (the container's /bin/true is tiny).
echo
for rt in stack crun runc; do
    case $rt in
        stack) cmd="$STACK --root $WORK/state/stack oci" ;;
        *) cmd="$rt --root $WORK/state/$rt" ;;
    esac
    rss=$(/usr/bin/time -f %M $cmd run --bundle "$WORK/$rt" "bench-$rt" 2>&1 >/dev/null | tail -n 1)
    echo "$rt peak RSS during run: ${rss} KiB"
done
for h in /sys/fs/cgroup/*/oci-bench /sys/fs/cgroup/oci-bench; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
