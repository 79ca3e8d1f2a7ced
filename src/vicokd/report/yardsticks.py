"""The two yardsticks every figure of the report is read against (docs/report.md):

- the random-score band of its test split: the mAP that random scores get there (`chance` and
  `chance_band` in a run's metrics.json, `frame_chance`... for frames); a value inside the band
  is no better than chance;
- the linear probe of its home (results/{env}/probe.json): what a ridge regression reads from
  the same inputs, and a model's share of the probe's headroom over random scores.

Pure functions of a *metrics dict* (run id -> metrics.json content, or None when the run is
missing) and a *probes dict* (env -> probe.json content, or None).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ..experiments import TEACHER, TEACHER_VC

Metrics = Mapping[str, "dict | None"]
Probes = Mapping[str, "dict | None"]

# The reference rows of Table 1 and the probe.json kind each reads: the audio+video probe beside
# the teacher, the video probe beside the students (what a video-only model can read).
PROBE_AV, PROBE_V = "probe-audio-video", "probe-video"
PROBE_KINDS = {PROBE_AV: "both", PROBE_V: "picture"}



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
    out = {}
    for env in homes:
        found = [m for rid, m in metrics.items() if rid.startswith(f"{env}/") and m] \
            + [p for p in [(probes or {}).get(env)] if p]
        vals = [prevalence_value(m, key) for m in found]
        vals = [v for v in vals if not math.isnan(v)]
        if vals:
            out[env] = float(np.median(vals))
    return out


def prevalence_value(m: dict | None, key: str = "map") -> float:
    """The mean class prevalence of the test split a metrics.json (or probe.json) records for
    `key`: the mAP of a constant score, much lower than chance on a small split."""
    return _number((m or {}).get(CHANCE_KEYS[key][2]))


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


def table_bands(long, homes: Sequence[str]) -> tuple[dict, dict]:
    """The random-score band and the mean class prevalence of each home, as a Table 1 long
    table (vicokd.report.tables.table1_long) records them per cell: the median over the home's
    model cells (they share the test split, so they agree)."""
    bands, prevalence = {}, {}
    for env in homes:
        cells = long[(long["home"] == env) & ~long["reference"].astype(bool)]
        cells = cells[cells["random_low"].notna()]
        if len(cells):
            bands[env] = tuple(float(np.median(cells[c])) for c in
                               ("random", "random_low", "random_high"))
        prev = long.loc[long["home"] == env, "prevalence"].dropna()
        if len(prev):
            prevalence[env] = float(np.median(prev))
    return bands, prevalence
