"""`synthetic_stats.json`: the properties of a generated home, measured from what was written."""

from __future__ import annotations

import numpy as np


def frame_labels(tricks: list[dict], frames: int, fps: float, classes: list[str]) -> np.ndarray:
    """uint8 [frames, C]: 1 where some segment of the class has start <= i/fps <= end."""
    t = np.arange(frames) / fps
    out = np.zeros((frames, len(classes)), np.uint8)
    col = {c: k for k, c in enumerate(classes)}
    for tr in tricks:
        on = (t >= tr["start"]) & (t <= tr["end"])
        for name in tr["labels"]:
            out[on, col[name]] = 1
    return out


def co_visibility(visible: list[np.ndarray]) -> float:
    """Share of frames with the person in at least one view that show it in two or more."""
    counts = np.concatenate([v.sum(axis=0) for v in visible])
    seen = counts >= 1
    return float((counts >= 2).sum() / seen.sum()) if seen.any() else 0.0


def compute_stats(entries: list[dict], visible: list[np.ndarray], fps: float,
                  classes: list[str], subtle: list[list[bool]] | None = None,
                  object_visible: list[np.ndarray] | None = None) -> dict:
    """Statistics of one home. `entries`: the annotation entries; `visible[i]`: bool [V, F]
    of sequence i; `subtle[i]`: per trick of entry i, whether its visual cue is subtle."""
    frames = [v.shape[1] for v in visible]
    durations = np.array(frames) / fps
    views = visible[0].shape[0]
    labels = [frame_labels(e["tricks"], f, fps, classes) for e, f in zip(entries, frames)]
    all_labels = np.concatenate(labels)
    labelled = all_labels.sum(axis=1) > 0
    seq_labels = np.stack([lab.max(axis=0) for lab in labels])
    per_view = np.concatenate([v for v in visible], axis=1).mean(axis=1)
    any_view = np.concatenate([v.any(axis=0) for v in visible]).mean()
    # An instance is "unseen" when no camera shows the actor at any of its frames.
    inst_total = {c: 0 for c in classes}
    inst_subtle = {c: 0 for c in classes}
    inst_unseen = {c: 0 for c in classes}
    for i, e in enumerate(entries):
        t = np.arange(frames[i]) / fps
        seen = visible[i].any(axis=0)
        for k, tr in enumerate(e["tricks"]):
            on = (t >= tr["start"]) & (t <= tr["end"])
            for name in tr["labels"]:
                inst_total[name] += 1
                inst_subtle[name] += int(bool(subtle[i][k])) if subtle is not None else 0
                inst_unseen[name] += int(not seen[on].any())

    def share(num, den):
        return round(num / den, 4) if den else None

    stats = {
        "sequences": len(entries),
        "views": views,
        "fps": fps,
        "duration": {"mean": round(float(durations.mean()), 3),
                     "min": round(float(durations.min()), 3),
                     "max": round(float(durations.max()), 3)},
        "co_visibility": round(co_visibility(visible), 4),
        "visible_any_view": round(float(any_view), 4),
        "visibility_per_view": [round(float(v), 4) for v in per_view],
        "actions_per_sequence": round(float(np.mean([len(e["tricks"]) for e in entries])), 3),
        "classes_per_sequence": round(float(seq_labels.sum(axis=1).mean()), 3),
        "labels_per_labelled_frame": round(float(all_labels[labelled].sum(axis=1).mean()), 3)
        if labelled.any() else 0.0,
        "labelled_frame_share": round(float(labelled.mean()), 4),
        "prevalence_sequence": {c: round(float(seq_labels[:, k].mean()), 4)
                                for k, c in enumerate(classes)},
        "prevalence_frame": {c: round(float(all_labels[:, k].mean()), 4)
                             for k, c in enumerate(classes)},
        "instances": inst_total,
        "subtle_share": {c: share(inst_subtle[c], inst_total[c]) for c in classes},
        "unseen_share": {c: share(inst_unseen[c], inst_total[c]) for c in classes},
    }
    if object_visible is not None:
        stats["object_visible_any_view"] = round(float(
            np.concatenate([v.any(axis=0) for v in object_visible]).mean()), 4)
    return stats
