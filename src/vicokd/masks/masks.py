"""The `masks` rule: YOLO person boxes on the decoded frames of frames.h5 and the per-view,
per-frame visibility mask derived from them.

masks.h5, per sequence: `mask` bool [V, T], `boxes` float32 [V, T, K, 4] (xyxy pixels of the
decoded frame, NaN-padded), `scores` float32 [V, T, K] (NaN-padded); K = masks.max_det; and
`score` float32 [V, T], the mean confidence of every person detection of the frame (score >
masks.conf, up to SCORE_MAX_DET of them, no area limit), 0 when there is none: what the
authors' code keeps per view and frame (with YOLOv10-B).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import default, typed
from ..errors import VicokdError
from ..runner import job_sections
from ..storage import atomic_h5, check_dataset, open_h5, write_dataset
from .yolo import check_frames, letterbox_batch, load_detector, prepare_ultralytics, select_device

log = logging.getLogger(__name__)

# Detections per frame YOLO returns (ultralytics' default, as in the authors' code): the person
# score averages all of them; boxes/scores keep the K = masks.max_det best.
SCORE_MAX_DET = 300


@dataclass
class MasksConfig:
    """The `masks:` config section."""

    weights: str | None = default("masks.weights")
    conf: float = default("masks.conf")
    min_area: float = default("masks.min_area")
    device: str = default("masks.device")
    batch_size: int = default("masks.batch_size")
    max_det: int = default("masks.max_det")
    imgsz: int | None = default("masks.imgsz")  # detector input; null = the weights' training size



# --------------------------------------------------------------------------- derivation

def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of xyxy boxes [..., 4] in squared pixels; NaN for padding rows."""
    boxes = np.asarray(boxes, dtype=np.float64)
    w = np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
    h = np.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return w * h


def derive_mask(boxes: np.ndarray, scores: np.ndarray, conf: float, min_area: float) -> np.ndarray:
    """A person is seen where some box has score >= conf and area >= min_area.

    boxes [..., K, 4] xyxy pixels, scores [..., K], both NaN-padded -> bool [...]."""
    scores = np.asarray(scores, dtype=np.float64)
    areas = box_areas(boxes)
    with np.errstate(invalid="ignore"):  # NaN padding compares False
        ok = (scores >= conf) & (areas >= min_area) & np.isfinite(areas)
    return ok.any(axis=-1)


