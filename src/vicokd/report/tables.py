"""The rules table1 ... table4: the paper's Tables 1-4 from the training runs' metrics files.

Everything here is a pure function of a *metrics dict*: run id -> the run's metrics.json
content, or None when the run is missing. A run id is "{env}/{backbone}/{run}" with run one of
"teacher", "teacher-vc" or "{method}-{supervision}-seed{k}", i.e. the folder under results/.
Missing runs (and runs whose `map` is null or NaN) become cells written "missing", never 0, and
never stop a table from being built. The *long* tables (one row per cell, numeric) feed the
claims check (claims.py) and the HTML page (page.py); the *wide* tables have the paper's layout,
with formatted text. The labels, formatting and notes here are shared by figures.py and page.py.

Every value is read against two yardsticks (docs/report.md): the random-score band of its test
split (`chance`, `chance_band` in its metrics.json; a value inside it is marked †), and the
linear probe of its home (results/{env}/probe.json, a *probes dict*: env -> probe.json content or
None), shown as reference rows of Table 1 and as each model's share of the probe's headroom.
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
Probes = Mapping[str, "dict | None"]

# The reference rows of Table 1 and the probe.json kind each reads: the audio+video probe beside
# the teacher, the video probe beside the students (what a video-only model can read).
PROBE_AV, PROBE_V = "probe-audio-video", "probe-video"
PROBE_KINDS = {PROBE_AV: "both", PROBE_V: "picture"}
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


def load_probes(paths: Iterable[str | os.PathLike]) -> dict[str, dict | None]:
    """Read results/{env}/probe.json files into env -> content; a file that does not exist gives
    None, a malformed one is an error naming it."""
    out: dict[str, dict | None] = {}
    for path in paths:
        env = Path(path).parent.name
        if not Path(path).exists():
            out[env] = None
            continue
        data = read_json(path)
        if not isinstance(data, dict) or not all(k in data for k in ("picture", "chance")):
            raise VicokdError(f"{path}: not a probe file (no 'picture' and 'chance' entries)")
        out[env] = data
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


# --- yardsticks: the random-score band and the probe ---------------------------------------------

# Where a metrics.json (or probe.json) keeps the random-score chance of each metric.
CHANCE_KEYS = {"map": ("chance", "chance_band", "prevalence"),
               "frame_map": ("frame_chance", "frame_chance_band", "frame_prevalence"),
               # the authors' model selection (runs/outputs.py): same test split, same chance
               "best_epoch_map": ("chance", "chance_band", "prevalence")}
NO_BAND = (math.nan, math.nan, math.nan)


def _number(v) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def random_band(m: dict | None, key: str = "map") -> tuple[float, float, float]:
    """(mean, low, high) of the random scores' mAP that a metrics.json or probe.json records
    for `key`; NaNs when it records none."""
    if not m:
        return NO_BAND
    mean, band = m.get(CHANCE_KEYS[key][0]), m.get(CHANCE_KEYS[key][1])
    if not isinstance(band, (list, tuple)) or len(band) != 2:
        return NO_BAND
    return _number(mean), _number(band[0]), _number(band[1])


def home_bands(metrics: Metrics, probes: Probes | None, homes: Sequence[str],
               key: str = "map") -> dict[str, tuple[float, float, float]]:
    """The random-score band of each home's test split: the median over its runs (they share
    the split, so they agree), else its probe's; homes with neither are left out."""
    out = {}
    for env in homes:
        bands = [random_band(m, key) for rid, m in metrics.items() if rid.startswith(f"{env}/")]
        bands = [b for b in bands if not math.isnan(b[1])]
        if not bands and probes and not math.isnan(random_band(probes.get(env), key)[1]):
            bands = [random_band(probes.get(env), key)]
        if bands:
            out[env] = tuple(float(np.median([b[i] for b in bands])) for i in range(3))
    return out


def home_prevalence(metrics: Metrics, probes: Probes | None, homes: Sequence[str],
                    key: str = "map") -> dict[str, float]:
    """The mean class prevalence of each home's test split (a constant score's mAP)."""
    name = CHANCE_KEYS[key][2]
    out = {}
    for env in homes:
        found = [m for rid, m in metrics.items() if rid.startswith(f"{env}/") and m] \
            + [p for p in [(probes or {}).get(env)] if p]
        vals = [_number(m.get(name)) for m in found]
        vals = [v for v in vals if not math.isnan(v)]
        if vals:
            out[env] = float(np.median(vals))
    return out


def in_band(value: float, band: tuple[float, float, float]) -> bool:
    """A value within the random scores' [2.5, 97.5] percentiles (False when either is NaN)."""
    return bool(band[1] <= value <= band[2]) if not (math.isnan(value) or math.isnan(band[1])) else False


