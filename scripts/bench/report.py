#!/usr/bin/env python3
"""Turn a bench.sh output directory into report.md and concurrency.svg.

usage: report.py OUTDIR

Reads OUTDIR/results.csv (one line per run, server and test) and OUTDIR/raw/meta.env
(key=value lines written by bench.sh). Medians over runs; ratios of ringserve (uring when it
ran, else threaded) to every other server. The SVG is written by hand (no plotting library).
"""
import csv
import math
import os
import statistics
import sys

TEST_INFO = {
    "128b": "128 B, keep-alive",
    "4k": "4 KiB",
    "64k": "64 KiB",
    "1m": "1 MiB",
    "100m": "100 MiB (few conns)",
    "churn": "128 B, Connection: close",
    "c1000": "128 B, 1,000 conns",
    "cond": "If-None-Match → 304",
}
COLORS = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]


def load_meta(path):
    meta, notes, versions = {}, {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" not in line:
                continue
            k, v = line.split("=", 1)
            if k.startswith("note."):
                notes[k[5:]] = v
            elif k.startswith("version."):
                versions[k[8:]] = v
            else:
                meta[k] = v
    return meta, notes, versions


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def nice_step(span, target=5):
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def svg_chart(series, xs, title, subtitle, path):
    """series: {name: {x: y}}; log-scale x, linear y from 0."""
    w, h = 760, 450
    ml, mr, mt, mb = 80, 190, 60, 60
    pw, ph = w - ml - mr, h - mt - mb
    ymax = max([y for s in series.values() for y in s.values() if y is not None] or [1])
    step = nice_step(ymax * 1.05)
    ytop = step * math.ceil(ymax * 1.05 / step)
    lx0, lx1 = math.log10(min(xs)), math.log10(max(xs))
    if lx1 == lx0:
        lx1 = lx0 + 1

    def px(x):
        return ml + (math.log10(x) - lx0) / (lx1 - lx0) * pw

    def py(y):
        return mt + ph - y / ytop * ph

    o = []
    o.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">')
    o.append(f'<rect width="{w}" height="{h}" fill="white"/>')
    o.append(f'<text x="{ml + pw / 2}" y="28" text-anchor="middle" font-size="15" '
             f'font-weight="bold">{esc(title)}</text>')
    o.append(f'<text x="{w / 2}" y="44" text-anchor="middle" font-size="11" '
             f'fill="#555">{esc(subtitle)}</text>')
    y = 0.0
    while y <= ytop + 1e-9:
        yy = py(y)
        o.append(f'<line x1="{ml}" y1="{yy:.1f}" x2="{ml + pw}" y2="{yy:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{ml - 8}" y="{yy + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
        y += step
    for x in xs:
        xx = px(x)
        o.append(f'<line x1="{xx:.1f}" y1="{mt}" x2="{xx:.1f}" y2="{mt + ph}" stroke="#eee"/>')
        o.append(f'<text x="{xx:.1f}" y="{mt + ph + 18}" text-anchor="middle">{x:,}</text>')
    o.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{ml + pw / 2}" y="{h - 15}" text-anchor="middle">'
             f'concurrent connections (log scale)</text>')
    o.append(f'<text x="18" y="{mt + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {mt + ph / 2})">requests/s (median)</text>')
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = [(px(x), py(pts[x])) for x in xs if pts.get(x) is not None]
        if len(coords) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            o.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        for x, y in coords:
            o.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>')
        ly = mt + 10 + i * 22
        lx = ml + pw + 16
        o.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" '
                 f'stroke-width="2.5"/>')
        o.append(f'<circle cx="{lx + 12}" cy="{ly}" r="4" fill="{color}"/>')
        o.append(f'<text x="{lx + 32}" y="{ly + 4}">{esc(name)}</text>')
    o.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    out = sys.argv[1]
    meta, notes, versions = load_meta(os.path.join(out, "raw", "meta.env"))
    servers = meta.get("servers", "").split()
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"), encoding="utf-8")))

    cell = {}  # (server, test) -> dict of lists
    failed = set()
    conns_of = {}
    for r in rows:
        key = (r["server"], r["test"])
        d = cell.setdefault(key, {"rps": [], "mibps": [], "p50": [], "p99": [], "cpu": []})
        if r["status"] != "ok":
            failed.add(key)
            continue
        conns_of.setdefault(r["test"], r["conns"])
        d["rps"].append(fnum(r["rps"]))
        d["mibps"].append(fnum(r["mibps"]))
        d["p50"].append(fnum(r["p50_ms"]))
        d["p99"].append(fnum(r["p99_ms"]))
        d["cpu"].append(fnum(r["cpu_us_per_req"]))

    def med(server, test, field):
        d = cell.get((server, test))
        return median(d[field]) if d else None

    def mark(server, test):
        return " ⚠" if (server, test) in failed else ""

    tests = [t for t in TEST_INFO if any(r["test"] == t for r in rows)]
    sweep = sorted({int(r["test"][5:]) for r in rows if r["test"].startswith("sweep")})

    primary = "ringserve-uring" if "ringserve-uring" in servers else "ringserve-threaded"
    if primary not in servers:
        primary = servers[0] if servers else None
    ratio_cols = []  # (label, numerator, denominator)
    if "ringserve-uring" in servers and "ringserve-threaded" in servers:
        ratio_cols.append(("uring / threaded", "ringserve-uring", "ringserve-threaded"))
    short = primary.replace("ringserve-", "rs-") if primary else ""
    for s in servers:
        if not s.startswith("ringserve"):
            ratio_cols.append((f"{short} / {s}", primary, s))

    L = []
    L.append(f"# ringserve benchmark, {meta.get('date', '?')}")
    L.append("")
    L.append(f"- commit: `{meta.get('commit', '?')}`; host `{meta.get('host', '?')}`")
    L.append(f"- kernel: {meta.get('kernel', '?')}")
    L.append(f"- CPU: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores; "
             f"{meta.get('pinning', '')}; server workers/threads: {meta.get('workers', '?')}")
    L.append(f"- client: {meta.get('wrk', '?')}, 1 thread, {meta.get('connections', '?')} "
             f"connections unless stated, {meta.get('duration', '?')} s per run, "
             f"{meta.get('runs', '?')} interleaved run(s); medians reported")
    L.append(f"- served tree: {meta.get('root', '?')}")
    for s in servers:
        L.append(f"- {s}: {versions.get(s, '?')}")
    for k, v in sorted(notes.items()):
        L.append(f"- **{k}**: {v}")
    busy = meta.get("busy", "")
    if busy:
        L.append(f"- **machine**: {busy}")
    L.append(f"- total time: {meta.get('elapsed', '?')} s")
    if failed:
        L.append(f"- **FAILURES** (⚠ below: errors or unexpected statuses in at least one run; "
                 f"medians use the clean runs only): "
                 + ", ".join(f"{s}/{t}" for s, t in sorted(failed)))
    spreads = []
    for (srv, t), d in cell.items():
        v = [x for x in d["rps"] if x]
        if len(v) > 1:
            spreads.append(((max(v) - min(v)) / statistics.median(v), srv, t))
    if spreads:
        spreads.sort()
        mid = spreads[len(spreads) // 2][0]
        worst = spreads[-1]
        L.append(f"- run-to-run spread of requests/s, (max − min) / median over the runs of one "
                 f"cell: median {mid:.0%}, worst {worst[0]:.0%} ({worst[1]} / {worst[2]}); "
                 f"ratios within about ±{mid / 2:.0%} of 1 are not a difference")
    L.append("")
    L.append("Throughput is requests/s; ratios above 1 mean ringserve served more. CPU is the "
             "servers' own utime+stime (all processes and threads) divided by requests served; "
             "ratios below 1 mean ringserve spent less CPU per request. The load generator "
             "and the servers share one machine, so absolute numbers are loopback numbers.")
    L.append("")

    def table(title, field, digits, ratio_note):
        L.append(f"## {title}")
        L.append("")
        hdr = ["test", "conns"] + servers + [c[0] for c in ratio_cols]
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "|".join(["---"] + ["--:"] * (len(hdr) - 1)) + "|")
        for t in tests:
            vals = [med(s, t, field) for s in servers]
            cells = [fmt(v, digits) + mark(s, t) for s, v in zip(servers, vals)]
            rats = [ratio(med(a, t, field), med(b, t, field)) for _, a, b in ratio_cols]
            L.append(f"| {TEST_INFO[t]} | {conns_of.get(t, '')} | " + " | ".join(cells + rats)
                     + " |")
        if ratio_note:
            L.append("")
            L.append(ratio_note)
        L.append("")

    table("Throughput (median requests/s)", "rps", 0, "")
    table("Server CPU per request (median µs)", "cpu", 2,
          "CPU time is read from /proc in clock ticks (10 ms), so short runs of slow tests "
          "(100 MiB) carry a few percent of quantisation.")
    table("Bandwidth (median MiB/s, headers included)", "mibps", 1, "")

    L.append("## Latency (median of p50 / p99, ms)")
    L.append("")
    L.append("| test | " + " | ".join(servers) + " |")
    L.append("|---|" + "|".join(["--:"] * len(servers)) + "|")
    for t in tests:
        cells = []
        for s in servers:
            cells.append(f"{fmt(med(s, t, 'p50'), 2)} / {fmt(med(s, t, 'p99'), 2)}{mark(s, t)}")
        L.append(f"| {TEST_INFO[t]} | " + " | ".join(cells) + " |")
    L.append("")

    if sweep:
        series = {}
        for s in servers:
            series[s] = {c: med(s, f"sweep{c}", "rps") for c in sweep}
        sub = (f"median of {meta.get('runs', '?')} run(s) x {meta.get('duration', '?')} s, "
               f"commit {meta.get('commit', '?')}, {meta.get('date', '?')}, "
               f"{meta.get('cores', '?')} cores ({meta.get('pinning', '')})")
        svg_chart(series, sweep, "128 B file: requests/s against concurrency", sub,
                  os.path.join(out, "concurrency.svg"))
        L.append("## Concurrency sweep (128 B file, median requests/s)")
        L.append("")
        L.append("![requests/s against concurrency](concurrency.svg)")
        L.append("")
        L.append("| connections | " + " | ".join(servers) + " | "
                 + " | ".join(c[0] for c in ratio_cols) + " |")
        L.append("|--:|" + "|".join(["--:"] * (len(servers) + len(ratio_cols))) + "|")
        for c in sweep:
            t = f"sweep{c}"
            cells = [fmt(med(s, t, "rps")) + mark(s, t) for s in servers]
            rats = [ratio(med(a, t, "rps"), med(b, t, "rps")) for _, a, b in ratio_cols]
            L.append(f"| {c:,} | " + " | ".join(cells + rats) + " |")
        L.append("")

    L.append("Raw wrk outputs (`raw/`, not committed) hold every run; `results.csv` every "
             "run's numbers. Produced by `scripts/bench.sh`.")
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(L) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
