#!/usr/bin/env bash
# Memory of the supervisor: RSS (and PSS, which splits shared pages fairly) of
# `stack daemon` idle (nothing running) and of the daemon plus every
# stack-monitor with N containers running, against dockerd +
# containerd + containerd-shim (docker-compose) with the same N containers, in
# the same run. podman + conmon is measured when podman is installed (not in
# .ci/setup; `apt-get install podman` before running to include it).
# Needs: root, docker.io, docker-compose, skopeo. Usage: bench/rss.sh [N] [N2]
# (N defaults to 20). With N2, stack is also measured with N2 containers and
# the slope (growth per extra container, N -> N2) is printed: what grows per
# container as opposed to a one-off cost of the first ones.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
n2=${2:-}
stack=${STACK:-target/release/stack}
[ -x "$stack" ] || cargo build --release
[ -d examples/images/busybox ] || examples/images/build.sh
work=$(mktemp -d /tmp/stack-rss.XXXXXX)
root=$work/root
cleanup() {
  "$stack" --root "$root" -f "$work/stack.toml" down >/dev/null 2>&1 || true
  "$stack" --root "$root" -f "$work/empty.toml" down >/dev/null 2>&1 || true
  if command -v podman >/dev/null; then
    podman --root "$work/podman" --runroot "$work/podman-run" pod rm -f -a >/dev/null 2>&1 || true
    podman --root "$work/podman" --runroot "$work/podman-run" rm -f -a >/dev/null 2>&1 || true
  fi
  if [ -n "${dockerd_pid:-}" ]; then
    docker-compose -f "$work/compose.yaml" -p rssc down -t 1 >/dev/null 2>&1 || true
    kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

stack_file() { # count
  echo 'name = "rsss"'
  for i in $(seq 1 "$1"); do
    printf '[services.s%d]\nimage = "oci:%s/examples/images/busybox:latest"\n' "$i" "$PWD"
    printf 'command = ["sleep", "3600"]\nrestart = "always"\ninit = true\n'
  done
}
stack_file "$n" > "$work/stack.toml"
{
  echo 'services:'
  for i in $(seq 1 "$n"); do
    printf '  s%d:\n    image: busybox:rss\n    command: ["sleep", "3600"]\n    restart: always\n    init: true\n' "$i"
  done
} > "$work/compose.yaml"

# Sum of VmRSS and of Pss (KiB) over the given pids.
mem() {
  local rss=0 pss=0 p
  for p in "$@"; do
    [ -r "/proc/$p/smaps_rollup" ] || continue
    rss=$((rss + $(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")))
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
  done
  echo "$rss $pss"
}
pids_of() { pgrep -f -- "$1" || true; }
line() { # what rss pss count
  printf '%-34s RSS %7.1f MiB  PSS %7.1f MiB  (%s processes)\n' "$1" "$(echo "$2/1024" | bc -l)" "$(echo "$3/1024" | bc -l)" "$4"
}
settle() { sleep 2; }

# stack with $1 containers running (the stack file $2): prints the daemon's,
# the monitors' and the total memory; leaves the total in st_total/st_ptotal.
measure_stack() {
  "$stack" --root "$root" -f "$2" up -d >/dev/null
  settle
  daemon=$(pids_of "$stack --root $root daemon")
  # A monitor's argv names its container's cgroup, under the stack's slice.
  monitors=$(pgrep -f "^stack-monitor .*/rsss\.slice/" || true)
  read -r drss dpss <<<"$(mem $daemon)"
  read -r mrss mpss <<<"$(mem $monitors)"
  nm=$(echo $monitors | wc -w)
  line "stack daemon ($1 running)" "$drss" "$dpss" "$(echo $daemon | wc -w)"
  line "stack-monitor x$nm" "$mrss" "$mpss" "$nm"
  st_total=$((drss + mrss)); st_ptotal=$((dpss + mpss))
  line "stack total ($1 running)" "$st_total" "$st_ptotal" "$(( $(echo $daemon | wc -w) + nm ))"
}
measure_stack "$n" "$work/stack.toml"
if [ -n "$n2" ]; then
  first=$st_total; pfirst=$st_ptotal
  # The same file grown (one stack, its first $n containers left as they are).
  stack_file "$n2" > "$work/stack.toml"
  measure_stack "$n2" "$work/stack.toml"
  printf 'stack per extra container (%d -> %d): RSS %.2f MiB  PSS %.2f MiB\n' "$n" "$n2" \
    "$(echo "($st_total - $first) / ($n2 - $n) / 1024" | bc -l)" \
    "$(echo "($st_ptotal - $pfirst) / ($n2 - $n) / 1024" | bc -l)"
  # The docker comparison below is with N containers: the first figures.
  st_total=$first; st_ptotal=$pfirst
fi
"$stack" --root "$root" -f "$work/stack.toml" down >/dev/null 2>&1
# The on-demand daemon exits once idle; a second one would not get the socket.
for _ in $(seq 100); do kill -0 $daemon 2>/dev/null || break; sleep 0.1; done
# Idle: the daemon serving the state root with nothing running (it would exit
# when idle; `daemon` in the foreground stays).
"$stack" --root "$root" daemon >/dev/null 2>&1 &
idle_pid=$!
settle
read -r irss ipss <<<"$(mem $idle_pid)"
line "stack daemon idle" "$irss" "$ipss" 1
kill "$idle_pid"; wait "$idle_pid" 2>/dev/null || true

if command -v dockerd >/dev/null && command -v docker-compose >/dev/null; then
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" -p "$work/docker.pid" -H "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$work/docker.sock"
  for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
  skopeo copy -q "oci:examples/images/busybox:latest" "docker-archive:$work/bb.tar:busybox:rss"
  docker load -q -i "$work/bb.tar" >/dev/null
  settle
  ctrd=$(pgrep -P "$dockerd_pid" -x containerd || true)
  read -r irss ipss <<<"$(mem $dockerd_pid $ctrd)"
  line "dockerd+containerd idle" "$irss" "$ipss" "$(( 1 + $(echo $ctrd | wc -w) ))"
  docker-compose -f "$work/compose.yaml" -p rssc up -d >/dev/null 2>&1
  settle
  shims=$(pgrep -f "containerd-shim.*$work/docker-exec" || true)
  [ -n "$shims" ] || shims=$(pgrep -f "containerd-shim.*moby" || true)
  read -r drss dpss <<<"$(mem $dockerd_pid $ctrd $shims)"
  line "dockerd+containerd+shims ($n)" "$drss" "$dpss" "$(( 1 + $(echo $ctrd $shims | wc -w) ))"
  printf 'ratio docker/stack with %d running: RSS %.1fx  PSS %.1fx\n' "$n" \
    "$(echo "$drss/$st_total" | bc -l)" "$(echo "$dpss/$st_ptotal" | bc -l)"
fi

if command -v podman >/dev/null; then
  pm=(podman --root "$work/podman" --runroot "$work/podman-run")
  "${pm[@]}" pull -q "oci:$PWD/examples/images/busybox:latest" >/dev/null
  for i in $(seq 1 "$n"); do
    "${pm[@]}" run -d --init --name "rss$i" "oci:$PWD/examples/images/busybox:latest" sleep 3600 >/dev/null
  done
  settle
  conmons=$(pgrep -f "conmon.*$work/podman" || true)
  read -r prss ppss <<<"$(mem $conmons)"
  line "podman conmon x$(echo $conmons | wc -w)" "$prss" "$ppss" "$(echo $conmons | wc -w)"
  printf 'ratio podman/stack with %d running: RSS %.1fx  PSS %.1fx\n' "$n" \
    "$(echo "$prss/$st_total" | bc -l)" "$(echo "$ppss/$st_ptotal" | bc -l)"
fi
