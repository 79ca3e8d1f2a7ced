"""The `detector` rule: the bootstrap YOLOv10 person detector, trained from `yolov10n.yaml`
(random init) on the synthetic homes' train-split frames and their true boxes, then validated
on held-out train-split sequences. It runs only when no weights are configured (masks.weights).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import default, typed
from ..errors import VicokdError
from ..runner import job_sections
from ..storage import atomic_path, open_h5, read_json, write_json
from .truth import open_boxes, true_person_boxes
from .yolo import PERSON, check_frames, load_detector, prepare_ultralytics, select_device

log = logging.getLogger(__name__)


@dataclass
class DetectorConfig:
    """The `detector:` config section (bootstrap detector, used when masks.weights is null)."""

    model: str = default("detector.model")
    epochs: int = default("detector.epochs")
    imgsz: int = default("detector.imgsz")
    frames: int = default("detector.frames")
    batch: int = default("detector.batch")
    seed: int = default("detector.seed")
    val_fraction: float = default("detector.val_fraction")
    device: str = default("detector.device")



# --------------------------------------------------------------------------- training set

def yolo_label_lines(boxes_px: np.ndarray, size: int, min_side: float = 1.0) -> list[str]:
    """YOLO label lines ('0 xc yc w h', normalised) for xyxy pixel boxes [K, 4] (NaN rows
    skipped); boxes are clipped to the frame, and slivers under `min_side` px dropped."""
    lines = []
    for x1, y1, x2, y2 in np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4):
        if not np.all(np.isfinite([x1, y1, x2, y2])):
            continue
        x1, x2 = np.clip([x1, x2], 0, size)
        y1, y2 = np.clip([y1, y2], 0, size)
        if x2 - x1 < min_side or y2 - y1 < min_side:
            continue
        lines.append(f"0 {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} "
                     f"{(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}")
    return lines


def build_training_set(homes: dict[str, dict], out_dir: str | os.PathLike, cfg: DetectorConfig,
                       decode_fps: float) -> dict:
    """Write a YOLO dataset (images, labels, data.yaml) of train-split frames with true boxes.

    `homes` maps a home to {"frames", "split", "boxes"} paths. Per home, `cfg.frames` frames are
    drawn at random from the train sequences (at least half with a person, when there are
    enough), plus a quarter as many validation frames, drawn uniformly, from a held-out
    `val_fraction` of those sequences (the test split is never touched: masks are
    scored there). Returns counts, the path of data.yaml and, per home, the held-out
    validation sequences (`val_sequences`)."""
    import cv2
    out = Path(out_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(cfg.seed)
    counts = {"train": {"images": 0, "boxes": 0}, "val": {"images": 0, "boxes": 0}}
    val_ids: dict[str, list[str]] = {}
    for sub in ("train", "val"):
        (out / "images" / sub).mkdir(parents=True)
        (out / "labels" / sub).mkdir(parents=True)
    for env, paths in sorted(homes.items()):
        split = read_json(paths["split"])
        train_ids = list(split.get("train", []))
        if not train_ids:
            raise VicokdError(f"{paths['split']}: no train sequences")
        order = rng.permutation(len(train_ids))
        n_val = int(round(len(train_ids) * cfg.val_fraction)) if len(train_ids) > 1 else 0
        n_val = min(max(n_val, 1 if len(train_ids) > 1 else 0), len(train_ids) - 1)
        parts = {"val": [train_ids[i] for i in order[:n_val]],
                 "train": [train_ids[i] for i in order[n_val:]]}
        if not parts["val"]:  # a single train sequence: validate on its frames
            parts["val"] = parts["train"]
        val_ids[env] = list(parts["val"])
        quota = {"train": cfg.frames, "val": max(1, cfg.frames // 4)}
        frames_f = open_h5(paths["frames"], "frames")
        boxes_f = open_boxes(paths["boxes"])
        try:
            for sub, ids in parts.items():
                pools = {True: [], False: []}  # (seq, view, t), by whether a person is visible
                shapes = {}
                for sid in ids:
                    if sid not in frames_f:
                        raise VicokdError(f"{paths['frames']}: split names sequence '{sid}' "
                                          "that the frames file lacks")
                    ds = frames_f[sid]["frames"]
                    check_frames(paths["frames"], ds)
                    v, t = ds.shape[:2]
                    shapes[sid] = ds.shape
                    _, vis = true_person_boxes(paths["boxes"], sid, v, t, 1, decode_fps, f=boxes_f)
                    for vi in range(v):
                        for ti in range(t):
                            pools[bool(vis[vi, ti])].append((sid, vi, ti))
                pool = pools[True] + pools[False]
                if sub == "train":
                    take = sample_frames(len(pools[True]), len(pools[False]), quota[sub], rng)
                else:  # validation keeps the homes' own share of empty frames
                    take = rng.choice(len(pool), size=min(quota[sub], len(pool)), replace=False)
                chosen: dict[str, list[tuple[int, int]]] = {}
                for k in sorted(take):
                    sid, vi, ti = pool[k]
                    chosen.setdefault(sid, []).append((vi, ti))
                for sid, items in chosen.items():
                    V, T, H, W, _ = shapes[sid]
                    frames = frames_f[sid]["frames"][()]
                    boxes, _ = true_person_boxes(paths["boxes"], sid, V, T, W, decode_fps,
                                                 f=boxes_f)
                    for vi, ti in items:
                        stem = f"{env}__{sid}__v{vi}_t{ti}"
                        img = np.ascontiguousarray(frames[vi, ti][..., ::-1])  # RGB -> BGR
                        if not cv2.imwrite(str(out / "images" / sub / f"{stem}.png"), img):
                            raise VicokdError(f"{out}: could not write image {stem}.png")
                        lines = yolo_label_lines(boxes[vi, ti][None], W)
                        (out / "labels" / sub / f"{stem}.txt").write_text(
                            "".join(line + "\n" for line in lines))
                        counts[sub]["images"] += 1
                        counts[sub]["boxes"] += len(lines)
        finally:
            frames_f.close()
            boxes_f.close()
    data_yaml = out / "data.yaml"
    # Absolute paths: ultralytics would otherwise resolve them against its datasets_dir setting.
    data_yaml.write_text(f"path: {out}\ntrain: {out / 'images' / 'train'}\n"
                         f"val: {out / 'images' / 'val'}\nnames:\n  0: {PERSON}\n")
    return {"data": str(data_yaml), **counts, "val_sequences": val_ids}


def sample_frames(n_pos: int, n_neg: int, quota: int, rng: np.random.Generator) -> np.ndarray:
    """Indices into positives-then-negatives: `quota` frames drawn without replacement, at least
    half of them with a person when there are enough (in a home where most views see nobody
    most of the time, uniform draws would leave few boxes to learn from)."""
    quota = min(quota, n_pos + n_neg)
    want_pos = max(quota // 2, int(round(quota * n_pos / max(n_pos + n_neg, 1))))
    k_pos = min(n_pos, want_pos)
    k_neg = min(n_neg, quota - k_pos)
    k_pos = min(n_pos, quota - k_neg)
    pos = rng.choice(n_pos, size=k_pos, replace=False)
    neg = n_pos + rng.choice(n_neg, size=k_neg, replace=False)
    return np.concatenate([pos, neg]).astype(np.int64)


# --------------------------------------------------------------------------- training

def train_detector(data_yaml: str, cfg: DetectorConfig, run_dir: str | os.PathLike,
                   device: str, threads: int = 1):
    """Train YOLOv10 from its yaml (random init) on the CPU or GPU; returns the best weights' path."""
    from ultralytics import YOLO
    if not cfg.model.endswith((".yaml", ".yml")):
        raise VicokdError(f"config.yaml: detector.model must be a model yaml such as "
                          f"yolov10n.yaml (random init), found {cfg.model!r}")
    run_dir = Path(run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    try:
        model = YOLO(cfg.model, task="detect")
    except (FileNotFoundError, KeyError) as exc:
        raise VicokdError(f"config.yaml: detector.model {cfg.model!r} is not a model yaml "
                          f"ultralytics knows ({exc})") from None
    model.add_callback("on_fit_epoch_end", _log_epoch)
    model.train(
        data=str(data_yaml), epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch, seed=cfg.seed,
        device="cpu" if device == "cpu" else 0, workers=0 if device == "cpu" else min(threads, 8),
        amp=False, plots=False, pretrained=False, deterministic=True, cache="ram",
        project=str(run_dir.parent), name=run_dir.name, exist_ok=True, verbose=False,
        patience=max(cfg.epochs, 100),
    )
    best = run_dir / "weights" / "best.pt"
    if not best.is_file():
        best = run_dir / "weights" / "last.pt"
    if not best.is_file():
        raise VicokdError(f"{run_dir}: training finished without writing weights")
    return best


def _log_epoch(trainer) -> None:
    """Progress in the rule's log: ultralytics prints its own only to the console."""
    if trainer.epoch >= trainer.epochs:  # the call after the final validation of best.pt
        return
    m = trainer.metrics or {}
    log.info("detector epoch %d/%d: val precision %.3f recall %.3f mAP50 %.3f", trainer.epoch + 1,
             trainer.epochs, m.get("metrics/precision(B)", float("nan")),
             m.get("metrics/recall(B)", float("nan")), m.get("metrics/mAP50(B)", float("nan")))


def validate_detector(weights, data_yaml: str, cfg: DetectorConfig, device: str) -> dict:
    """Precision, recall, mAP50 and mAP50-95 of `weights` on the validation images."""
    model, _ = load_detector(weights)
    m = model.val(data=str(data_yaml), imgsz=cfg.imgsz, batch=cfg.batch,
                  device="cpu" if device == "cpu" else 0, plots=False, verbose=False,
                  workers=0, half=False)
    return {"precision": float(m.box.mp), "recall": float(m.box.mr),
            "map50": float(m.box.map50), "map50_95": float(m.box.map)}


def main(snakemake) -> None:
    """Entry of the `detector` rule: build the training set, train, validate, write weights and metrics."""
    cfg = typed(DetectorConfig, *job_sections(snakemake, "detector"))
    decode_fps = float(snakemake.params.decode["fps"])
    out_weights = Path(snakemake.output.weights)
    work = out_weights.parent
    prepare_ultralytics(work.parent / ".ultralytics" / "detector")
    device = select_device(cfg.device, str(out_weights), "detector.device")
    homes = {}
    for env, frames, split, boxes in zip(snakemake.params.homes, snakemake.input.frames,
                                         snakemake.input.split, snakemake.input.boxes):
        homes[env] = {"frames": frames, "split": split, "boxes": boxes}
    t0 = time.time()
    data = build_training_set(homes, work / "dataset", cfg, decode_fps)
    log.info("training set: %s", {k: v for k, v in data.items() if k != "val_sequences"})
    best = train_detector(data["data"], cfg, work / "run", device, snakemake.threads)
    train_s = time.time() - t0
    metrics = validate_detector(best, data["data"], cfg, device)
    log.info("validation: %s", metrics)
    with atomic_path(out_weights) as tmp:
        shutil.copyfile(best, tmp)
    write_json(snakemake.output.metrics, {
        **metrics, "split": "val (held-out train-split sequences)",
        "images": {"train": data["train"]["images"], "val": data["val"]["images"]},
        "boxes": {"train": data["train"]["boxes"], "val": data["val"]["boxes"]},
        "epochs": cfg.epochs, "imgsz": cfg.imgsz, "model": cfg.model, "device": device,
        "train_seconds": round(train_s, 1), "homes": sorted(homes),
    })
