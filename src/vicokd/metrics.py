"""Evaluation metrics: macro mean average precision (%) as Table 1 reports it.

Per class, the average precision equals `sklearn.metrics.average_precision_score` (the
step-wise sum of precision times recall increments over the distinct score thresholds), but is
computed here with numpy so that the definition is explicit and tested against sklearn.
Classes with no positive among the targets are left out of the mean (their AP is undefined).

Two yardsticks come with every mAP. `random_score_map`: the macro mAP that random scores get on
the same targets, its mean and 95 % band over many seeded draws; this is chance. `mean_prevalence`:
the mean class prevalence, which is the mAP of a constant (all-tied) score and lies well below
chance on small test splits (AP with few positives is biased upwards), so it is never called chance.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["average_precision", "per_class_average_precision", "mean_average_precision",
           "mean_prevalence", "random_score_map", "frame_mean_average_precision", "stack_frames",
           "yardsticks", "evaluation_summary", "RANDOM_DRAWS"]

# Draws of random scores behind `chance` and its band: the band's ends move by ~0.1 mAP between
# seeds at 2000, and a metrics.json of ~3000 frames x 14 classes costs about a second.
RANDOM_DRAWS = 2000


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


def mean_prevalence(targets) -> float:
    """The mean prevalence (%) of the classes with at least one positive (those mAP averages
    over): the mAP of a constant score, NOT the mAP of random scores. `[N, C]` targets."""
    y = _as_2d("targets", targets) > 0
    if y.shape[0] == 0:
        return float("nan")
    prevalence = y.mean(axis=0)
    present = prevalence > 0
    if not present.any():
        return float("nan")
    return float(100.0 * prevalence[present].mean())


def _random_ap_draws(k: int, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """AP of `draws` random rankings of n items of which k are positive: `[draws]`.

    Random scores without ties make every ranking equally likely, so AP depends only on (k, n):
    AP = mean over the positives (j-th from the top, at rank r_j) of j / r_j. Drawn without
    sorting n items: the positives' scores are k sorted uniforms, and the n - k negatives fall
    into the k + 1 gaps between them multinomially, with the gaps' widths as probabilities."""
    if k == n:
        return np.ones(draws)
    s = np.sort(rng.random((draws, k)), axis=1)[:, ::-1]              # positives, best first
    edges = np.concatenate([np.ones((draws, 1)), s, np.zeros((draws, 1))], axis=1)
    gaps = rng.multinomial(n - k, edges[:, :-1] - edges[:, 1:])       # negatives per gap [D, k+1]
    j = np.arange(1, k + 1)
    ranks = j + np.cumsum(gaps[:, :k], axis=1)
    return (j / ranks).mean(axis=1)


def random_score_map(targets, draws: int = RANDOM_DRAWS, seed: int = 0
                     ) -> tuple[float, tuple[float, float]]:
    """Chance: the macro mAP (%) of random scores on `targets` `[N, C]`, as (mean, (2.5th,
    97.5th percentile)) over `draws` seeded draws (each class ranked independently, classes
    without a positive left out as in `mean_average_precision`). NaNs when no class has one."""
    y = _as_2d("targets", targets) > 0
    counts = y.sum(axis=0)
    present = counts[counts > 0]
    if present.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for k in present:
        total += _random_ap_draws(int(k), y.shape[0], draws, rng)
    maps = 100.0 * total / present.size
    lo, hi = np.percentile(maps, [2.5, 97.5])
    return float(maps.mean()), (float(lo), float(hi))


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


def yardsticks(targets, prefix: str = "") -> dict:
    """`chance` (random scores' mean mAP, %), `chance_band` ([2.5, 97.5] percentiles) and
    `prevalence` of `[N, C]` targets, each key prefixed (e.g. "frame_"); None when undefined."""
    mean, band = random_score_map(targets)
    return {f"{prefix}chance": _nan_to_none(mean),
            f"{prefix}chance_band": None if np.isnan(mean) else [float(band[0]), float(band[1])],
            f"{prefix}prevalence": _nan_to_none(mean_prevalence(targets))}


def evaluation_summary(seq_targets, seq_scores, frame_targets=None, frame_scores=None,
                       classes: Sequence[str] | None = None) -> dict:
    """The content of a metrics.json: `map` (sequence-level mAP, %), `per_class_ap`
    ({class: AP in % or None when the class has no positive}), the yardsticks of the sequence
    targets (`chance`, `chance_band`, `prevalence`: see `yardsticks`), and, when frame arrays are
    given, `frame_map` with the yardsticks of exactly those frame targets (`frame_chance`,
    `frame_chance_band`, `frame_prevalence`). Undefined values are None (valid JSON)."""
    y = _as_2d("sequence targets", seq_targets)
    ap = per_class_average_precision(y, seq_scores)
    names = list(classes) if classes is not None else [str(c) for c in range(y.shape[1])]
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} class names for {y.shape[1]} classes")
    out = {
        "map": _nan_to_none(mean_average_precision(y, seq_scores)),
        "per_class_ap": {n: _nan_to_none(100.0 * a) for n, a in zip(names, ap)},
        **yardsticks(y),
        "n_sequences": int(y.shape[0]),
    }
    if frame_targets is not None and frame_scores is not None:
        fy = stack_frames(frame_targets)
        out["frame_map"] = _nan_to_none(mean_average_precision(fy, stack_frames(frame_scores)))
        out.update(yardsticks(fy, "frame_"))
        out["n_frames"] = int(fy.shape[0])
    return out