def person_score(dets: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """float32 [F]: the mean person confidence of each frame's detections, 0 when none."""
    return np.array([float(np.mean(s)) if len(s) else 0.0 for _, s in dets], dtype=np.float32)


def pack_detections(dets: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (boxes [n, 4], scores [n]) -> NaN-padded boxes [F, k, 4], scores [F, k],
    keeping the k highest scores of each frame."""
    boxes = np.full((len(dets), k, 4), np.nan, dtype=np.float32)
    scores = np.full((len(dets), k), np.nan, dtype=np.float32)
    for i, (b, s) in enumerate(dets):
        if len(s) == 0:
            continue
        order = np.argsort(-np.asarray(s))[:k]
        boxes[i, :len(order)] = np.asarray(b, dtype=np.float32)[order]
        scores[i, :len(order)] = np.asarray(s, dtype=np.float32)[order]
    return boxes, scores


# --------------------------------------------------------------------------- running YOLO

class PersonDetector:
    """YOLO weights ready to find persons in RGB uint8 frames, in batches.

    On the CPU each batch goes through ultralytics' predictor as numpy frames (OpenCV letterbox
    per frame, float32): the path docs/masks.md's figures were measured on. On a GPU
    (`on_device`, the default there) the batch goes to the device as uint8, is letterboxed there
    in one resize (`letterbox_batch`) and runs in half precision through the same predictor's
    model, non-maximum suppression and box scaling; its masks equal the CPU path's within the
    tolerance docs/masks.md states (frames differ by at most one grey level before the model)."""

    def __init__(self, weights, cfg: MasksConfig, device: str, on_device: bool | None = None):
        self.model, self.person = load_detector(weights)
        self.cfg = cfg
        self.device = "cpu" if device == "cpu" else 0
        trained = (getattr(self.model, "overrides", {}) or {}).get("imgsz")
        self.imgsz = cfg.imgsz or (trained if isinstance(trained, int) else None)
        self.on_device = device == "cuda" if on_device is None else bool(on_device)
        self.half = device == "cuda"               # fp16 only where it is fast and exact enough
        self._predictor = None

    def detect(self, frames_rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """frames uint8 [F, H, W, 3] RGB -> per frame (xyxy pixel boxes [n, 4], scores [n])."""
        if self.on_device:
            return self._detect_on_device(frames_rgb)
        out = []
        size = self.imgsz or int(max(frames_rgb.shape[1:3]))
        for start in range(0, len(frames_rgb), self.cfg.batch_size):
            chunk = frames_rgb[start:start + self.cfg.batch_size]
            # ultralytics takes numpy images as BGR (OpenCV order); frames.h5 holds RGB.
            bgr = [np.ascontiguousarray(im[..., ::-1]) for im in chunk]
            results = self.model.predict(bgr, imgsz=size, conf=self.cfg.conf,
                                         classes=[self.person],
                                         max_det=max(self.cfg.max_det, SCORE_MAX_DET),
                                         device=self.device, half=False, verbose=False)
            for r in results:
                b = r.boxes
                out.append((b.xyxy.cpu().numpy().reshape(-1, 4), b.conf.cpu().numpy().reshape(-1)))
        return out

    def _predictor_for(self, frames_rgb: np.ndarray):
        """ultralytics' predictor, set up once by a call on one frame: the fused weights on the
        device (fp16 on a GPU), its input size and its settings (conf, classes, max_det)."""
        if self._predictor is None:
            import torch
            size = self.imgsz or int(max(frames_rgb.shape[1:3]))
            self.model.predict([np.ascontiguousarray(frames_rgb[0][..., ::-1])], imgsz=size,
                               conf=self.cfg.conf, classes=[self.person],
                               max_det=max(self.cfg.max_det, SCORE_MAX_DET), device=self.device,
                               quantize=16 if self.half else None, verbose=False)
            self._predictor = self.model.predictor
            if self.half:
                torch.backends.cudnn.benchmark = True    # one input shape for the whole run
        return self._predictor

    def _detect_on_device(self, frames_rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch
        from ultralytics.utils import nms, ops

        p = self._predictor_for(frames_rgb)
        backend, args = p.model, p.args
        stride = int(max(backend.stride)) if hasattr(backend.stride, "__len__") else int(backend.stride)
        out = []
        for start in range(0, len(frames_rgb), self.cfg.batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(frames_rgb[start:start + self.cfg.batch_size]))
            with torch.inference_mode():
                im = letterbox_batch(chunk.to(p.device, non_blocking=True), tuple(p.imgsz), stride)
                im = im.half() if self.half else im
                dets = nms.non_max_suppression(
                    backend(im), args.conf, args.iou, args.classes, args.agnostic_nms,
                    max_det=args.max_det, nc=0, end2end=getattr(backend, "end2end", False))
                counts = [len(d) for d in dets]
                found = torch.cat(dets).float()
                boxes = ops.scale_boxes(im.shape[2:], found[:, :4].clone(), chunk.shape[1:3])
                both = torch.cat([boxes, found[:, 4:5]], 1).cpu().numpy()   # one copy back
            for rows in np.split(both, np.cumsum(counts)[:-1]):
                out.append((rows[:, :4].reshape(-1, 4), rows[:, 4].reshape(-1)))
        return out


def compute_masks(frames_path, out_path, weights, cfg: MasksConfig) -> dict:
    """Run the detector over every sequence of frames.h5 and write masks.h5 atomically."""
    device = select_device(cfg.device, str(out_path), "masks.device")
    detector = PersonDetector(weights, cfg, device)
    frames_f = open_h5(frames_path, "frames")
    n_frames, seconds, n_seen = 0, 0.0, 0
    try:
        seq_ids = sorted(frames_f.keys())
        for sid in seq_ids:  # check every sequence before the long run
            if "frames" not in frames_f[sid]:
                raise VicokdError(f"{frames_path}:/{sid}: missing dataset 'frames'")
            check_frames(frames_path, frames_f[sid]["frames"])
        with atomic_h5(out_path, "masks", config=cfg.__dict__, weights=str(weights),
                       device=device, person_class=detector.person,
                       precision="float16" if detector.half else "float32",
                       letterbox="batched on the device" if detector.on_device
                       else "ultralytics (OpenCV, per frame)") as out:
            for sid in seq_ids:
                frames = frames_f[sid]["frames"][()]
                V, T = frames.shape[:2]
                t0 = time.perf_counter()
                dets = detector.detect(frames.reshape(V * T, *frames.shape[2:]))
                seconds += time.perf_counter() - t0
                boxes, scores = pack_detections(dets, cfg.max_det)
                boxes = boxes.reshape(V, T, cfg.max_det, 4)
                scores = scores.reshape(V, T, cfg.max_det)
                score = person_score(dets).reshape(V, T)
                mask = derive_mask(boxes, scores, cfg.conf, cfg.min_area)
                g = out.create_group(sid)
                write_dataset(g, "mask", mask, ("V", "T"))
                write_dataset(g, "boxes", boxes, ("V", "T", "K", "xyxy"))
                write_dataset(g, "scores", scores, ("V", "T", "K"))
                write_dataset(g, "score", score, ("V", "T"))
                n_frames += V * T
                n_seen += int(mask.sum())
                done = seq_ids.index(sid) + 1
                if done % 10 == 0 or done == len(seq_ids):
                    log.info("masks: %d/%d sequences, %d frames, %.0f frames/s", done,
                             len(seq_ids), n_frames, n_frames / max(seconds, 1e-9))
            out.attrs["frames_per_second"] = n_frames / seconds if seconds else 0.0
    finally:
        frames_f.close()
    summary = {"sequences": len(seq_ids), "frames": n_frames, "person_frames": n_seen,
               "frames_per_second": round(n_frames / seconds, 1) if seconds else None,
               "device": device}
    log.info("masks: %s", summary)
    return summary


# --------------------------------------------------------------------------- reading

def load_masks(path, seq_ids=None) -> dict[str, np.ndarray]:
    """The `mask` bool [V, T] of each sequence (all, or `seq_ids`) of a masks.h5, checked."""
    out = {}
    with open_h5(path, "masks") as f:
        for sid in (seq_ids if seq_ids is not None else sorted(f.keys())):
            if sid not in f or "mask" not in f[sid]:
                raise VicokdError(f"{path}: no mask for sequence '{sid}'")
            check_dataset(path, f[sid]["mask"], 2, bool)
            out[sid] = f[sid]["mask"][()]
    return out


# --------------------------------------------------------------------------- entry

def main(snakemake) -> None:
    """Entry of the `masks` rule: masks.h5 for one home."""
    cfg = typed(MasksConfig, *job_sections(snakemake, "masks"))
    out = Path(snakemake.output.masks)
    weights = snakemake.input.get("weights") or cfg.weights
    if not weights:
        raise VicokdError("config.yaml: masks.weights is null, and the bootstrap detector needs the "
                          "synthetic homes' true boxes: set masks.weights to YOLOv10 weights on disk "
                          "(e.g. yolov10x.pt)")
    prepare_ultralytics(out.parent.parent / ".ultralytics" / f"masks-{snakemake.wildcards.env}")
    compute_masks(snakemake.input.frames, out, weights, cfg)
