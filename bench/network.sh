#!/bin/sh
# Network setup benchmark: stack's network manager vs netavark (Debian package
# `netavark`), 1 and 20 containers, inside private namespaces. Needs root.
set -eu
cd "$(dirname "$0")/.."
command -v nft >/dev/null || { echo "install nftables" >&2; exit 1; }
[ -x /usr/lib/podman/netavark ] || echo "netavark not installed (apt-get install netavark): comparing nothing" >&2
command -v iperf3 >/dev/null || echo "iperf3 not installed (apt-get install iperf3): no throughput figures" >&2
exec cargo bench --bench network_setup
