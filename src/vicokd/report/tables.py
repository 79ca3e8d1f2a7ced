"""The rules table1 ... table4: the paper's Tables 1-4 from the training runs' metrics files.

Everything here is a pure function of a *metrics dict*: run id -> the run's metrics.json
content, or None when the run is missing. A run id is "{env}/{backbone}/{run}" with run one of
"teacher", "teacher-vc" or "{method}-{supervision}-seed{k}", i.e. the folder under results/.
Missing runs (and runs whose `map` is null or NaN) become cells written "missing", never 0, and
never stop a table from being built. The *long* tables (one row per cell, numeric) feed the
claims check (claims.py) and the HTML page (page.py); the *wide* tables have the paper's layout,
with formatted text. The labels, formatting and notes here are shared by figures.py and page.py.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import VicokdError
from ..experiments import (ABLATION_BACKBONE, METHODS, TABLE2_METHODS, TEACHER, TEACHER_VC,
                           run_id, student_run, table1_runs, table2_runs, table3_runs,
                           table4_runs)
from ..storage import atomic_path, read_json

Metrics = Mapping[str, "dict | None"]

METHOD_LABELS = {TEACHER: "Teacher", TEACHER_VC: "Teacher + VC",
                 **{name: m.label for name, m in METHODS.items()}}
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


# --- reading -----------------------------------------------------------------------------------

def run_id_of_path(path: str | os.PathLike) -> str:
    """The run id of `results/{env}/{backbone}/{run}/metrics.json` (or curve.csv)."""
    parts = Path(path).parts
    if len(parts) < 4:
        raise VicokdError(f"{path}: not a run's file (expected .../{{env}}/{{backbone}}/{{run}}/file)")
    return "/".join(parts[-4:-1])


def load_metrics(paths: Iterable[str | os.PathLike]) -> dict[str, dict | None]:
    """Read metrics files; a file that does not exist gives None (a missing run), a file that
    exists but is malformed is an error naming it."""
    out: dict[str, dict | None] = {}
    for path in paths:
        rid = run_id_of_path(path)
        if not Path(path).exists():
            out[rid] = None
            continue
        data = read_json(path)
        if not isinstance(data, dict) or "map" not in data:
            raise VicokdError(f"{path}: metrics file has no 'map' entry")
        for key in ("map", "frame_map"):
            v = data.get(key)
            if v is not None and not isinstance(v, (int, float)):
                raise VicokdError(f"{path}: '{key}' is {v!r}, expected a number or null")
        out[rid] = data
    return out


def metric_value(metrics: Metrics, rid: str, key: str = "map") -> float:
    """The metric of one run, NaN when the run (or that value) is missing."""
    m = metrics.get(rid)
    if not m:
        return math.nan
    v = m.get(key)
    if v is None:
        return math.nan
    v = float(v)
    return v if math.isfinite(v) else math.nan


# --- long tables -------------------------------------------------------------------------------

def table1_long(metrics: Metrics, homes, backbones, methods, supervisions, seed: int = 0,
                key: str = "map") -> pd.DataFrame:
    """One row per Table 1 cell: home, method, backbone, supervision, value, diff, best.

    diff = value - the non-distilled student's value (same home, backbone, supervision), NaN
    for the teacher and the student. best = highest value among the student methods of its
    column (ties all marked); the teacher is not ranked (it sees audio)."""
    rows = []
    for env in homes:
        for bb in backbones:
            teacher = metric_value(metrics, run_id(env, bb, TEACHER), key)
            for sup in supervisions:
                base = metric_value(metrics, run_id(env, bb, student_run("student", sup, seed)), key)
                rows.append(dict(home=env, method="teacher", backbone=bb, supervision=sup,
                                 value=teacher, diff=math.nan))
                for m in methods:
                    v = metric_value(metrics, run_id(env, bb, student_run(m, sup, seed)), key)
                    d = math.nan if m == "student" else v - base
                    rows.append(dict(home=env, method=m, backbone=bb, supervision=sup, value=v, diff=d))
    df = pd.DataFrame(rows, columns=["home", "method", "backbone", "supervision", "value", "diff"])
    df["best"] = False
    students = df["method"] != "teacher"
    for _, idx in df[students].groupby(["home", "backbone", "supervision"]).groups.items():
        vals = df.loc[idx, "value"]
        if vals.notna().any():
            df.loc[vals.index[np.isclose(vals, vals.max()) & vals.notna()], "best"] = True
    return df


def table2_long(metrics: Metrics, homes, backbones, supervisions, seeds) -> pd.DataFrame:
    """Per home, backbone, supervision and method (student, vicokd): n, mean, std over the
    seeds present (sample std, ddof=1; NaN with fewer than 2 runs), and the seeds missing."""
    rows = []
    for env in homes:
        for bb in backbones:
            for sup in supervisions:
                for m in TABLE2_METHODS:
                    vals = {k: metric_value(metrics, run_id(env, bb, student_run(m, sup, k)))
                            for k in seeds}
                    got = np.array([v for v in vals.values() if not math.isnan(v)])
                    rows.append(dict(
                        home=env, backbone=bb, supervision=sup, method=m, n=len(got),
                        mean=float(got.mean()) if len(got) else math.nan,
                        std=float(got.std(ddof=1)) if len(got) > 1 else math.nan,
                        missing_seeds=[k for k, v in vals.items() if math.isnan(v)]))
    return pd.DataFrame(rows)


def table3_long(metrics: Metrics, homes, backbones) -> pd.DataFrame:
    """Per backbone and home: teacher mAP, teacher-with-VC mAP, and their difference."""
    rows = []
    for bb in backbones:
        for env in homes:
            a = metric_value(metrics, run_id(env, bb, TEACHER))
            b = metric_value(metrics, run_id(env, bb, TEACHER_VC))
            rows.append(dict(backbone=bb, home=env, teacher=a, teacher_vc=b, diff=b - a))
    return pd.DataFrame(rows)


def table4_long(metrics: Metrics, homes, ablations, supervisions, seed: int = 0) -> pd.DataFrame:
    """Per method (vicokd, then the ablations), home, supervision: MultiASL mAP and the
    difference from ViCoKD (NaN for ViCoKD itself)."""
    rows = []
    for m in ["vicokd", *ablations]:
        for env in homes:
            for sup in supervisions:
                ref = metric_value(metrics, run_id(env, ABLATION_BACKBONE, student_run("vicokd", sup, seed)))
                v = metric_value(metrics, run_id(env, ABLATION_BACKBONE, student_run(m, sup, seed)))
                rows.append(dict(method=m, home=env, supervision=sup, value=v,
                                 diff=math.nan if m == "vicokd" else v - ref))
    return pd.DataFrame(rows)


def missing_runs(metrics: Metrics, runs: Iterable[str], key: str = "map") -> list[str]:
    """The runs of `runs` with no value (absent file, or null/NaN metric)."""
    return [r for r in runs if math.isnan(metric_value(metrics, r, key))]


# --- formatting --------------------------------------------------------------------------------

def fmt_value(v: float) -> str:
    return MISSING if math.isnan(v) else f"{v:.2f}"


def fmt_diff(d: float) -> str:
    return "n/a" if math.isnan(d) else f"{d:+.2f}"


def table1_wide(long: pd.DataFrame, homes, backbones, methods, supervisions,
                style: str = "csv") -> pd.DataFrame:
    """The paper's Table 1 layout: rows home x method (teacher first), columns backbone x
    supervision; cells "mAP (+diff)". The best student method per column is marked: its value
    in bold (style "md", Markdown and HTML) or a " [best]" suffix (style "csv")."""
    cols = [(bb, s) for bb in backbones for s in supervisions]
    index = long.set_index(["home", "method", "backbone", "supervision"])
    rows = []
    for env in homes:
        for m in ["teacher", *methods]:
            row = {"Home": label(env, HOME_LABELS), "Method": label(m, METHOD_LABELS)}
            for bb, s in cols:
                cell = index.loc[(env, m, bb, s)]
                text = fmt_value(cell["value"])
                if cell["best"] and style == "md":  # bold the value only, as the paper does
                    text = f"**{text}**"
                if m not in ("teacher", "student") and not math.isnan(cell["value"]):
                    text += f" ({fmt_diff(cell['diff'])})"
                if cell["best"] and style != "md":
                    text += " [best]"
                row[column_label(bb, s)] = text
            rows.append(row)
    return pd.DataFrame(rows)


def table2_wide(long: pd.DataFrame, homes, backbones, supervisions) -> pd.DataFrame:
    """Rows backbone x (Student, ViCoKD, gain), columns home x supervision; cells
    "mean ± std (n=k)". The gain row says whether ViCoKD - Student exceeds the spread, taken
    as the sum of the two standard deviations."""
    index = long.set_index(["home", "backbone", "supervision", "method"])
    rows = []
    for bb in backbones:
        for what in ("student", "vicokd", "gain"):
            row = {"Backbone": label(bb, BACKBONE_LABELS),
                   "Method": "ViCoKD − Student" if what == "gain" else label(what, METHOD_LABELS)}
            for env in homes:
                for s in supervisions:
                    col = f"{label(env, HOME_LABELS)} {label(s, SUPERVISION_LABELS)}"
                    if what == "gain":
                        a, b = index.loc[(env, bb, s, "student")], index.loc[(env, bb, s, "vicokd")]
                        row[col] = fmt_gain(b["mean"] - a["mean"], a["std"] + b["std"])
                    else:
                        c = index.loc[(env, bb, s, what)]
                        row[col] = fmt_mean_std(c["mean"], c["std"], c["n"])
            rows.append(row)
    return pd.DataFrame(rows)


def fmt_mean_std(mean: float, std: float, n: int) -> str:
    if n == 0:
        return MISSING
    if math.isnan(std):
        return f"{mean:.2f} ± n/a (n={n})"
    return f"{mean:.2f} ± {std:.2f} (n={n})"


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
            text = f"{fmt_value(c['teacher'])} → {fmt_value(c['teacher_vc'])}"
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
                text = fmt_value(c["value"])
                if m != "vicokd" and not math.isnan(c["value"]):
                    text += f" ({fmt_diff(c['diff'])})"
                row[f"{label(env, HOME_LABELS)} {label(s, SUPERVISION_LABELS)}"] = text
        rows.append(row)
    return pd.DataFrame(rows)


# --- notes (each table's config, written under it) ----------------------------------------------

def data_note(data_format: str) -> str:
    if data_format == "synthetic":
        return ("Data: SYNTHETIC embedded homes (dataset.format: synthetic), not the "
                "MultiSensor-Home recordings; values are not comparable with the paper's.")
    return f"Data: dataset.format {data_format}."


def chance_note(metrics: Metrics, homes: Sequence[str]) -> list[str]:
    """The chance level of each home (mAP of random scores on its test split, from the runs'
    `chance`), so a reader sees how far above chance a cell is."""
    parts = []
    for env in homes:
        vals = [float(m["chance"]) for rid, m in metrics.items() if m and rid.startswith(f"{env}/")
                and isinstance(m.get("chance"), (int, float)) and math.isfinite(m["chance"])]
        if vals:
            parts.append(f"{env} {float(np.median(vals)):.2f}")
    return [f"Chance mAP [%] (random scores, test split): {', '.join(parts)}."] if parts else []


def missing_note(missing: Sequence[str]) -> list[str]:
    if not missing:
        return []
    shown = ", ".join(missing[:12]) + (f", … ({len(missing) - 12} more)" if len(missing) > 12 else "")
    return [f"Missing runs ({len(missing)}), shown as '{MISSING}': {shown}."]


def table_notes(table: str, experiments: Mapping, data_format: str, seed: int,
                missing: Sequence[str] = (), key: str = "map") -> list[str]:
    """The footnote lines of one table: what the numbers are and the config that made them."""
    homes = ", ".join(experiments["homes"])
    metric = ("frame-level mAP [%] (fused frame scores against frame labels)" if key == "frame_map"
              else "mAP [%] (macro, sequence-level scores, test split)")
    notes = []
    if table == "table1":
        notes += [f"{metric}; in parentheses the difference from the non-distilled student "
                  "(same home, backbone, supervision); the best student method of each column is "
                  "marked (bold / [best]); the teacher (AV_F) is shown in both columns and not ranked.",
                  f"Seed {seed} for every method: one run per cell. The paper's Table 1 shows means "
                  "of 3 runs (see Table 2 for our spread over seeds)."]
    elif table == "table2":
        seeds = ", ".join(str(k) for k in experiments["seeds"])
        notes += [f"{metric}: mean ± sample standard deviation (ddof=1) over seeds {seeds}; "
                  "n = runs present.",
                  "ViCoKD − Student: difference of the means; 'exceeds spread' when its size is "
                  "larger than the sum of the two standard deviations."]
    elif table == "table3":
        notes += [f"{metric}: teacher → teacher trained with the view-aware consistency loss "
                  "(difference in parentheses). One run each."]
    elif table == "table4":
        notes += [f"{metric} with the MultiASL backbone; in parentheses the difference from "
                  f"ViCoKD. Seed {seed} for every run."]
    notes.append(f"Homes: {homes}. Backbones: {', '.join(experiments['backbones'])}.")
    notes.append(data_note(data_format))
    return notes + missing_note(list(missing))


# --- writers -----------------------------------------------------------------------------------

def write_csv(df: pd.DataFrame, path: str | os.PathLike, notes: Sequence[str] = ()) -> None:
    """CSV with the notes as leading '# ' comment lines (pandas.read_csv(..., comment='#')
    reads it back; cells never contain '#')."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            for line in notes:
                fh.write(f"# {line}\n")
            df.to_csv(fh, index=False)


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
    "table2": "Table 2. Mean ± std of mAP [%] over seeds: ViCoKD and the non-distilled student",
    "table3": "Table 3. The view-aware consistency loss applied to the teacher",
    "table4": "Table 4. Ablations of ViCoKD (MultiASL backbone)",
}


