#!/usr/bin/env python3
"""Compiles every C++ block of README.md and docs/*.md against an installed uvgena, with
nothing but `pkg-config --cflags --libs uvgena` (PKG_CONFIG_PATH must find it), and runs the
blocks that are whole programs (they have a main) against a running `uvgena serve-demo`:
their example device URL (http://192.168.1.20:1400/...) is replaced by the demo's
RenderingControl event URL, and a run passes when it prints an event line within a few
seconds (these programs watch forever: they are stopped after that).

Usage: check-snippets.py EVENT_URL WORKDIR [markdown files...]
Prints "snippet FILE:LINE: ok|FAILED (...)" per block; exits 1 if any failed.
"""
import os
import re
import subprocess
import sys

BLOCK = re.compile(r"```cpp\n(.*?)```", re.S)
EXAMPLE_URL = re.compile(r'"http://192\.168\.1\.20:1400/[^"]*"')
EVENT_LINE = re.compile(r"^\d+ \S+", re.M)


def main():
    url, work = sys.argv[1], sys.argv[2]
    files = sys.argv[3:] or ["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md"))
    os.makedirs(work, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "uvgena"], check=True,
                           capture_output=True, text=True).stdout.split()
    cxx = os.environ.get("CXX", "g++")
    failed = 0
    count = 0
    for path in files:
        text = open(path, encoding="utf-8").read()
        for m in BLOCK.finditer(text):
            count += 1
            line = text.count("\n", 0, m.start()) + 1
            name = f"{path}:{line}"
            code = m.group(1)
            stem = os.path.join(work, re.sub(r"[^A-Za-z0-9]+", "_", name))
            is_program = re.search(r"^int main\(", code, re.M) is not None
            if is_program:
                code = EXAMPLE_URL.sub('"' + url + '"', code)
            with open(stem + ".cpp", "w") as f:
                f.write(code)
            # No flags but pkg-config's: a reader's first compile.
            cmd = [cxx, stem + ".cpp"] + (["-o", stem] if is_program else ["-c", "-o", stem + ".o"])
            build = subprocess.run(cmd + flags, capture_output=True, text=True)
            if build.returncode != 0:
                failed += 1
                print(f"snippet {name}: FAILED (compile)\n{build.stderr[-3000:]}")
                continue
            if not is_program:
                print(f"snippet {name}: ok (compiles)")
                continue
            try:
                # Line-buffered, so that what a killed program printed is not lost.
                run = subprocess.run(["stdbuf", "-oL", stem], capture_output=True, text=True,
                                     timeout=4)
                out, rc = run.stdout, run.returncode
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                rc = None
            if EVENT_LINE.search(out) and rc in (None, 0):
                first = EVENT_LINE.search(out).group(0)
                print(f"snippet {name}: ok (ran against serve-demo, printed '{first}')")
            else:
                failed += 1
                print(f"snippet {name}: FAILED (run: exit {rc}, output {out[-500:]!r})")
    print(f"snippets: {count - failed} passed, {failed} failed")
    return 1 if failed or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
