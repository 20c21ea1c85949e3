#!/usr/bin/env bash
# Builds the API reference from the public header comments into build-docs/html
# (installs doxygen if it is missing). Exits non-zero if doxygen fails.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v doxygen >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends doxygen >/dev/null
}
mkdir -p build-docs
doxygen docs/Doxyfile
echo "API reference: build-docs/html/index.html ($(grep -c . build-docs/warnings.log || true) warnings in build-docs/warnings.log)"
