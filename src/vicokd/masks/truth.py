"""The synthetic homes' true person boxes (boxes.h5, written by the generator), at the decoded
frames: what the bootstrap detector trains on and the masks are scored against, never masks
themselves.

A decoded frame takes its boxes from the source frame that decoding keeps for it
(vicokd.data.media.source_indices), so boxes and frames show the same instant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.media import source_indices
from ..errors import VicokdError
from ..storage import check_dataset


def true_person_boxes(boxes_path, seq_id: str, n_views: int, n_decoded: int, size: int,
                      decode_fps: float, f=None) -> tuple[np.ndarray, np.ndarray]:
    """True person boxes of one sequence at the decoded frames.

    Returns boxes float32 [V, T, 4] (xyxy in pixels of the decoded `size`, NaN when not
    visible) and visible bool [V, T]. `f` may be an open boxes.h5 to avoid reopening it."""
    own = f is None
    if own:
        f = open_boxes(boxes_path)
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
        src = source_indices(n_decoded, decode_fps, float(g.attrs["fps"]), g["boxes"].shape[1])
        boxes = np.asarray(g["boxes"][()], dtype=np.float32)[:, src] * np.float32(size)
        visible = np.asarray(g["visible"][()], dtype=bool)[:, src]
    finally:
        if own:
            f.close()
    boxes[~visible] = np.nan
    return boxes, visible


def open_boxes(path):
    """boxes.h5, opened for reading (the caller closes it)."""
    import h5py
    p = Path(path)
    if not p.is_file():
        raise VicokdError(f"{p}: true boxes file not found")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise VicokdError(f"{p}: not a readable HDF5 file ({exc})") from None