# --- the rules table1 ... table4 ---------------------------------------------------------------

def _experiments(snakemake) -> tuple[dict, str, int]:
    p = snakemake.params
    return dict(p.experiments), p.data_format, int(p.seed)


def _write_table1(snakemake) -> None:
    exp, fmt, seed = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    args = (exp["homes"], exp["backbones"], exp["methods"], exp["supervision"])
    runs = table1_runs(*args, seed)
    for key, csv_out, md_out, title in (
            ("map", snakemake.output.csv, snakemake.output.md, TITLES["table1"]),
            ("frame_map", snakemake.output.frame_csv, snakemake.output.frame_md, TITLES["table1_frame"])):
        long = table1_long(metrics, *args, seed=seed, key=key)
        notes = table_notes("table1", exp, fmt, seed, missing_runs(metrics, runs, key), key=key)
        if key == "map":
            notes += chance_note(metrics, exp["homes"])
        write_csv(table1_wide(long, *args, style="csv"), csv_out, notes)
        write_markdown(table1_wide(long, *args, style="md"), md_out, title, notes)


def _write_table2(snakemake) -> None:
    exp, fmt, seed = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    long = table2_long(metrics, exp["homes"], exp["backbones"], exp["supervision"], exp["seeds"])
    runs = table2_runs(exp["homes"], exp["backbones"], exp["supervision"], exp["seeds"])
    notes = table_notes("table2", exp, fmt, seed, missing_runs(metrics, runs))
    write_csv(table2_wide(long, exp["homes"], exp["backbones"], exp["supervision"]),
              snakemake.output.csv, notes)


