#!/usr/bin/env python3
"""Ratios of bench/store_bench: the replicated store against raw RocksDB.

Runs store_bench (or reads its JSON) and prints, for each case, the store's
throughput over raw RocksDB's from the same run (median of the repetitions,
which run interleaved in random order so both sides see the same disk), next
to the targets of issue 4, with each side's latency p50/p99.

Targets (store ops/s / raw ops/s):
  put, 1 replica:   >= 0.9 with 1 writer, >= 0.8 with 32 writers
  put, 3 replicas:  >= 0.6 with 1 writer, >= 0.4 with 32 writers
  get (lease read on the leader): >= 0.7

A put on the raw side is one synced RocksDB WriteBatch (WAL write +
fdatasync); its 1-writer p50 is therefore about one fsync of this disk, printed
as the machine note. "lease" is the share of the store's reads served from the
lease (the rest took a ReadIndex round): the get rows only measure lease reads
when it is ~1.

Only ratios from one run mean anything: fsync latency on a shared virtual disk
moves by several times from run to run.

Usage:
  store_ratios.py --bench BUILD/bench/store_bench [--repetitions 3]
                  [--save-json FILE] [--markdown] [--strict] [-- EXTRA_ARGS...]
  store_ratios.py --json FILE [--markdown] [--strict]

Standard library only.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys

# (op, store side, threads) -> target ratio; the raw side is ("raw", threads).
TARGETS = [
    ("put", "store_r1", 1, 0.9),
    ("put", "store_r1", 32, 0.8),
    ("put", "store_r3", 1, 0.6),
    ("put", "store_r3", 32, 0.4),
    ("get", "store_r3", 1, 0.7),
    ("get", "store_r3", 32, 0.7),
]
CASE_NAMES = {
    ("put", "store_r1"): "put, 1 replica",
    ("put", "store_r3"): "put, 3 replicas",
    ("get", "store_r3"): "lease get, 3 replicas (leader)",
}
NAME_RE = re.compile(r"^(?P<op>put|get)/(?P<side>raw|store_r1|store_r3)/")


def run_bench(binary, repetitions, extra):
    cmd = [binary, "--benchmark_format=json", f"--benchmark_repetitions={repetitions}",
           "--benchmark_enable_random_interleaving=true"] + extra
    if not any(arg.startswith("--benchmark_filter") for arg in extra):
        cmd.append("--benchmark_filter=^(put|get)/")  # the split benchmark reports on its own
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def collect(data):
    """{(op, side, threads): {"ops": [...], "p50": [...], "p99": [...], counters...}}"""
    runs = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration":
            continue
        m = NAME_RE.match(b.get("run_name", b["name"]))
        if not m:
            continue
        key = (m["op"], m["side"], int(b.get("threads", 1)))
        entry = runs.setdefault(key, {})
        if b.get("error_occurred"):
            print(f"error in {b['name']}: {b.get('error_message')}", file=sys.stderr)
            entry.setdefault("errors", []).append(b.get("error_message"))
            continue
        for field, name in (("items_per_second", "ops"), ("p50_us", "p50"), ("p99_us", "p99"),
                            ("fsyncs_per_op", "fsyncs"), ("follower_fsyncs_per_op", "ffsyncs"),
                            ("rounds_per_op", "rounds"), ("lease_frac", "lease"),
                            ("reads_counted", "counted")):
            if field in b:
                entry.setdefault(name, []).append(float(b[field]))
    return runs


def med(entry, name):
    vals = entry.get(name) if entry else None
    return statistics.median(vals) if vals else None


def cv(entry):
    vals = entry.get("ops", []) if entry else []
    if len(vals) < 2:
        return 0.0
    return statistics.stdev(vals) / statistics.mean(vals)


def human(x):
    if x is None:
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def us(x):
    if x is None:
        return "-"
    return f"{x:.0f}" if x >= 10 else f"{x:.2f}"


def build_rows(runs):
    rows = []
    for op, side, threads, target in TARGETS:
        s, r = runs.get((op, side, threads)), runs.get((op, "raw", threads))
        if not s or not r or not s.get("ops") or not r.get("ops"):
            continue
        ratio = med(s, "ops") / med(r, "ops")
        notes = []
        if op == "put":
            if med(s, "fsyncs") is not None:
                notes.append(f"leader fsyncs/op {med(s, 'fsyncs'):.3f}")
            if med(s, "ffsyncs") is not None:
                notes.append(f"follower fsyncs/op {med(s, 'ffsyncs'):.3f}")
            if med(s, "rounds") is not None:
                notes.append(f"rounds/op {med(s, 'rounds'):.2f}")
        else:
            lease = med(s, "lease")
            if lease is not None:
                notes.append(f"lease {lease:.4f}" + ("" if lease >= 0.99 else " (NOT lease reads)"))
            counted = med(s, "counted")
            if counted is not None:
                notes.append(f"reads counted/gets {counted:.3f}")
        rows.append({
            "case": CASE_NAMES[(op, side)], "writers": threads, "store_ops": med(s, "ops"),
            "raw_ops": med(r, "ops"), "ratio": ratio, "target": target, "met": ratio >= target,
            "cv": max(cv(s), cv(r)), "reps": min(len(s["ops"]), len(r["ops"])),
            "store_p50": med(s, "p50"), "store_p99": med(s, "p99"),
            "raw_p50": med(r, "p50"), "raw_p99": med(r, "p99"), "notes": "; ".join(notes),
        })
    return rows


def print_table(rows, markdown):
    header = ["case", "threads", "store ops/s", "raw ops/s", "ratio", "target", "met", "cv",
              "store p50 us", "store p99 us", "raw p50 us", "raw p99 us", "notes"]
    lines = [[r["case"], str(r["writers"]), human(r["store_ops"]), human(r["raw_ops"]),
              f"{r['ratio']:.2f}", f">= {r['target']}", "yes" if r["met"] else "NO",
              f"{100 * r['cv']:.0f}%", us(r["store_p50"]), us(r["store_p99"]), us(r["raw_p50"]),
              us(r["raw_p99"]), r["notes"]] for r in rows]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|" + "---:|" * 3 + "---:|---|---|---:|" + "---:|" * 4 + "---|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", help="path to the store_bench binary to run")
    p.add_argument("--json", help="read store_bench's JSON output instead of running it")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--save-json", help="keep store_bench's JSON output here")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("extra", nargs="*", help="further arguments for store_bench (after --)")
    args = p.parse_args()
    if not args.bench and not args.json:
        p.error("give --bench (run store_bench) or --json (read its output)")

    if args.json:
        with open(args.json, encoding="utf-8") as f:
            data = json.load(f)
    else:
        data = run_bench(args.bench, args.repetitions, args.extra)
        if args.save_json:
            with open(args.save_json, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)

    runs = collect(data)
    rows = build_rows(runs)
    if not rows:
        print("no store/raw pairs found", file=sys.stderr)
        return 1
    ctx = data.get("context", {})
    print(f"# {ctx.get('date', '')}  host={ctx.get('host_name', '')}  "
          f"cpus={ctx.get('num_cpus', '')}  reps={min(r['reps'] for r in rows)} (medians)")
    raw1 = runs.get(("put", "raw", 1))
    if raw1 and raw1.get("p50"):
        print(f"# disk: a synced raw RocksDB put (WAL write + fdatasync) takes p50 "
              f"{med(raw1, 'p50'):.0f} us, p99 {med(raw1, 'p99'):.0f} us in this run")
    print_table(rows, args.markdown)
    missed = [r for r in rows if not r["met"]]
    print(f"\n{len(rows) - len(missed)}/{len(rows)} targets met")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
