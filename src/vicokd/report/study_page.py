"""The report's view-consistency section, when the config has study homes (config/study.yaml):
the effect of VC against the homes' measured co-visibility and view disparity, with its seed
spread (results/study/view_consistency.csv and .png, written by the `view_consistency` rule)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import VicokdError
from ..study.view_consistency import fmt_effect
from .html_parts import html_figure, html_table

NOTES = [
    "Each difference is paired by seed (the same seed gives the same initial weights and frame "
    "sampling; ViCoKD and CoKD differ only by the VC term): mean ± standard deviation over the "
    "seeds, sequence-level test mAP [points], MultiASL.",
    "Co-visibility: the share of frames with the person in some view that show them in two or "
    "more. Pairs seen (masks): the share of view pairs × frames where both YOLO masks fire, "
    "where VC acts. View disparity: 1 − the correlation of two views' probe readouts.",
    "The study homes differ only by physical settings fixed before training "
    "(config/study.yaml, docs/distillation.md).",
]
SHOWN = ("sweep", "level", "home", "supervision", "co_visibility", "pair_share_masks",
         "view_disparity", "student_map", "cokd_map", "vicokd_map")
EFFECTS = {"vicokd_minus_cokd": "ViCoKD − CoKD", "vicokd_minus_student": "ViCoKD − student",
           "learnedvis_minus_cokd": "learned vis. − CoKD",
           "learnedvis_minus_cokdvis": "learned vis. − (CoKD + vis. head)",
           "cokdvis_minus_cokd": "(CoKD + vis. head) − CoKD"}


def read_study(csv_path, png_path) -> dict:
    """The study's table and figure; a CSV without its columns is a one-line error."""
    table = pd.read_csv(csv_path)
    missing = [c for c in (*SHOWN, *EFFECTS) if c not in table.columns]
    if missing:
        raise VicokdError(f"{csv_path}: not the study's table (no column {missing[0]!r})")
    return {"table": table, "png": Path(png_path).read_bytes()}


def study_section(study: dict | None) -> str:
    """The section's HTML; empty without a study."""
    if not study:
        return ""
    t = study["table"]
    shown = t[list(SHOWN)].copy()
    for col in ("co_visibility", "pair_share_masks", "view_disparity"):
        shown[col] = shown[col].map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
    for col in ("student_map", "cokd_map", "vicokd_map"):
        shown[col] = shown[col].map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}")
    for key, label in EFFECTS.items():
        shown[label] = [fmt_effect(m, s) for m, s in zip(t[key], t[f"{key}_sd"])]
    shown = shown.rename(columns={"co_visibility": "co-visibility",
                                  "pair_share_masks": "pairs seen (masks)",
                                  "view_disparity": "view disparity", "student_map": "student",
                                  "cokd_map": "CoKD", "vicokd_map": "ViCoKD"})
    return ("<h2>When does view consistency help? (the study)</h2>\n"
            + html_figure(study["png"], "study",
                          "Effect of view consistency against the study homes' co-visibility and "
                          "view disparity (mean ± sd over seeds of the paired differences)")
            + html_table(shown, "study-table", "The view-consistency study", NOTES))
