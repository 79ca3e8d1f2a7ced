"""Figure 4's claim measured: on every test view-frame where a person is visible, the share of
each model's evidence map inside the person's box and whether the map's peak lands in it, per
model, with a uniform map, the best single patch and a random patch as yardsticks; means with a
bootstrap interval over test sequences, and the paired differences between models."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

BOOTSTRAP_DRAWS = 1000
BOOTSTRAP_SEED = 0

def bootstrap_interval(per_seq_sum: np.ndarray, per_seq_count: np.ndarray,
                       draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
                       ) -> tuple[float, float]:
    """95 % interval of a mean over view-frames when the test sequences are resampled:
    per_seq_sum [M] and per_seq_count [M] view-frames of each sequence. NaN with fewer than two
    sequences that have view-frames (nothing to resample)."""
    keep = per_seq_count > 0                 # a sequence without view-frames adds nothing
    per_seq_sum, per_seq_count = per_seq_sum[keep], per_seq_count[keep]
    m = len(per_seq_count)
    if m < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, m, size=(draws, m))
    means = per_seq_sum[pick].sum(1) / np.maximum(per_seq_count[pick].sum(1), 1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def mean_and_interval(per_seq: Sequence[np.ndarray]) -> tuple[float, list[float]]:
    """The mean over every view-frame of per-sequence arrays, and its bootstrap interval."""
    counts = np.array([len(x) for x in per_seq], float)
    sums = np.array([float(np.sum(x)) for x in per_seq])
    n = counts.sum()
    return (float(sums.sum() / n) if n else float("nan")), list(bootstrap_interval(sums, counts))


def summarise(values: Mapping[str, Mapping[str, list]], yardsticks: Mapping[str, list]) -> dict:
    """The measurement per model: `values` model -> {"share", "peak", "empty"} and `yardsticks`
    {"uniform", "best_patch", "peak_chance"}, each a list of per-sequence view-frame arrays."""
    counts = np.array([len(u) for u in yardsticks["uniform"]])
    uniform = mean_and_interval(yardsticks["uniform"])[0]
    out = {}
    for name, v in values.items():
        share, share_ci = mean_and_interval(v["share"])
        peak, peak_ci = mean_and_interval(v["peak"])
        above = [s - u for s, u in zip(v["share"], yardsticks["uniform"])]
        out[name] = {"share_in_box": share, "share_in_box_ci95": share_ci,
                     "uniform_share": uniform,
                     "ratio_to_uniform": share / uniform if uniform else float("nan"),
                     "share_minus_uniform_ci95": mean_and_interval(above)[1],
                     "best_patch_share": mean_and_interval(yardsticks["best_patch"])[0],
                     "peak_in_box": peak, "peak_in_box_ci95": peak_ci,
                     "peak_in_box_chance": mean_and_interval(yardsticks["peak_chance"])[0],
                     "empty_maps": int(sum(int(np.sum(e)) for e in v["empty"])),
                     "view_frames": int(counts.sum()), "sequences": int((counts > 0).sum())}
    return out


PAIRS = (("vicokd", "student"), ("vicokd", "cokd"), ("teacher", "student"))
METRICS = {"share": "share_in_box", "peak": "peak_in_box"}


def paired_differences(values: Mapping[str, Mapping[str, list]]) -> list[dict]:
    """Model a minus model b on the same view-frames, per metric, with bootstrap intervals."""
    out = []
    for metric, key in METRICS.items():
        for a, b in PAIRS:
            if a in values and b in values:
                diff = [x - y for x, y in zip(values[a][metric], values[b][metric])]
                mean, ci = mean_and_interval(diff)
                out.append({"metric": key, "models": [a, b], "difference": mean, "ci95": ci})
    return out


def measure_home(evidence: Mapping[str, "object"], boxes, ids: Sequence[str],
                 views: int, lengths: Mapping[str, int], edges: np.ndarray
                 ) -> tuple[dict, list[dict]]:
    """Every model's maps (saliency.ModelEvidence) on every test view-frame where a person is
    seen (`boxes`: figure4.PersonBoxes); returns the summary per model and the paired
    differences."""
    from tqdm import tqdm

    from ..saliency import box_coverage, peak_in_box, share_inside

    values = {name: {"share": [], "peak": [], "empty": []} for name in evidence}
    yardsticks = {"uniform": [], "best_patch": [], "peak_chance": []}
    for sid in tqdm(ids, desc="figure4: maps", unit="seq"):
        bx, vis = boxes.of(sid, views, lengths[sid])
        frames = np.flatnonzero(vis.any(0))
        cover = box_coverage(bx[:, frames], edges)                       # [V, F, g, g]
        seen = vis[:, frames]                                             # [V, F]
        flat = cover[seen].reshape(int(seen.sum()), cover.shape[-2] * cover.shape[-1])  # [n, P]
        yardsticks["uniform"].append(flat.mean(1))
        yardsticks["best_patch"].append(flat.max(1, initial=0.0))
        yardsticks["peak_chance"].append((flat > 0).mean(1))
        for name, ev in evidence.items():
            if len(frames):
                out = ev.sequence(sid, frames)
                values[name]["share"].append(share_inside(out.maps, cover)[seen])
                values[name]["peak"].append(peak_in_box(out.maps, cover)[seen].astype(float))
                values[name]["empty"].append(out.empty[seen])
            else:
                for key in values[name]:
                    values[name][key].append(np.zeros(0))
    return summarise(values, yardsticks), paired_differences(values)
