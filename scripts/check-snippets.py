#!/usr/bin/env python3
"""Compiles every C++ block of README.md and docs/*.md against an installed uvgena, with
nothing but `pkg-config --cflags --libs uvgena` (PKG_CONFIG_PATH must find it), and runs the
blocks that are whole programs (they have a main) against a running `uvgena serve-demo`:
their example device URL (http://192.168.1.20:1400/...) is replaced by the demo's
RenderingControl event URL, and a run passes when it prints an event line within a few
seconds (these programs watch forever: they are stopped after that). Each program also
runs built with AddressSanitizer + UndefinedBehaviorSanitizer, which must report nothing.

Usage: check-snippets.py EVENT_URL WORKDIR [markdown files...]
Prints "snippet FILE:LINE: ok|FAILED (...)" per block; exits 1 if any failed.
"""
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

BLOCK = re.compile(r"```cpp\n(.*?)```", re.S)
EXAMPLE_URL = re.compile(r'"http://192\.168\.1\.20:1400/[^"]*"')
EVENT_LINE = re.compile(r"^\d+ \S+", re.M)


def run_until_event(binary, env, timeout=4.0, after_event=0.3):
    """Runs `binary` until `after_event` seconds after it printed an event line (what it does
    right after the event, such as destroying it, runs too) or for `timeout` seconds, then
    stops it; returns (stdout, stderr, exit code or None when it was stopped)."""
    with tempfile.TemporaryFile() as err_file:
        # Line-buffered, so that what a stopped program printed is not lost.
        proc = subprocess.Popen(["stdbuf", "-oL", binary], stdout=subprocess.PIPE,
                                stderr=err_file, env=env)
        out = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    try:  # it ended (or closed its stdout): let it exit with its status
                        proc.wait(timeout=max(left, 0.5))
                    except subprocess.TimeoutExpired:
                        pass
                    break
                out += chunk
                if EVENT_LINE.search(out.decode(errors="replace")):
                    deadline = min(deadline, time.monotonic() + after_event)
        rc = proc.poll()
        if rc is None:
            proc.kill()
            proc.wait()
        else:
            # It ended on its own: take what it printed last.
            out += proc.stdout.read()
        proc.stdout.close()
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
    return out.decode(errors="replace"), err, rc


def check_block(name, code, stem, is_program, flags, cxx):
    """Compiles one block (and runs it, if it is a program); returns (ok, report)."""
    with open(stem + ".cpp", "w") as f:
        f.write(code)
    # No flags but pkg-config's: a reader's first compile.
    cmd = [cxx, stem + ".cpp"] + (["-o", stem] if is_program else ["-c", "-o", stem + ".o"])
    build = subprocess.run(cmd + flags, capture_output=True, text=True)
    if build.returncode != 0:
        return False, f"snippet {name}: FAILED (compile)\n{build.stderr[-3000:]}"
    if not is_program:
        return True, f"snippet {name}: ok (compiles)"
    # Each program runs as built with pkg-config's flags alone, then built again with
    # AddressSanitizer + UndefinedBehaviorSanitizer (issue 17: the documented inline
    # style must be safe on g++ 12), each against the demo.
    asan = subprocess.run(cmd[:-2] + ["-g", "-fsanitize=address,undefined",
                                      "-fno-omit-frame-pointer", "-o", stem + "_asan"]
                          + flags, capture_output=True, text=True)
    if asan.returncode != 0:
        return False, f"snippet {name}: FAILED (compile with ASan)\n{asan.stderr[-3000:]}"
    results = []
    for binary in (stem, stem + "_asan"):
        # stdbuf preloads a library ahead of the ASan runtime: allowed explicitly.
        env = dict(os.environ,
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:verify_asan_link_order=0",
                   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
        out, err, rc = run_until_event(binary, env)
        sanitizer = "Sanitizer" in err or "runtime error:" in err
        ok = EVENT_LINE.search(out) is not None and rc in (None, 0) and not sanitizer
        results.append((ok, out, err, rc))
    if all(r[0] for r in results):
        first = EVENT_LINE.search(results[0][1]).group(0)
        return True, (f"snippet {name}: ok (ran against serve-demo, plain and under "
                      f"ASan+UBSan, printed '{first}')")
    for ok, out, err, rc in results:
        if not ok:
            return False, (f"snippet {name}: FAILED (run: exit {rc}, output {out[-300:]!r}, "
                           f"errors {err[-1500:]!r})")
    return False, f"snippet {name}: FAILED"


def main():
    url, work = sys.argv[1], sys.argv[2]
    files = sys.argv[3:] or ["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md"))
    os.makedirs(work, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "uvgena"], check=True,
                           capture_output=True, text=True).stdout.split()
    cxx = os.environ.get("CXX", "g++")
    blocks = []
    for path in files:
        text = open(path, encoding="utf-8").read()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            name = f"{path}:{line}"
            code = m.group(1)
            stem = os.path.join(work, re.sub(r"[^A-Za-z0-9]+", "_", name))
            is_program = re.search(r"^int main\(", code, re.M) is not None
            if is_program:
                code = EXAMPLE_URL.sub('"' + url + '"', code)
            blocks.append((name, code, stem, is_program))
    # Two at a time (CI's machine has two cores); reports in document order.
    with ThreadPoolExecutor(max_workers=int(os.environ.get("SNIPPET_JOBS", "2"))) as pool:
        outcomes = list(pool.map(lambda b: check_block(*b, flags, cxx), blocks))
    failed = 0
    for ok, report in outcomes:
        print(report)
        failed += 0 if ok else 1
    print(f"snippets: {len(blocks) - failed} passed, {failed} failed")
    return 1 if failed or not blocks else 0


if __name__ == "__main__":
    sys.exit(main())
