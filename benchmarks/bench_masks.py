"""Mask throughput on the CPU: frames/s of the masks rule's detector at the bootstrap detector's
shape (YOLOv10n at 128 px on 96 px frames) and at YOLOv10-B's (640 px on 224 px frames), on
ultralytics' predictor path (what the CPU runs) and on the batched on-device path (what a GPU
runs, here in float32), and how far the two paths' masks agree.

Usage (from the repo root): python -m benchmarks masks, or
python benchmarks/bench_masks.py [--frames 512] [--frames-b 16] [--threads 2]
The bootstrap shape uses results/detector/yolov10.pt and results/home1/frames.h5 when they exist
(then it also saves 256 of those frames to benchmarks/results/mask_sample.npz, on which
bench_gpu compares the GPU's half-precision path with the predictor's), otherwise a random-init YOLOv10n and random frames; YOLOv10-B
uses config/paper.yaml's masks.weights when that file exists, else a random init. Writes
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

SAMPLE_FRAMES = 256         # real frames saved for bench_gpu's agreement check on a GPU


def home_frames(path: Path, n: int):
    """Up to n decoded frames of a frames.h5, sequence by sequence."""
    import h5py
    import numpy as np

    chunks = []
    with h5py.File(path, "r") as f:
        for sid in f:
            d = f[sid]["frames"][()]
            chunks.append(d.reshape(-1, *d.shape[2:]))
            if sum(len(c) for c in chunks) >= n:
                break
    return np.concatenate(chunks)[:n]


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=512, help="frames timed at the bootstrap shape")
    ap.add_argument("--frames-b", type=int, default=16, help="frames timed at YOLOv10-B's shape")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "masks.json"))
    args = ap.parse_args(list(argv))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import yaml

    from benchmarks.mask_speed import (SHAPES, agreement, detector_weights, frames_per_second,
                                       random_frames)
    from benchmarks.paper_scale import paper_config
    from vicokd.config import typed
    from vicokd.masks.masks import MasksConfig
    from vicokd.masks.yolo import prepare_ultralytics

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    work = REPO / "benchmarks" / "results"
    prepare_ultralytics(REPO / "results" / ".ultralytics" / "bench")
    import torch
    torch.set_num_threads(args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]

    shapes = {}
    for shape, n in (("bootstrap", args.frames), ("yolov10b", args.frames_b)):
        s = SHAPES[shape]
        section = config["masks"] if shape == "bootstrap" else paper_config()["masks"]
        mcfg = typed(MasksConfig, section)
        mcfg.device = "cpu"
        trained = REPO / "results" / "detector" / "yolov10.pt" if shape == "bootstrap" else \
            (REPO / mcfg.weights if mcfg.weights else None)
        weights, source = detector_weights(shape, work, trained)
        mcfg.imgsz = mcfg.imgsz or s["imgsz"]
        frames_h5 = REPO / "results" / "home1" / "frames.h5"
        if shape == "bootstrap" and frames_h5.is_file():
            frames, frames_src = home_frames(frames_h5, n), "results/home1/frames.h5"
            if not source.startswith("random"):     # small enough to carry to a GPU machine
                np.savez_compressed(work / "mask_sample.npz", frames=frames[:SAMPLE_FRAMES])
        else:
            frames, frames_src = random_frames(n, s["frame"]), "random (smooth)"
        runs, dets = {}, {}
        for path, on_device in (("predictor", False), ("on_device", True)):
            runs[path], dets[path] = frames_per_second(weights, frames, mcfg, "cpu", on_device)
        shapes[shape] = {"weights": source, "frames": frames_src, "frame_size": int(frames.shape[1]),
                         **runs, "agreement": agreement(dets["predictor"], dets["on_device"],
                                                        mcfg.conf, mcfg.min_area)}
        print(f"{shape}: predictor {runs['predictor']['frames_per_second']} frames/s, on_device "
              f"{runs['on_device']['frames_per_second']} frames/s, masks agree on "
              f"{shapes[shape]['agreement']['mask_agreement']:.4f} of frames", flush=True)

    result = {
        "what": "frames/s of the masks rule's detector on the CPU, per shape and path, and the "
                "agreement of the two paths' masks",
        "shapes": shapes, "threads": args.threads,
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
