"""Speed and memory measurements, run on demand (`make bench` or `python -m benchmarks.bench_x`).

Each bench_*.py module has a `main()` that measures, writes its figures to
benchmarks/results/<name>.json and prints them. They are not tests: a slow machine makes a
figure worse, never a test red.
"""

import json
from pathlib import Path


def write_result(path, result: dict) -> None:
    """Write a benchmark's figures as JSON to `path` (folders made as needed) and print them."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
