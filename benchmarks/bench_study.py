"""Wall time of `make study` (the view-consistency study, results/study/view_consistency.csv):
the target is at most 60 minutes from a fresh clone on 2 cores without GPU.

Usage (from the repo root of a fresh clone): python -m benchmarks study [--cores 2]
Runs `snakemake --configfile config/study.yaml --cores N results/study/view_consistency.csv`
here, records its wall time, the job count, the seconds per stage (Snakemake's per-job
benchmark files) and the machine's load, and writes benchmarks/results/study.json. Nothing is
deleted first: on a checkout with results it measures only what is left to do.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402
from benchmarks.bench_table1 import stage_seconds  # noqa: E402

TARGET = "results/study/view_consistency.csv"


def main(argv=()) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks study", description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(list(argv))
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", "config/study.yaml",
                           "--cores", str(args.cores), TARGET],
                          cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
    jobs = sum(1 for line in proc.stderr.splitlines() if line.startswith("Finished job"))
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_before": load_before, "load_after": os.getloadavg()},
              "cores": args.cores, "target": TARGET, "returncode": proc.returncode,
              "seconds": round(seconds, 1), "minutes": round(seconds / 60, 1), "jobs": jobs,
              "stages": stage_seconds(REPO)}
    write_result(REPO / "benchmarks" / "results" / "study.json", result)


if __name__ == "__main__":
    main(sys.argv[1:])
