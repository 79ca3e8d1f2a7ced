"""The `view_consistency` rule: the effect of ViCoKD's view-consistency term against the measured
co-visibility and view disparity of the study homes (results/study/view_consistency.{csv,md,png}).

For every sweep (co-visibility, disparity), home and supervision: each method's test mAP
(sequence level, as Table 1, and frame level) over the seeds, as mean and sample standard
deviation, and the paired differences ViCoKD - CoKD (the effect of VC: the two differ only by
it), ViCoKD - student and CoKD - student, per seed (same seed: same initial weights and frame
sampling), as mean, standard deviation over the seeds (the seed spread), minimum and maximum;
and ViCoKD with the learned visibility (vicokd-learnedvis) - CoKD, VC with no detector, split
into what VC adds beside the visibility head (vicokd-learnedvis - cokd-vis) and what the head's
BCE adds alone (cokd-vis - CoKD).
Beside them the home's measured statistics (views.json, vicokd.study.views) and the MultiASL
teacher's test mAP.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import VicokdError  # noqa: E402
from ..experiments import ABLATION_BACKBONE, STUDY_METHODS, run_id, student_run  # noqa: E402
from ..storage import atomic_path, read_json  # noqa: E402

log = logging.getLogger(__name__)

SWEEPS = {"covisibility": "co_visibility", "disparity": "view_disparity"}
SWEEP_LABELS = {"covisibility": "co-visibility (share of seen frames in >= 2 views)",
                "disparity": "view disparity (1 - correlation of per-view probe readouts)"}
SUPERVISION_LABELS = {"frame": "AV_F -> V_F (frame labels)",
                      "sequence": "AV_F -> V_S (sequence labels)"}
# (name, minuend, subtrahend) of the paired differences
DIFFERENCES = (("vicokd_minus_cokd", "vicokd", "cokd"),
               ("vicokd_minus_student", "vicokd", "student"),
               ("cokd_minus_student", "cokd", "student"),
               ("learnedvis_minus_cokd", "vicokd-learnedvis", "cokd"),
               # what VC adds beside the learned visibility, and what its head and BCE add alone
               ("learnedvis_minus_cokdvis", "vicokd-learnedvis", "cokd-vis"),
               ("cokdvis_minus_cokd", "cokd-vis", "cokd"))
METRICS = ("map", "frame_map")


def column(method: str) -> str:
    """A method's prefix in the CSV's column names (vicokd-learnedvis -> vicokd_learnedvis)."""
    return method.replace("-", "_")
# The home's statistics copied into each row (views.json keys).
HOME_STATS = ("co_visibility", "view_disparity", "pair_share", "pair_share_masks",
              "visible_any_view", "mask_precision", "mask_recall")


def read_metrics(path) -> dict:
    """A run's metrics.json; a missing or malformed file is a one-line error naming it."""
    data = read_json(path)
    if not isinstance(data, dict) or "map" not in data:
        raise VicokdError(f"{path}: metrics file has no 'map' entry")
    for key in METRICS:
        v = data.get(key)
        if v is not None and not isinstance(v, (int, float)):
            raise VicokdError(f"{path}: '{key}' is {v!r}, expected a number or null")
    return data


