#!/usr/bin/env bash
# Installs every Debian 12 package that building ilb, running the netns lab and the test suites
# need. Skips apt entirely when all of them are installed already, so that repeated runs (CI,
# tools/test.sh, tools/demo.sh) cost one dpkg-query.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config
  libdpdk-dev dpdk libtbb-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev
  libasio-dev libhttp-parser-dev libpcap-dev libbpf-dev libxdp-dev libxxhash-dev libssl-dev
  clang-format
  # the XDP program of ports that share their interface with the kernel (BPF target)
  clang
  # lab and tests
  iproute2 ethtool nftables nginx-light curl jq tcpdump python3 python3-scapy procps psmisc
  iputils-ping
  python3-prometheus-client
  redis-server memcached mariadb-server mariadb-client
  util-linux
  # the end-to-end benchmark (tools/bench/e2e): clients, the balancers ilb is compared with, chart
  sysbench wrk libmemcached-tools nutcracker haproxy gnuplot-nox
  # the wire benchmark's ceiling (tools/bench/wire): dpdk-testpmd
  dpdk-dev
)

missing=()
for p in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  if [[ "$status" != "ii "* ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [[ $EUID -ne 0 ]]; then
  echo "install-deps: must run as root to install packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${packages[@]}"
