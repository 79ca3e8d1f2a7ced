"""Speed and memory measurements, run on demand (`make bench` or `python -m benchmarks.bench_x`).

Each bench_*.py module has a `main()` that measures, writes its figures to
benchmarks/results/<name>.json and prints them. They are not tests: a slow machine makes a
figure worse, never a test red.
"""

import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


@contextlib.contextmanager
def scratch_folder(keep: str | None, prefix: str):
    """The folder a benchmark fabricates its data in: `keep` (its --work) when given, left
    there afterwards; else a temporary folder, removed afterwards."""
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def machine_note(load_before) -> dict:
    """Where and when a benchmark ran, with the load average before and after it (other jobs
    on the machine make its figures worse)."""
    return {"cpu_count": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "machine": platform.platform(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def write_result(path, result: dict) -> None:
    """Write a benchmark's figures as JSON to `path` (folders made as needed) and print them."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
