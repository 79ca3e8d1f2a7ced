"""The yardsticks' cost: the random-score chance of one metrics.json (vicokd.metrics.yardsticks on
sequence and frame targets of a test split), and the linear probe (vicokd.runs.probe) on a
fabricated home at the paper's frame size, with its peak memory.

Usage (from the repo root):
    python -m benchmarks yardsticks [--sequences 60] [--frames 50] [--classes 14]
        [--probe-sequences 3] [--probe-views 3] [--probe-frames 256] [--probe-size 224]
Targets: a metrics.json of ~60 sequences x ~50 frames x 14 classes well under 2 s; the probe's
memory set by a block of frames, not by a sequence's length.
Writes benchmarks/results/yardsticks.json and prints it."""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def time_chance(sequences: int, frames: int, classes: int, repeats: int = 3) -> dict:
    """Seconds of the yardsticks of a split like the embedded default's (frame prevalence ~6 %,
    sequence prevalence ~40 %)."""
    import numpy as np

    from vicokd.metrics import RANDOM_DRAWS, yardsticks

    rng = np.random.default_rng(0)
    frame_y = (rng.random((sequences * frames, classes)) < 0.06).astype(np.uint8)
    seq_y = (rng.random((sequences, classes)) < 0.4).astype(np.uint8)
    out = {"sequences": sequences, "frames": sequences * frames, "classes": classes,
           "draws": RANDOM_DRAWS}
    for name, y in (("sequence", seq_y), ("frame", frame_y)):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            yardsticks(y)
            times.append(time.perf_counter() - start)
        out[f"{name}_seconds"] = round(min(times), 3)
    return out


def fabricate(root: Path, sequences: int, views: int, frames: int, size: int):
    import numpy as np

    from vicokd.data.dataset import DataFiles
    from vicokd.storage import atomic_h5, write_dataset, write_json

    rng = np.random.default_rng(1)
    ids = [f"s{i}" for i in range(sequences)]
    classes = [f"c{i}" for i in range(14)]
    files = DataFiles(frames=str(root / "frames.h5"), labels=str(root / "labels.h5"),
                      split=str(root / "split.json"), audio=str(root / "audio.h5"))
    with atomic_h5(files.frames, "frames") as ff, atomic_h5(files.audio, "audio") as fa, \
            atomic_h5(files.labels, "labels", classes=classes) as fl:
        for sid in ids:
            video = rng.integers(0, 255, (views, frames, size, size, 3), dtype=np.uint8)
            write_dataset(ff.create_group(sid), "frames", video, ("V", "T", "H", "W", "3"),
                          chunks=(1, frames, size, size, 3))
            fbank = rng.normal(-8, 2, (views, frames, 40, 128)).astype(np.float16)
            write_dataset(fa.create_group(sid), "fbank", fbank, ("V", "T", "L", "mel"))
            y = (rng.random((frames, 14)) < 0.1).astype(np.uint8)
            g = fl.create_group(sid)
            write_dataset(g, "frame_labels", y, ("T", "C"))
            write_dataset(g, "sequence_labels", y.max(0), ("C",))
    write_json(files.split, {"train": ids[1:], "test": ids[:1]})
    return files


def time_probe(sequences: int, views: int, frames: int, size: int) -> dict:
    from vicokd.runs.probe import FRAME_BLOCK, run_probe

    with tempfile.TemporaryDirectory() as tmp:
        files = fabricate(Path(tmp), sequences, views, frames, size)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        out = run_probe(files)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    view_frames = sequences * views * frames
    return {"sequences": sequences, "views": views, "frames": frames, "size": size,
            "frame_block": FRAME_BLOCK, "seconds": round(seconds, 2),
            "ms_per_view_frame": round(1000 * seconds / view_frames, 3),
            "sequence_mb": round(views * frames * size * size * 3 / 2 ** 20, 1),
            "peak_rss_mb": round(peak / 1024, 1), "rss_before_mb": round(before / 1024, 1),
            "features": out["features"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", type=int, default=60)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--classes", type=int, default=14)
    ap.add_argument("--probe-sequences", type=int, default=3)
    ap.add_argument("--probe-views", type=int, default=3)
    ap.add_argument("--probe-frames", type=int, default=256)
    ap.add_argument("--probe-size", type=int, default=224)
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    result = {"machine": platform.processor() or platform.machine(), "threads": 1,
              "chance": time_chance(a.sequences, a.frames, a.classes),
              "probe": time_probe(a.probe_sequences, a.probe_views, a.probe_frames, a.probe_size)}
    write_result(REPO / "benchmarks" / "results" / "yardsticks.json", result)


if __name__ == "__main__":
    main(sys.argv[1:])
