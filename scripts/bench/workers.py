#!/usr/bin/env python3
"""Per-worker requests and CPU of a ringserve uring process, for bench.sh (issue 12, item 5).

usage: workers.py snap PID STATUS_URL FILE
       workers.py delta BEFORE AFTER PREFIX

snap writes one tab-separated line per worker to FILE: the worker index, its responses so far
(the sum over status classes of ringserve_requests_total{worker="N"} on STATUS_URL, the
server's --status-path), the CPU time its thread got so far (utime + stime in clock ticks of
/proc/PID/task/TID/stat, for the thread named ringserve-wN) and the CPUs the thread may run on
(Cpus_allowed_list of /proc/PID/task/TID/status, which shows whether it is pinned). A worker
seen in only one of the two sources gets an empty field for the other.

delta prints one CSV line per worker present in AFTER: PREFIX (already comma-separated, e.g.
"shared,1,ringserve-uring,128b"), then worker, responses during the run, CPU ticks during the
run, and the CPUs allowed. The status request of the first snapshot is counted in the second
(one response: noise). Exits 1 when the snapshot cannot be taken (server gone, no status path).
"""
import os
import re
import sys
import urllib.request

SAMPLE = re.compile(r'^ringserve_requests_total\{([^}]*)\}\s+([0-9.eE+]+)\s*$')
WORKER = re.compile(r'worker="(\d+)"')
THREAD = re.compile(r"^ringserve-w(\d+)$")


def status_counts(url):
    """Responses per worker, summed over status classes."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode("utf-8", "replace")
    counts = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m:
            continue
        w = WORKER.search(m.group(1))
        if w is None:
            continue  # the total over all workers
        i = int(w.group(1))
        counts[i] = counts.get(i, 0) + int(float(m.group(2)))
    return counts


def thread_cpu(pid):
    """(ticks, allowed CPUs) per worker index, from the threads named ringserve-wN."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm", encoding="utf-8") as f:
                m = THREAD.match(f.read().strip())
            if not m:
                continue
            with open(f"{base}/{tid}/stat", "rb") as f:
                data = f.read().decode("ascii", "replace")
            rest = data[data.rindex(")") + 2:].split()
            ticks = int(rest[11]) + int(rest[12])  # fields 14 and 15
            allowed = ""
            with open(f"{base}/{tid}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        allowed = line.split(":", 1)[1].strip()
            out[int(m.group(1))] = (ticks, allowed)
        except (OSError, ValueError, IndexError):
            continue  # the thread ended between listing and reading
    return out


def snap(pid, url, path):
    counts = status_counts(url)
    cpu = thread_cpu(pid)
    with open(path, "w", encoding="utf-8") as f:
        for i in sorted(set(counts) | set(cpu)):
            ticks, allowed = cpu.get(i, ("", ""))
            f.write(f"{i}\t{counts.get(i, '')}\t{ticks}\t{allowed}\n")


def read_snap(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 4:
                rows[int(parts[0])] = parts[1:]
    return rows


def minus(a, b):
    if a == "" or b == "":
        return ""
    return str(int(a) - int(b))


def delta(before, after, prefix):
    b, a = read_snap(before), read_snap(after)
    for i in sorted(a):
        req, ticks, allowed = a[i]
        breq, bticks, _ = b.get(i, ("", "", ""))
        print(f"{prefix},{i},{minus(req, breq)},{minus(ticks, bticks)},\"{allowed}\"")


def main():
    args = sys.argv[1:]
    try:
        if len(args) == 4 and args[0] == "snap":
            snap(int(args[1]), args[2], args[3])
        elif len(args) == 4 and args[0] == "delta":
            delta(args[1], args[2], args[3])
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        print(f"workers.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
