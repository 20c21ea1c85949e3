#!/usr/bin/env bash
# Builds uvgena and runs the demo: bash scripts/demo.sh [demo args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build
if [ ! -f build-demo/build.ninja ]; then
    meson setup build-demo -Dtests=disabled >/dev/null
fi
meson compile -C build-demo >/dev/null
exec build-demo/examples/demo "$@"