def probe_value(probes: Probes | None, env: str, kind: str, key: str = "map") -> float:
    """A probe's mAP (`key`) of one home and kind ("picture", "sound", "both"); NaN if absent."""
    p = (probes or {}).get(env)
    part = p.get(kind) if p else None
    return _number(part.get(key)) if isinstance(part, dict) else math.nan


def headroom_share(value: float, random: float, probe: float, probe_random: float) -> float:
    """How much of the probe's headroom over random scores a model reaches:
    (model - random) / (probe - random), each over the random level of its own test frames
    (the same when both score the same frames). NaN when the probe is not above random."""
    gap = probe - probe_random
    if any(math.isnan(v) for v in (value, random, probe, probe_random)) or gap <= 0:
        return math.nan
    return (value - random) / gap


def matching_probe(method: str) -> str:
    """The probe row a model is matched with: the audio+video probe for the teachers (they hear),
    the video probe for the students."""
    return PROBE_AV if method in (TEACHER, TEACHER_VC, "teacher") else PROBE_V


# --- long tables -------------------------------------------------------------------------------

def table1_long(metrics: Metrics, homes, backbones, methods, supervisions, seed: int = 0,
                key: str = "map", probes: Probes | None = None) -> pd.DataFrame:
    """One row per Table 1 cell: home, method, backbone, supervision, value, diff, best,
    reference, random, random_low, random_high, in_band, share.

    diff = value - the non-distilled student's value (same home, backbone, supervision), NaN
    for the teacher, the student and the probes. best = highest value among the student methods
    of its column (ties all marked); the teacher (it sees audio) and the probes are not ranked.
    With `probes`, the reference rows PROBE_AV (after the teacher) and PROBE_V (after the
    students) are added (reference = True). random* is the cell's random-score band (its run's,
    else its home's), in_band whether the value lies in it, share its headroom_share against
    the matching probe."""
    bands = home_bands(metrics, probes, homes, key)
    rows = []
    for env in homes:
        # the probes' (value, band), the same in every column of the home
        probe_cells = {} if probes is None else {
            name: (probe_value(probes, env, kind, key), random_band(probes.get(env), key))
            for name, kind in PROBE_KINDS.items()}
        with_probes = bool(probe_cells)
        order = ["teacher", *[PROBE_AV] * with_probes, *methods, *[PROBE_V] * with_probes]
        for bb in backbones:
            for sup in supervisions:
                base = metric_value(metrics, run_id(env, bb, student_run("student", sup, seed)), key)
                for m in order:
                    reference = m in probe_cells
                    if reference:
                        v, band = probe_cells[m]
                    else:
                        rid = run_id(env, bb, TEACHER if m == "teacher" else student_run(m, sup, seed))
                        v, band = metric_value(metrics, rid, key), random_band(metrics.get(rid), key)
                        band = band if not math.isnan(band[1]) else bands.get(env, NO_BAND)
                    share = math.nan
                    if probe_cells and not reference:
                        pv, pband = probe_cells[matching_probe(m)]
                        share = headroom_share(v, band[0], pv, pband[0])
                    d = math.nan if m in ("teacher", "student") or reference else v - base
                    rows.append(dict(home=env, method=m, backbone=bb, supervision=sup, value=v,
                                     diff=d, reference=reference, random=band[0],
                                     random_low=band[1], random_high=band[2],
                                     in_band=in_band(v, band), share=share))
    df = pd.DataFrame(rows, columns=["home", "method", "backbone", "supervision", "value", "diff",
                                     "reference", "random", "random_low", "random_high",
                                     "in_band", "share"])
    df["best"] = False
    students = df["method"].isin(list(methods))
    for _, idx in df[students].groupby(["home", "backbone", "supervision"]).groups.items():
        vals = df.loc[idx, "value"]
        if vals.notna().any():
            df.loc[vals.index[np.isclose(vals, vals.max()) & vals.notna()], "best"] = True
    return df


def table2_long(metrics: Metrics, homes, backbones, supervisions, seeds) -> pd.DataFrame:
    """Per home, backbone, supervision and method (student, vicokd): n, mean, std over the
    seeds present (sample std, ddof=1; NaN with fewer than 2 runs), the seeds missing, and
    whether the mean lies in the home's random-score band."""
    bands = home_bands(metrics, None, homes)
    rows = []
    for env in homes:
        for bb in backbones:
            for sup in supervisions:
                for m in TABLE2_METHODS:
                    vals = {k: metric_value(metrics, run_id(env, bb, student_run(m, sup, k)))
                            for k in seeds}
                    got = np.array([v for v in vals.values() if not math.isnan(v)])
                    mean = float(got.mean()) if len(got) else math.nan
                    rows.append(dict(
                        home=env, backbone=bb, supervision=sup, method=m, n=len(got), mean=mean,
                        std=float(got.std(ddof=1)) if len(got) > 1 else math.nan,
                        missing_seeds=[k for k, v in vals.items() if math.isnan(v)],
                        in_band=in_band(mean, bands.get(env, NO_BAND))))
    return pd.DataFrame(rows)


