#!/usr/bin/env python3
"""Sums real test results from meson's testlog.json files.

A doctest program counts as its test cases (from its "[doctest] test cases:" summary); any
other meson test counts as one. "--extra P F" adds the results of checks that are not meson
tests (fuzz runs). Prints per-log lines, the name, first error lines and last output lines of
every failed test (so that the tail of a CI log says what failed and why), then the closing
line "N passed, N failed" and exits non-zero if anything failed or nothing ran.
"""
import json
import re
import sys

SUMMARY = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")


def failure_excerpt(stdout, limit=12):
    """The lines of a doctest log that say which test case failed, where and why."""
    keep = []
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"TEST (CASE|SUITE):|SUBCASE:|ERROR|FATAL|CHECK|REQUIRE|Sanitizer|watchdog|timed out", line):
            keep.append(line.rstrip())
        if len(keep) >= limit:
            break
    return keep


def report_failure(path, t):
    print(f"FAILED in {path}: {t.get('name')} ({t.get('result')}, {t.get('duration', 0):.1f}s)")
    output = (t.get("stdout", "") or "") + "\n" + (t.get("stderr", "") or "")
    excerpt = failure_excerpt(output)
    for line in excerpt:
        print(f"    {line[:200]}")
    # The last lines of its output too: what the test and the peers it ran printed on the way
    # (an interop test's device log, a test's own diagnostics), so that a failure seen only in
    # a CI log can be understood from that log.
    tail = [line.rstrip() for line in output.splitlines() if line.strip()][-25:]
    tail = [line for line in tail if line not in excerpt]
    if tail:
        print("    --- last lines of its output ---")
        for line in tail:
            print(f"    {line[:200]}")


def count(path):
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            result = t.get("result")
            match = None
            for m in SUMMARY.finditer(t.get("stdout", "") or ""):
                match = m
            if result == "SKIP":
                skipped += 1
            elif match and result == "OK":
                passed += int(match.group(2))
                skipped += int(match.group(4))
            elif match:
                passed += int(match.group(2))
                failed += max(1, int(match.group(3)))
                report_failure(path, t)
            elif result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            else:
                failed += 1
                report_failure(path, t)
    return passed, failed, skipped


def main(args):
    total_p = total_f = total_s = 0
    paths = []
    while args:
        arg = args.pop(0)
        if arg == "--extra":
            # Results of checks that are not meson tests (e.g. fuzz runs): "--extra P F".
            p, f = int(args.pop(0)), int(args.pop(0))
            print(f"other checks: {p} passed, {f} failed")
            total_p, total_f = total_p + p, total_f + f
        else:
            paths.append(arg)
    for path in paths:
        p, f, s = count(path)
        print(f"{path}: {p} passed, {f} failed, {s} skipped")
        total_p, total_f, total_s = total_p + p, total_f + f, total_s + s
    print(f"{total_p} passed, {total_f} failed")
    return 0 if total_f == 0 and total_p > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
