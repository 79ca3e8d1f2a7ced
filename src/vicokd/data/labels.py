"""The `labels` stage: frame labels at `decode.fps` and sequence labels, into labels.h5.

Frame i stands for time i / fps; its label for class c is 1 when some segment of c has
start <= i / fps <= end. The frame count is the decode stage's, from the same usable duration.
"""

from __future__ import annotations

import numpy as np

from ..storage import atomic_h5, write_dataset
from .manifest import load_manifest
from .media import frame_count


def frame_labels(segments: list[dict], classes: list[str], count: int, fps: float) -> np.ndarray:
    """uint8 `[count, C]`."""
    index = {c: k for k, c in enumerate(classes)}
    times = np.arange(count) / fps
    out = np.zeros((count, len(classes)), dtype=np.uint8)
    for s in segments:
        out[(times >= s["start"]) & (times <= s["end"]), index[s["label"]]] = 1
    return out


def sequence_labels(segments: list[dict], classes: list[str]) -> np.ndarray:
    """uint8 `[C]`: a class is present when the sequence has any segment of it."""
    out = np.zeros(len(classes), dtype=np.uint8)
    for s in segments:
        out[classes.index(s["label"])] = 1
    return out


def labels_manifest(manifest_path, out_path, decode: dict) -> None:
    manifest = load_manifest(manifest_path)
    classes, fps = manifest["classes"], float(decode["fps"])
    with atomic_h5(out_path, kind="labels", config=decode, fps=fps, classes=classes) as f:
        for seq in manifest["sequences"]:
            g = f.create_group(seq["id"])
            count = frame_count(seq["duration"], fps)
            write_dataset(g, "frame_labels", frame_labels(seq["segments"], classes, count, fps), ("T", "C"))
            write_dataset(g, "sequence_labels", sequence_labels(seq["segments"], classes), ("C",))


def main(snakemake) -> None:
    labels_manifest(snakemake.input.manifest, snakemake.output[0], snakemake.params.decode)