def _run_in_band(metrics: Metrics, rid: str, value: float) -> bool:
    return in_band(value, random_band(metrics.get(rid)))


def table3_long(metrics: Metrics, homes, backbones) -> pd.DataFrame:
    """Per backbone and home: teacher mAP, teacher-with-VC mAP, their difference, and whether
    each lies in its run's random-score band."""
    rows = []
    for bb in backbones:
        for env in homes:
            ra, rb = run_id(env, bb, TEACHER), run_id(env, bb, TEACHER_VC)
            a, b = metric_value(metrics, ra), metric_value(metrics, rb)
            rows.append(dict(backbone=bb, home=env, teacher=a, teacher_vc=b, diff=b - a,
                             teacher_in_band=_run_in_band(metrics, ra, a),
                             teacher_vc_in_band=_run_in_band(metrics, rb, b)))
    return pd.DataFrame(rows)


def table4_long(metrics: Metrics, homes, ablations, supervisions, seed: int = 0) -> pd.DataFrame:
    """Per method (vicokd, then the ablations), home, supervision: MultiASL mAP, the
    difference from ViCoKD (NaN for ViCoKD itself), and whether it lies in the run's
    random-score band."""
    rows = []
    for m in ["vicokd", *ablations]:
        for env in homes:
            for sup in supervisions:
                ref = metric_value(metrics, run_id(env, ABLATION_BACKBONE, student_run("vicokd", sup, seed)))
                rid = run_id(env, ABLATION_BACKBONE, student_run(m, sup, seed))
                v = metric_value(metrics, rid)
                rows.append(dict(method=m, home=env, supervision=sup, value=v,
                                 diff=math.nan if m == "vicokd" else v - ref,
                                 in_band=_run_in_band(metrics, rid, v)))
    return pd.DataFrame(rows)


def missing_runs(metrics: Metrics, runs: Iterable[str], key: str = "map") -> list[str]:
    """The runs of `runs` with no value (absent file, or null/NaN metric)."""
    return [r for r in runs if math.isnan(metric_value(metrics, r, key))]


def without_frame_labels(metrics: Metrics, runs: Iterable[str]) -> list[str]:
    """The runs present whose test split has no sequence with frame labels (weak labels only):
    they have no frame-level mAP, which is not a missing run."""
    return [r for r in runs if (metrics.get(r) or {}).get("n_frame_labelled") == 0]


# --- formatting --------------------------------------------------------------------------------

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


def table1_tidy(long: pd.DataFrame, key: str = "map") -> pd.DataFrame:
    """results/table1.csv: one row per cell with plain numbers and flags, for pandas.read_csv."""
    out = pd.DataFrame({
        "home": long["home"], "method": long["method"],
        "label": [label(m, METHOD_LABELS) for m in long["method"]],
        "backbone": long["backbone"], "supervision": long["supervision"], "metric": key,
        "value": long["value"], "diff_from_student": long["diff"], "best": long["best"],
        "reference": long["reference"], "random_mean": long["random"],
        "random_low": long["random_low"], "random_high": long["random_high"],
        "in_random_band": long["in_band"], "headroom_share": long["share"]})
    floats = ["value", "diff_from_student", "random_mean", "random_low", "random_high",
              "headroom_share"]
    out[floats] = out[floats].astype(float).round(4)
    return out


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


# --- notes (each table's config, written under it) ----------------------------------------------

def data_note(data_format: str) -> str:
    if data_format == "synthetic":
        return ("Data: SYNTHETIC embedded homes (dataset.format: synthetic), not the "
                "MultiSensor-Home recordings; values are not comparable with the paper's.")
    return f"Data: dataset.format {data_format}."


def fmt_band(band: tuple[float, float, float]) -> str:
    return f"{band[0]:.2f} ({band[1]:.2f}–{band[2]:.2f})"


