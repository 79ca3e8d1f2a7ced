"""The rules figure4_home and figure4: the paper's Figure 4 (where the teacher, the non-distilled
student and ViCoKD find their evidence, MultiASL backbone, one row per view), and the claim it
illustrates measured: the share of each evidence map's mass inside the person's box.

Per home (`figure4_home`, results/{env}/figure4.png and .json):

- **The class** drawn is the one with the largest teacher − student gap in frame-level AP on the
  test split (every decoded test frame; ties: the first in class order).
- **The frame** drawn is, among the test frames labelled with that class, the one a person is
  seen in by the most views; among those, the one where the teacher's score for the class exceeds
  the student's most; then the first in split and frame order. Each model's maps explain that
  class (vicokd.saliency: Grad-CAM's element-wise form on the ViT's patch tokens).
- **The measurement**: on every test view-frame where a person is seen, each model's map for
  the class it scores highest at that frame; the mean share of its mass inside the person's box,
  beside two yardsticks on the same view-frames: a uniform map (the box's share of the frame)
  and a map all on the patch the box covers most (the most a map of this grid can reach); and
  how often the map's peak patch overlaps the box (the pointing game), beside how often a random
  patch does. 95 % intervals from a bootstrap over test sequences (seeded). Boxes: the
  synthetic homes' true boxes (boxes.h5), else the YOLO boxes of masks.h5.

`figure4` puts the homes' figures side by side (results/figure4.png) and their measurements in
results/figure4.json.
"""

from __future__ import annotations

import logging
import time
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..errors import VicokdError  # noqa: E402
from ..experiments import ABLATION_BACKBONE, FIGURE4_SHOWN  # noqa: E402
from ..metrics import per_class_average_precision  # noqa: E402
from ..storage import atomic_path, open_h5, read_json, write_json  # noqa: E402
from .evidence_share import measure_home  # noqa: E402
from .layout import HOME_LABELS, METHOD_LABELS, label  # noqa: E402

log = logging.getLogger("vicokd")

BOX_COLOR = "#ffd400"                     # the paper marks the person in yellow
RULE = ("class: the largest teacher - student gap in frame-level test AP; frame: among the "
        "test frames labelled with it, the one seen by the most views, then the largest "
        "teacher - student score for the class, then the first in split and frame order")
METHOD = ("Grad-CAM, element-wise form (HiResCAM), on the ViT's patch tokens: the positive part "
          "of sum over channels of token x gradient of the view's frame logit; frozen encoders: "
          "the encoder's output tokens (what the cached features are made of), finetuned: the "
          "tokens entering the ViT's last block")


# --- inputs ---------------------------------------------------------------------------------------

def read_predictions(path) -> dict:
    """{seq id: frame_scores [L, C]} and {seq id: sequence_scores [C]} of a run's
    predictions.h5, and its classes."""
    with open_h5(path, "predictions") as f:
        classes = [str(c) for c in f.attrs.get("classes", [])]
        scores = {sid: f[sid]["frame_scores"][()] for sid in f}
        sequence = {sid: f[sid]["sequence_scores"][()] for sid in f}
    return {"classes": classes, "scores": scores, "sequence": sequence}


def read_labels(path, ids: Sequence[str]) -> tuple[dict, dict]:
    """Frame labels [L, C] and sequence labels [C] of the test sequences."""
    with open_h5(path, "labels") as f:
        missing = [s for s in ids if s not in f]
        if missing:
            raise VicokdError(f"{path}: no labels for test sequences {missing[:3]}")
        return ({sid: f[sid]["frame_labels"][()] for sid in ids},
                {sid: f[sid]["sequence_labels"][()] for sid in ids})


