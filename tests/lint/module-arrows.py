#!/usr/bin/env python3
"""Module arrows run one way: fail when the top-level modules of a crate import each other in
a circle. Reads `crate::<module>` paths in code (not comments, not #[cfg(test)] code or
tests.rs/testutil.rs files), folds them onto top-level modules and looks for cycles.

    tests/lint/module-arrows.py guest-agent/src host-vmm/src
"""
import os
import re
import sys


def strip(src):
    src = src.split("#[cfg(test)]")[0]
    return "\n".join(line for line in src.splitlines() if not line.lstrip().startswith("//"))


def graph(root):
    edges = {}
    tops = {f.removesuffix(".rs") for f in os.listdir(root)} - {"lib", "main"}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs") or name in ("tests.rs", "testutil.rs", "test_utils.rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if "/tests/" in "/" + rel:
                continue
            top = rel.split("/")[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            with open(path, encoding="utf-8") as f:
                code = strip(f.read())
            for used in re.findall(r"crate::(\w+)", code):
                if used != top and used in tops:
                    edges.setdefault(top, set()).add(used)
    return edges


def cycles(edges):
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def main():
    bad = 0
    for root in sys.argv[1:]:
        for cycle in cycles(graph(root)):
            print(f"{root}: modules import each other in a circle: {' -> '.join(cycle)}")
            bad = 1
    if not bad:
        print(f"module arrows: no circles in {' '.join(sys.argv[1:])}")
    return bad


if __name__ == "__main__":
    sys.exit(main())