def yardstick_notes(metrics: Metrics, probes: Probes | None, homes: Sequence[str],
                    key: str = "map") -> list[str]:
    """The lines under a table that say what chance is on each home's test split: the random
    scores' band (what † marks) and, apart from it, the mean class prevalence; and, when the
    table has probe rows, what the probe is."""
    level = "frame-level " if key == "frame_map" else ""
    bands = home_bands(metrics, probes, homes, key)
    notes = []
    if bands:
        per_home = ", ".join(f"{label(env, HOME_LABELS)} {fmt_band(b)}" for env, b in bands.items())
        notes.append(f"{IN_BAND} = inside the random-score band, i.e. no better than chance: the "
                     f"2.5–97.5 percentiles of the {level}mAP that random scores get on the same "
                     f"test split (seeded simulation). Random scores, mean (band) [%]: {per_home}.")
    prevalence = home_prevalence(metrics, probes, homes, key)
    if prevalence:
        per_home = ", ".join(f"{label(env, HOME_LABELS)} {v:.2f}" for env, v in prevalence.items())
        notes.append(f"Mean class prevalence [%] (the {level}mAP of a constant score, lower than "
                     f"random scores get on a small test split, so not chance): {per_home}.")
    if probes and any(probes.values()):
        notes.append("Linear probe rows (reference, not ranked): a ridge regression (lambda = "
                     "100) fitted on the train split to the frame labels; the video probe reads "
                     "each view's 32 px grey frame and its difference to the next frame, the "
                     "audio+video probe also each mel bin's mean and std over the frame's audio "
                     "segment; a frame's score is the max over its views, a sequence's the max "
                     "over its frames (results/{env}/probe.json).")
    return notes


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
                  "in bold; the teacher (AV_F) is shown in both columns and not ranked.",
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

def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """A plain CSV: one header row, then the data (pandas.read_csv reads it as it is); the
    notes go into the Markdown file and the report."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


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
    probes = load_probes(snakemake.input.probes)
    args = (exp["homes"], exp["backbones"], exp["methods"], exp["supervision"])
    runs = table1_runs(*args, seed)
    for key, csv_out, md_out, title in (
            ("map", snakemake.output.csv, snakemake.output.md, TITLES["table1"]),
            ("frame_map", snakemake.output.frame_csv, snakemake.output.frame_md, TITLES["table1_frame"])):
        long = table1_long(metrics, *args, seed=seed, key=key, probes=probes)
        weak = without_frame_labels(metrics, runs) if key == "frame_map" else []
        missing = [r for r in missing_runs(metrics, runs, key) if r not in weak]
        notes = table_notes("table1", exp, fmt, seed, missing, key=key)
        if weak:
            notes.append(f"No frame-level mAP for {len(weak)} run(s): their test split has no "
                         "sequence with frame labels (labels without times only).")
        notes += yardstick_notes(metrics, probes, exp["homes"], key)
        write_csv(table1_tidy(long, key), csv_out)
        write_markdown(table1_wide(long, exp["homes"], exp["backbones"], exp["supervision"]),
                       md_out, title, notes)


def _write_table(snakemake, table: str, wide: pd.DataFrame, runs: Sequence[str],
                 metrics: Metrics) -> None:
    """Tables 2-4: the CSV, and the Markdown file with the notes."""
    exp, fmt, seed = _experiments(snakemake)
    notes = table_notes(table, exp, fmt, seed, missing_runs(metrics, runs))
    notes += yardstick_notes(metrics, None, exp["homes"])
    write_csv(wide, snakemake.output.csv)
    write_markdown(wide, snakemake.output.md, TITLES[table], notes)


def _write_table2(snakemake) -> None:
    exp, _, _ = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    long = table2_long(metrics, exp["homes"], exp["backbones"], exp["supervision"], exp["seeds"])
    runs = table2_runs(exp["homes"], exp["backbones"], exp["supervision"], exp["seeds"])
    _write_table(snakemake, "table2", table2_wide(long, exp["homes"], exp["backbones"],
                                                  exp["supervision"]), runs, metrics)


def _write_table3(snakemake) -> None:
    exp, _, _ = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    long = table3_long(metrics, exp["homes"], exp["backbones"])
    _write_table(snakemake, "table3", table3_wide(long, exp["homes"], exp["backbones"]),
                 table3_runs(exp["homes"], exp["backbones"]), metrics)


def _write_table4(snakemake) -> None:
    exp, _, seed = _experiments(snakemake)
    metrics = load_metrics(snakemake.input.metrics)
    long = table4_long(metrics, exp["homes"], exp["ablations"], exp["supervision"], seed)
    runs = table4_runs(exp["homes"], exp["ablations"], exp["supervision"], seed)
    _write_table(snakemake, "table4", table4_wide(long, exp["homes"], exp["ablations"],
                                                  exp["supervision"]), runs, metrics)


def main(snakemake) -> None:
    """Entry of the rules table1 ... table4 (one script each): the rule's name picks the table."""
    writers = {"table1": _write_table1, "table2": _write_table2, "table3": _write_table3,
               "table4": _write_table4}
    if snakemake.rule not in writers:
        raise VicokdError(f"vicokd.report.tables makes the rules {', '.join(writers)}, "
                          f"not '{snakemake.rule}'")
    writers[snakemake.rule](snakemake)
