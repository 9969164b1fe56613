#!/usr/bin/env bash
# setup.sh - install the Debian 12 packages libtimers needs, only those missing.
#
# Does nothing (and touches no network) when everything is installed. Runs
# `apt-get update` once, before the first install. Works as root; otherwise
# uses sudo when present, else fails and names the missing packages.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libhiredis-dev libck-dev libbenchmark-dev libinih-dev
  redis-server redis-tools
  python3 python3-redis   # tests/faststream_peer.py (faststream-redis-timers peer)
  gnuplot-nox   # bench/plot.sh
  clang         # tools/run test builds with it too (build-clang/)
)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: dpkg-query not found: this script targets Debian 12." >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "setup.sh: missing packages: ${missing[*]}" >&2
    echo "setup.sh: not root and sudo is not installed: run this script as root" \
         "or install them yourself (apt-get install ${missing[*]})." >&2
    exit 1
  fi
fi

echo "setup.sh: installing missing packages: ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
