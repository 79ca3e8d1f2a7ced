"""How long the embedded default (config.yaml `synthetic:`) takes to generate, both homes.

`python -m benchmarks.bench_synthesize [--sequences N] [--out DIR] [--keep]` generates the
homes into a temporary folder (or DIR), writes benchmarks/results/synthesize.json and prints
it. The machine may be shared: the load average before and after is recorded beside the time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from vicokd.synthetic import generate_home  # noqa: E402
from vicokd.storage import write_json  # noqa: E402

RESULT = REPO / "benchmarks" / "results" / "synthesize.json"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sequences", type=int, default=None, help="per home (default: config)")
    ap.add_argument("--out", default=None, help="folder to generate into (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated homes")
    args = ap.parse_args(argv if argv is not None else [])
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    section = dict(config["synthetic"])
    if args.sequences:
        section["sequences"] = args.sequences
    classes = config["dataset"]["classes"]
    root = Path(args.out or tempfile.mkdtemp(prefix="vicokd-synth-"))
    load_before = os.getloadavg()
    homes = {}
    start = time.perf_counter()
    for env in section["views"]:
        t0 = time.perf_counter()
        home = root / env
        stats = generate_home(env, section, classes, home / "annotations.json",
                              home / "boxes.h5", home / "synthetic_stats.json", home / "videos")
        seconds = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (home / "videos").glob("*.mp4"))
        homes[env] = {"seconds": round(seconds, 1), "sequences": stats["sequences"],
                      "views": stats["views"], "video_seconds": round(
                          stats["duration"]["mean"] * stats["sequences"] * stats["views"], 1),
                      "mp4_megabytes": round(size / 1e6, 1),
                      "co_visibility": stats["co_visibility"]}
    total = time.perf_counter() - start
    result = {
        "benchmark": "synthesize",
        "what": "generate every home of config.yaml synthetic: (mp4 + annotations + boxes + stats)",
        "config": section,
        "total_seconds": round(total, 1),
        "target_seconds": 180,
        "homes": homes,
        "workers": section["workers"],
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.platform(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_json(RESULT, result)
    print(json.dumps(result, indent=2))
    if args.out is None and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"homes kept in {root}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
