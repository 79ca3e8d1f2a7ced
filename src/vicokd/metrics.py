"""Evaluation metrics: macro mean average precision (%) as Table 1 reports it.

Per class, the average precision equals `sklearn.metrics.average_precision_score` (the
step-wise sum of precision times recall increments over the distinct score thresholds), but is
computed here with numpy so that the definition is explicit and tested against sklearn.
Classes with no positive among the targets are left out of the mean (their AP is undefined).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["average_precision", "per_class_average_precision", "mean_average_precision",
           "chance_map", "frame_mean_average_precision", "stack_frames", "evaluation_summary"]


def _as_2d(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be [N, C], got shape {a.shape}")
    return a


def average_precision(targets, scores) -> float:
    """AP of one class: targets `[N]` (0/1), scores `[N]` -> float in [0, 1], NaN when there
    is no positive. Tied scores form one threshold, as in sklearn."""
    y = np.asarray(targets).reshape(-1) > 0
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"targets {y.shape} and scores {s.shape} differ in length")
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    # The last index of each run of equal scores is one threshold.
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = tp[last].astype(np.float64)
    precision = tp / (last + 1)
    recall = tp / n_pos
    recall_step = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_step * precision))


def per_class_average_precision(targets, scores) -> np.ndarray:
    """AP of every class: `[N, C]` targets and scores -> `[C]` floats in [0, 1], NaN for a
    class with no positive."""
    y, s = _as_2d("targets", targets), _as_2d("scores", scores)
    if y.shape != s.shape:
        raise ValueError(f"targets {y.shape} and scores {s.shape} differ in shape")
    return np.array([average_precision(y[:, c], s[:, c]) for c in range(y.shape[1])])


def mean_average_precision(targets, scores) -> float:
    """Macro mAP in percent over the classes with at least one positive; `[N, C]` arrays.
    NaN when no class has a positive."""
    ap = per_class_average_precision(targets, scores)
    present = ~np.isnan(ap)
    if not present.any():
        return float("nan")
    return float(100.0 * ap[present].mean())


def chance_map(targets) -> float:
    """The mAP (%) that random scores get in expectation: the mean prevalence of the classes
    with at least one positive (the classes mAP averages over). `[N, C]` targets."""
    y = _as_2d("targets", targets) > 0
    if y.shape[0] == 0:
        return float("nan")
    prevalence = y.mean(axis=0)
    present = prevalence > 0
    if not present.any():
        return float("nan")
    return float(100.0 * prevalence[present].mean())


def stack_frames(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Flatten frame-level arrays to rows `[sum T_i, C]`: a `[B, T, C]` array, or a list of
    per-sequence `[T_i, C]` arrays (sequences may differ in length)."""
    if isinstance(frames, np.ndarray) or hasattr(frames, "shape"):
        a = np.asarray(frames)
        if a.ndim < 2:
            raise ValueError(f"frame arrays must be [..., T, C], got shape {a.shape}")
        return a.reshape(-1, a.shape[-1])
    parts = [np.asarray(f) for f in frames]
    if not parts:
        raise ValueError("no frame arrays given")
    return np.concatenate([p.reshape(-1, p.shape[-1]) for p in parts], axis=0)


def frame_mean_average_precision(frame_targets, frame_scores) -> float:
    """Frame-level macro mAP (%): every frame of every sequence is one row. Accepts
    `[B, T, C]` arrays or lists of per-sequence `[T_i, C]` arrays."""
    return mean_average_precision(stack_frames(frame_targets), stack_frames(frame_scores))


def _nan_to_none(x: float):
    return None if x is None or np.isnan(x) else float(x)


def evaluation_summary(seq_targets, seq_scores, frame_targets=None, frame_scores=None,
                       classes: Sequence[str] | None = None) -> dict:
    """The content of a metrics.json: `map` (sequence-level mAP, %), `per_class_ap`
    ({class: AP in % or None when the class has no positive}), `chance` (%), and, when frame
    arrays are given, `frame_map` and `frame_chance`. Undefined values are None (valid JSON)."""
    y = _as_2d("sequence targets", seq_targets)
    ap = per_class_average_precision(y, seq_scores)
    names = list(classes) if classes is not None else [str(c) for c in range(y.shape[1])]
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} class names for {y.shape[1]} classes")
    out = {
        "map": _nan_to_none(mean_average_precision(y, seq_scores)),
        "per_class_ap": {n: _nan_to_none(100.0 * a) for n, a in zip(names, ap)},
        "chance": _nan_to_none(chance_map(y)),
        "n_sequences": int(y.shape[0]),
    }
    if frame_targets is not None and frame_scores is not None:
        fy = stack_frames(frame_targets)
        out["frame_map"] = _nan_to_none(mean_average_precision(fy, stack_frames(frame_scores)))
        out["frame_chance"] = _nan_to_none(chance_map(fy))
        out["n_frames"] = int(fy.shape[0])
    return out