def spread(values: list[float]) -> dict:
    """mean, sd (sample, ddof 1; None for one value), min, max of the finite values; n."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def study_rows(study: dict, supervisions: list[str], views: dict[str, dict],
               metrics: dict[str, dict], teachers: dict[str, dict | None]) -> list[dict]:
    """One row per sweep, home and supervision. `views`: env -> views.json; `metrics`: run id
    -> metrics.json of every study run; `teachers`: env -> the teacher's metrics (or None)."""
    seeds = list(study["seeds"])
    rows = []
    for sweep in SWEEPS:
        for level, env in enumerate(study[sweep]):
            if env not in views:
                raise VicokdError(f"study.{sweep}: no views.json for home '{env}'")
            stats = views[env]
            for sup in supervisions:
                row = {"sweep": sweep, "level": level + 1, "home": env, "supervision": sup,
                       "seeds": len(seeds)}
                row |= {k: stats.get(k) for k in HOME_STATS}
                per_view = [r["frame_map"] for r in stats["probe"]["per_view"]
                            if r["frame_map"] is not None]
                row["probe_view_frame_map"] = float(np.mean(per_view)) if per_view else None
                row["probe_pair_map_gap"] = stats["probe"].get("pair_map_gap")
                teacher = teachers.get(env)
                row["teacher_map"] = teacher.get("map") if teacher else None
                values = {}
                for method in STUDY_METHODS:
                    for key in METRICS:
                        got = []
                        for k in seeds:
                            rid = run_id(env, ABLATION_BACKBONE, student_run(method, sup, k))
                            if rid not in metrics:
                                raise VicokdError(f"study: no metrics for run '{rid}'")
                            got.append(metrics[rid].get(key))
                        values[method, key] = got
                        s = spread(got)
                        row[f"{column(method)}_{key}"] = s["mean"]
                        row[f"{column(method)}_{key}_sd"] = s["sd"]
                first = run_id(env, ABLATION_BACKBONE, student_run("student", sup, seeds[0]))
                row["chance"] = metrics[first].get("chance")
                for name, a, b in DIFFERENCES:
                    for key in METRICS:
                        diffs = [None if x is None or y is None else x - y
                                 for x, y in zip(values[a, key], values[b, key])]
                        s = spread(diffs)
                        suffix = "" if key == "map" else "_frame"
                        row[f"{name}{suffix}"] = s["mean"]
                        row[f"{name}{suffix}_sd"] = s["sd"]
                        row[f"{name}{suffix}_min"] = s["min"]
                        row[f"{name}{suffix}_max"] = s["max"]
                rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def fmt_effect(mean, sd) -> str:
    """'+1.23 ± 0.45' (no sd: '+1.23'; no mean: 'n/a'); None and NaN count as missing, so the
    study's CSV read back by pandas formats as the rows did."""
    def missing(v):
        return v is None or (isinstance(v, float) and math.isnan(v))
    if missing(mean):
        return "n/a"
    return f"{mean:+.2f}" if missing(sd) else f"{mean:+.2f} ± {sd:.2f}"


def _pm(row: dict, key: str) -> str:
    return fmt_effect(row.get(key), row.get(f"{key}_sd"))


