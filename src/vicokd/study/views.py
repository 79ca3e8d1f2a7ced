"""The `study_views` rule: how the views of one study home see the actor, measured from its data.

- visibility: from the generator's true boxes at the decoded frames (boxes.h5, the same source
  frames decoding keeps): the share of frames each view sees the actor, co-visibility (the share
  of frames with the actor in some view that show it in two or more), and the share of view pairs
  x frames in which both views see the actor (where view consistency may act);
- the same pair share by the masks (masks.h5: where ViCoKD's VC term does act) and the masks'
  precision and recall (masks_quality.json);
- a linear probe per view: the probe of vicokd.runs.probe (32 px grey frame and its change to
  the next frame, standardised, ridge lambda 100) fitted on the train-split frames in which that
  view sees the actor, scored on the test-split frames in which it does (frame mAP);
- for every pair of views, on the test frames that both see: each view's probe mAP there, and
  how much the two views' readouts disagree, 1 - the Pearson correlation of their probe scores
  (per class, averaged over the classes whose scores vary). **View disparity** is that
  disagreement averaged over the pairs, weighted by their co-visible frames: 0 when the views
  read the action alike, towards 1 when what one view shows tells nothing about the other.

The probe reads the picture only (the students are visual-only). Nothing here is an input of a
method: these are descriptions of the data, written to results/study/{env}/views.json.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

import numpy as np

from ..data.dataset import DataFiles
from ..errors import VicokdError
from ..masks.truth import open_boxes, true_person_boxes
from ..metrics import mean_average_precision, random_score_map
from ..runs.probe import (FRAME_BLOCK, PROBE_SIZE, RIDGE_LAMBDA, RidgeSums, open_probe_data,
                          sequence_blocks)
from ..storage import open_h5, read_json, write_json
from ..synthetic.synthesize import SyntheticConfig

log = logging.getLogger(__name__)

# A view pair enters the disparity only with this many co-visible test frames (fewer give a
# correlation that is mostly noise).
PAIR_MIN_FRAMES = 30


def true_visibility(boxes_path, frames_h5, ids: list[str], decode_fps: float) -> dict:
    """{sequence id: bool [V, T]}: whether each view sees the actor at each decoded frame."""
    out = {}
    bf = open_boxes(boxes_path)
    try:
        for sid in ids:
            V, T = frames_h5[sid]["frames"].shape[:2]
            out[sid] = true_person_boxes(boxes_path, sid, V, T, 1, decode_fps, f=bf)[1]
    finally:
        bf.close()
    return out


def pair_share(visible: list[np.ndarray]) -> float | None:
    """Share of (view pair, frame) cells in which both views see the actor; `visible`: bool
    [V, T] per sequence. None with fewer than two views."""
    both = total = 0
    for vis in visible:
        v = vis.astype(np.int64)
        n = v.shape[0]
        if n < 2:
            return None
        counts = v.sum(axis=0)
        both += int((counts * (counts - 1) // 2).sum())
        total += n * (n - 1) // 2 * v.shape[1]
    return both / total if total else None


def co_visibility(visible: list[np.ndarray]) -> float | None:
    """Share of frames with the actor in at least one view that show it in two or more."""
    counts = np.concatenate([v.sum(axis=0) for v in visible])
    seen = counts >= 1
    return float((counts >= 2).sum() / seen.sum()) if seen.any() else None


def readout_disagreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """1 - the mean over classes of the Pearson correlation between two views' scores `[F, C]`
    on the same frames; classes whose scores are constant in either view are left out."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    sa, sb = np.sqrt((a * a).sum(axis=0)), np.sqrt((b * b).sum(axis=0))
    ok = (sa > 1e-12) & (sb > 1e-12)
    if not ok.any():
        return None
    corr = (a[:, ok] * b[:, ok]).sum(axis=0) / (sa[ok] * sb[ok])
    return float(1.0 - corr.mean())


def _map(y: np.ndarray, s: np.ndarray) -> float | None:
    if len(y) == 0 or not y.any():
        return None
    value = mean_average_precision(y, s)
    return None if np.isnan(value) else float(value)


