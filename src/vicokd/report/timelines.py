"""The `timelines` rule: for chosen test sequences, what each model predicts over time.

One figure per sequence (results/timelines/{sequence id}.png, listed in index.json): a strip of
which views saw the person (masks.h5) above one row per class, each with the true frame labels
(grey) and the frame scores of the teacher, the non-distilled student and ViCoKD (MultiASL, the
runs of Figure 4) over the decoded frames. The classes drawn are those labelled somewhere in the
sequence and those a model scores 0.5 or more at some frame.

`report.timelines` in the config picks the sequences: a number N (the first N test sequences of
each home, in split.json's order) or a list of test-sequence ids of any home.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..errors import VicokdError  # noqa: E402
from ..experiments import FIGURE4_SHOWN  # noqa: E402
from ..storage import atomic_path, open_h5, read_json, write_json  # noqa: E402
from .layout import HOME_LABELS, METHOD_LABELS, label  # noqa: E402

log = logging.getLogger("vicokd")

INDEX = "index.json"
SCORE_SHOWN = 0.5          # a class no model scores this high and never labelled is left out
STYLE = {"teacher": dict(color="#2ca02c", linestyle="-", linewidth=1.3),
         "student": dict(color="#555555", linestyle="--", linewidth=1.3),
         "vicokd": dict(color="#d62728", linestyle="-", linewidth=1.6)}
LABEL_STYLE = dict(color="#bbbbbb", alpha=0.6, step="mid", linewidth=0)


def chosen_sequences(choice, tests: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """[(home, sequence id)] of `report.timelines`: a count per home, or ids of test sequences
    (each in some home's test split, else a one-line error)."""
    if isinstance(choice, bool) or not isinstance(choice, (int, list, tuple)):
        raise VicokdError(f"config report.timelines: {choice!r} is neither a number nor a list "
                          "of sequence ids")
    if isinstance(choice, int):
        if choice < 0:
            raise VicokdError(f"config report.timelines: {choice} is negative")
        return [(env, sid) for env, ids in tests.items() for sid in list(ids)[:choice]]
    home_of = {str(sid): env for env, ids in tests.items() for sid in ids}
    unknown = [str(s) for s in choice if str(s) not in home_of]
    if unknown:
        raise VicokdError(f"config report.timelines: {', '.join(map(repr, unknown))} is not a "
                          f"test sequence of any home ({', '.join(tests)})")
    return [(home_of[str(s)], str(s)) for s in dict.fromkeys(choice)]


def read_sequence(predictions: Mapping[str, str], labels: str, masks: str, sid: str) -> dict:
    """Frame scores [L, C] per model, frame labels [L, C], masks [V, L] and the class names."""
    scores, classes = {}, None
    for name, path in predictions.items():
        with open_h5(path, "predictions") as f:
            if sid not in f:
                raise VicokdError(f"{path}: no scores for sequence '{sid}'")
            scores[name] = f[sid]["frame_scores"][()]
            classes = classes or [str(c) for c in f.attrs.get("classes", [])]
    with open_h5(labels, "labels") as f:
        if sid not in f:
            raise VicokdError(f"{labels}: no sequence '{sid}'")
        frame_labels = f[sid]["frame_labels"][()]
    with open_h5(masks, "masks") as f:
        if sid not in f:
            raise VicokdError(f"{masks}: no sequence '{sid}'")
        mask = f[sid]["mask"][()].astype(bool)
    length = frame_labels.shape[0]
    for name, s in scores.items():
        if s.shape != frame_labels.shape:
            raise VicokdError(f"{predictions[name]}:/{sid}/frame_scores: shape {s.shape}, the "
                              f"labels are {frame_labels.shape}")
    if mask.shape[1] != length:
        raise VicokdError(f"{masks}:/{sid}/mask: {mask.shape[1]} frames, the labels {length}")
    if not classes or len(classes) != frame_labels.shape[1]:
        classes = [f"class{c}" for c in range(frame_labels.shape[1])]
    return {"scores": scores, "labels": frame_labels, "mask": mask, "classes": classes}


def classes_drawn(seq: dict) -> list[int]:
    shown = seq["labels"].max(0) > 0
    for s in seq["scores"].values():
        shown |= s.max(0) >= SCORE_SHOWN
    return [int(c) for c in np.flatnonzero(shown)]


def draw_timeline(path, env: str, sid: str, seq: dict, fps: float) -> list[str]:
    """One sequence's figure; returns the names of the classes drawn."""
    rows = classes_drawn(seq)
    views, length = seq["mask"].shape
    t = np.arange(length) / fps
    ratios = [0.22 * views + 0.3] + [1.0] * max(len(rows), 1)
    fig, axes = plt.subplots(len(ratios), 1, sharex=True, squeeze=False,
                             figsize=(9.0, 0.75 * sum(ratios) + 1.2),
                             gridspec_kw={"height_ratios": ratios})
    axes = axes[:, 0]
    half = 0.5 / fps
    axes[0].imshow(seq["mask"], aspect="auto", interpolation="nearest", vmin=0, vmax=1,
                   cmap=ListedColormap(["#f0f0f0", "#1f77b4"]),
                   extent=(-half, t[-1] + half, views - 0.5, -0.5))
    axes[0].set_yticks(range(views), [f"view {v + 1}" for v in range(views)], fontsize=7)
    axes[0].set_title("person seen (masks.h5)", fontsize=8, loc="left")
    for ax, c in zip(axes[1:], rows):
        ax.fill_between(t, 0, seq["labels"][:, c], **LABEL_STYLE)
        for name in FIGURE4_SHOWN:
            if name in seq["scores"]:
                ax.plot(t, seq["scores"][name][:, c], **STYLE.get(name, {}))
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks([0, 1])
        ax.tick_params(labelsize=7)
        ax.set_ylabel(seq["classes"][c], rotation=0, ha="right", va="center", fontsize=8)
        ax.grid(alpha=0.25)
    if not rows:
        axes[1].text(0.5, 0.5, "no class labelled or scored >= 0.5", ha="center",
                     transform=axes[1].transAxes)
    axes[-1].set_xlabel("time [s] (decoded frames)")
    handles = [Patch(label="true frame label", color=LABEL_STYLE["color"])]
    handles += [plt.Line2D([], [], label=label(n, METHOD_LABELS), **STYLE.get(n, {}))
                for n in FIGURE4_SHOWN if n in seq["scores"]]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"{label(env, HOME_LABELS)}, sequence {sid}: frame scores over time (MultiASL)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return [seq["classes"][c] for c in rows]


def write_timelines(out_dir, choice, homes: Mapping[str, Mapping], fps: float) -> list[dict]:
    """`homes`: env -> {"split", "labels", "masks", "predictions": {model name: path}}. Writes
    {id}.png per chosen sequence and index.json into out_dir (made whole, then moved in place)."""
    tests = {}
    for env, files in homes.items():
        split = read_json(files["split"])
        if not isinstance(split, dict) or "test" not in split:
            raise VicokdError(f"{files['split']}: no 'test' list of sequence ids")
        tests[env] = [str(s) for s in split["test"]]
    chosen = chosen_sequences(choice, tests)
    index = []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for env, sid in chosen:
            files = homes[env]
            seq = read_sequence(files["predictions"], files["labels"], files["masks"], sid)
            drawn = draw_timeline(tmp / f"{sid}.png", env, sid, seq, fps)
            index.append({"home": env, "sequence": sid, "png": f"{sid}.png", "classes": drawn,
                          "frames": int(seq["labels"].shape[0])})
        write_json(tmp / INDEX, index)
    log.info("timelines: %d sequences", len(index))
    return index


def read_timelines(folder) -> list[tuple[dict, bytes]]:
    """(entry, PNG bytes) of each timeline in a folder the rule wrote."""
    folder = Path(folder)
    index = read_json(folder / INDEX)
    if not isinstance(index, list):
        raise VicokdError(f"{folder / INDEX}: not a list of timelines")
    out = []
    for entry in index:
        png = folder / str(entry.get("png", ""))
        if not png.is_file():
            raise VicokdError(f"{folder / INDEX}: lists {png.name}, which is not in the folder")
        out.append((entry, png.read_bytes()))
    return out


def main(snakemake) -> None:
    """Entry of the `timelines` rule."""
    inp, p = snakemake.input, snakemake.params
    homes = list(p.homes)
    names = list(p.models)
    preds = list(inp.predictions)
    if len(preds) != len(homes) * len(names):
        raise VicokdError(f"timelines: {len(preds)} prediction files for {len(homes)} homes x "
                          f"{len(names)} models")
    files = {env: {"split": inp.splits[i], "labels": inp.labels[i], "masks": inp.masks[i],
                   "predictions": dict(zip(names, preds[i * len(names):(i + 1) * len(names)]))}
             for i, env in enumerate(homes)}
    choice = p.timelines if isinstance(p.timelines, int) else list(p.timelines)
    write_timelines(snakemake.output[0], choice, files, float(p.fps))
