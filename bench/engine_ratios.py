#!/usr/bin/env python3
"""Throughput ratios kvcore/raw from bench/engine_bench.

engine_bench runs every workload twice per engine: through kvcore::Engine
("<engine>/kvcore/<workload>") and against the library directly
("<engine>/raw/<workload>"). This script runs it (or reads a JSON file it
wrote), takes the median of the repetitions of each benchmark, pairs the two
sides and prints items/s and the ratio kvcore/raw per workload. The target is a
ratio >= 0.95 everywhere (the traits cost at most 5%).

Two ratios are printed. "cpu" uses items per second of the benchmark thread's
CPU time (Google Benchmark's items_per_second): kvcore's overhead is CPU work
in the calling thread, and CPU time is the figure least disturbed by other
processes on a shared machine, so it is the one held to the target. "wall"
uses elapsed time (what an application sees, fsync waits included); on a busy
machine it is noisier. "cv cpu" is the larger coefficient of variation of the
two sides' repetitions: a ratio closer to 1 than that is within the noise.

Only ratios from one run mean anything: absolute figures move with the machine
and with the build of the benchmark library.

With --callgrind the script also runs each pair under valgrind's callgrind
(with fewer iterations, --iter_scale) and counts the instructions of the
benchmark's operations on each side (engine_bench never inlines them). The
"instr" ratio, raw instructions / kvcore instructions per operation, is what
the throughput ratio would be if both sides ran at the same instructions per
cycle: it is exact and immune to other processes, but blind to cache misses,
lock waits and kernel time (so sync:1 workloads, whose user-space work is that
of sync:0, are not run under callgrind).

Usage:
  engine_ratios.py --bench BUILD/bench/engine_bench [--repetitions 3]
                   [--filter REGEX] [--save-json FILE] [--markdown] [--plot FILE.png]
                   [--callgrind [--save-callgrind FILE]]
  engine_ratios.py --json FILE [--callgrind-json FILE] [--markdown] [--plot FILE.png]

Standard library only; the plot is drawn only when matplotlib is importable.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 0.95
NAME_RE = re.compile(r"^(?P<engine>[^/]+)/(?P<side>kvcore|raw)/(?P<workload>.+?)(/iterations:\d+)?$")


def run_bench(binary, repetitions, bench_filter, extra, json_path):
    cmd = [
        binary,
        f"--benchmark_repetitions={repetitions}",
        # Repetitions of all benchmarks in random order, so drift (page cache,
        # other processes, thermal) hits both sides of a pair alike.
        "--benchmark_enable_random_interleaving=true",
        f"--benchmark_out={json_path}",
        "--benchmark_out_format=json",
    ]
    if bench_filter:
        cmd.append(f"--benchmark_filter={bench_filter}")
    cmd += extra
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    # The console report goes to stderr as progress; the JSON to json_path.
    subprocess.run(cmd, check=True, stdout=sys.stderr)


def load_runs(path):
    """{(engine, side, workload): {"cpu": [items/s...], "wall": [...], "errors": n}}"""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    runs = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration":
            continue
        m = NAME_RE.match(b.get("run_name", b["name"]))
        if not m:
            continue
        key = (m["engine"], m["side"], m["workload"])
        entry = runs.setdefault(key, {"cpu": [], "wall": [], "errors": 0})
        if b.get("error_occurred"):
            entry["errors"] += 1
            print(f"error in {b['name']}: {b.get('error_message')}", file=sys.stderr)
            continue
        ips = b.get("items_per_second")
        if not ips:
            continue
        entry["cpu"].append(ips)
        # items/s over wall time: items_per_second is items / CPU seconds.
        if b.get("real_time"):
            entry["wall"].append(ips * b["cpu_time"] / b["real_time"])
    return data.get("context", {}), runs


def pair_up(runs):
    rows = []
    keys = sorted({(e, w) for (e, _, w) in runs})
    for engine, workload in keys:
        k = runs.get((engine, "kvcore", workload))
        r = runs.get((engine, "raw", workload))
        if not k or not r or not k["cpu"] or not r["cpu"]:
            continue
        row = {
            "engine": engine,
            "workload": workload,
            "reps": min(len(k["cpu"]), len(r["cpu"])),
            "kvcore_cpu": statistics.median(k["cpu"]),
            "raw_cpu": statistics.median(r["cpu"]),
            "kvcore_wall": statistics.median(k["wall"]) if k["wall"] else None,
            "raw_wall": statistics.median(r["wall"]) if r["wall"] else None,
        }
        # Spread of the repetitions: the larger coefficient of variation of
        # the two sides' CPU items/s. A ratio nearer 1 than this says nothing.
        row["cv_cpu"] = max((statistics.stdev(x["cpu"]) / statistics.mean(x["cpu"])
                             if len(x["cpu"]) > 1 else 0.0) for x in (k, r))
        row["ratio_cpu"] = row["kvcore_cpu"] / row["raw_cpu"]
        if row["kvcore_wall"] and row["raw_wall"]:
            row["ratio_wall"] = row["kvcore_wall"] / row["raw_wall"]
        else:
            row["ratio_wall"] = None
        rows.append(row)
    # Workloads in the order engine_bench registers them.
    order = ["put_seq", "put_rand", "get_rand", "scan"]

    def sort_key(row):
        w = row["workload"]
        first = next((i for i, p in enumerate(order) if w.startswith(p)), len(order))
        return (row["engine"], first, w)

    return sorted(rows, key=sort_key)


def human(x):
    if x is None:
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


TIME_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
STORE_OF = {"kvcore": "KvcoreStore", "rocksdb": "RawRocks", "leveldb": "RawLevel",
            "lmdb": "RawLmdb"}
OPS_OF = {"put_seq": ("put", "commit"), "put_rand": ("put", "commit"), "get_rand": ("get",),
          "scan": ("scan",)}


def list_pairs(binary, bench_filter):
    cmd = [binary, "--benchmark_list_tests=true"]
    if bench_filter:
        cmd.append(f"--benchmark_filter={bench_filter}")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    pairs = []
    for line in out.splitlines():
        m = NAME_RE.match(line.strip())
        if m and m["side"] == "kvcore" and (m["engine"], m["workload"]) not in pairs:
            pairs.append((m["engine"], m["workload"]))
    return pairs


def instructions_per_item(binary, engine, side, workload, scale):
    """Instructions per item spent inside the store's operations, one callgrind run.

    Collection is on only inside the operations (--toggle-collect), so the
    count is exactly theirs: no setup, preload, key generation or timer."""
    fd, out = tempfile.mkstemp(prefix="engine_bench-", suffix=".callgrind")
    os.close(fd)
    store = STORE_OF["kvcore" if side == "kvcore" else engine]
    ops = OPS_OF[next(p for p in OPS_OF if workload.startswith(p))]
    try:
        regex = f"^{re.escape(engine)}/{side}/{re.escape(workload)}(/iterations:[0-9]+)?$"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--collect-atstart=no"]
        cmd += [f"--toggle-collect=*{store}::{op}(*" for op in ops]
        # valgrind cannot map LMDB's default 1 TiB; 16 GiB keeps the map fixed
        # (no growth, as with the default) on both sides.
        cmd += [binary, f"--iter_scale={scale}", f"--lmdb_map_bytes={16 << 30}",
                f"--benchmark_filter={regex}", "--benchmark_format=json"]
        bench = subprocess.run(cmd, check=True, capture_output=True, text=True)
        items = 0
        for b in json.loads(bench.stdout)["benchmarks"]:
            if b.get("error_occurred"):
                print(f"error in {b['name']}: {b.get('error_message')}", file=sys.stderr)
                return None
            # items_per_second * seconds of CPU = items processed.
            seconds = b["cpu_time"] * b["iterations"] * TIME_UNIT[b["time_unit"]]
            items += round(b["items_per_second"] * seconds)
        total = 0
        with open(out, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
                    break
    finally:
        os.unlink(out)
    return total / items if items and total else None


def run_callgrind(binary, bench_filter, scale):
    results = {}
    for engine, workload in list_pairs(binary, bench_filter):
        # A synced write runs the same user-space instructions as an unsynced
        # one plus an fsync, which callgrind cannot see: nothing to learn.
        if "sync:1" in workload:
            continue
        start = time.time()
        per_op = {}
        for side in ("kvcore", "raw"):
            per_item = instructions_per_item(binary, engine, side, workload, scale)
            if per_item:
                per_op[side] = per_item
        print(f"callgrind {engine}/{workload}: {per_op} ({time.time() - start:.0f}s)",
              file=sys.stderr, flush=True)
        results[f"{engine}/{workload}"] = per_op
    return results


def add_instr(rows, instr):
    for r in rows:
        per_op = instr.get(f"{r['engine']}/{r['workload']}", {})
        r["kvcore_instr"] = per_op.get("kvcore")
        r["raw_instr"] = per_op.get("raw")
        r["ratio_instr"] = (r["raw_instr"] / r["kvcore_instr"]
                            if r["kvcore_instr"] and r["raw_instr"] else None)


def print_table(rows, markdown):
    with_instr = any(r.get("ratio_instr") for r in rows)
    header = ["engine", "workload", "kvcore items/s (cpu)", "raw items/s (cpu)", "ratio cpu",
              "cv cpu", "kvcore items/s (wall)", "raw items/s (wall)", "ratio wall"]
    if with_instr:
        header += ["kvcore instr/item", "raw instr/item", "ratio instr"]
    header.append("note")
    lines = []
    for r in rows:
        line = [r["engine"], r["workload"], human(r["kvcore_cpu"]), human(r["raw_cpu"]),
                f"{r['ratio_cpu']:.3f}", f"{100 * r['cv_cpu']:.0f}%", human(r["kvcore_wall"]), human(r["raw_wall"]),
                f"{r['ratio_wall']:.3f}" if r["ratio_wall"] is not None else "-"]
        if with_instr:
            ri = r.get("ratio_instr")
            line += [f"{r['kvcore_instr']:.0f}" if ri else "-",
                     f"{r['raw_instr']:.0f}" if ri else "-", f"{ri:.3f}" if ri else "-"]
        below = [name for name, key in (("cpu", "ratio_cpu"), ("instr", "ratio_instr"))
                 if r.get(key) is not None and r[key] < TARGET]
        line.append("below target (" + ", ".join(below) + ")" if below else "")
        lines.append(line)
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 3) + ["---"]) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def plot(rows, path):
    try:
        import matplotlib  # noqa: PLC0415 - optional
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return
    labels = [f"{r['engine']}\n{r['workload']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.5), 5))
    ax.bar(range(len(rows)), [r["ratio_cpu"] for r in rows])
    ax.axhline(TARGET, color="red", linestyle="--", label=f"target {TARGET}")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("throughput kvcore / raw (cpu)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", help="path to the engine_bench binary to run")
    p.add_argument("--json", help="read timings from a JSON file engine_bench wrote instead of "
                                   "running it")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--filter", help="--benchmark_filter for engine_bench")
    p.add_argument("--save-json", help="keep engine_bench's JSON output here")
    p.add_argument("--callgrind", action="store_true",
                   help="also count instructions per item under callgrind (needs --bench)")
    p.add_argument("--callgrind-scale", type=float, default=0.02,
                   help="--iter_scale for the callgrind runs (default 0.02)")
    p.add_argument("--save-callgrind", help="keep the instruction counts here (JSON)")
    p.add_argument("--callgrind-json", help="read instruction counts saved by --save-callgrind")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--plot", help="also write a PNG bar chart of the ratios (needs matplotlib)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a ratio is below target")
    p.add_argument("extra", nargs="*", help="further arguments for engine_bench (after --)")
    args = p.parse_args()
    if not args.bench and not args.json:
        p.error("give --bench (run engine_bench) or --json (read its output)")
    if args.callgrind and not args.bench:
        p.error("--callgrind needs --bench")

    if args.json:
        context, runs = load_runs(args.json)
    else:
        json_path = args.save_json
        tmp = None
        if not json_path:
            fd, tmp = tempfile.mkstemp(prefix="engine_bench-", suffix=".json")
            os.close(fd)
            json_path = tmp
        try:
            run_bench(args.bench, args.repetitions, args.filter, args.extra, json_path)
            context, runs = load_runs(json_path)
        finally:
            if tmp:
                os.unlink(tmp)

    rows = pair_up(runs)
    if not rows:
        print("no kvcore/raw pairs found", file=sys.stderr)
        return 1
    instr = {}
    if args.callgrind_json:
        with open(args.callgrind_json, encoding="utf-8") as f:
            instr = json.load(f)
    if args.callgrind:
        instr = run_callgrind(args.bench, args.filter, args.callgrind_scale)
        if args.save_callgrind:
            with open(args.save_callgrind, "w", encoding="utf-8") as f:
                json.dump(instr, f, indent=1)
    add_instr(rows, instr)

    if context:
        print(f"# {context.get('date', '')}  host={context.get('host_name', '')}  "
              f"cpus={context.get('num_cpus', '')}  "
              f"library_build_type={context.get('library_build_type', '')}  "
              f"reps={min(r['reps'] for r in rows)} (medians)")
    print_table(rows, args.markdown)
    below = [r for r in rows if r["ratio_cpu"] < TARGET]
    print(f"\n{len(rows) - len(below)}/{len(rows)} workloads at or above {TARGET} (cpu ratio)")
    if instr:
        below_instr = [r for r in rows if r["ratio_instr"] is not None
                       and r["ratio_instr"] < TARGET]
        counted = sum(1 for r in rows if r["ratio_instr"] is not None)
        print(f"{counted - len(below_instr)}/{counted} workloads at or above {TARGET} "
              "(instruction ratio)")
    if args.plot:
        plot(rows, args.plot)
    return 1 if args.strict and below else 0


if __name__ == "__main__":
    sys.exit(main())
