"""The person detector: offline ultralytics set-up, loading YOLOv10 weights, and training the
bootstrap YOLOv10 (from `yolov10n.yaml`, random init) on the synthetic homes' train frames.

ultralytics reaches for the network in several places (settings sync, font download during
dataset checks, AMP check, weights named like an official release). `prepare_ultralytics`
closes each of them and must run before `ultralytics` is imported.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import VicokdError
from .storage import atomic_path, check_dataset, open_h5, read_json, write_json

log = logging.getLogger("vicokd.detect")

PERSON = "person"


@dataclass
class DetectorConfig:
    """The `detector:` config section (bootstrap detector, used when masks.weights is null)."""

    model: str = "yolov10n.yaml"
    epochs: int = 30
    imgsz: int = 128
    frames: int = 400
    batch: int = 32
    seed: int = 0
    val_fraction: float = 0.2
    device: str = "auto"

    @classmethod
    def from_dict(cls, d: dict | None) -> "DetectorConfig":
        known = {k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


# --------------------------------------------------------------------------- offline set-up

def prepare_ultralytics(config_dir: str | os.PathLike) -> Path:
    """Make ultralytics work with no network; call before `import ultralytics`.

    Its settings (and the font that dataset checks would otherwise download) live in
    `config_dir/Ultralytics`; settings sync and online checks are switched off. Returns the
    settings folder ultralytics actually uses (if it was imported earlier, its own)."""
    config_dir = Path(config_dir).resolve()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        settings_dir = config_dir / "Ultralytics"
    else:  # too late to move its settings: equip the folder it already chose
        from ultralytics.utils import USER_CONFIG_DIR
        settings_dir = Path(USER_CONFIG_DIR)
    settings_dir.mkdir(parents=True, exist_ok=True)
    _install_font(settings_dir)
    from ultralytics import settings  # noqa: E402  (after the environment is set)
    if settings.get("sync", True):
        settings.update({"sync": False})
    return settings_dir


def _install_font(settings_dir: Path) -> None:
    """Put a local TTF where ultralytics' check_font looks first, under the names it asks for."""
    import matplotlib
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = settings_dir / name
        if not target.exists():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)


def select_device(requested: str, where: str, key: str) -> str:
    """'cuda' or 'cpu' from the config value `key` (auto|cpu|cuda); a demanded but absent GPU
    is an error. `where` names the file the job was making."""
    import torch
    if requested not in ("auto", "cpu", "cuda"):
        raise VicokdError(f"{where}: {key} must be auto, cpu or cuda, found {requested!r}")
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise VicokdError(f"{where}: {key} is 'cuda' but no CUDA GPU is available "
                          f"(set {key} to auto or cpu)")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested


# --------------------------------------------------------------------------- loading weights

