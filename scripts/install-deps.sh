#!/usr/bin/env bash
# Installs the Debian packages a profile needs, only those missing.
#   build : compile the library, the CLI and the examples
#   test  : build + run the whole test suite (real peers: curl, gmediarender, libupnp, gupnp)
#   ci    : test + clang, sanitizer runtimes, libFuzzer, Google Benchmark, valgrind
set -euo pipefail
profile=${1:-build}

build_pkgs=(g++ meson ninja-build pkg-config libuv1-dev libtinyxml2-dev node-llhttp
            libcli11-dev nlohmann-json3-dev python3)
test_pkgs=(doctest-dev curl iproute2 gmediarender gstreamer1.0-plugins-base gstreamer1.0-plugins-good libupnp-dev libgupnp-1.6-dev gir1.2-gupnp-1.6 python3-gi busybox procps tmux)
ci_pkgs=(clang-14 libclang-rt-14-dev libfuzzer-14-dev libbenchmark-dev valgrind)

pkgs=("${build_pkgs[@]}")
case "$profile" in
    build) ;;
    test) pkgs+=("${test_pkgs[@]}") ;;
    ci) pkgs+=("${test_pkgs[@]}" "${ci_pkgs[@]}") ;;
    *) echo "usage: $0 [build|test|ci]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing missing Debian packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