def view_probes(files: DataFiles, visible: dict, lam: float = RIDGE_LAMBDA,
                block: int = FRAME_BLOCK) -> dict:
    """The per-view probes and the pair statistics (see the module doc)."""
    data = open_probe_data(files)
    try:
        n_pic = 2 * PROBE_SIZE * PROBE_SIZE
        views = int(data.frames[data.train[0]]["frames"].shape[0])
        sums = [RidgeSums() for _ in range(views)]
        for sid in data.train:
            start = 0
            for x, y in sequence_blocks(data, sid, block):
                seen = visible[sid][:, start:start + len(y)]
                for v in range(views):
                    if seen[v].any():
                        sums[v].add(x[v][seen[v]], y[seen[v]])
                start += len(y)
        probes = [s.fit(np.arange(n_pic), lam) if s.n >= 2 else None for s in sums]
        per_view = [([], []) for _ in range(views)]
        pairs = {(i, j): ([], [], []) for i in range(views) for j in range(i + 1, views)}
        for sid in data.test:
            start = 0
            for x, y in sequence_blocks(data, sid, block):
                seen = visible[sid][:, start:start + len(y)]
                start += len(y)
                scores = [p.predict(x[v]) if p is not None else None
                          for v, p in enumerate(probes)]
                for v in range(views):
                    if scores[v] is not None and seen[v].any():
                        per_view[v][0].append(y[seen[v]])
                        per_view[v][1].append(scores[v][seen[v]])
                for (i, j), (ys, si, sj) in pairs.items():
                    both = seen[i] & seen[j]
                    if both.any() and scores[i] is not None and scores[j] is not None:
                        ys.append(y[both])
                        si.append(scores[i][both])
                        sj.append(scores[j][both])
    finally:
        data.close()
    C = len(data.classes)

    def cat(parts, width=C):
        return np.concatenate(parts) if parts else np.zeros((0, width))

    view_rows = []
    for v, (ys, ss) in enumerate(per_view):
        y, s = cat(ys), cat(ss)
        view_rows.append({"view": v, "test_frames_seen": int(len(y)), "frame_map": _map(y, s),
                          "frame_chance": _chance(y), "train_rows": int(sums[v].n)})
    pair_rows = []
    for (i, j), (ys, si, sj) in pairs.items():
        y, a, b = cat(ys), cat(si), cat(sj)
        row = {"views": [i, j], "test_frames": int(len(y)), "map": [_map(y, a), _map(y, b)],
               "disagreement": readout_disagreement(a, b) if len(y) >= PAIR_MIN_FRAMES else None}
        pair_rows.append(row)
    measured = [r for r in pair_rows if r["disagreement"] is not None]
    weights = np.array([r["test_frames"] for r in measured], dtype=float)
    disparity = float(np.average([r["disagreement"] for r in measured], weights=weights)) \
        if measured else None
    gaps = [(abs(r["map"][0] - r["map"][1]), r["test_frames"]) for r in measured
            if None not in r["map"]]
    map_gap = float(np.average([g for g, _ in gaps], weights=[n for _, n in gaps])) \
        if gaps else None
    return {"per_view": view_rows, "pairs": pair_rows, "view_disparity": disparity,
            "pair_map_gap": map_gap, "pair_min_frames": PAIR_MIN_FRAMES, "lambda": float(lam),
            "image_size": PROBE_SIZE, "n_train": len(data.train), "n_test": len(data.test),
            "classes": data.classes}


def _chance(y: np.ndarray) -> float | None:
    if len(y) == 0 or not y.any():
        return None
    mean, _ = random_score_map(y)
    return None if np.isnan(mean) else float(mean)


def study_views(env: str, files: DataFiles, boxes_path, masks_path, quality_path, stats_path,
                synthetic_section: dict, decode_fps: float) -> dict:
    """The views.json dict of one study home."""
    start = time.perf_counter()
    settings = SyntheticConfig.from_section(synthetic_section).home(env)
    split = read_json(files.split)
    ids = sorted(str(s) for s in split["train"]) + sorted(str(s) for s in split["test"])
    frames = open_h5(files.frames, "frames")
    try:
        visible = true_visibility(boxes_path, frames, ids, decode_fps)
    finally:
        frames.close()
    masks = open_h5(masks_path, "masks")
    try:
        missing = [sid for sid in ids if sid not in masks]
        if missing:
            raise VicokdError(f"{masks_path}: no masks for sequence '{missing[0]}'")
        masked = [masks[sid]["mask"][()].astype(bool) for sid in ids]
    finally:
        masks.close()
    quality = read_json(quality_path)
    stats = read_json(stats_path)
    vis = [visible[sid] for sid in ids]
    out = {
        "env": env,
        "settings": {k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v)
                     for k, v in vars(settings).items()},
        "sequences": len(ids),
        "views": int(vis[0].shape[0]),
        "co_visibility": co_visibility(vis),
        "visible_any_view": float(np.concatenate([v.any(axis=0) for v in vis]).mean()),
        "visibility_per_view": [float(x) for x in np.concatenate(vis, axis=1).mean(axis=1)],
        "pair_share": pair_share(vis),
        "pair_share_masks": pair_share(masked),
        "mask_precision": quality.get("precision"),
        "mask_recall": quality.get("recall"),
        "generator_co_visibility": stats.get("co_visibility"),
        "probe": view_probes(files, visible),
    }
    out["view_disparity"] = out["probe"]["view_disparity"]
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def main(snakemake) -> None:
    """Entry of the `study_views` rule."""
    inp = snakemake.input
    files = DataFiles(frames=inp.frames, labels=inp.labels, split=inp.split)
    out = study_views(snakemake.wildcards.env, files, inp.boxes, inp.masks, inp.quality,
                      inp.stats, dict(snakemake.params.synthetic),
                      float(snakemake.params.decode["fps"]))
    write_json(snakemake.output[0], out)
    log.info("%s: co-visibility %.3f, pair share %.3f (masks %.3f), view disparity %s, per-view "
             "probe frame mAP %s", out["env"], out["co_visibility"] or 0, out["pair_share"] or 0,
             out["pair_share_masks"] or 0, out["view_disparity"],
             [r["frame_map"] for r in out["probe"]["per_view"]])
