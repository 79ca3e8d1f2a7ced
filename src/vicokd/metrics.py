"""Evaluation metrics: macro mean average precision (%) as Table 1 reports it.

Per class, the average precision equals `sklearn.metrics.average_precision_score` (the
step-wise sum of precision times recall increments over the distinct score thresholds), but is
computed here with numpy so that the definition is explicit and tested against sklearn.
Classes with no positive among the targets are left out of the mean (their AP is undefined).

Two yardsticks come with every mAP. `random_score_map`: the macro mAP that random scores get on
the same targets, its mean and 95 % band over many seeded draws; this is chance. `mean_prevalence`:
the mean class prevalence, which is the mAP of a constant (all-tied) score and lies well below
chance on small test splits (AP with few positives is biased upwards), so it is never called chance.

Weak labels: frame-level figures take only the sequences that have frame labels
(`labelled`, a flag per sequence); the sequence-level ones take every sequence.

`authors_protocol_map`: the sequence mAP as the authors' code scores it per backbone (their
MultiTSF applies a softmax over the classes to the sequence logits before AP, their MultiASL a
sigmoid, as ours), for the authors'-protocol figure only (runs/outputs.py); `map` stays ours.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["average_precision", "per_class_average_precision", "mean_average_precision",
           "mean_prevalence", "random_score_map", "frame_mean_average_precision", "stack_frames",
           "labelled_frames", "yardsticks", "evaluation_summary", "authors_scores",
           "authors_protocol_map", "AUTHORS_SCORING", "RANDOM_DRAWS"]

# Draws of random scores behind `chance` and its band: the band's ends move by ~0.1 mAP between
# seeds at 2000, and a metrics.json of ~3000 frames x 14 classes costs about 0.2 s.
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


# Draws are made in chunks of at most this many ranks (memory: a few bytes each).
_RANK_CELLS = 1 << 22


def _random_subset(k: int, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random k-subset of 1..n per draw, ascending: `[draws, k]`, for k <= n / 2.

    Up to n / 4: k uniform values per draw, the repeats drawn again until all differ (every step
    treats the n values alike, so every k-subset is equally likely; few repeats, few rounds).
    Above: the k smallest of n uniform keys (costs n per draw, but no rounds)."""
    if 4 * k > n:
        keys = rng.random((draws, n), dtype=np.float32)
        return np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1) + 1
    small = n < 2 ** 15
    dtype, kind = (np.int16, "stable") if small else (np.int32, None)   # int16: a radix sort
    out = rng.integers(1, n + 1, (draws, k), dtype=dtype)
    out.sort(axis=1, kind=kind)
    rows = np.arange(draws)
    while True:
        part = out[rows]
        repeat = np.zeros(part.shape, bool)
        repeat[:, 1:] = part[:, 1:] == part[:, :-1]
        has = repeat.any(axis=1)
        if not has.any():
            return out
        rows, part, repeat = rows[has], part[has], repeat[has]
        part[repeat] = rng.integers(1, n + 1, int(repeat.sum()), dtype=dtype)
        part.sort(axis=1, kind=kind)
        out[rows] = part


