"""One setting of the bootstrap detector, tried on its own validation data: how long it trains,
ultralytics' box figures on its validation images, and the precision and recall of the masks it
makes on frames of the held-out validation sequences (part of the TRAIN split; the test split,
where masks_quality scores the masks, is never read).

Usage (from the repo root, after `snakemake --cores 2 results/home1/frames.h5 results/home2/frames.h5
results/home1/split.json results/home2/split.json` has decoded the synthetic homes):
    python -m benchmarks detector [--epochs 30] [--imgsz 128] [--frames 400]
    python -m benchmarks detector --weights results/detector/yolov10.pt    # score, no training
Settings not given come from config.yaml's `detector:` section; masks.conf and masks.min_area
from its `masks:` section. One thread, as the detector rule runs. Writes
benchmarks/results/detector-e{epochs}-s{imgsz}-f{frames}.json and prints it."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def validation_mask_quality(weights, homes: dict, val_ids: dict, masks_cfg, decode_fps: float,
                            frames_per_home: int, seed: int = 0) -> dict:
    """Precision/recall of the masks on up to `frames_per_home` frames (drawn uniformly, seeded)
    of each home's held-out validation sequences, against the true visibility."""
    import numpy as np

    from vicokd.masks.masks import PersonDetector, derive_mask, pack_detections
    from vicokd.masks.quality import precision_recall
    from vicokd.masks.truth import open_boxes, true_person_boxes
    from vicokd.storage import open_h5

    det = PersonDetector(weights, masks_cfg, "cpu")
    rng = np.random.default_rng(seed)
    out, preds, truths = {}, [], []
    for env, paths in sorted(homes.items()):
        frames_f, boxes_f = open_h5(paths["frames"], "frames"), open_boxes(paths["boxes"])
        try:
            pool = [(sid, v, t) for sid in val_ids[env]
                    for v in range(frames_f[sid]["frames"].shape[0])
                    for t in range(frames_f[sid]["frames"].shape[1])]
            take = sorted(rng.choice(len(pool), min(frames_per_home, len(pool)), replace=False))
            images, truth = [], []
            visible = {}
            for k in take:
                sid, v, t = pool[k]
                ds = frames_f[sid]["frames"]
                if sid not in visible:
                    visible[sid] = true_person_boxes(paths["boxes"], sid, ds.shape[0], ds.shape[1],
                                                     1, decode_fps, f=boxes_f)[1]
                images.append(ds[v, t])
                truth.append(visible[sid][v, t])
        finally:
            frames_f.close()
            boxes_f.close()
        t0 = time.perf_counter()
        dets = det.detect(np.stack(images))
        seconds = time.perf_counter() - t0
        boxes, scores = pack_detections(dets, masks_cfg.max_det)
        pred = derive_mask(boxes, scores, masks_cfg.conf, masks_cfg.min_area)
        out[env] = {**precision_recall(pred, np.array(truth)), "sequences": len(val_ids[env]),
                    "frames_per_second": round(len(images) / seconds, 1)}
        preds.append(pred)
        truths.append(np.array(truth))
    out["both_homes"] = precision_recall(np.concatenate(preds), np.concatenate(truths))
    return out


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--imgsz", type=int)
    ap.add_argument("--frames", type=int, help="train-split frames sampled per home")
    ap.add_argument("--weights", help="score these weights instead of training")
    ap.add_argument("--val-frames", type=int, default=1500, help="validation frames scored per home")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", default=str(REPO / "results"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(list(argv))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import yaml

    from vicokd.masks.detector import (DetectorConfig, build_training_set, train_detector,
                                       validate_detector)
    from vicokd.config import typed
    from vicokd.masks.masks import MasksConfig
    from vicokd.masks.yolo import prepare_ultralytics

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg = typed(DetectorConfig, config["detector"])
    for key in ("epochs", "imgsz", "frames"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    masks_cfg = typed(MasksConfig, config["masks"])
    decode_fps = float(config["decode"]["fps"])
    results = Path(args.results)
    homes = {env: {"frames": str(results / env / "frames.h5"), "split": str(results / env / "split.json"),
                   "boxes": str(REPO / "resources" / "synthetic" / env / "boxes.h5")}
             for env in ("home1", "home2")}
    missing = [p for h in homes.values() for p in h.values() if not Path(p).is_file()]
    if missing:
        sys.exit(f"bench_detector: missing {', '.join(missing)}; run `snakemake --cores 2 "
                 "results/home1/split.json results/home2/split.json` first")
    work = Path(tempfile.mkdtemp(prefix="vicokd-detector-bench-"))
    prepare_ultralytics(work / ".ultralytics")
    import torch
    torch.set_num_threads(args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    t0, cpu0 = time.perf_counter(), time.process_time()
    data = build_training_set(homes, work / "dataset", cfg, decode_fps)
    if args.weights:
        weights, train_s, train_cpu = Path(args.weights), None, None
    else:
        weights = train_detector(data["data"], cfg, work / "run", "cpu", args.threads)
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    load_after_training = [round(x, 2) for x in os.getloadavg()]
    boxes = validate_detector(weights, data["data"], cfg, "cpu")
    masks = validation_mask_quality(weights, homes, data["val_sequences"], masks_cfg, decode_fps,
                                    args.val_frames)
    name = f"detector-e{cfg.epochs}-s{cfg.imgsz}-f{cfg.frames}" + ("-scored" if args.weights else "")
    result = {
        "setting": {"epochs": cfg.epochs, "imgsz": cfg.imgsz, "frames": cfg.frames,
                    "model": cfg.model, "batch": cfg.batch, "seed": cfg.seed},
        "weights": str(args.weights) if args.weights else "trained here",
        # wall time grows with other jobs on the machine; CPU time (this process, all its
        # threads) hardly does: on an idle core the two are equal (docs/masks.md)
        "train_seconds": round(train_s, 1) if train_s is not None else None,
        "train_cpu_seconds": round(train_cpu, 1) if train_cpu is not None else None,
        "images": {"train": data["train"]["images"], "val": data["val"]["images"]},
        "validation_boxes": {k: round(v, 4) for k, v in boxes.items()},
        "validation_masks": masks,
        "masks": {"conf": masks_cfg.conf, "min_area": masks_cfg.min_area},
        "threads": args.threads, "cpus": os.cpu_count(),
        "load_average_before": load_before, "load_average_after_training": load_after_training,
        "machine": platform.processor() or platform.machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_result(args.out or REPO / "benchmarks" / "results" / f"{name}.json", result)


if __name__ == "__main__":
    main(sys.argv[1:])
