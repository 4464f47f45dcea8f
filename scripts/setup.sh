#!/usr/bin/env bash
# Installs the Debian 12 packages laminar needs, only those missing; a no-op when
# everything is present. Runs apt-get as root, or through sudo.
set -euo pipefail

packages=(cmake g++ make pkg-config libeigen3-dev doctest-dev libbenchmark-dev zlib1g-dev xz-utils
          libstb-dev dataset-fashion-mnist python3)
# `scripts/setup.sh peers` also installs what the side-by-side benchmarks of
# benchmarks/peers/ run: Debian's PyTorch, and OpenBLAS for its matrix products.
if [ "${1:-}" = "peers" ]; then
  packages+=(python3-torch libopenblas0-pthread)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
