"""How the report writes its tables: labels, number formats, the paper's wide layouts
(Markdown and HTML), and the Markdown and CSV writers. Pure functions of the long tables
(vicokd.report.tables)."""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import pandas as pd

from ..experiments import METHODS, TABLE2_GAINS, TABLE2_METHODS, TEACHER, TEACHER_VC
from ..storage import atomic_path
from .yardsticks import PROBE_AV, PROBE_V

METHOD_LABELS = {TEACHER: "Teacher", TEACHER_VC: "Teacher + VC",
                 PROBE_AV: "Linear probe, audio+video", PROBE_V: "Linear probe, video",
                 **{name: m.label for name, m in METHODS.items()}}
IN_BAND = "†"            # a value inside the random-score band (Markdown, HTML, text cells)
# Table 4 groups the ablations as the paper does.
ABLATION_GROUPS = {name: m.ablation_group for name, m in METHODS.items() if m.ablation_group}
BACKBONE_LABELS = {"multitrans": "MultiTrans", "multiasl": "MultiASL", "multitsf": "MultiTSF"}
SUPERVISION_LABELS = {"frame": "AV_F→V_F", "sequence": "AV_F→V_S"}
HOME_LABELS = {"home1": "Home-1", "home2": "Home-2"}
MISSING = "missing"


def label(name: str, table: Mapping[str, str]) -> str:
    return table.get(name, name)


def column_label(backbone: str, supervision: str) -> str:
    return f"{label(backbone, BACKBONE_LABELS)} {label(supervision, SUPERVISION_LABELS)}"


# --- formatting ---------------------------------------------------------------------------------

def fmt_value(v: float) -> str:
    return MISSING if math.isnan(v) else f"{v:.2f}"


def fmt_marked(v: float, inside: bool) -> str:
    """A value with the † of a value inside the random-score band."""
    return fmt_value(v) + (IN_BAND if inside and not math.isnan(v) else "")


def fmt_diff(d: float) -> str:
    return "n/a" if math.isnan(d) else f"{d:+.2f}"


def table1_wide(long: pd.DataFrame, homes, backbones, supervisions) -> pd.DataFrame:
    """The paper's Table 1 layout (Markdown and HTML): rows home x row of `long` (teacher first,
    in `long`'s order, the probes where `long` has them), columns backbone x supervision; cells
    "mAP (+diff)", the best student method's value in bold (as the paper does), a † after a
    value inside the random-score band."""
    cols = [(bb, s) for bb in backbones for s in supervisions]
    index = long.set_index(["home", "method", "backbone", "supervision"])
    rows = []
    for env in homes:
        for m in dict.fromkeys(long.loc[long["home"] == env, "method"]):
            row = {"Home": label(env, HOME_LABELS), "Method": label(m, METHOD_LABELS)}
            for bb, s in cols:
                cell = index.loc[(env, m, bb, s)]
                text = fmt_value(cell["value"])
                if cell["best"]:
                    text = f"**{text}**"
                if cell["in_band"]:
                    text += IN_BAND
                if m not in ("teacher", "student") and not cell["reference"] \
                        and not math.isnan(cell["value"]):
                    text += f" ({fmt_diff(cell['diff'])})"
                row[column_label(bb, s)] = text
            rows.append(row)
    return pd.DataFrame(rows)


def table2_wide(long: pd.DataFrame, homes, backbones, supervisions) -> pd.DataFrame:
    """Rows backbone x (each method of TABLE2_METHODS, then each gain of TABLE2_GAINS), columns
    home x supervision; cells "mean ± std (n=k)". A gain row says whether the difference of the
    two means exceeds the spread, taken as the sum of the two standard deviations."""
    index = long.set_index(["home", "backbone", "supervision", "method"])
    rows = []
    for bb in backbones:
        for what in (*TABLE2_METHODS, *TABLE2_GAINS):
            gain = isinstance(what, tuple)
            name = (f"{label(what[0], METHOD_LABELS)} − {label(what[1], METHOD_LABELS)}" if gain
                    else label(what, METHOD_LABELS))
            row = {"Backbone": label(bb, BACKBONE_LABELS), "Method": name}
            for env in homes:
                for s in supervisions:
                    col = f"{label(env, HOME_LABELS)} {label(s, SUPERVISION_LABELS)}"
                    if gain:
                        a, b = index.loc[(env, bb, s, what[1])], index.loc[(env, bb, s, what[0])]
                        row[col] = fmt_gain(b["mean"] - a["mean"], a["std"] + b["std"])
                    else:
                        c = index.loc[(env, bb, s, what)]
                        row[col] = fmt_mean_std(c["mean"], c["std"], c["n"], c["in_band"])
            rows.append(row)
    return pd.DataFrame(rows)


