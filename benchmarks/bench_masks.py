"""Mask throughput on the CPU: frames/s of YOLO person detection on decoded frames at the
default frame size, batched (masks.batch_size per call) vs one frame per call.

Usage (from the repo root): python -m benchmarks masks, or
python benchmarks/bench_masks.py [--frames 512] [--threads 2]
Uses results/detector/yolov10.pt and results/home1/frames.h5 when they exist, otherwise a
random-init YOLOv10n (same architecture, same cost) and random frames. Writes
benchmarks/results/masks.json and prints it; the machine's load (uptime) is recorded beside
the figures because other jobs may share the cores."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--single", type=int, default=128, help="frames timed one at a time")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "masks.json"))
    args = ap.parse_args(list(argv))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import yaml
    from vicokd.config import typed
    from vicokd.masks.masks import MasksConfig, PersonDetector
    from vicokd.masks.yolo import prepare_ultralytics

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    size = int(config["decode"]["size"])
    cfg = typed(MasksConfig, config["masks"])
    cfg.device = "cpu"
    prepare_ultralytics(REPO / "results" / ".ultralytics" / "bench")
    import torch
    torch.set_num_threads(args.threads)

    weights = REPO / "results" / "detector" / "yolov10.pt"
    source = "results/detector/yolov10.pt"
    if not weights.is_file():
        from ultralytics import YOLO
        weights = REPO / "benchmarks" / "results" / "random_yolov10n.pt"
        weights.parent.mkdir(parents=True, exist_ok=True)
        model = YOLO(config["detector"]["model"])
        model.model.names = {i: ("person" if i == 0 else f"c{i}") for i in range(80)}
        model.save(str(weights))
        source = f"random-init {config['detector']['model']}"
    if cfg.imgsz is None and source.startswith("random"):
        cfg.imgsz = int(config["detector"]["imgsz"])  # what the bootstrap detector trains at

    frames_h5 = REPO / "results" / "home1" / "frames.h5"
    rng = np.random.default_rng(0)
    if frames_h5.is_file():
        import h5py
        chunks = []
        with h5py.File(frames_h5, "r") as f:
            for sid in f:
                d = f[sid]["frames"][()]
                chunks.append(d.reshape(-1, *d.shape[2:]))
                if sum(len(c) for c in chunks) >= args.frames:
                    break
        frames = np.concatenate(chunks)[:args.frames]
        frames_src = str(frames_h5.relative_to(REPO))
    else:
        frames = rng.integers(0, 256, size=(args.frames, size, size, 3), dtype=np.uint8)
        frames_src = "random"

    det = PersonDetector(weights, cfg, "cpu")
    det.detect(frames[:cfg.batch_size])  # warm-up: predictor set-up, first-call allocations
    t0 = time.perf_counter()
    det.detect(frames)
    batched = len(frames) / (time.perf_counter() - t0)
    single_frames = frames[:args.single]
    t0 = time.perf_counter()
    for i in range(len(single_frames)):
        det.detect(single_frames[i:i + 1])
    single = len(single_frames) / (time.perf_counter() - t0)

    result = {
        "frames_per_second_batched": round(batched, 1),
        "frames_per_second_single": round(single, 1),
        "batch_size": cfg.batch_size, "frame_size": int(frames.shape[1]),
        "detector_imgsz": det.imgsz, "threads": args.threads,
        "frames_timed": {"batched": int(len(frames)), "single": int(len(single_frames))},
        "weights": source, "frames": frames_src,
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