def _num(v, digits=3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def to_markdown(rows: list[dict]) -> str:
    """The table docs/distillation.md shows: per sweep, home and supervision, the measured
    statistics and the effects (sequence mAP, mean ± sd over the seeds of the paired
    differences)."""
    head = ("| sweep | home | labels | co-visibility | pairs seen (masks) | view disparity | "
            "student | CoKD | ViCoKD | ViCoKD − CoKD | ViCoKD − student | CoKD − student | "
            "ViCoKD − CoKD, frame mAP | learned vis. − CoKD | learned vis. − (CoKD + vis. head) | "
            "(CoKD + vis. head) − CoKD |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['sweep']} {r['level']} | {r['home']} | {r['supervision']} | "
            f"{_num(r['co_visibility'])} | {_num(r['pair_share'])} ({_num(r['pair_share_masks'])}) | "
            f"{_num(r['view_disparity'])} | {_num(r['student_map'], 2)} | {_num(r['cokd_map'], 2)} | "
            f"{_num(r['vicokd_map'], 2)} | {_pm(r, 'vicokd_minus_cokd')} | "
            f"{_pm(r, 'vicokd_minus_student')} | {_pm(r, 'cokd_minus_student')} | "
            f"{_pm(r, 'vicokd_minus_cokd_frame')} | {_pm(r, 'learnedvis_minus_cokd')} | "
            f"{_pm(r, 'learnedvis_minus_cokdvis')} | {_pm(r, 'cokdvis_minus_cokd')} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path) -> None:
    """2 x 2 panels: rows the supervisions, columns the sweeps (x: the measured statistic of
    the sweep); ViCoKD − CoKD and ViCoKD − student with their seed spread (± 1 sd)."""
    sups = list(dict.fromkeys(r["supervision"] for r in rows))
    fig, axes = plt.subplots(len(sups), len(SWEEPS), figsize=(11, 3.8 * len(sups)),
                             squeeze=False, sharey="row")
    series = (("vicokd_minus_cokd", "ViCoKD − CoKD (the VC term)", "#d62728", "o"),
              ("vicokd_minus_student", "ViCoKD − student", "#555555", "s"),
              ("cokd_minus_student", "CoKD − student", "#ff7f0e", "D"),
              ("learnedvis_minus_cokd", "ViCoKD, learned visibility − CoKD", "#1f77b4", "^"),
              ("cokdvis_minus_cokd", "CoKD + visibility head (no VC) − CoKD", "#2ca02c", "v"))
    for i, sup in enumerate(sups):
        for j, (sweep, stat) in enumerate(SWEEPS.items()):
            ax = axes[i][j]
            part = [r for r in rows if r["supervision"] == sup and r["sweep"] == sweep
                    and r[stat] is not None]
            part.sort(key=lambda r: r[stat])
            ax.axhline(0.0, color="#999999", linewidth=1, zorder=0)
            xs = [r[stat] for r in part]
            for key, label, colour, marker in series:
                ys = [r[key] if r[key] is not None else np.nan for r in part]
                es = [r[f"{key}_sd"] or 0.0 for r in part]
                ax.errorbar(xs, ys, yerr=es, label=label, color=colour, marker=marker,
                            capsize=3, linewidth=2.2 if key == "vicokd_minus_cokd" else 1.2,
                            linestyle="-" if key == "vicokd_minus_cokd" else ":")
            for r in part:
                ax.annotate(r["home"].replace("study-", ""), (r[stat], r["vicokd_minus_cokd"] or 0),
                            textcoords="offset points", xytext=(4, 6), fontsize=7, color="#d62728")
            ax.set_xlabel(SWEEP_LABELS[sweep])
            if j == 0:
                ax.set_ylabel(f"Δ test mAP (points)\n{SUPERVISION_LABELS.get(sup, sup)}")
            ax.set_title(f"{sweep} sweep, {SUPERVISION_LABELS.get(sup, sup)}", fontsize=9)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Effect of view consistency (MultiASL, sequence-level test mAP, mean ± sd over "
                 "seeds of the paired differences)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(snakemake) -> None:
    """Entry of the `view_consistency` rule."""
    study = dict(snakemake.params.study)
    views = {}
    for path in snakemake.input.views:
        data = read_json(path)
        views[data.get("env", Path(path).parent.name)] = data
    metrics = {}
    for path in snakemake.input.metrics:
        parts = Path(path).parts
        metrics["/".join(parts[-4:-1])] = read_metrics(path)
    teachers = {Path(p).parts[-4]: read_metrics(p) for p in snakemake.input.teachers}
    rows = study_rows(study, list(snakemake.params.supervisions), views, metrics, teachers)
    out = snakemake.output
    with atomic_path(out.csv) as tmp:
        tmp.write_text(to_csv(rows))
    with atomic_path(out.md) as tmp:
        tmp.write_text(to_markdown(rows))
    plot(rows, out.png)
    for r in rows:
        log.info("%s %d %s %s: co-visibility %s, disparity %s: ViCoKD - CoKD %s, ViCoKD - student %s",
                 r["sweep"], r["level"], r["home"], r["supervision"], _num(r["co_visibility"]),
                 _num(r["view_disparity"]), _pm(r, "vicokd_minus_cokd"),
                 _pm(r, "vicokd_minus_student"))