def _write_table3(snakemake) -> None:
    exp, fmt, seed = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    long = table3_long(metrics, exp["homes"], exp["backbones"])
    notes = table_notes("table3", exp, fmt, seed,
                        missing_runs(metrics, table3_runs(exp["homes"], exp["backbones"])))
    write_csv(table3_wide(long, exp["homes"], exp["backbones"]), snakemake.output.csv, notes)


def _write_table4(snakemake) -> None:
    exp, fmt, seed = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    long = table4_long(metrics, exp["homes"], exp["ablations"], exp["supervision"], seed)
    runs = table4_runs(exp["homes"], exp["ablations"], exp["supervision"], seed)
    notes = table_notes("table4", exp, fmt, seed, missing_runs(metrics, runs))
    write_csv(table4_wide(long, exp["homes"], exp["ablations"], exp["supervision"]),
              snakemake.output.csv, notes)


def main(snakemake) -> None:
    """Entry of the rules table1 ... table4 (one script each): the rule's name picks the table."""
    writers = {"table1": _write_table1, "table2": _write_table2, "table3": _write_table3,
               "table4": _write_table4}
    if snakemake.rule not in writers:
        raise VicokdError(f"vicokd.report.tables makes the rules {', '.join(writers)}, "
                          f"not '{snakemake.rule}'")
    writers[snakemake.rule](snakemake)
