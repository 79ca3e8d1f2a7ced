"""Which decoded frames an item takes: T of a sequence's L frames, at random within their
intervals for training, at fixed positions for evaluation, and the evaluation passes that
together score every decoded frame (DESIGN.md's sampling)."""

from __future__ import annotations

import numpy as np


def sample_indices(length: int, t: int, train: bool, rng: np.random.Generator | None = None
                   ) -> np.ndarray:
    """T frame indices out of `length` decoded frames.

    Evaluation: floor(k L / T). Training: uniform in [floor(k L / T), floor((k+1) L / T)),
    or floor(k L / T) when that interval is empty (L < T: frames repeat)."""
    if length < 1:
        raise ValueError("a sequence needs at least one frame")
    k = np.arange(t)
    lo = (k * length) // t
    if not train:
        return lo.astype(np.int64)
    hi = ((k + 1) * length) // t
    width = np.maximum(hi - lo, 1)
    rng = rng if rng is not None else np.random.default_rng()
    return (lo + (rng.random(t) * width).astype(np.int64)).astype(np.int64)


def evaluation_passes(length: int, t: int) -> list[np.ndarray]:
    """The T-frame index sets that together sample each of `length` frames: pass p takes
    floor(k L / T) + p, capped at its interval's last frame (pass 0 = evaluation sampling)."""
    k = np.arange(t)
    lo = (k * length) // t
    hi = np.maximum(((k + 1) * length) // t, lo + 1)           # interval end (exclusive)
    count = int((hi - lo).max())
    return [np.minimum(lo + p, hi - 1).astype(np.int64) for p in range(count)]