def load_detector(weights: str | os.PathLike | None):
    """Load YOLO weights from a file on disk; returns (model, index of the person class).

    Only an existing path is handed to ultralytics: a bare name such as `yolov10x.pt` would
    make it download the official release."""
    if not weights:
        raise VicokdError("config.yaml: masks.weights is empty and no bootstrap detector was given")
    path = Path(weights)
    if not path.is_file():
        raise VicokdError(f"{path}: YOLO weights file not found (masks.weights)")
    from ultralytics import YOLO
    try:
        model = YOLO(str(path.resolve()), task="detect")
        task = getattr(model, "task", None)
        names = dict(model.names)
    except Exception as exc:  # ultralytics raises many kinds on a bad checkpoint
        raise VicokdError(f"{path}: not loadable as YOLO weights ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if task != "detect":
        raise VicokdError(f"{path}: not a detection model (task={task!r})")
    person = [i for i, n in names.items() if str(n).lower() == PERSON]
    if not person:
        raise VicokdError(f"{path}: the detector has no '{PERSON}' class (classes: "
                          f"{', '.join(map(str, list(names.values())[:10]))}...)")
    return model, int(person[0])


# --------------------------------------------------------------------------- true boxes

def source_frame_indices(n_decoded: int, decode_fps: float, source_fps: float,
                         n_source: int) -> np.ndarray:
    """Source frame of each decoded frame i: round(i / decode_fps * source_fps), clipped."""
    i = np.arange(n_decoded)
    src = np.rint(i / float(decode_fps) * float(source_fps)).astype(np.int64)
    return np.clip(src, 0, max(n_source - 1, 0))


def true_person_boxes(boxes_path, seq_id: str, n_views: int, n_decoded: int, size: int,
                      decode_fps: float, f=None) -> tuple[np.ndarray, np.ndarray]:
    """True person boxes of one sequence at the decoded frames.

    Returns boxes float32 [V, T, 4] (xyxy in pixels of the decoded `size`, NaN when not
    visible) and visible bool [V, T]. `f` may be an open boxes.h5 to avoid reopening it."""
    own = f is None
    if own:
        f = _open_boxes(boxes_path)
    try:
        if seq_id not in f:
            raise VicokdError(f"{boxes_path}: no true boxes for sequence '{seq_id}'")
        g = f[seq_id]
        for name in ("boxes", "visible"):
            if name not in g:
                raise VicokdError(f"{boxes_path}:/{seq_id}: missing dataset '{name}'")
        check_dataset(boxes_path, g["boxes"], 3, np.float32, {0: n_views, 2: 4})
        if g["visible"].shape != g["boxes"].shape[:2]:
            raise VicokdError(f"{boxes_path}:/{seq_id}/visible: shape {g['visible'].shape} does "
                              f"not match boxes {g['boxes'].shape[:2]}")
        if "fps" not in g.attrs:
            raise VicokdError(f"{boxes_path}:/{seq_id}: missing attribute 'fps'")
        src = source_frame_indices(n_decoded, decode_fps, float(g.attrs["fps"]), g["boxes"].shape[1])
        boxes = np.asarray(g["boxes"][()], dtype=np.float32)[:, src] * np.float32(size)
        visible = np.asarray(g["visible"][()], dtype=bool)[:, src]
    finally:
        if own:
            f.close()
    boxes[~visible] = np.nan
    return boxes, visible


def _open_boxes(path):
    import h5py
    p = Path(path)
    if not p.is_file():
        raise VicokdError(f"{p}: true boxes file not found")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise VicokdError(f"{p}: not a readable HDF5 file ({exc})") from None


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
    scored there). Returns counts and the path of data.yaml."""
    import cv2
    out = Path(out_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(cfg.seed)
    counts = {"train": {"images": 0, "boxes": 0}, "val": {"images": 0, "boxes": 0}}
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
        quota = {"train": cfg.frames, "val": max(1, cfg.frames // 4)}
        frames_f = open_h5(paths["frames"], "frames")
        boxes_f = _open_boxes(paths["boxes"])
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
    return {"data": str(data_yaml), **counts}


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


def check_frames(path, ds) -> None:
    """frames.h5 contract: uint8 [V, T, H, W, 3]."""
    check_dataset(path, ds, 5, np.uint8, {4: 3})


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


def main_detector(snakemake) -> None:
    """Snakemake entry: build the training set, train, validate, write weights and metrics."""
    cfg = DetectorConfig.from_dict(snakemake.params.detector)
    decode_fps = float(snakemake.params.decode["fps"])
    out_weights = Path(snakemake.output.weights)
    work = out_weights.parent
    prepare_ultralytics(work.parent / ".ultralytics" / "detector")
    import torch
    torch.set_num_threads(max(1, int(snakemake.threads)))
    device = select_device(cfg.device, str(out_weights), "detector.device")
    homes = {}
    for env, frames, split, boxes in zip(snakemake.params.homes, snakemake.input.frames,
                                         snakemake.input.split, snakemake.input.boxes):
        homes[env] = {"frames": frames, "split": split, "boxes": boxes}
    t0 = time.time()
    data = build_training_set(homes, work / "dataset", cfg, decode_fps)
    log.info("training set: %s", data)
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