def fmt_mean_std(mean: float, std: float, n: int, inside: bool = False) -> str:
    if n == 0:
        return MISSING
    spread = "n/a" if math.isnan(std) else f"{std:.2f}"
    return f"{fmt_marked(mean, inside)} ± {spread} (n={n})"


def fmt_gain(gain: float, spread: float) -> str:
    if math.isnan(gain):
        return MISSING
    if math.isnan(spread):
        return f"{gain:+.2f} (spread n/a)"
    verdict = "exceeds" if abs(gain) > spread else "within"
    return f"{gain:+.2f} ({verdict} spread {spread:.2f})"


def table3_wide(long: pd.DataFrame, homes, backbones) -> pd.DataFrame:
    """Rows backbone, columns home; cells "teacher → teacher+VC (+diff)"."""
    index = long.set_index(["backbone", "home"])
    rows = []
    for bb in backbones:
        row = {"Backbone": label(bb, BACKBONE_LABELS)}
        for env in homes:
            c = index.loc[(bb, env)]
            text = (f"{fmt_marked(c['teacher'], c['teacher_in_band'])} → "
                    f"{fmt_marked(c['teacher_vc'], c['teacher_vc_in_band'])}")
            if not math.isnan(c["diff"]):
                text += f" ({fmt_diff(c['diff'])})"
            row[label(env, HOME_LABELS)] = text
        rows.append(row)
    return pd.DataFrame(rows)


def table4_wide(long: pd.DataFrame, homes, ablations, supervisions) -> pd.DataFrame:
    """Rows ViCoKD then the ablations (with the paper's group), columns home x supervision;
    cells "mAP (diff from ViCoKD)"."""
    index = long.set_index(["method", "home", "supervision"])
    rows = []
    for m in ["vicokd", *ablations]:
        row = {"Group": ABLATION_GROUPS.get(m, ""), "Method": label(m, METHOD_LABELS)}
        for env in homes:
            for s in supervisions:
                c = index.loc[(m, env, s)]
                text = fmt_marked(c["value"], c["in_band"])
                if m != "vicokd" and not math.isnan(c["value"]):
                    text += f" ({fmt_diff(c['diff'])})"
                row[f"{label(env, HOME_LABELS)} {label(s, SUPERVISION_LABELS)}"] = text
        rows.append(row)
    return pd.DataFrame(rows)


def fmt_band(band: tuple[float, float, float]) -> str:
    return f"{band[0]:.2f} ({band[1]:.2f}–{band[2]:.2f})"


# --- writers -----------------------------------------------------------------------------------

def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (no tabulate dependency)."""
    def cell(x) -> str:
        return str(x).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write_markdown(df: pd.DataFrame, path: str | os.PathLike, title: str,
                   notes: Sequence[str] = ()) -> None:
    text = f"## {title}\n\n{markdown_table(df)}\n\n" + "".join(f"- {n}\n" for n in notes)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


TITLES = {
    "table1": "Table 1. mAP [%] of the teacher, the non-distilled student and the distillation methods",
    "table1_frame": "Table 1 (frame-level mAP). Same runs, frame-level mAP [%]",
    "table1_best_epoch": "Table 1 by the authors' protocol: mAP [%] at each run's best test epoch",
    "table2": "Table 2. Mean ± std of mAP [%] over seeds: ViCoKD, CoKD and the non-distilled student",
    "table3": "Table 3. The view-aware consistency loss applied to the teacher",
    "table4": "Table 4. Ablations of ViCoKD (MultiASL backbone)",
}
