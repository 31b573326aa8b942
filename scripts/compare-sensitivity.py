#!/usr/bin/env python3
"""How small a slowdown does `priceperf compare` catch on this machine's noise?

Usage: scripts/compare-sensitivity.py BASE HEAD [--threshold PCT] [--priceperf BIN]

BASE and HEAD are two result folders of the same suite on the same adapter with no change in
between (their differences are the machine's noise). For each slowdown s in a list, HEAD is
copied with every measured time (kernels.csv medians and intervals, samples.jsonl samples)
multiplied by 1 + s, and compared with BASE. Printed: for each s, how many chosen rows
`compare` calls regressed, out of the rows timed on both sides; at s = 0 these are the false
regressions. The slowdown
is synthetic, laid over real run-to-run noise: it says what the gate's rule (threshold plus
evidence) catches, not how a real code change would show.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

TIME_COLUMNS = ("median_ns", "ci_low_ns", "ci_high_ns")
RATE_COLUMNS = ("gflops", "gbps", "pct_of_peak", "pct_of_measured_flops", "pct_of_measured_bw")


def slowed_copy(src, dst, factor):
    shutil.copytree(src, dst)
    path = os.path.join(dst, "kernels.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = list(reader)
    for r in rows:
        for c in TIME_COLUMNS:
            if r.get(c):
                r[c] = repr(float(r[c]) * factor)
        for c in RATE_COLUMNS:
            if r.get(c):
                r[c] = repr(float(r[c]) / factor)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    samples = os.path.join(dst, "samples.jsonl")
    if os.path.exists(samples):
        out = []
        with open(samples, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                rec = json.loads(line)
                rec["samples_ns"] = [x * factor for x in rec["samples_ns"]]
                out.append(json.dumps(rec))
        with open(samples, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
    # results.json would repeat the unscaled rows; compare reads kernels.csv when present.
    results = os.path.join(dst, "results.json")
    if os.path.exists(results):
        os.remove(results)


def chosen_verdicts(binary, base, head, threshold):
    cmd = [binary, "compare", base, head, "--format", "json"]
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"compare failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("head")
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--priceperf", default="target/release/priceperf")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for s in (0.0, 0.05, 0.10, 0.15, 0.16, 0.18, 0.20, 0.25, 0.30, 0.50):
            head = os.path.join(tmp, f"head-{s}")
            slowed_copy(args.head, head, 1.0 + s)
            c = chosen_verdicts(args.priceperf, args.base, head, args.threshold)
            timed = [
                r
                for r in c["rows"]
                if r["verdict"] not in ("not-measured", "only-in-base", "only-in-head")
                and r["base"] and r["head"] and r["base"]["median_ns"] and r["head"]["median_ns"]
            ]
            regressed = [r for r in timed if r.get("verdict") == "regressed"]
            inconclusive = [r for r in timed if r.get("verdict") == "inconclusive"]
            print(
                f"slowdown {s * 100:4.0f}%: {len(regressed):3d} of {len(timed)} timed rows regressed, "
                f"{len(inconclusive)} inconclusive"
            )


if __name__ == "__main__":
    main()
