#!/usr/bin/env bash
# Daemon start-up with many containers to adopt: bring N services up (busybox
# sleep, init), SIGKILL the daemon (the monitors and containers live on), then
# start `stack daemon --exit-when-idle` with a NOTIFY_SOCKET of our own and time
# exec -> READY=1 (sd_notify). Target: <= 1 s with 100. Usage: bench/daemon-ready.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
runs=${2:-3}
stack=$(realpath "${STACK:-target/release/stack}")
[ -x "$stack" ] || cargo build --release
[ -d examples/images/busybox ] || examples/images/build.sh
work=$(mktemp -d /tmp/stack-ready.XXXXXX)
root=$work/root
file=$work/stack.toml
cleanup() { "$stack" --root "$root" -f "$file" down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
{
  echo 'name = "benchr"'
  for i in $(seq 1 "$n"); do
    printf '[services.s%d]\nimage = "oci:%s/examples/images/busybox:latest"\n' "$i" "$PWD"
    printf 'command = ["sleep", "3600"]\nrestart = "always"\ninit = true\n'
  done
} > "$file"
"$stack" --root "$root" -f "$file" up -d >/dev/null
for _ in $(seq 1 "$runs"); do
  daemon=$(pgrep -f -- "$stack --root $root daemon" || true)
  [ -n "$daemon" ] || { echo "no daemon for $root" >&2; exit 1; }
  kill -KILL $daemon
  for _ in $(seq 100); do kill -0 $daemon 2>/dev/null || break; sleep 0.05; done
  python3 - "$stack" "$root" "$work/notify.sock" <<'PY'
import os, socket, subprocess, sys, time
stack, root, path = sys.argv[1:4]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
t0 = time.monotonic()
subprocess.Popen([stack, "--root", root, "daemon", "--exit-when-idle"], env=env,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, start_new_session=True)
while True:
    msg = s.recv(4096).decode()
    if "READY=1" in msg.split("\n"):
        break
ms = (time.monotonic() - t0) * 1000
rt = os.path.join(root, "run", "runtime")
n = sum(os.path.exists(os.path.join(rt, d, "state.json")) for d in os.listdir(rt))
print(f"daemon READY=1 with {n} containers to adopt: {ms:.0f} ms")
PY
  sleep 1
done
