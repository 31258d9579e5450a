#!/usr/bin/env python3
"""Print the CPU time (utime + stime, in clock ticks) of one or more process trees.

usage: cputicks.py PID [PID...]

Sums fields 14 and 15 of /proc/P/stat over each PID and every live descendant (a process in
two of the trees counts once); several PIDs measure a pair, such as nginx and the origin
behind it. A process's
/proc/P/stat already includes all of its threads, live and exited, so thread-per-connection
servers are covered; worker processes (nginx, lighttpd, h2o) are found through their parent
PIDs. Prints "0" and exits 1 when any PID is gone.
"""
import os
import sys


def stat_fields(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    # comm may hold spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    return int(rest[1]), int(rest[11]) + int(rest[12])  # ppid, utime + stime


def main():
    roots = [int(a) for a in sys.argv[1:]]
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            table[int(name)] = stat_fields(name)
        except (OSError, ValueError, IndexError):
            continue
    if not roots or any(r not in table for r in roots):
        print(0)
        return 1
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
