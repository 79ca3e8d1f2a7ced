"""The `masks_quality` rule: precision and recall of a synthetic home's masks against the true
visibility, on test-split frames only (the detector trained on train-split frames).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import VicokdError
from ..storage import open_h5, read_json, write_json
from .truth import open_boxes, true_person_boxes

log = logging.getLogger(__name__)


def precision_recall(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Precision and recall of bool predictions against bool truth (same shape)."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    return {"precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "frames": int(pred.size), "true_visible": tp + fn, "predicted_visible": tp + fp,
            "tp": tp, "fp": fp, "fn": fn}


def mask_quality(masks_path, split_path, boxes_path, decode_fps: float, env: str) -> dict:
    """Precision and recall of the masks against true visibility, TEST-split frames only,
    for the whole home and per view."""
    split = read_json(split_path)
    test_ids = list(split.get("test", []))
    if not test_ids:
        raise VicokdError(f"{split_path}: no test sequences to score masks on")
    preds, truths = [], []
    f = open_h5(masks_path, "masks")
    bf = open_boxes(boxes_path)
    try:
        for sid in test_ids:
            if sid not in f:
                raise VicokdError(f"{masks_path}: no masks for test sequence '{sid}'")
            mask = f[sid]["mask"][()]
            V, T = mask.shape
            # Boxes are only needed for visibility; the size factor does not matter here.
            _, visible = true_person_boxes(boxes_path, sid, V, T, 1, decode_fps, f=bf)
            preds.append(mask)
            truths.append(visible)
    finally:
        f.close()
        bf.close()
    n_views = {p.shape[0] for p in preds}
    if len(n_views) != 1:
        raise VicokdError(f"{masks_path}: test sequences differ in their number of views {n_views}")
    pred = np.concatenate(preds, axis=1)
    truth = np.concatenate(truths, axis=1)
    return {"env": env, "split": "test", "sequences": len(test_ids),
            **precision_recall(pred, truth),
            "per_view": [{"view": v, **precision_recall(pred[v], truth[v])}
                         for v in range(pred.shape[0])]}


def main(snakemake) -> None:
    """Entry of the `masks_quality` rule: masks_quality.json for one synthetic home."""
    q = mask_quality(snakemake.input.masks, snakemake.input.split, snakemake.input.boxes,
                     float(snakemake.params.decode["fps"]), snakemake.wildcards.env)
    log.info("mask quality %s: precision %s recall %s", q["env"], q["precision"], q["recall"])
    write_json(snakemake.output[0], q)
