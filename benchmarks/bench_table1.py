"""Wall time of `make table1` (Snakemake to results/table1.csv) on the embedded default: the
target is at most 30 minutes from a fresh clone on 2 cores without GPU (stretch: 15), and the
full report at most 60.

Usage (from the repo root of a fresh clone): python -m benchmarks table1 [--report] [--cores 2]
Runs `snakemake --cores N results/table1.csv` (then results/report.html with --report) here,
records the wall time of each, the job count, the slowest stages (from Snakemake's per-job
benchmark files) and the machine's load, and writes benchmarks/results/table1.json. Nothing is
deleted first: on a checkout with results it measures only what is left to do.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def stage_seconds(root: Path) -> dict:
    """Seconds per rule, summed over its jobs, from Snakemake's benchmarks/results/**/*.tsv."""
    out: dict[str, list[float]] = {}
    for tsv in (root / "benchmarks" / "results").rglob("*.tsv"):
        rows = list(csv.DictReader(open(tsv), delimiter="\t"))
        if not rows:
            continue
        stem = tsv.stem
        rule = ("detector" if "detector" in tsv.parts or stem == "detector"
                else stem if not stem.startswith(("student", "logitkd", "modalkd", "dualkd",
                                                   "cokd", "vicokd"))
                else "student")
        out.setdefault(rule, []).append(float(rows[0]["s"]))
    return {k: {"jobs": len(v), "seconds": round(sum(v), 1), "mean": round(sum(v) / len(v), 1)}
            for k, v in sorted(out.items())}


def run(target: str, cores: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), target],
                          cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    jobs = sum(1 for line in proc.stderr.splitlines() if line.startswith("Finished job"))
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
    return {"target": target, "returncode": proc.returncode, "seconds": round(seconds, 1),
            "minutes": round(seconds / 60, 1), "jobs": jobs}


def main(argv=()) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks table1", description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="then results/report.html too")
    args = parser.parse_args(list(argv))
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_before": os.getloadavg()}, "cores": args.cores,
              "runs": [run("results/table1.csv", args.cores)]}
    if args.report:
        result["runs"].append(run("results/report.html", args.cores))
    result["machine"]["load_after"] = os.getloadavg()
    result["stages"] = stage_seconds(REPO)
    write_result(REPO / "benchmarks" / "results" / "table1.json", result)


if __name__ == "__main__":
    main(sys.argv[1:])
