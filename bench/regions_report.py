#!/usr/bin/env python3
"""Figures of the many-regions benchmarks in bench/store_bench (issue 5).

Runs `store_bench --benchmark_filter=^regions/` (or reads its JSON) and
prints:
  - put throughput with 64 writers at N regions over the same at 1 region,
    from the same run (target >= 0.8 at 1,024 regions);
  - CPU of a store holding 10,000 idle regions, in percent of one core, with
    hibernation on and off (target <= 5 % with it on).

Usage:
  regions_report.py --bench BUILD/bench/store_bench [--repetitions 1]
                    [--save-json FILE] [--markdown]
  regions_report.py --json FILE [--markdown]

Standard library only.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys

PUT_RE = re.compile(r"^regions/put/regions:(?P<n>\d+)/pollers:(?P<p>\d+)/")
IDLE_RE = re.compile(r"^regions/idle/regions:(?P<n>\d+)/hibernate:(?P<h>\d)/")


def run_bench(binary, repetitions, extra):
    cmd = [binary, "--benchmark_format=json", "--benchmark_filter=^regions/",
           f"--benchmark_repetitions={repetitions}"] + extra
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def collect(data):
    puts, idle = {}, {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" or b.get("error_occurred"):
            continue
        m = PUT_RE.match(b["name"])
        if m:
            puts.setdefault((int(m["p"]), int(m["n"])), []).append(b["items_per_second"])
        m = IDLE_RE.match(b["name"])
        if m:
            idle.setdefault((int(m["n"]), int(m["h"])), []).append(b["cpu_pct_per_store"])
    return puts, idle


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench")
    p.add_argument("--json")
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("--save-json")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("extra", nargs="*")
    a = p.parse_args()
    if a.json:
        with open(a.json) as f:
            data = json.load(f)
    elif a.bench:
        data = run_bench(a.bench, a.repetitions, a.extra)
        if a.save_json:
            with open(a.save_json, "w") as f:
                json.dump(data, f)
    else:
        p.error("--bench or --json is needed")
    puts, idle = collect(data)
    rows = []
    for (pollers, n) in sorted(puts):
        v = statistics.median(puts[(pollers, n)])
        base = statistics.median(puts[(pollers, 1)]) if (pollers, 1) in puts else None
        ratio = v / base if base else float("nan")
        target = ">= 0.8" if n == 1024 else ""
        met = "" if not target else ("met" if ratio >= 0.8 else "NOT met")
        rows.append((f"put, 64 writers, {n} regions, {pollers} poller(s)", f"{v:,.0f}/s",
                     f"{ratio:.2f}", target, met))
    for (n, h) in sorted(idle, reverse=True):
        v = statistics.median(idle[(n, h)])
        target = "<= 5 %" if (h == 1 and n == 10000) else ""
        met = "" if not target else ("met" if v <= 5 else "NOT met")
        rows.append((f"{n:,} idle regions, hibernation {'on' if h else 'off'}",
                     f"{v:.2f} % of a core per store", "", target, met))
    head = ("case", "figure", "ratio to 1 region", "target", "")
    if a.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [head] + rows:
            print(f"{r[0]:<44} {r[1]:>28} {r[2]:>18} {r[3]:>8} {r[4]}")


if __name__ == "__main__":
    main()
