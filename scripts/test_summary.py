#!/usr/bin/env python3
"""Sums Catch2 test cases over every test of one `meson test` run.

Reads meson-logs/testlog.json (one JSON object per test). A Catch2 program
ends its output with either "All tests passed (A assertions in N test cases)"
or "test cases: N | P passed | F failed"; anything else (a shell test, or a
program that crashed before its summary) counts as one case, failed unless
meson says it passed. The last line printed is "N passed, N failed"; the exit
status is 1 when anything failed.
"""
import json
import re
import sys

ALL_PASSED = re.compile(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)")
MIXED = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed(?:\s*\|\s*(\d+) failed)?")
FAILED_ONLY = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) failed")


def count(entry):
    out = entry.get("stdout") or ""
    ok = entry.get("result") in ("OK", "EXPECTEDFAIL")
    if entry.get("result") == "SKIP":
        return 0, 1  # a skipped suite is a defect, never a pass
    m = None
    for m in ALL_PASSED.finditer(out):
        pass
    if m:
        passed = int(m.group(1))
        return (passed, 0) if ok else (passed, 1)
    m = None
    for m in MIXED.finditer(out):
        pass
    if m:
        passed = int(m.group(2))
        failed = int(m.group(3) or 0)
        if not ok and failed == 0:
            failed = 1
        return passed, failed
    m = None
    for m in FAILED_ONLY.finditer(out):
        pass
    if m:
        return 0, max(1, int(m.group(2)))
    return (1, 0) if ok else (0, 1)


def main():
    path = sys.argv[1]
    passed = failed = 0
    failures = []
    try:
        with open(path) as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        print(f"no test log: {e}")
        print("0 passed, 1 failed")
        return 1
    for e in entries:
        p, fl = count(e)
        passed += p
        failed += fl
        if fl:
            failures.append(f"{e.get('name')} ({e.get('result')})")
    if not entries:
        print("no test ran")
        failed += 1
    for name in failures:
        print(f"FAILED: {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
