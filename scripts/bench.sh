#!/usr/bin/env bash
# Builds the benchmarks (release, build-bench/) and runs every one of them, each bounded in
# time, then prints one table (figure, value, same-run baseline, ratio, target, pass/fail) and
# writes it as JSON.
#
#   scripts/bench.sh [results.json]        default: bench/results.json
#   BENCH_ONLY="notify_ingest" scripts/bench.sh   run only the programs whose name matches
#   BENCH_NO_BUILD=1 scripts/bench.sh      skip the meson setup/compile step
#
# Every bench program prints, besides its own human-readable output, lines
#   RESULT <figure>|<value>|<baseline>|<ratio>|<target>|<unit>
# where <target> is "info", "ratio>=X", "ratio<=X", "value>=X" or "value<=X"; this script
# collects them. Raw outputs go to build-bench/bench-logs/.
set -u
cd "$(dirname "$0")/.."
out="${1:-bench/results.json}"
build=build-bench
jobs="${BENCH_JOBS:-2}"

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    if [ ! -d "$build" ]; then
        meson setup "$build" --buildtype=release -Dbench=true -Dtests=disabled \
            -Dexamples=disabled >/dev/null || exit 1
    else
        meson configure "$build" -Dbench=true >/dev/null || exit 1
    fi
    meson compile -C "$build" -j "$jobs" >/dev/null || { echo "build failed" >&2; exit 1; }
fi

logs="$build/bench-logs"
mkdir -p "$logs"
# name | time limit (s) | command line (relative to the build dir)
programs=(
    "runtime_bench|40|bench/runtime_bench --benchmark_min_time=0.05"
    "gena_parse_bench|40|bench/gena_parse_bench --benchmark_min_time=0.02"
    "pathological_body_bench|60|bench/pathological_body_bench --rounds 7"
    "http_bench|45|bench/http_bench --seconds 1 --rounds 4"
    "notify_ingest_bench|120|bench/notify_ingest_bench --seconds 0.7 --rounds 4 --modes keepalive,close"
    "notify_ingest_concurrent|60|bench/notify_ingest_bench --seconds 0.7 --rounds 4 --modes concurrent --no-latency"
    "notify_ingest_mirror|90|bench/notify_ingest_bench --seconds 0.7 --rounds 4 --modes keepalive,close --bodies lastchange,small,large --no-latency --mirror"
    "cli_json_bench|240|bench/cli_json_bench --seconds 1 --rounds 8"
    "fanout_bench|20|bench/fanout_bench --subscribers 1000"
    "scale_bench|75|bench/scale_bench --subscriptions 10000 --churn-seconds 8 --churn-timeout 6"
)
failed_programs=()
for entry in "${programs[@]}"; do
    IFS='|' read -r name limit cmd <<<"$entry"
    if [ -n "${BENCH_ONLY:-}" ] && [[ "$name" != *${BENCH_ONLY}* ]]; then continue; fi
    exe="$build/${cmd%% *}"
    if [ ! -x "$exe" ]; then
        echo "skip $name: $exe not built" >&2
        failed_programs+=("$name(not built)")
        continue
    fi
    echo "running $name (limit ${limit}s)..." >&2
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    (cd "$build" && exec timeout --kill-after=5 "$limit" ./$cmd) >"$logs/$name.out" 2>"$logs/$name.err"
    rc=$?
    end=$(date +%s.%N)
    printf '  %s: exit %d in %.1f s\n' "$name" "$rc" "$(echo "$end - $start" | bc)" >&2
    [ "$rc" -ne 0 ] && failed_programs+=("$name(exit $rc)")
done

python3 - "$logs" "$out" "${failed_programs[@]}" <<'PY'
import json, os, sys, datetime, platform
logs, out, failed = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for name in sorted(os.listdir(logs)):
    if not name.endswith(".out"):
        continue
    prog = name[:-4]
    for line in open(os.path.join(logs, name), errors="replace"):
        if not line.startswith("RESULT "):
            continue
        parts = line[len("RESULT "):].rstrip("\n").split("|")
        if len(parts) != 6:
            continue
        fig, val, base, ratio, target, unit = parts
        def num(x):
            try:
                return float(x)
            except ValueError:
                return None
        v, b, r = num(val), num(base), num(ratio)
        verdict = "info"
        if target != "info":
            for op in (">=", "<="):
                if op in target:
                    key, lim = target.split(op)
                    x = r if key == "ratio" else v
                    lim = float(lim)
                    ok = x is not None and (x >= lim if op == ">=" else x <= lim)
                    verdict = "pass" if ok else "FAIL"
        rows.append(dict(program=prog, figure=fig, value=v, baseline=b, ratio=r,
                         target=target, unit=unit, verdict=verdict))
w = max([len(r["figure"]) for r in rows] + [6])
print(f"{'figure':<{w}} {'value':>12} {'baseline':>12} {'ratio':>7} {'target':>14} result  unit")
for r in rows:
    f = lambda x: "-" if x is None else (f"{x:.3f}" if abs(x) < 100 else f"{x:.0f}")
    print(f"{r['figure']:<{w}} {f(r['value']):>12} {f(r['baseline']):>12} "
          f"{f(r['ratio']):>7} {r['target']:>14} {r['verdict']:<7} {r['unit']}")
fails = [r for r in rows if r["verdict"] == "FAIL"]
print(f"\n{len(rows)} figures, {len(fails)} targets missed"
      + (f"; programs failed: {', '.join(failed)}" if failed else ""))
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump(dict(date=datetime.datetime.utcnow().isoformat() + "Z", host=platform.node(),
               cpus=os.cpu_count(), load=os.getloadavg(), failed_programs=failed,
               results=rows), open(out, "w"), indent=2)
print(f"written: {out}")
PY
