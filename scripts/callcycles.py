#!/usr/bin/env python3
"""Call cycles between source files, from their object files.

Usage: callcycles.py [-v] OBJ_OR_DIR...

Each object file is one source file. File A calls file B when A has an undefined symbol that
B defines (nm). Calls through function pointers (registered callbacks) do not show, which is
the point: they are how a lower module reaches a higher one without a cycle. Prints every
strongly connected component of more than one file (a cycle) and exits 1 if there is one;
-v also prints the graph, one file and what it calls per line, callers first.
"""
import os
import subprocess
import sys


def objects(args):
    # CMake passes $<TARGET_OBJECTS:...> as one ';'-separated argument
    for a in (part for arg in args for part in arg.split(";") if part):
        if os.path.isdir(a):
            for root, _, files in os.walk(a):
                for f in sorted(files):
                    if f.endswith(".o"):
                        yield os.path.join(root, f)
        else:
            yield a


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":  # global text/data only
            defined.add(parts[2])
    return defined, undefined


def name(obj):
    base = os.path.basename(obj)
    return base[: -len(".o")] if base.endswith(".o") else base


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    defs, undefs = {}, {}
    for obj in objects(args):
        n = name(obj)
        defs[n], undefs[n] = symbols(obj)
    owner = {s: n for n, ds in defs.items() for s in ds}
    graph = {n: {owner[s] for s in undefs[n] if s in owner and owner[s] != n} for n in defs}
    if verbose:
        for n in sorted(graph, key=lambda n: (-len(graph[n]), n)):
            print(f"{n} -> {' '.join(sorted(graph[n])) or '(nothing)'}")
    cycles = [c for c in sccs(graph) if len(c) > 1]
    for c in cycles:
        print("cycle: " + " <-> ".join(c))
    print(f"{len(graph)} files, {sum(len(e) for e in graph.values())} file-to-file calls, "
          f"{len(cycles)} cycle(s)")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
