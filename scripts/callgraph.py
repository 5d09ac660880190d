#!/usr/bin/env python3
"""Who calls whom in kedge-bridge, read from its object files (nm), not from the sources.

usage: scripts/callgraph.py [BUILD_DIR]   (default: build)

A file "calls" another when it has an undefined symbol the other defines. Rooms are the
folders of cloudbridge/ (hub, meta, edged); each top-level file (main, relay, twinbus, config,
fault) is a room of its own. The rules (issue 15): no call cycle between files, none between
rooms, hub/ calls nothing outside hub/ but the test-only fault.c, meta/ only hub/. Exit status
1 when a rule is broken; every edge between rooms is printed either way.
"""
import os
import subprocess
import sys

ALLOWED_OUT = {
    "hub": {"hub", "fault"},
    "meta": {"meta", "hub"},
}


def objects(build):
    top = os.path.join(build, "cloudbridge", "CMakeFiles", "kedge-bridge.dir")
    for d, _, files in os.walk(top):
        for f in files:
            if f.endswith(".c.o"):
                path = os.path.join(d, f)
                yield os.path.relpath(path, top)[: -len(".o")], path


def symbols(path):
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
    return defined, undefined


def room(name):
    return name.split("/")[0] if "/" in name else name[: -len(".c")]


def sccs(nodes, edges):
    """Tarjan: the strongly connected components with more than one member."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    files = dict(objects(build))
    if not files:
        sys.exit("no kedge-bridge objects under %s: build first" % build)
    owner, needs = {}, {}
    for name, path in files.items():
        defined, undefined = symbols(path)
        for s in defined:
            owner[s] = name
        needs[name] = undefined
    calls = {f: sorted({owner[s] for s in needs[f] if s in owner and owner[s] != f}) for f in files}
    room_calls = {}
    for f, targets in calls.items():
        for t in targets:
            if room(t) != room(f):
                room_calls.setdefault(room(f), {}).setdefault(room(t), set()).add((f, t))
    bad = 0
    print("calls between rooms (caller -> callee: files):")
    for r in sorted(room_calls):
        for t in sorted(room_calls[r]):
            pairs = ", ".join("%s->%s" % p for p in sorted(room_calls[r][t]))
            verdict = ""
            if r in ALLOWED_OUT and t not in ALLOWED_OUT[r]:
                verdict = "   FORBIDDEN"
                bad += 1
            print("  %-8s -> %-8s %s%s" % (r, t, pairs, verdict))
    for comp in sccs(set(room(f) for f in files), {r: set(t) for r, t in room_calls.items()}):
        print("CYCLE between rooms: " + " <-> ".join(comp))
        bad += 1
    for comp in sccs(set(files), {f: set(t) for f, t in calls.items()}):
        print("CYCLE between files: " + " <-> ".join(comp))
        bad += 1
    print("%d file(s), %s" % (len(files), "no cycle, no forbidden call" if not bad else "%d problem(s)" % bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
