#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (OSS-Fuzz's flags: -O1, line tables only) and runs
# each for a bounded time:
#   bash scripts/fuzz.sh [seconds-per-target] [target...]
# Exits non-zero if any target found a crash, leak, timeout or sanitizer report; the
# reproducer is left in build-fuzz/artifacts/.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
bash scripts/install-deps.sh ci >/dev/null
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang-14 CXX=clang++-14 meson setup build-fuzz -Dfuzz=true -Dtests=disabled -Dexamples=disabled -Dcli=disabled \
        -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=1 -Ddebug=false \
        -Dcpp_args="-fsanitize=fuzzer-no-link -fno-sanitize=function -gline-tables-only" \
        -Dc_args="-fsanitize=fuzzer-no-link -gline-tables-only" >/dev/null || exit 1
fi
meson compile -C build-fuzz >/dev/null || exit 1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for exe in build-fuzz/fuzz/fuzz_*; do [ -f "$exe" ] && [ -x "$exe" ] && targets+=("$(basename "$exe" | sed 's/^fuzz_//')"); done
fi
mkdir -p build-fuzz/artifacts
status=0
for t in "${targets[@]}"; do
    work=build-fuzz/corpus/$t
    mkdir -p "$work"
    seeds=fuzz/corpus/$t
    log=build-fuzz/fuzz-$t.log
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=1 \
        build-fuzz/fuzz/fuzz_$t "$work" "$seeds" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix=build-fuzz/artifacts/$t- >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, ${execs:-?} executions in ${seconds}s"
    else
        echo "fuzz $t: FAILED (exit $rc), see $log"; tail -n 30 "$log"; status=1
    fi
done
exit $status
