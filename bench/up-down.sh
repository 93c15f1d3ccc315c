#!/usr/bin/env bash
# `stack up -d` / `stack down` of a 20-service stack vs docker-compose (and
# podman-compose where it runs), same content, same machine, same run.
# Needs: root, docker.io, docker-compose, skopeo; podman-compose optional.
# Usage: bench/up-down.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
n=20
stack=${STACK:-target/release/stack}
[ -x "$stack" ] || cargo build --release
[ -d examples/images/busybox ] || examples/images/build.sh
work=$(mktemp -d /tmp/stack-bench.XXXXXX)
root=$work/root
cleanup() {
  "$stack" --root "$root" -f "$work/stack.toml" down >/dev/null 2>&1 || true
  [ -n "${daemon_pid:-}" ] && { kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; }
  [ -n "${dockerd_pid:-}" ] && { docker-compose -f "$work/compose.yaml" -p benchc down -t 1 >/dev/null 2>&1 || true; kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# The same stack twice: stack's TOML and a compose.yaml.
{
  echo 'name = "benchs"'
  for i in $(seq 1 $n); do
    cat <<TOML
[services.s$i]
image = "oci:$PWD/examples/images/busybox:latest"
command = ["sleep", "3600"]
restart = "always"
init = true
mem_limit = "64M"
cpus = 0.5
TOML
  done
} > "$work/stack.toml"
{
  echo 'services:'
  for i in $(seq 1 $n); do
    cat <<YAML
  s$i:
    image: busybox:bench
    command: ["sleep", "3600"]
    restart: always
    init: true
    mem_limit: 64M
    cpus: 0.5
YAML
  done
} > "$work/compose.yaml"

ms() { date +%s%3N; }
time_it() { local t0; t0=$(ms); "$@" >/dev/null 2>&1; echo $(( $(ms) - t0 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A up down
for tool in stack docker; do up[$tool]=""; down[$tool]=""; done

if command -v dockerd >/dev/null && command -v docker-compose >/dev/null; then
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" -p "$work/docker.pid" -H "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$work/docker.sock"
  for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
  skopeo copy -q "oci:examples/images/busybox:latest" "docker-archive:$work/bb.tar:busybox:bench"
  docker load -q -i "$work/bb.tar" >/dev/null
fi

# The daemon runs throughout, as its systemd unit keeps it (without one, the
# first `up` starts it and it exits 2 s after the last container is gone).
"$stack" --root "$root" daemon >"$work/stack-daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$root/run/stack.sock" ] && break; sleep 0.05; done

for r in $(seq 1 "$runs"); do
  up[stack]+="$(time_it "$stack" --root "$root" -f "$work/stack.toml" up -d) "
  down[stack]+="$(time_it "$stack" --root "$root" -f "$work/stack.toml" down) "
  if [ -n "${dockerd_pid:-}" ]; then
    up[docker]+="$(time_it docker-compose -f "$work/compose.yaml" -p benchc up -d) "
    down[docker]+="$(time_it docker-compose -f "$work/compose.yaml" -p benchc down) "
  fi
done

report() {
  local what=$1 s d
  s=$(echo "$2" | tr ' ' '\n' | grep . | median)
  printf '%-5s stack %6s ms' "$what" "$s"
  if [ -n "$3" ]; then d=$(echo "$3" | tr ' ' '\n' | grep . | median); printf '   docker-compose %6s ms   ratio %.1fx' "$d" "$(echo "$d / $s" | bc -l)"; fi
  echo
}
echo "$n services, median of $runs runs"
report up "${up[stack]}" "${up[docker]}"
report down "${down[stack]}" "${down[docker]}"
