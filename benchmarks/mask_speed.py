"""What bench_masks (CPU) and bench_gpu (CUDA) measure of the masks rule's detector: frames/s of
vicokd.masks.masks.PersonDetector at the two shapes that matter, on each of its two paths, and
how far the masks of the two paths agree.

Shapes: `bootstrap` is the embedded default (the bootstrap YOLOv10n at 128 px on 96 px decoded
frames); `yolov10b` is config/paper.yaml (YOLOv10-B at 640 px on 224 px frames). Paths:
`predictor` hands numpy frames to ultralytics' predictor (OpenCV letterbox per frame, float32;
what the CPU runs, and what a GPU ran before issue 20); `on_device` letterboxes the batch on the
device and runs in half precision on a GPU (float32 on the CPU)."""

from __future__ import annotations

import time
from pathlib import Path

SHAPES = {"bootstrap": {"arch": "yolov10n.yaml", "imgsz": 128, "frame": 96},
          "yolov10b": {"arch": "yolov10b.yaml", "imgsz": 640, "frame": 224}}


def detector_weights(shape: str, work: Path, weights: str | Path | None = None) -> tuple[Path, str]:
    """(weights file, what it is): `weights` when that file exists, else a random init of the
    shape's architecture with a 'person' class (same cost per frame; nothing is downloaded)."""
    if weights is not None and Path(weights).is_file():
        return Path(weights), str(weights)
    from ultralytics import YOLO
    arch = SHAPES[shape]["arch"]
    model = YOLO(arch)
    model.model.names = {i: ("person" if i == 0 else f"c{i}") for i in range(80)}
    path = Path(work) / f"random_{Path(arch).stem}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path, f"random-init {arch}"


def frames_per_second(weights, frames, mcfg, device: str, on_device: bool) -> tuple[dict, list]:
    """Frames/s of one path over `frames` (after a warm-up batch), and its detections."""
    import torch

    from vicokd.masks.masks import PersonDetector

    det = PersonDetector(weights, mcfg, device, on_device=on_device)
    det.detect(frames[:mcfg.batch_size])                 # warm-up: set-up, first allocations
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    dets = det.detect(frames)
    sync()
    seconds = time.perf_counter() - t0
    return {"frames_per_second": round(len(frames) / seconds, 1), "frames": int(len(frames)),
            "seconds": round(seconds, 3), "precision": "float16" if det.half else "float32",
            "imgsz": det.imgsz, "batch_size": mcfg.batch_size}, dets


def agreement(a: list, b: list, conf: float, min_area: float) -> dict:
    """How far two paths' detections of the same frames agree: the share of frames whose mask
    (vicokd.masks.masks.derive_mask) is the same, and over frames where both keep the same
    number of boxes, the largest difference of a box corner (pixels of the frame) and of a score."""
    import numpy as np

    from vicokd.masks.masks import derive_mask, pack_detections

    k = max(1, max(len(s) for _, s in a + b))
    ba, sa = pack_detections(a, k)
    bb, sb = pack_detections(b, k)
    ma, mb = derive_mask(ba, sa, conf, min_area), derive_mask(bb, sb, conf, min_area)
    same_count = np.array([len(x[1]) == len(y[1]) for x, y in zip(a, b)])
    box = np.abs(ba[same_count] - bb[same_count])
    score = np.abs(sa[same_count] - sb[same_count])
    return {"frames": len(a), "mask_agreement": round(float((ma == mb).mean()), 5),
            "mask_positive": [int(ma.sum()), int(mb.sum())],
            "frames_with_equal_box_count": round(float(same_count.mean()), 5),
            "max_box_difference_px": round(float(np.nanmax(box)), 3) if np.isfinite(box).any() else 0.0,
            "max_score_difference": round(float(np.nanmax(score)), 5) if np.isfinite(score).any() else 0.0}


def random_frames(n: int, size: int, seed: int = 0):
    """uint8 [n, size, size, 3] frames of smooth random content (a blurred noise field), which
    gives a detector more to do than flat noise."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, max(size // 8, 2), max(size // 8, 2), generator=g)
    big = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return (big.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy().astype(np.uint8)
