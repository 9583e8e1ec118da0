#!/usr/bin/env python3
"""Checks the size rule of docs/architecture.md: no function in src/ over 80 lines, and none
nested deeper than 6 levels (4-space indents counted from the function's own line).

Usage: scripts/check-functions.py [ROOT]   (ROOT defaults to src/; exits 1 listing offenders)
Generated tables (files marked `#[rustfmt::skip]` as a whole module) are skipped by name.
"""
import os
import re
import sys

MAX_LINES = 80
MAX_DEPTH = 6
SKIP = {"tables.rs"}
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def functions(lines):
    """Yields (name, first line, last line, indent) of every fn with a body, by brace counting
    from its signature (strings and comments are rare enough in signatures to ignore)."""
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1).expandtabs())
        depth, started, j = 0, False, i
        while j < len(lines):
            code = strip_strings(lines[j])
            if not started and ";" in code and "{" not in code:
                break  # a declaration without a body (trait method)
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth <= 0:
                yield m.group(8), i, j, indent
                break
            j += 1
        i += 1


def strip_strings(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    bad = []
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".rs") or name in SKIP:
                continue
            path = os.path.join(dirpath, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            in_tests = next((k for k, l in enumerate(lines) if l.startswith("mod tests")), len(lines))
            for fname, a, b, indent in functions(lines):
                if a > in_tests:
                    continue
                length = b - a + 1
                deepest = max(
                    ((len(l) - len(l.lstrip(" "))) - indent) // 4
                    for l in lines[a : b + 1]
                    if l.strip() and not l.strip().startswith("//")
                )
                if length > MAX_LINES:
                    bad.append(f"{path}:{a + 1}: fn {fname} is {length} lines (at most {MAX_LINES})")
                if deepest > MAX_DEPTH:
                    bad.append(f"{path}:{a + 1}: fn {fname} nests {deepest} levels (at most {MAX_DEPTH})")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} functions break the size rule (docs/architecture.md)")
        sys.exit(1)


if __name__ == "__main__":
    main()
