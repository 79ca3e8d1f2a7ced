"""The `labels` stage: frame labels at `decode.fps` and sequence labels, into labels.h5.

Frame i stands for time i / fps. `labels.rule` says when its label for class c is 1:

- `time` (ours, DESIGN.md; the default): some segment of c has start <= i / fps <= end;
- `rounded` (the authors' code): round(start * fps) <= i <= round(end * fps) for some segment
  of c, with Python's round (halves to even). It marks up to one more frame at each end: a
  segment [0.5, 0.7] s covers no frame at 2.5 FPS by time, frames 1 and 2 by rounding.

The frame count is the decode stage's, from the same usable duration.

Weak labels: a sequence whose annotation gives some label without times (a clip label) has no
frame labels. Its group in labels.h5 still holds `frame_labels` `[T, C]` (all 0, so that every
reader finds the layout of DESIGN.md) and carries the attribute `has_frame_labels` = False;
every other sequence carries True (a file without the attribute predates weak labels: all its
sequences have frame labels, `has_frame_labels` below). Its `sequence_labels` hold the classes
of its segments and of its clip labels. The file attribute `frame_labelled` counts the
sequences with frame labels.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import VicokdError
from ..storage import atomic_h5, write_dataset
from .manifest import load_manifest
from .media import frame_count

log = logging.getLogger(__name__)

RULES = ("time", "rounded")


def frame_labels(segments: list[dict], classes: list[str], count: int, fps: float,
                 rule: str = "time") -> np.ndarray:
    """uint8 `[count, C]` by `rule` (see the module docstring)."""
    if rule not in RULES:
        raise VicokdError(f"config labels.rule: '{rule}' is not one of {', '.join(RULES)}")
    index = {c: k for k, c in enumerate(classes)}
    times = np.arange(count) / fps
    frames = np.arange(count)
    out = np.zeros((count, len(classes)), dtype=np.uint8)
    for s in segments:
        if rule == "time":
            hit = (times >= s["start"]) & (times <= s["end"])
        else:
            hit = (frames >= round(s["start"] * fps)) & (frames <= round(s["end"] * fps))
        out[hit, index[s["label"]]] = 1
    return out


def sequence_labels(segments: list[dict], classes: list[str],
                    clip_labels: list[str] = ()) -> np.ndarray:
    """uint8 `[C]`: a class is present when the sequence has any segment or clip label of it."""
    out = np.zeros(len(classes), dtype=np.uint8)
    for label in [s["label"] for s in segments] + list(clip_labels):
        out[classes.index(label)] = 1
    return out


def has_frame_labels(group) -> bool:
    """Whether a labels.h5 sequence group has frame labels (attribute `has_frame_labels`;
    files written before weak labels existed have no attribute, and frame labels throughout)."""
    return bool(group.attrs.get("has_frame_labels", True))


def labels_manifest(manifest_path, out_path, decode: dict, labels: dict | None = None) -> None:
    manifest = load_manifest(manifest_path)
    classes, fps = manifest["classes"], float(decode["fps"])
    rule = str((labels or {}).get("rule", "time"))
    with atomic_h5(out_path, kind="labels", config=decode, fps=fps, classes=classes,
                   rule=rule) as f:
        labelled = 0
        for seq in manifest["sequences"]:
            g = f.create_group(seq["id"])
            count = frame_count(seq["duration"], fps)
            clip = list(seq.get("clip_labels", []))
            framed = bool(seq.get("has_frame_labels", not clip))
            y = frame_labels(seq["segments"], classes, count, fps, rule) if framed else \
                np.zeros((count, len(classes)), np.uint8)
            write_dataset(g, "frame_labels", y, ("T", "C"))
            write_dataset(g, "sequence_labels", sequence_labels(seq["segments"], classes, clip),
                          ("C",))
            g.attrs["has_frame_labels"] = framed
            labelled += framed
        f.attrs["frame_labelled"] = labelled
        if labelled < len(manifest["sequences"]):
            log.info("%d of %d sequences have frame labels; the others sequence labels only",
                     labelled, len(manifest["sequences"]))


def main(snakemake) -> None:
    labels_manifest(snakemake.input.manifest, snakemake.output[0], snakemake.params.decode,
                    snakemake.params.labels)
