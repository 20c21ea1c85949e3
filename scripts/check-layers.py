#!/usr/bin/env python3
"""Checks the layering of uvgena's sources; exits 1 on any breach, printing each.

1. No include goes to a higher layer: a file in include/uvgena/<L>/ or src/<L>/ includes
   only headers of <L> or of a layer below it (the order is LAYERS below).
2. No include cycle among the library's files, nor among its modules, so that a source never
   includes a header that includes its own header back. A module is a header with its
   source (include/uvgena/co/scope.hpp + src/co/scope.cpp); where several files of a layer
   share a private internal interface, a src/<layer>/*_impl.hpp, the files that include it
   and it are one module (one module split into files by job, its state behind that one
   internal interface: src/subscriber/subscription_impl.hpp, src/publisher/publisher_impl.hpp).
3. The gena layer is sans-IO: no libuv call (uv_...) and no socket call in src/gena/ or
   include/uvgena/gena/, and no #include <uv.h> there. The same holds for the control
   layer's codecs (SANS_IO_FILES: SCPD parsing, SOAP, errors), which its client and later the
   publisher share.
4. No layer includes the CLI, and the library does not include the demo renderer.

Usage: python3 scripts/check-layers.py [repo-root]
"""
import os
import re
import sys

# Bottom to top: a layer may include itself and any layer listed before it.
LAYERS = ["core", "co", "net", "http", "gena", "ssdp", "control", "subscriber", "publisher",
          "blocking"]
SANS_IO_FILES = {os.path.join(*p.split("/")) for p in (
    "include/uvgena/control/error.hpp", "src/control/error.cpp",
    "include/uvgena/control/scpd.hpp", "src/control/scpd.cpp",
    "include/uvgena/control/soap.hpp", "src/control/soap.cpp",
)}
RANK = {name: i for i, name in enumerate(LAYERS)}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
SOCKET_CALL = re.compile(r'\b(socket|connect|bind|getsockname|sendto|recvfrom|setsockopt)\s*\(')
UV_CALL = re.compile(r'\buv_[a-z0-9_]+\s*\(')


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    return re.sub(r'//[^\n]*', '', text)


def library_files(root):
    for base in ("include/uvgena", "src"):
        for dirpath, _, names in os.walk(os.path.join(root, base)):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir.startswith(os.path.join("src", "cli")):
                continue
            for name in names:
                if name.endswith((".hpp", ".cpp", ".h")):
                    yield os.path.join(rel_dir, name)


def layer_of(path):
    parts = path.split(os.sep)
    if parts[0] == "include":
        return parts[2] if len(parts) > 3 else None  # include/uvgena/<layer>/x.hpp
    return parts[1] if len(parts) > 2 else None      # src/<layer>/x.cpp


def resolve(root, including, target):
    """The repository path an include names, or None for system headers."""
    candidates = [
        os.path.join("include", target),
        os.path.join("src", target),
        os.path.join(os.path.dirname(including), target),
    ]
    for c in candidates:
        c = os.path.normpath(c)
        if os.path.isfile(os.path.join(root, c)):
            return c
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    files = sorted(library_files(root))
    graph = {}
    problems = []
    for path in files:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        own = layer_of(path)
        sans_io = own == "gena" or path in SANS_IO_FILES
        edges = []
        for kind, target in INCLUDE.findall(text):
            if target.startswith("cli/") or "demo_device" in target or "demo_renderer" in target:
                problems.append(f"{path}: includes {target} (the library must not use the CLI "
                                "or the demo renderer)")
            if sans_io and target == "uv.h":
                problems.append(f"{path}: includes <uv.h> (sans-IO)")
            resolved = resolve(root, path, target)
            if resolved is None:
                continue
            edges.append(resolved)
            theirs = layer_of(resolved)
            if own in RANK and theirs in RANK and RANK[theirs] > RANK[own]:
                problems.append(f"{path} ({own}) includes {target} ({theirs}): a higher layer")
        graph[path] = edges
        if sans_io:
            code = strip_comments(text)
            for m in UV_CALL.finditer(code):
                problems.append(f"{path}: libuv call {m.group(0)[:-1].strip()} (sans-IO)")
            for m in SOCKET_CALL.finditer(code):
                # Methods and members named like socket calls (x.connect(...)) are not calls
                # of the socket API.
                before = code[max(0, m.start() - 2):m.start()]
                if before.endswith(".") or before.endswith("->") or before.endswith("::"):
                    continue
                problems.append(f"{path}: socket call {m.group(1)} (sans-IO)")

    edge_count = sum(len(v) for v in graph.values())

    # Cycles: depth-first search over the include graph.
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("include cycle: " + " -> ".join(cycle))
            elif state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if state.get(node) is None:
            visit(node)

    # The same over modules: a header and its source are one node.
    def module(path):
        stem = os.path.splitext(path)[0]
        if stem.startswith("include" + os.sep + "uvgena" + os.sep):
            stem = "src" + stem[len("include" + os.sep + "uvgena"):]
        return stem

    # Union of the modules that share an internal interface (*_impl.hpp under src/).
    parent = {}

    def find(m):
        while parent.get(m, m) != m:
            m = parent[m]
        return m

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    for path, edges in graph.items():
        for e in edges:
            if e.startswith("src" + os.sep) and e.endswith("_impl.hpp") and \
                    layer_of(e) == layer_of(path):
                union(module(e), module(path))

    def unit(path):
        return find(module(path))

    module_graph = {}
    for path, edges in graph.items():
        m = unit(path)
        module_graph.setdefault(m, set()).update(unit(e) for e in edges if unit(e) != m)
    graph.clear()
    graph.update({k: sorted(v) for k, v in module_graph.items()})
    state.clear()
    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)

    layers_seen = sorted({layer_of(p) for p in files} - {None}, key=lambda l: RANK.get(l, 99))
    unknown = [l for l in layers_seen if l not in RANK]
    for l in unknown:
        problems.append(f"unknown layer folder: {l} (add it to LAYERS in {__file__})")
    print(f"check-layers: {len(files)} files, {edge_count} includes inside the library, "
          f"layers {' < '.join(l for l in layers_seen if l in RANK)}")
    for p in problems:
        print("  " + p)
    print(f"check-layers: {'OK' if not problems else str(len(problems)) + ' problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
