#!/usr/bin/env bash
# Builds uvgena and runs the whole test suite: bash scripts/test.sh [build-dir] [meson setup args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test
builddir=${1:-build}
shift || true
if [ ! -f "$builddir/build.ninja" ]; then
    meson setup "$builddir" -Dtests=enabled "$@"
fi
meson compile -C "$builddir"
meson test -C "$builddir" --print-errorlogs --num-processes 2
