#!/usr/bin/env bash
# Two reconcile latencies of a 20-service stack (busybox sleep, init):
# - a second `stack up -d` with nothing changed (plan only, no container work);
# - with the daemon watching (`up -d --watch`), the time from writing a file
#   that changes one service's environment to its new container's state.json
#   (the init created by the runtime, about to exec).
# Polls state.json in a shell loop (~1 ms per round). Usage: bench/watch-edit.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
n=20
stack=${STACK:-target/release/stack}
[ -x "$stack" ] || cargo build --release
[ -d examples/images/busybox ] || examples/images/build.sh
work=$(mktemp -d /tmp/stack-watch.XXXXXX)
root=$work/root
file=$work/stack.toml
cleanup() { "$stack" --root "$root" -f "$file" down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
{
  echo 'name = "benchw"'
  for i in $(seq 1 $n); do
    printf '[services.s%d]\nimage = "oci:%s/examples/images/busybox:latest"\n' "$i" "$PWD"
    printf 'command = ["sleep", "3600"]\nrestart = "always"\ninit = true\n'
  done
} > "$file"
ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
"$stack" --root "$root" -f "$file" up -d --watch >/dev/null
noop=""
for _ in $(seq 1 "$runs"); do
  t0=$(ms); "$stack" --root "$root" -f "$file" up -d --watch >/dev/null 2>&1; noop+="$(( $(ms) - t0 )) "
done
state="$root/run/runtime/benchw-s1-1/state.json"
pid_of() { sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$state" 2>/dev/null; }
edit=""
for v in $(seq 1 "$runs"); do
  before=$(pid_of)
  sed -i "/^\[services.s1\]/,/^\[/{/^environment = /d}" "$file"
  sed -i "s/^\[services.s1\]$/[services.s1]\nenvironment = { X = \"$v\" }/" "$file"
  t0=$(ms)
  while now=$(pid_of); [ -z "$now" ] || [ "$now" = "$before" ]; do
    [ $(( $(ms) - t0 )) -lt 20000 ] || { echo "no new container after 20 s" >&2; exit 1; }
  done
  edit+="$(( $(ms) - t0 )) "
  sleep 1
done
printf 'no-change up -d: median %s ms (%s)\n' "$(echo "$noop" | tr ' ' '\n' | grep . | median)" "$noop"
printf 'edit -> new container (watch): median %s ms (%s)\n' "$(echo "$edit" | tr ' ' '\n' | grep . | median)" "$edit"
