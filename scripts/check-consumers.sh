#!/usr/bin/env bash
# Builds uvgena the way a user's project consumes it, and runs each consumer against
# `uvgena serve-demo`:
#   1. installed into a prefix, used from a plain Makefile through pkg-config only;
#   2. the same prefix, used from CMake through find_package(uvgena CONFIG);
#   3. as a meson subproject of a project at cpp_std=none (only the library is built);
# and checks that libuvgena exports no llhttp symbol and no symbol of a class declared only
# under src/, and that `uvgena --version` prints the version meson.build declares. Prints "consumer NAME: ok" or "consumer NAME: FAILED" per
# check; exits non-zero if any failed.
#   bash scripts/check-consumers.sh [work-dir]
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${1:-$root/build-consumers}
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
status=0
pass() { echo "consumer $1: ok${2:+ ($2)}"; }
fail() { echo "consumer $1: FAILED${2:+ ($2)}"; status=1; }

export CCACHE_BASEDIR=/work CCACHE_NOHASHDIR=1
command -v cmake >/dev/null || { apt-get install -y -qq --no-install-recommends cmake >/dev/null 2>&1 || true; }

# -O0 without debug information: what is checked here is how the library is consumed, and
# this builds it about 2.5 times faster than the default -O2 -g.
if ! { meson setup "$work/build" --prefix="$prefix" -Dtests=disabled -Dexamples=disabled \
        -Dwerror=true -Doptimization=0 -Ddebug=false >"$work/setup.log" 2>&1 &&
       meson compile -C "$work/build" >"$work/compile.log" 2>&1 &&
       meson install -C "$work/build" >"$work/install.log" 2>&1; }; then
    tail -n 30 "$work"/*.log
    fail install "meson setup/compile/install"
    echo "0 consumers built"; exit 1
fi
libdir=$(dirname "$(find "$prefix" -name 'libuvgena.so' | head -n 1)")
export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir

version=$(meson introspect "$work/build" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
printed=$("$prefix/bin/uvgena" --version 2>&1)
[ "$printed" = "uvgena $version" ] && pass version "$printed" || fail version "printed '$printed', meson.build says $version"

llhttp=$(nm -D --defined-only "$libdir/libuvgena.so" | grep -c llhttp)
[ "$llhttp" = 0 ] && pass exports "no llhttp symbol exported" || fail exports "$llhttp llhttp symbols exported"

# Only the public API is exported (include/uvgena/core/export.hpp): no symbol of a class that
# is declared only under src/, a sample from every layer. The library's own symbol table
# (not the dynamic one) still has them, which shows that the names are real.
src_only='detail::(ListenerImpl|SubscriptionCore|SubConfig|Subscriber|SubscriberAccess|XmlTree|XmlElement|StreamHandle|ListenHandle|UdpHandle|IoHandle|LoopSubscription|BlockingSubShared|InterfaceCache|CompactAddress|PublisherTestAccess|GroupSpec)\b'
src_only+='|ParserCore|(Publisher|Service|Server)::Impl\b|BackgroundLoop::LoopOwner'
src_only+='|(Advertiser|Search|AdvertisementListener|MulticastEventListener|MulticastEventSender)::State\b'
exported=$(nm -DC --defined-only "$libdir/libuvgena.so")
exported_total=$(grep -c . <<<"$exported")
exported_private=$(grep -cE "$src_only" <<<"$exported")
inside=$(nm -C --defined-only "$libdir/libuvgena.so" 2>/dev/null | grep -cE "$src_only")
if [ "$exported_private" = 0 ]; then
    pass visibility "$exported_total symbols exported, none of a src-only class ($inside hidden inside)"
else
    grep -E "$src_only" <<<"$exported" | head -n 5
    fail visibility "$exported_private symbols of src-only classes exported (of $exported_total)"
fi

# The device the consumers subscribe to.
"$prefix/bin/uvgena" serve-demo --port 0 --interval 0 >"$work/serve-demo.out" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null' EXIT
url=""
for _ in $(seq 50); do
    url=$(sed -n 's/^RenderingControl: *//p' "$work/serve-demo.out")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$work/serve-demo.out"; fail serve-demo "no event URL"; exit 1; }

run_consumer() {  # NAME BINARY
    local out
    if out=$(timeout 20 "$2" "$url" 2>&1) && grep -q "Volume [0-9]" <<<"$out"; then
        pass "$1" "$out"
    else
        fail "$1" "run: $out"
    fi
}

# README and docs snippets: each C++ block compiled with pkg-config only, programs run.
if python3 scripts/check-snippets.py "$url" "$work/snippets" >"$work/snippets.log" 2>&1; then
    pass snippets "$(tail -n 1 "$work/snippets.log")"
else
    cat "$work/snippets.log"; fail snippets "$(tail -n 1 "$work/snippets.log")"
fi

# 1. Makefile + pkg-config.
cp -r tests/consumers/make tests/consumers/common "$work/"
if make -C "$work/make" >"$work/make.log" 2>&1; then
    run_consumer make "$work/make/consumer"
else
    tail -n 20 "$work/make.log"; fail make "build"
fi

# 2. CMake + find_package(uvgena CONFIG).
cp -r tests/consumers/cmake "$work/"
if cmake -S "$work/cmake" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
   cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1; then
    run_consumer cmake "$work/cmake-build/consumer"
else
    tail -n 20 "$work/cmake.log"; fail cmake "build"
fi

# 3. meson subproject at cpp_std=none: only the library is built, nothing of uvgena's tests.
mkdir -p "$work/meson-src/subprojects"
cp tests/consumers/meson/meson.build "$work/meson-src/"
mkdir -p "$work/meson-src/common" && cp tests/consumers/common/consumer.cpp "$work/meson-src/common/"
sed -i "s#'../common/consumer.cpp'#'common/consumer.cpp'#" "$work/meson-src/meson.build"
git ls-files -z --cached --others --exclude-standard | (mkdir -p "$work/meson-src/subprojects/uvgena" && xargs -0 cp --parents -t "$work/meson-src/subprojects/uvgena")
if (unset PKG_CONFIG_PATH LD_LIBRARY_PATH
    meson setup "$work/meson-build" "$work/meson-src" -Ddebug=false >"$work/meson.log" 2>&1 &&
    meson compile -C "$work/meson-build" >>"$work/meson.log" 2>&1); then
    steps=$(grep -o '^\[[0-9]*/[0-9]*\]' "$work/meson.log" | tail -n 1 | tr -d '[]' | cut -d/ -f2)
    tests=$(meson introspect "$work/meson-build" --tests | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    cli=$(find "$work/meson-build" -name uvgena -type f | wc -l)
    if [ "$tests" = 0 ] && [ "$cli" = 0 ]; then
        pass meson-subproject "$steps build steps, no uvgena tests or CLI"
    else
        fail meson-subproject "$steps build steps, $tests tests listed, $cli CLI binaries built"
    fi
    (unset LD_LIBRARY_PATH; run_consumer meson "$work/meson-build/consumer")
    [ $? -eq 0 ] || status=1
else
    tail -n 30 "$work/meson.log"; fail meson-subproject "build"
fi
exit $status