class PersonBoxes:
    """Where the person is, per view and decoded frame: the synthetic homes' true boxes
    (boxes.h5) or the detector's boxes and mask (masks.h5)."""

    def __init__(self, path, kind: str, frame_size: int, fps: float):
        if kind not in ("true", "masks"):
            raise VicokdError(f"figure4: unknown box source '{kind}' (true or masks)")
        self.path, self.kind, self.size, self.fps = str(path), kind, frame_size, fps
        if kind == "true":
            from ..masks.truth import open_boxes
            self.file = open_boxes(path)
        else:
            self.file = open_h5(path, "masks")

    def of(self, sid: str, views: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """boxes [V, L, K, 4] (xyxy decoded pixels, NaN rows: none) and visible [V, L]."""
        if self.kind == "true":
            from ..masks.truth import true_person_boxes
            boxes, visible = true_person_boxes(self.path, sid, views, length, self.size,
                                               self.fps, f=self.file)
            return boxes[:, :, None], visible
        if sid not in self.file:
            raise VicokdError(f"{self.path}: no sequence '{sid}'")
        visible = self.file[sid]["mask"][()].astype(bool)
        boxes = self.file[sid]["boxes"][()].astype(np.float64)
        if visible.shape != (views, length) or boxes.shape[:2] != (views, length):
            raise VicokdError(f"{self.path}:/{sid}: mask {visible.shape}, boxes {boxes.shape}; "
                              f"frames.h5 has {views} views x {length} frames")
        boxes[~visible] = np.nan
        return boxes, visible

    def close(self) -> None:
        self.file.close()


# --- the rule: which class, which frame -------------------------------------------------------------

def ap_gap(labels: Mapping[str, np.ndarray], teacher: Mapping[str, np.ndarray],
           student: Mapping[str, np.ndarray], ids: Sequence[str]) -> np.ndarray:
    """Teacher AP - student AP per class over the rows of the test sequences (NaN: no positive)."""
    def rows(d):
        return np.concatenate([np.atleast_2d(d[s]) for s in ids])
    y = rows(labels)
    return per_class_average_precision(y, rows(teacher)) - per_class_average_precision(y, rows(student))


def choose_class(labels, teacher, student, ids: Sequence[str], sequence=None
                 ) -> tuple[int, np.ndarray, str]:
    """The class of the largest teacher - student gap in frame-level AP over the test frames
    (ties: the first); returns it, the gap per class (NaN: no positive frame) and "frame".
    Data with sequence labels only: `sequence` = (labels, teacher, student) of the sequences,
    whose gap in sequence-level AP then decides ("sequence")."""
    gap, level = ap_gap(labels, teacher, student, ids), "frame"
    if np.isnan(gap).all() and sequence is not None:
        gap, level = ap_gap(*sequence, ids), "sequence"
    if np.isnan(gap).all():
        raise VicokdError("figure4: no class has a labelled test frame or sequence")
    return int(np.nanargmax(gap)), gap, level


def choose_frame(cls: int, ids: Sequence[str], labels, visible, teacher, student
                 ) -> tuple[str, int]:
    """The frame of the written rule (module docstring) for class `cls`."""
    best, best_key = None, None
    for sid in ids:
        seen = visible[sid].sum(0)                                         # [L] views
        margin = teacher[sid][:, cls] - student[sid][:, cls]
        labelled = labels[sid][:, cls] > 0
        for j in range(len(seen)):
            key = (bool(labelled[j]), int(seen[j]), float(margin[j]))
            if best_key is None or key > best_key:                         # strict: the first wins
                best, best_key = (sid, j), key
    if best is None:
        raise VicokdError("figure4: no test frame to draw")
    return best


# --- drawing ----------------------------------------------------------------------------------------

def draw_home(path, env: str, picture: np.ndarray, maps: Mapping[str, np.ndarray],
              empty: Mapping[str, np.ndarray], scores: Mapping[str, float],
              boxes: np.ndarray, visible: np.ndarray, edges: np.ndarray, shares: Mapping,
              title: str, footer: str) -> None:
    """Rows = views; columns = the decoded frame, then each model's map over it.

    picture uint8 [V, H, W, 3]; maps name -> [V, g, g]; boxes [V, K, 4]; visible [V]."""
    from ..saliency import pixel_map

    views, size = picture.shape[0], picture.shape[1]
    names = list(maps)
    cols = 1 + len(names)
    fig, axes = plt.subplots(views, cols, figsize=(2.1 * cols, 2.1 * views + 1.0), squeeze=False)
    for v in range(views):
        for c in range(cols):
            ax = axes[v][c]
            ax.imshow(picture[v], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c:
                name = names[c - 1]
                if not empty[name][v]:          # a uniform stand-in map is not drawn
                    heat = pixel_map(maps[name][v], edges, size)
                    ax.imshow(heat / max(heat.max(), 1e-12), cmap="jet", alpha=0.45, vmin=0,
                              vmax=1, interpolation="nearest")
                note = "no positive evidence" if empty[name][v] else \
                    (f"in box {shares[name][v]:.2f}" if visible[v] else "no person")
                ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=7, color="white",
                        bbox=dict(facecolor="black", alpha=0.6, pad=1.5, linewidth=0))
            for b in boxes[v]:
                if np.isfinite(b).all():
                    ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False,
                                           edgecolor=BOX_COLOR, linewidth=1.4))
            if v == 0:
                ax.set_title("decoded frame" if c == 0 else
                             f"{label(names[c - 1], METHOD_LABELS)}\n"
                             f"score {scores[names[c - 1]]:.2f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"view {v + 1}" + ("" if visible[v] else "\n(no person)"),
                              fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.text(0.5, 0.005, footer, ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def compose(pngs: Sequence[str], path) -> None:
    """The homes' figures side by side on a white background, at their own resolution."""
    images = [mpimg.imread(p)[..., :3] for p in pngs]
    height = max(i.shape[0] for i in images)
    pad = [np.pad(i, ((0, height - i.shape[0]), (0, 12), (0, 0)), constant_values=1.0)
           for i in images]
    with atomic_path(path) as tmp:
        plt.imsave(tmp, np.concatenate(pad, axis=1), format="png")


def finite(obj):
    """`obj` with every NaN float as None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


# --- one home ---------------------------------------------------------------------------------------

def figure4_home(env: str, runs: Mapping[str, Mapping[str, str]], inputs, labels_path: str,
                 split_path: str, boxes_path: str, box_kind: str, out_png, out_json,
                 threads: int = 1, device: str = "cpu") -> dict:
    """Measure and draw one home. `runs`: name -> {"model": model.pt, "predictions": ...} for
    every model in experiments.FIGURE4_MEASURED (names as there); `inputs`: saliency.HomeInputs;
    `device`: where the models run (model.device)."""
    import torch

    from ..saliency import ModelEvidence, patch_edges

    torch.set_num_threads(max(1, int(threads)))
    t0 = time.perf_counter()
    split = read_json(split_path)
    if not isinstance(split, dict) or not split.get("test"):
        raise VicokdError(f"{split_path}: no 'test' list of sequence ids")
    ids = [str(s) for s in split["test"]]
    preds = {name: read_predictions(r["predictions"]) for name, r in runs.items()}
    classes = preds["teacher"]["classes"]
    for name, p in preds.items():
        lacking = [s for s in ids if s not in p["scores"]]
        if lacking:
            raise VicokdError(f"{runs[name]['predictions']}: no scores for test sequences "
                              f"{lacking[:3]}")
    labels, sequence_labels = read_labels(labels_path, ids)
    scores = {name: p["scores"] for name, p in preds.items()}
    evidence = {name: ModelEvidence.load(r["model"], inputs, device=device)
                for name, r in runs.items()}
    first = evidence["teacher"]
    frames_h5 = first.frames_h5
    size = int(frames_h5.attrs["size"])
    fps = float(frames_h5.attrs["fps"])
    views = int(frames_h5[ids[0]]["frames"].shape[0])
    lengths = {sid: int(frames_h5[sid]["frames"].shape[1]) for sid in ids}
    edges = patch_edges(first.grid, first.patch, first.image_size, size)
    boxes = PersonBoxes(boxes_path, box_kind, size, fps)
    try:
        visible, all_boxes = {}, {}
        for sid in ids:
            all_boxes[sid], visible[sid] = boxes.of(sid, views, lengths[sid])
        cls, gaps, gap_level = choose_class(labels, scores["teacher"], scores["student"], ids,
                                 (sequence_labels, preds["teacher"]["sequence"],
                                  preds["student"]["sequence"]))
        sid, frame = choose_frame(cls, ids, labels, visible, scores["teacher"], scores["student"])
        chosen = {name: ev.sequence(sid, [frame], [cls]) for name, ev in evidence.items()
                  if name in FIGURE4_SHOWN}
        summary, differences = measure_home(evidence, boxes, ids, views, lengths, edges)
    finally:
        boxes.close()
        for ev in evidence.values():
            ev.close()
    from ..saliency import box_coverage, share_inside
    cover = box_coverage(all_boxes[sid][:, frame], edges)                  # [V, g, g]
    shown_share = {name: share_inside(out.maps[:, 0], cover) for name, out in chosen.items()}
    seconds = time.perf_counter() - t0
    result = {
        "home": env, "backbone": ABLATION_BACKBONE,
        "runs": {name: r["model"] for name, r in runs.items()},
        "method": METHOD, "rule": RULE, "box_source": box_kind,
        "choice": {"class": classes[cls], "class_index": cls, "sequence": sid, "frame": int(frame),
                   "time_s": frame / fps, "views_with_person": int(visible[sid][:, frame].sum()),
                   "views": views,
                   "teacher_student_ap_gap": {c: None if np.isnan(g) else float(g)
                                              for c, g in zip(classes, gaps)},
                   "ap_gap_level": gap_level,
                   "score": {n: float(o.frame_scores[0, cls]) for n, o in chosen.items()},
                   "share_in_box": {n: [None if not visible[sid][v, frame] else float(x)
                                        for v, x in enumerate(s)] for n, s in shown_share.items()},
                   "empty": {n: o.empty[:, 0].tolist() for n, o in chosen.items()}},
        "measurement": summary,
        "differences": differences,
        "grid": first.grid, "frame_size": size, "test_sequences": len(ids),
        "seconds": round(seconds, 2),
    }
    with open_h5(inputs.frames, "frames") as f:
        picture = f[sid]["frames"][:, frame]
    t = summary["teacher"]
    footer = (f"Over {t['view_frames']} test view-frames with a person, mean share of each map "
              "inside the person's box: "
              + ", ".join(f"{label(n, METHOD_LABELS)} {summary[n]['share_in_box']:.3f}"
                          for n in summary)
              + f" (uniform map {t['uniform_share']:.3f}, all on the best patch "
              f"{t['best_patch_share']:.3f}); map's peak in the box: "
              + ", ".join(f"{label(n, METHOD_LABELS)} {summary[n]['peak_in_box']:.2f}"
                          for n in summary)
              + f" (a random patch {t['peak_in_box_chance']:.2f}).")
    title = (f"{label(env, HOME_LABELS)}, MultiASL: '{classes[cls]}' (largest teacher - student "
             f"{gap_level} AP gap), sequence {sid}, frame {frame} ({frame / fps:.1f} s)")
    draw_home(out_png, env, picture, {n: o.maps[:, 0] for n, o in chosen.items()},
              {n: o.empty[:, 0] for n, o in chosen.items()},
              {n: float(o.frame_scores[0, cls]) for n, o in chosen.items()},
              all_boxes[sid][:, frame], visible[sid][:, frame], edges, shown_share, title, footer)
    write_json(out_json, finite(result))
    log.info("figure4 %s: %d test sequences, %d view-frames with a person, %.1fs", env, len(ids),
             summary["teacher"]["view_frames"], seconds)
    return result


def combine(pngs: Sequence[str], jsons: Sequence[str], out_png, out_json) -> dict:
    """results/figure4.png and .json from the homes' own."""
    homes = {}
    for path in jsons:
        data = read_json(path)
        if not isinstance(data, dict) or "measurement" not in data or "home" not in data:
            raise VicokdError(f"{path}: not a figure4 measurement (no 'home'/'measurement')")
        homes[data["home"]] = data
    compose(list(pngs), out_png)
    out = {"method": METHOD, "rule": RULE, "homes": homes}
    write_json(out_json, out)
    return out


def main(snakemake) -> None:
    """Entry of the rules figure4_home (one home) and figure4 (the homes together)."""
    from ..saliency import HomeInputs
    from ..runner import optional_input

    inp = snakemake.input
    if snakemake.rule == "figure4":
        combine(inp.pngs, inp.jsons, snakemake.output.png, snakemake.output.json)
        return
    names = list(snakemake.params.models)
    if len(inp.models) != len(names) or len(inp.predictions) != len(names):
        raise VicokdError(f"figure4_home: {len(names)} models named, {len(inp.models)} given")
    runs = {n: {"model": m, "predictions": p} for n, m, p in zip(names, inp.models, inp.predictions)}
    inputs = HomeInputs(frames=inp.frames, features=optional_input(inp, "features"),
                        encoders=optional_input(inp, "encoders"), audio=optional_input(inp, "audio"))
    figure4_home(snakemake.wildcards.env, runs, inputs, inp.labels, inp.split, inp.boxes,
                 snakemake.params.box_source, snakemake.output.png, snakemake.output.json,
                 snakemake.threads, str(snakemake.config["model"]["device"]))  # speed-only
