#!/usr/bin/env python3
"""Summarise bench/run.sh results (runs.tsv) as a Markdown table.

Per (file, tool): rounds that exited 0, median wall-clock seconds, throughput
(file bytes * 8 / median s, in Gbit/s; packets / median s, packets counted by
the baseline reader), the median over rounds of (tool s / baseline s of the
same round), and the peak RSS over all rounds. Then, per file run with one
and with N workers (tools `<build>-1w` and `<build>-<N>w`), the speed-up
of N workers in each round (1-worker s / N-worker s of the same round) and
its median.

Usage: bench/report.py bench/results/<stamp>/runs.tsv
"""

import csv
import re
import statistics
import sys


def main(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        sys.exit(f"{path}: no runs")
    packets = {}
    base = {}  # (file, round) -> baseline seconds
    for r in rows:
        if r["tool"] == "baseline" and r["rc"] == "0":
            if r["packets"]:
                packets[r["file"]] = int(r["packets"])
            base[(r["file"], r["round"])] = float(r["elapsed_s"])
    order = []
    for r in rows:
        key = (r["file"], r["tool"])
        if key not in order:
            order.append(key)
    print("| file | tool | ok/runs | median s | Gbit/s | Mpkt/s | × baseline (same round) | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for file, tool in order:
        runs = [r for r in rows if r["file"] == file and r["tool"] == tool]
        ok = [r for r in runs if r["rc"] == "0"]
        rss = max((int(r["maxrss_kb"] or 0) for r in runs), default=0) / 1024
        if not ok:
            codes = ",".join(sorted({r["rc"] for r in runs}))
            print(f"| {file} | {tool} | 0/{len(runs)} | failed (exit {codes}) | | | | {rss:.0f} |")
            continue
        secs = statistics.median(float(r["elapsed_s"]) for r in ok)
        size = int(ok[0]["file_bytes"])
        gbit = size * 8 / secs / 1e9 if secs > 0 else float("inf")
        n = packets.get(file)
        mpps = f"{n / secs / 1e6:.2f}" if n and secs > 0 else "?"
        ratios = [
            float(r["elapsed_s"]) / base[(file, r["round"])]
            for r in ok
            if base.get((file, r["round"]), 0) > 0
        ]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "?"
        print(
            f"| {file} | {tool} | {len(ok)}/{len(runs)} | {secs:.2f} | {gbit:.2f} | {mpps} | {ratio} | {rss:.0f} |"
        )
    speedups(rows, order)
    for file in dict.fromkeys(f for f, _ in order):
        n = packets.get(file)
        size = next(int(r["file_bytes"]) for r in rows if r["file"] == file)
        print(f"\n{file}: {size / 2**20:.0f} MiB, {n if n is not None else '?'} packets", end="")
    print()


def speedups(rows, order):
    """N workers against one, round by round (the rounds interleave tools, so
    both runs of a round met the same machine)."""
    secs = {
        (r["file"], r["tool"], r["round"]): float(r["elapsed_s"])
        for r in rows
        if r["rc"] == "0" and float(r["elapsed_s"]) > 0
    }
    lines = []
    for file, tool in order:
        # `<build>-<N>w` against `<build>-1w` of the same build.
        m = re.fullmatch(r"(.+)-([0-9]+)w", tool)
        if not m or m.group(2) == "1":
            continue
        one = f"{m.group(1)}-1w"
        rounds = sorted({r["round"] for r in rows if r["file"] == file}, key=int)
        ups = [
            secs[(file, one, k)] / secs[(file, tool, k)]
            for k in rounds
            if (file, one, k) in secs and (file, tool, k) in secs
        ]
        if ups:
            each = ", ".join(f"{u:.2f}" for u in ups)
            lines.append(f"| {file} | {tool} / {one} | {each} | {statistics.median(ups):.2f} |")
    if lines:
        print("\n| file | tools | speed-up over 1 worker, per round | median |")
        print("|---|---|---|---|")
        print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
