#!/usr/bin/env python3
"""Who calls whom between source files, read from their object files (nm), not the sources.

usage: scripts/callgraph.py [-v] [--root DIR] [--allow ROOM=ROOM,ROOM]... OBJ_OR_DIR...

A file calls another when it has an undefined symbol the other defines. Calls through function
pointers (registered callbacks) do not show, which is the point: they are how a lower module
reaches a higher one. A file is named by its object's path below --root (else its basename);
its room is its first folder, or the file itself at the top. Checks: no call cycle between
files, none between rooms, and a room given with --allow calls only the rooms listed (itself
included). Exit status 1 when a check fails. -v prints every file's calls; the calls between
rooms are always printed. CMake passes $<TARGET_OBJECTS:...> as one ';'-separated argument.
"""
import os
import subprocess
import sys


def objects(args):
    for a in (part for arg in args for part in arg.split(";") if part):
        if os.path.isdir(a):
            for d, _, files in os.walk(a):
                for f in sorted(files):
                    if f.endswith(".o"):
                        yield os.path.join(d, f)
        else:
            yield a


def file_name(obj, root):
    name = os.path.relpath(obj, root) if root else os.path.basename(obj)
    return name[: -len(".o")] if name.endswith(".o") else name


def room(name):
    return name.split("/")[0] if "/" in name else name[: -len(".c")]


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":  # global text and data only
            defined.add(parts[2])
    return defined, undefined


def cycles(edges):
    """Tarjan: the strongly connected components with more than one member."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def parse(argv):
    verbose, root, allow, paths = False, None, {}, []
    it = iter(argv)
    for a in it:
        if a == "-v":
            verbose = True
        elif a == "--root":
            root = next(it)
        elif a == "--allow":
            r, _, to = next(it).partition("=")
            allow[r] = set(to.split(",")) | {r}
        else:
            paths.append(a)
    return verbose, root, allow, paths


def main(argv):
    verbose, root, allow, paths = parse(argv)
    defs, needs = {}, {}
    for obj in objects(paths):
        n = file_name(obj, root)
        defs[n], needs[n] = symbols(obj)
    if not defs:
        print(__doc__, file=sys.stderr)
        return 2
    owner = {s: n for n, ds in defs.items() for s in ds}
    calls = {f: {owner[s] for s in needs[f] if s in owner and owner[s] != f} for f in defs}
    if verbose:
        for f in sorted(calls, key=lambda f: (-len(calls[f]), f)):
            print(f"{f} -> {' '.join(sorted(calls[f])) or '(nothing)'}")
    between = {}
    for f, targets in calls.items():
        for t in targets:
            if room(t) != room(f):
                between.setdefault(room(f), {}).setdefault(room(t), set()).add((f, t))
    bad = 0
    for r in sorted(between):
        for t in sorted(between[r]):
            forbidden = r in allow and t not in allow[r]
            bad += forbidden
            pairs = ", ".join("%s->%s" % p for p in sorted(between[r][t]))
            print(f"  {r:<8} -> {t:<8} {pairs}{'   FORBIDDEN' if forbidden else ''}")
    for comp in cycles({r: set(t) for r, t in between.items()}):
        print("cycle between rooms: " + " <-> ".join(comp))
        bad += 1
    for comp in cycles(calls):
        print("cycle between files: " + " <-> ".join(comp))
        bad += 1
    print(f"{len(calls)} files, {sum(len(t) for t in calls.values())} file-to-file calls, "
          f"{'no cycle, no forbidden call' if not bad else '%d problem(s)' % bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