def _harmonic(n: int) -> np.ndarray:
    """H_0 .. H_n (H_0 = 0)."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def _random_ap_chunk(k: int, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """AP of `draws` random rankings of n items, k of them positive (0 < k < n): `[draws]`.

    Random scores without ties make every ranking equally likely, so the positives' ranks are a
    uniformly random k-subset of 1..n and AP = mean over the positives (j-th from the top, at
    rank r_j) of j / r_j. When positives are the majority the n - k negatives' ranks are drawn:
    the positives between the i-th and the (i+1)-th negative fill ranks a..b with j = r - i, and
    sum_{r=a..b} (r - i) / r = (b - a + 1) - i (H_b - H_{a-1}) (H: harmonic numbers)."""
    if 2 * k <= n:
        ranks = _random_subset(k, n, draws, rng)
        return (np.arange(1, k + 1) / ranks).mean(axis=1)
    neg = _random_subset(n - k, n, draws, rng).astype(np.int64)
    zeros, ends = np.zeros((draws, 1), np.int64), np.full((draws, 1), n + 1, np.int64)
    start = np.concatenate([zeros, neg], axis=1) + 1                  # [D, m + 1] runs of positives
    stop = np.concatenate([neg, ends], axis=1) - 1
    above = np.arange(n - k + 1)                                      # negatives above each run
    h = _harmonic(n)
    runs = (stop - start + 1) - above * (h[stop] - h[start - 1])
    return runs.sum(axis=1) / k


def _random_ap_draws(k: int, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`_random_ap_chunk` for any k, in chunks of draws that bound the memory."""
    if k == n:
        return np.ones(draws)
    chunk = max(1, _RANK_CELLS // n)
    return np.concatenate([_random_ap_chunk(k, n, min(chunk, draws - start), rng)
                           for start in range(0, draws, chunk)])


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


def labelled_frames(frames, labelled) -> list:
    """The per-sequence frame arrays of the sequences whose flag in `labelled` is set (all of
    them when `labelled` is None)."""
    frames = list(frames)
    if labelled is None:
        return frames
    labelled = [bool(x) for x in np.asarray(labelled).reshape(-1)]
    if len(labelled) != len(frames):
        raise ValueError(f"{len(labelled)} frame-label flags for {len(frames)} sequences")
    return [f for f, keep in zip(frames, labelled) if keep]


def frame_mean_average_precision(frame_targets, frame_scores, labelled=None) -> float:
    """Frame-level macro mAP (%): every frame of every sequence is one row. Accepts
    `[B, T, C]` arrays or lists of per-sequence `[T_i, C]` arrays; with `labelled` (a flag per
    sequence) only the sequences with frame labels count; NaN when none has them."""
    targets = labelled_frames(frame_targets, labelled)
    scores = labelled_frames(frame_scores, labelled)
    if not targets:
        return float("nan")
    return mean_average_precision(stack_frames(targets), stack_frames(scores))


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
                       classes: Sequence[str] | None = None, labelled=None) -> dict:
    """The content of a metrics.json: `map` (sequence-level mAP, %), `per_class_ap`
    ({class: AP in % or None when the class has no positive}), the yardsticks of the sequence
    targets (`chance`, `chance_band`, `prevalence`: see `yardsticks`), and, when frame arrays are
    given, `frame_map` with the yardsticks of exactly those frame targets (`frame_chance`,
    `frame_chance_band`, `frame_prevalence`): of the sequences with frame labels when
    `labelled` flags them (`n_frame_labelled`: how many), None when none has. Undefined values
    are None (valid JSON)."""
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
        targets = labelled_frames(frame_targets, labelled)
        out["n_frame_labelled"] = len(targets)
        if not targets:                 # weak labels only: nothing to score frames against
            out["frame_map"] = None
            out.update({f"frame_{k}": None for k in ("chance", "chance_band", "prevalence")})
            out["n_frames"] = 0
            return out
        fy = stack_frames(targets)
        scores = stack_frames(labelled_frames(frame_scores, labelled))
        out["frame_map"] = _nan_to_none(mean_average_precision(fy, scores))
        out.update(yardsticks(fy, "frame_"))
        out["n_frames"] = int(fy.shape[0])
    return out


# How the authors' code turns a backbone's sequence logits into the scores its AP reads (their
# MultiTSF main.py: softmax over the classes; MultiASL's main_mm.py: sigmoid). A backbone not
# named here is scored with the sigmoid, as ours are.
AUTHORS_SCORING = {"multitsf": "softmax", "multiasl": "sigmoid"}


def authors_scores(scores, logits, backbone: str) -> np.ndarray:
    """Sequence scores `[N, C]` as the authors' code of `backbone` makes them: the sigmoid
    `scores` we score with, or the softmax over the classes of the `logits`."""
    if AUTHORS_SCORING.get(backbone, "sigmoid") == "softmax":
        x = np.asarray(logits, dtype=np.float64)
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)
    return np.asarray(scores)


def authors_protocol_map(targets, scores, logits, backbone: str) -> float:
    """Sequence mAP (%) of `authors_scores`, classes without a positive left out as their AP
    does. Their AP equals ours (`average_precision`) but on tied scores, which they order as
    numpy's argsort happens to."""
    return mean_average_precision(targets, authors_scores(scores, logits, backbone))
