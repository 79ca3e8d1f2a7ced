"""The report's Figure 4 section: the figure, the measured share of the evidence maps inside the
person's box (results/figure4.json), and the timelines (results/timelines/)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Mapping

import pandas as pd

from ..errors import VicokdError
from ..storage import read_json
from .html_parts import html_figure, html_table
from .layout import HOME_LABELS, METHOD_LABELS, label
from .timelines import read_timelines

SHARE_NOTES = [
    "Share in box: the mean, over every test view-frame where a person is seen, of the evidence "
    "map's mass inside the person's box (the map explains the class the model scores highest at "
    "that frame); 95 % interval from a bootstrap over test sequences. Two yardsticks on the same "
    "view-frames: a uniform map (the box's share of the frame; ratio above 1: the map favours the "
    "person) and a map all on the patch the box covers most (the most a map of this patch grid "
    "can hold inside the box).",
    "Peak in box: how often the patch holding the most of the map overlaps the box (the pointing "
    "game), beside how often a patch drawn at random does.",
    "Empty maps: view-frames where no patch carries positive evidence for the class; their map "
    "counts as uniform.",
]
DIFF_NOTES = [
    "Each difference is taken on the same view-frames; 'above zero' or 'below zero' when its "
    "95 % bootstrap interval (over test sequences) excludes zero, else 'within noise'.",
]
METRIC_LABELS = {"share_in_box": "share in box", "peak_in_box": "peak in box"}


def read_figure4(png, json_path, timelines=None) -> dict:
    """What the section shows: the figure's PNG bytes, its JSON and the timelines."""
    data = read_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("homes"), dict):
        raise VicokdError(f"{json_path}: not Figure 4's measurement (no 'homes')")
    return {"png": Path(png).read_bytes(), "json": data,
            "timelines": read_timelines(timelines) if timelines else []}


def _ci(lo_hi, digits: int = 3) -> str:
    lo, hi = (float("nan") if v is None else float(v) for v in lo_hi)
    return "n/a" if math.isnan(lo) else f"{lo:.{digits}f}–{hi:.{digits}f}"


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def share_table(data: Mapping) -> pd.DataFrame:
    rows = []
    for env, home in data["homes"].items():
        for name, m in home["measurement"].items():
            rows.append({"Home": label(env, HOME_LABELS), "Model": label(name, METHOD_LABELS),
                         "Share in box (95 % CI)": f"{_num(m['share_in_box'])} "
                                                   f"({_ci(m['share_in_box_ci95'])})",
                         "Uniform map": _num(m["uniform_share"]),
                         "Best patch": _num(m.get("best_patch_share")),
                         "Ratio to uniform": _num(m["ratio_to_uniform"], 2),
                         "Peak in box (95 % CI)": f"{_num(m.get('peak_in_box'), 2)} "
                                                  f"({_ci(m.get('peak_in_box_ci95', [None, None]), 2)})",
                         "Random patch": _num(m.get("peak_in_box_chance"), 2),
                         "View-frames": m["view_frames"], "Sequences": m["sequences"],
                         "Empty maps": m["empty_maps"]})
    return pd.DataFrame(rows)


def verdict(lo_hi) -> str:
    lo, hi = (float("nan") if v is None else float(v) for v in lo_hi)
    if math.isnan(lo):
        return "n/a"
    return "above zero" if lo > 0 else ("below zero" if hi < 0 else "within noise")


def difference_table(data: Mapping) -> pd.DataFrame:
    rows = []
    for env, home in data["homes"].items():
        for d in home.get("differences", []):
            a, b = d["models"]
            rows.append({"Home": label(env, HOME_LABELS),
                         "Measure": METRIC_LABELS.get(d.get("metric"), d.get("metric", "")),
                         "Difference": f"{label(a, METHOD_LABELS)} − {label(b, METHOD_LABELS)}",
                         "Value (95 % CI)": ("n/a" if d["difference"] is None else
                                             f"{d['difference']:+.4f} ({_ci(d['ci95'], 4)})"),
                         "Reading": verdict(d["ci95"])})
    return pd.DataFrame(rows)


def choice_notes(data: Mapping) -> list[str]:
    notes = [f"Rule: {data.get('rule', '')}.", f"Maps: {data.get('method', '')}."]
    for env, home in data["homes"].items():
        c = home["choice"]
        notes.append(f"{label(env, HOME_LABELS)}: class {c['class']}, sequence {c['sequence']}, "
                     f"frame {c['frame']} ({c['time_s']:.1f} s), person seen in "
                     f"{c['views_with_person']} of {c.get('views', '?')} views; boxes: "
                     + ("the generator's true boxes" if home.get("box_source") == "true"
                        else "the detector's boxes (masks.h5)") + ".")
    return notes


def figure4_section(figure4: Mapping | None) -> str:
    """The HTML of the section ('' when the report was built without Figure 4)."""
    if not figure4:
        return ""

    data = figure4["json"]
    out = ["<h2>Figure 4</h2>\n",
           html_figure(figure4["png"], "figure4",
                       "Figure 4. Where the teacher, the non-distilled student and ViCoKD find "
                       "their evidence (MultiASL, frame labels), one row per view: evidence maps "
                       "on the decoded frame, the person's box in yellow; each square is one ViT "
                       "patch."),
           '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in choice_notes(data))
           + "</ul>\n",
           html_table(share_table(data), "figure4-share",
                      "How much of each model's evidence lies inside the person's box", SHARE_NOTES),
           html_table(difference_table(data), "figure4-differences",
                      "Differences between models on the same view-frames", DIFF_NOTES)]
    if figure4.get("timelines"):
        out.append("<h2>Timelines</h2>\n")
        for entry, png in figure4["timelines"]:
            out.append(html_figure(png, f"timeline-{entry['sequence']}",
                                   f"{label(entry['home'], HOME_LABELS)}, test sequence "
                                   f"{entry['sequence']}: which views saw the person, the true "
                                   "frame labels (grey) and each model's frame scores over time "
                                   "(report.timelines picks the sequences)."))
    return "".join(out)
