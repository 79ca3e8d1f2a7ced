"""The run time of each stage, read from Snakemake's benchmark files (benchmarks/results/),
for the report."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pandas as pd

from ..experiments import ABLATIONS, TEACHER, TEACHER_VC, method_of_run

log = logging.getLogger("vicokd")


def collect_benchmarks(root: str | os.PathLike) -> pd.DataFrame:
    """Every Snakemake benchmark file under `root` (column `s` = wall seconds; the mean when a
    job was benchmarked several times). Unreadable files are skipped with a warning."""
    rows = []
    root = Path(root)
    for path in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        try:
            df = pd.read_csv(path, sep="\t")
            seconds = float(pd.to_numeric(df["s"], errors="coerce").mean())
        except (KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            log.warning("%s: not a Snakemake benchmark file (%s); left out", path, exc)
            continue
        rss = float(pd.to_numeric(df["max_rss"], errors="coerce").mean()) if "max_rss" in df else math.nan
        rel = path.relative_to(root)
        rows.append(dict(job=str(rel.with_suffix("")), stage=stage_of(rel), seconds=seconds,
                         max_rss_mb=rss))
    return pd.DataFrame(rows, columns=["job", "stage", "seconds", "max_rss_mb"])


def stage_of(rel: Path) -> str:
    """The stage a benchmark file belongs to: teacher/student training, or the file's name."""
    name = rel.stem
    if name in (TEACHER, TEACHER_VC):
        return f"train {name}"
    method = method_of_run(name)
    if method is not None:
        return "train ablations" if method in ABLATIONS else "train students"
    return name


def benchmark_summary(bench: pd.DataFrame) -> pd.DataFrame:
    if bench.empty:
        return pd.DataFrame(columns=["stage", "jobs", "total [s]", "mean [s]", "max [s]"])
    g = bench.groupby("stage", sort=False)["seconds"]
    out = pd.DataFrame({"jobs": g.count(), "total [s]": g.sum(), "mean [s]": g.mean(),
                        "max [s]": g.max()}).reset_index()
    total = pd.DataFrame([{"stage": "all stages (sum of job times)", "jobs": len(bench),
                           "total [s]": bench["seconds"].sum(), "mean [s]": bench["seconds"].mean(),
                           "max [s]": bench["seconds"].max()}])
    out = pd.concat([out, total], ignore_index=True)
    for c in ("total [s]", "mean [s]", "max [s]"):
        out[c] = out[c].map(lambda v: f"{v:.1f}")
    return out


