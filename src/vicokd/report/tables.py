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
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import VicokdError
from ..experiments import (ABLATION_BACKBONE, TABLE2_METHODS, TEACHER, TEACHER_VC, run_id,
                           student_run)
from ..storage import atomic_path, read_json
from .layout import METHOD_LABELS, TITLES, label, write_markdown
from .notes import table_notes, yardstick_notes
from .yardsticks import (NO_BAND, PROBE_AV, PROBE_KINDS, PROBE_V, Metrics, Probes, headroom_share,
                         home_bands, home_prevalence, in_band, matching_probe, prevalence_value,
                         probe_value, random_band)


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


# --- long tables -------------------------------------------------------------------------------

TABLE1_COLUMNS = ["home", "method", "backbone", "supervision", "run", "value", "diff",
                  "reference", "random", "random_low", "random_high", "prevalence", "in_band",
                  "share"]


def table1_long(metrics: Metrics, homes, backbones, methods, supervisions, seed: int = 0,
                key: str = "map", probes: Probes | None = None) -> pd.DataFrame:
    """One row per Table 1 cell: home, method, backbone, supervision, run, value, diff, best,
    reference, random, random_low, random_high, prevalence, in_band, share.

    diff = value - the non-distilled student's value (same home, backbone, supervision), NaN
    for the teacher, the student and the probes. best = highest value among the student methods
    of its column (ties all marked); the teacher (it sees audio) and the probes are not ranked.
    With `probes`, the reference rows PROBE_AV (after the teacher) and PROBE_V (after the
    students) are added (reference = True, run ""). random* is the cell's random-score band (its
    run's, else its home's), prevalence its split's mean class prevalence, in_band whether the
    value lies in the band, share its headroom_share against the matching probe."""
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
                        rid, (v, band) = "", probe_cells[m]
                        prevalence = prevalence_value(probes.get(env), key)
                    else:
                        rid = run_id(env, bb, TEACHER if m == "teacher" else student_run(m, sup, seed))
                        v, band = metric_value(metrics, rid, key), random_band(metrics.get(rid), key)
                        band = band if not math.isnan(band[1]) else bands.get(env, NO_BAND)
                        prevalence = prevalence_value(metrics.get(rid), key)
                    share = math.nan
                    if probe_cells and not reference:
                        pv, pband = probe_cells[matching_probe(m)]
                        share = headroom_share(v, band[0], pv, pband[0])
                    d = math.nan if m in ("teacher", "student") or reference else v - base
                    rows.append(dict(home=env, method=m, backbone=bb, supervision=sup, run=rid,
                                     value=v, diff=d, reference=reference, random=band[0],
                                     random_low=band[1], random_high=band[2],
                                     prevalence=prevalence, in_band=in_band(v, band),
                                     share=share))
    df = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    df["best"] = False
    students = df["method"].isin(list(methods))
    for _, idx in df[students].groupby(["home", "backbone", "supervision"]).groups.items():
        vals = df.loc[idx, "value"]
        if vals.notna().any():
            df.loc[vals.index[np.isclose(vals, vals.max()) & vals.notna()], "best"] = True
    return df


def table2_long(metrics: Metrics, homes, backbones, supervisions, seeds) -> pd.DataFrame:
    """Per home, backbone, supervision and method (TABLE2_METHODS): n, mean, std over the
    seeds present (sample std, ddof=1; NaN with fewer than 2 runs), the seeds missing (and
    their run ids, `missing_runs`, ";"-joined), and whether the mean lies in the home's
    random-score band."""
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
                    absent = [k for k, v in vals.items() if math.isnan(v)]
                    rows.append(dict(
                        home=env, backbone=bb, supervision=sup, method=m, n=len(got), mean=mean,
                        std=float(got.std(ddof=1)) if len(got) > 1 else math.nan,
                        missing_seeds=absent,
                        missing_runs=";".join(run_id(env, bb, student_run(m, sup, k))
                                              for k in absent),
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
                             teacher_run=ra, teacher_vc_run=rb,
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
                rows.append(dict(method=m, home=env, supervision=sup, run=rid, value=v,
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


# --- the tables as files: results/table*.csv, one row per cell, numbers and flags ---------------

# Table 1's long columns as its CSV names them (the others keep their names).
TABLE1_CSV_NAMES = {"diff": "diff_from_student", "random": "random_mean",
                    "in_band": "in_random_band", "share": "headroom_share"}
FLOAT_DIGITS = 4


def table1_tidy(long: pd.DataFrame, key: str = "map") -> pd.DataFrame:
    """results/table1.csv (and table1_frame_map.csv): `long` with the method's label and the
    metric beside each cell, floats rounded to FLOAT_DIGITS."""
    out = long.rename(columns=TABLE1_CSV_NAMES)
    out.insert(2, "label", [label(m, METHOD_LABELS) for m in long["method"]])
    out.insert(5, "metric", key)
    floats = out.select_dtypes("float").columns
    out[floats] = out[floats].round(FLOAT_DIGITS)
    return out


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """A long table as a plain CSV (pandas.read_csv reads it as it is; lists ";"-joined)."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, list)).any():
            out[col] = out[col].map(lambda v: ";".join(map(str, v)))
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)


# Columns of run ids and seeds: text, also when they look like numbers or are empty.
TEXT_COLUMNS = ("run", "missing_runs", "missing_seeds", "teacher_run", "teacher_vc_run")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A long table as `write_table` wrote it (Table 1's with its long column names again);
    a file that is not one is an error naming it."""
    try:
        df = pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise VicokdError(f"{path}: not a readable table ({exc})") from None
    if "label" in df.columns and "metric" in df.columns:          # Table 1
        df = df.drop(columns=["label", "metric"]).rename(
            columns={v: k for k, v in TABLE1_CSV_NAMES.items()})
    for col in TEXT_COLUMNS:
        if col in df.columns:
            df[col] = df[col].fillna("")
    if "missing_seeds" in df.columns:
        df["missing_seeds"] = df["missing_seeds"].map(lambda v: [int(k) for k in v.split(";") if k])
    return df


def write_table_files(snakemake, table: str, long: pd.DataFrame, wide: pd.DataFrame,
                      metrics: Metrics, runs: Iterable[str]) -> None:
    """Tables 2-4: the long CSV, and the paper's layout in Markdown with its notes."""
    p = snakemake.params
    exp, seed = dict(p.experiments), int(p.seed)
    notes = table_notes(table, exp, p.data_format, seed, missing_runs(metrics, runs))
    notes += yardstick_notes(home_bands(metrics, None, exp["homes"]),
                             home_prevalence(metrics, None, exp["homes"]))
    write_table(long, snakemake.output.csv)
    write_markdown(wide, snakemake.output.md, TITLES[table], notes)
