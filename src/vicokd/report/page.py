"""The `report` rule: results/report.html, every table and figure on one self-contained page
(figures embedded as base64 PNG, inline CSS, no script, no external resource), with the config
that made them, the run time of each stage, and the paper's published figures beside ours.
Table 1 comes with its yardsticks: the random-score band (†), the linear probe's rows, each
model's share of the probe's headroom over random scores, and whether each difference from the
non-distilled student exceeds the spread over seeds that Table 2 measures."""

from __future__ import annotations

import base64
import html
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import yaml

from ..experiments import (ABLATIONS, TEACHER, TEACHER_VC, method_of_run, table1_runs,
                           table2_runs, table3_runs, table4_runs)
from ..storage import atomic_path
from . import claims as cl
from . import tables as tb
from .figure4_page import figure4_section, read_figure4

log = logging.getLogger("vicokd")

PAPER_LABEL = ("Published figures of the ViCoKD paper on MultiSensor-Home (3-run means, "
               "transcribed from the paper): reference only, not results of this workflow.")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1250px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#eef}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
.notes{font-size:.85em;color:#444;margin:.2em 0 1em 1.2em}
.paper{background:#fff8e6}.paper caption{color:#8a5a00}
.banner{background:#fff3f3;border:1px solid #e0a0a0;padding:.6em 1em}
.missing{color:#b00000}
figure{margin:1em 0}figcaption{font-size:.9em;color:#444}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}
"""


# --- HTML pieces ----------------------------------------------------------------------------------

def _cell_html(value) -> str:
    """Escape a cell; '**x**' (best marks) becomes bold and a newline a line break."""
    text = html.escape(str(value))
    parts = text.split("**")
    text = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    if tb.MISSING in text:
        text = text.replace(tb.MISSING, f'<span class="missing">{tb.MISSING}</span>')
    return text.replace("\n", "<br>")


def html_table(df: pd.DataFrame, table_id: str, caption: str, notes: Sequence[str] = (),
               paper: bool = False) -> str:
    cls = ' class="paper"' if paper else ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell_html(x)}</td>" for x in row) + "</tr>\n"
                   for row in df.itertuples(index=False))
    out = (f'<table id="{html.escape(table_id)}"{cls}><caption>{html.escape(caption)}</caption>\n'
           f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>\n")
    if notes:
        out += '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>\n"
    return out


def html_figure(png: bytes, figure_id: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{html.escape(figure_id)}"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}" style="max-width:100%">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def html_page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "".join(body) + "</body>\n</html>\n")


# --- run times -------------------------------------------------------------------------------------

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


# --- the paper's tables, laid out like ours -------------------------------------------------------

def paper_table2_wide(ref2: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for bb, g in ref2.groupby("backbone", sort=False):
        row = {"Backbone": tb.label(bb, tb.BACKBONE_LABELS), "Method": "ViCoKD"}
        for r in g.itertuples():
            row[f"{tb.label(r.home, tb.HOME_LABELS)} {tb.label(r.supervision, tb.SUPERVISION_LABELS)}"] = \
                f"{r.mean:.2f} ± {r.std:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def combine_cells(ours: pd.DataFrame, paper: pd.DataFrame, keys: int) -> pd.DataFrame:
    """Ours and the paper's cell by cell: 'ours' over 'paper: …' (first `keys` columns shared)."""
    out = ours.copy()
    for c in ours.columns[keys:]:
        out[c] = [f"{a}\npaper: {b}" for a, b in zip(ours[c], paper[c])]
    return out


# --- Table 1 against its yardsticks -------------------------------------------------------------------

def table1_cells(long: pd.DataFrame, homes, backbones, supervisions, text) -> pd.DataFrame:
    """Table 1's layout over the model rows of `long` (no probe rows), each cell `text(row)`."""
    models = long[~long["reference"]]
    index = models.set_index(["home", "method", "backbone", "supervision"])
    rows = []
    for env in homes:
        for m in dict.fromkeys(models.loc[models["home"] == env, "method"]):
            row = {"Home": tb.label(env, tb.HOME_LABELS), "Method": tb.label(m, tb.METHOD_LABELS)}
            for bb in backbones:
                for sup in supervisions:
                    row[tb.column_label(bb, sup)] = text(index.loc[(env, m, bb, sup)])
            rows.append(row)
    return pd.DataFrame(rows)


def fmt_share(cell) -> str:
    return "n/a" if math.isnan(cell["share"]) else f"{cell['share']:.2f}"


def seed_spread(t2: pd.DataFrame, env: str, backbone: str, supervision: str, method: str) -> float:
    """The spread a Table 1 difference from the student is judged against: the student's
    standard deviation over Table 2's seeds in that column plus the method's own (Table 2 has
    it for ViCoKD; for the other methods ViCoKD's stands in), as Table 2 judges its gains."""
    def std(m):
        hit = t2[(t2["home"] == env) & (t2["backbone"] == backbone)
                 & (t2["supervision"] == supervision) & (t2["method"] == m)]
        return float(hit["std"].iloc[0]) if len(hit) else math.nan
    own = method if method in set(t2["method"]) else "vicokd"
    return std("student") + std(own)


def spread_verdicts(long: pd.DataFrame, t2: pd.DataFrame) -> pd.DataFrame:
    """Per distilled-student cell of Table 1: its difference from the student, the seed spread,
    and whether |difference| exceeds it (None when either is unknown)."""
    rows = []
    for r in long[long["diff"].notna() & ~long["reference"]].itertuples():
        spread = seed_spread(t2, r.home, r.backbone, r.supervision, r.method)
        rows.append(dict(home=r.home, method=r.method, backbone=r.backbone,
                         supervision=r.supervision, diff=r.diff, spread=spread,
                         exceeds=None if math.isnan(spread) else bool(abs(r.diff) > spread)))
    return pd.DataFrame(rows, columns=["home", "method", "backbone", "supervision", "diff",
                                       "spread", "exceeds"])


def spread_table(long: pd.DataFrame, verdicts: pd.DataFrame, homes, backbones, supervisions
                 ) -> pd.DataFrame:
    index = verdicts.set_index(["home", "method", "backbone", "supervision"])

    def text(cell) -> str:
        key = cell.name
        if key not in index.index:
            return ""                                   # teacher, student: no difference
        v = index.loc[key]
        if v["exceeds"] is None:
            return f"{tb.fmt_diff(v['diff'])} (spread n/a)"
        return f"{tb.fmt_diff(v['diff'])} ({'exceeds' if v['exceeds'] else 'within'} {v['spread']:.2f})"
    students = long[~long["method"].isin(["teacher", "student"])]
    return table1_cells(students, homes, backbones, supervisions, text)


SHARE_NOTES = [
    "Each model's share of the matching linear probe's headroom over random scores: "
    "(model − random) / (probe − random), the teacher against the audio+video probe, the students "
    "against the video probe, each over the random-score mean of its own test frames. 0 is "
    "chance, 1 is what the linear probe reads from the same inputs; n/a when the probe is not "
    "above random or a value is missing."]
SPREAD_NOTES = [
    "Each difference from the non-distilled student (Table 1, seed 0) against the spread over "
    "seeds that Table 2 measures in the same column: the student's standard deviation over the "
    "seeds plus the method's own, where Table 2 has it (ViCoKD); for the other methods ViCoKD's "
    "stands in for their own. 'exceeds' when the size of the difference is larger than that "
    "sum, as Table 2 judges ViCoKD's gain; 'spread n/a' with fewer than 2 seeds."]


BEST_EPOCH_NOTES = [
    "The authors' code keeps the epoch with the best test mAP (it has no validation set); these "
    "are those figures (metrics.json: best_epoch_map at best_epoch), so that published numbers "
    "can be compared like for like.",
    "Choosing the epoch on the test split itself makes them optimistic: the reported figures "
    "(Table 1 above) are the last epoch's."]


# --- the page -----------------------------------------------------------------------------------------

def build_report(metrics: Mapping, figures: Mapping[str, bytes], reference: pd.DataFrame,
                 experiments: Mapping, data_format: str, seed: int, config_sections: Mapping,
                 bench: pd.DataFrame, probes: Mapping | None = None,
                 figure4: Mapping | None = None) -> str:
    """The whole page as a string. `figures`: 'figure3' and optionally 'figure3_frame' PNGs;
    `probes`: env -> probe.json content (tables.load_probes); `figure4`: figure4_page.read_figure4."""
    exp = experiments
    homes, bbs, methods = exp["homes"], exp["backbones"], exp["methods"]
    sups, seeds, ablations = exp["supervision"], exp["seeds"], exp["ablations"]
    t1args = (homes, bbs, methods, sups)

    probes = dict(probes or {})
    t1 = tb.table1_long(metrics, *t1args, seed=seed, probes=probes)
    t1f = tb.table1_long(metrics, *t1args, seed=seed, key="frame_map", probes=probes)
    t2 = tb.table2_long(metrics, homes, bbs, sups, seeds)
    t3 = tb.table3_long(metrics, homes, bbs)
    t4 = tb.table4_long(metrics, homes, ablations, sups, seed)

    paper_metrics = cl.reference_metrics(reference, seed)
    p1 = tb.table1_long(paper_metrics, *t1args, seed=seed)
    p2 = cl.reference_table2_long(reference)
    p3 = tb.table3_long(paper_metrics, homes, bbs)
    p4 = tb.table4_long(paper_metrics, homes, ablations, sups, seed)

    ours_claims = cl.claims(t1, t2, t3, t4)
    paper_claims = cl.claims(p1, p2, p3, p4)
    claims_df = pd.DataFrame({
        "Claim of the paper": ours_claims["claim"],
        "Paper (MultiSensor-Home)": [cl.fmt_claim(h, t) for h, t in
                                     zip(paper_claims["holds"], paper_claims["tested"])],
        "This run": [cl.fmt_claim(h, t) for h, t in zip(ours_claims["holds"], ours_claims["tested"])],
    })

    all_runs = sorted(set(table1_runs(*t1args, seed) + table2_runs(homes, bbs, sups, seeds)
                          + table3_runs(homes, bbs) + table4_runs(homes, ablations, sups, seed)))
    missing = tb.missing_runs(metrics, all_runs)

    def notes(table, key="map", runs=()):
        return (tb.table_notes(table, exp, data_format, seed, tb.missing_runs(metrics, runs, key), key)
                + tb.yardstick_notes(metrics, probes if table == "table1" else None, homes, key))

    bands = {key: tb.home_bands(metrics, probes, homes, key) for key in ("map", "frame_map")}
    band_lines = [f"Random scores, mean (95 % band) [%], {what}: "
                  + ", ".join(f"{tb.label(env, tb.HOME_LABELS)} {tb.fmt_band(b)}"
                              for env, b in bands[key].items()) + f"; {tb.IN_BAND} marks a value inside it."
                  for key, what in (("map", "sequence level"), ("frame_map", "frame level"))
                  if bands[key]]
    t1_cols = (homes, bbs, sups)

    body = [f"<h1>ViCoKD reproduction: tables and figures</h1>\n"]
    banner = [tb.data_note(data_format),
              f"Table 1, 3 and 4 and Figure 3: seed {seed} for every run (the paper shows 3-run means); "
              f"Table 2: seeds {', '.join(map(str, seeds))}.",
              f"Homes: {', '.join(homes)}; backbones: {', '.join(bbs)}.",
              f"Runs expected: {len(all_runs)}; missing: {len(missing)}.", *band_lines]
    body.append('<div class="banner">' + "<br>".join(html.escape(b) for b in banner) + "</div>\n")

    body.append("<h2>Which of the paper's claims hold here</h2>\n")
    body.append(html_table(claims_df, "claims", "Claims checked on the paper's figures and on ours "
                           "(cells where the claim holds / cells with data)",
                           ["Each count is over the cells of the named table that have data on both "
                            "sides of the comparison; a missing run is left out, not counted as a failure.",
                            "The paper's Table 2 gives no spread for the student, and its Table 1 "
                            "cells are 3-run means while ours are single runs."]))

    body.append("<h2>Table 1</h2>\n")
    w1 = tb.table1_wide(t1, *t1_cols)
    body.append(html_table(w1, "table1", tb.TITLES["table1"],
                           notes("table1", runs=table1_runs(*t1args, seed))))
    body.append(html_table(combine_cells(tb.table1_wide(t1[~t1["reference"]], *t1_cols),
                                         tb.table1_wide(p1, *t1_cols), 2),
                           "table1-vs-paper", "Table 1, ours (top of each cell) beside the paper's "
                           "published figure (below)", [PAPER_LABEL]))
    body.append(html_table(tb.table1_wide(t1f, *t1_cols), "table1-frame",
                           tb.TITLES["table1_frame"],
                           notes("table1", "frame_map", table1_runs(*t1args, seed))
                           + ["Frame-level mAP scores every test frame, so it is far less noisy "
                              "than the sequence-level mAP on a small test split."]))
    t1b = tb.table1_long(metrics, *t1args, seed=seed, key="best_epoch_map")
    body.append(html_table(tb.table1_wide(t1b, *t1_cols), "table1-best-epoch",
                           tb.TITLES["table1_best_epoch"], BEST_EPOCH_NOTES))
    body.append(html_table(tb.table1_wide(p1, *t1_cols), "paper-table1",
                           "The paper's Table 1 (published)", [PAPER_LABEL], paper=True))

    body.append("<h3>How much of what the inputs hold each model learned</h3>\n")
    for long, tid, what in ((t1, "table1-share", "mAP"), (t1f, "table1-frame-share", "frame-level mAP")):
        body.append(html_table(table1_cells(long, *t1_cols, fmt_share), tid,
                               f"Share of the linear probe's headroom over random scores ({what})",
                               SHARE_NOTES))
    verdicts = spread_verdicts(t1, t2)
    judged = verdicts["exceeds"].dropna()
    body.append(html_table(spread_table(t1, verdicts, *t1_cols), "table1-spread",
                           "Differences from the non-distilled student against the spread over seeds",
                           SPREAD_NOTES + [f"{int(judged.sum())} of {len(judged)} differences "
                                           "exceed the spread."]))

    body.append("<h2>Table 2</h2>\n")
    body.append(html_table(tb.table2_wide(t2, homes, bbs, sups), "table2", tb.TITLES["table2"],
                           notes("table2", runs=table2_runs(homes, bbs, sups, seeds))))
    body.append(html_table(paper_table2_wide(p2), "paper-table2",
                           "The paper's Table 2 (published, ViCoKD only)", [PAPER_LABEL], paper=True))

    body.append("<h2>Table 3</h2>\n")
    body.append(html_table(tb.table3_wide(t3, homes, bbs), "table3", tb.TITLES["table3"],
                           notes("table3", runs=table3_runs(homes, bbs))))
    body.append(html_table(tb.table3_wide(p3, homes, bbs), "paper-table3",
                           "The paper's Table 3 (published)", [PAPER_LABEL], paper=True))

    body.append("<h2>Table 4</h2>\n")
    body.append(html_table(tb.table4_wide(t4, homes, ablations, sups), "table4", tb.TITLES["table4"],
                           notes("table4", runs=table4_runs(homes, ablations, sups, seed))))
    body.append(html_table(tb.table4_wide(p4, homes, ablations, sups), "paper-table4",
                           "The paper's Table 4 (published)", [PAPER_LABEL], paper=True))

    body.append("<h2>Figure 3</h2>\n")
    if "figure3" in figures:
        body.append(html_figure(figures["figure3"], "figure3",
                                "Figure 3. Test mAP [%] per epoch with the MultiASL backbone: "
                                "non-distilled student, LogitKD, CoKD, ViCoKD. Grey: the band of "
                                "random scores on the test split (a curve inside it is at chance); "
                                "dotted: what the linear video probe reads."))
    if "figure3_frame" in figures:
        body.append(html_figure(figures["figure3_frame"], "figure3-frame",
                                "Figure 3 with frame-level test mAP [%] (less noisy)."))
    body.append(figure4_section(figure4))

    body.append("<h2>Run time per stage</h2>\n")
    body.append(html_table(benchmark_summary(bench), "runtimes-summary",
                           "Wall time per stage, from the Snakemake benchmark files",
                           ["Sum of job times; jobs that ran in parallel overlap, so the wall time "
                            "of the whole workflow is shorter. Stages without a benchmark: directive "
                            "(light local rules) are not listed."]))
    if not bench.empty:
        jobs = bench.assign(seconds=bench["seconds"].map(lambda v: f"{v:.1f}"),
                            max_rss_mb=bench["max_rss_mb"].map(
                                lambda v: "" if math.isnan(v) else f"{v:.0f}"))
        body.append("<details><summary>Every benchmarked job</summary>\n"
                    + html_table(jobs.rename(columns={"seconds": "wall [s]", "max_rss_mb": "max RSS [MB]"}),
                                 "runtimes", "Benchmarked jobs") + "</details>\n")

    body.append("<h2>The config that made these results</h2>\n")
    body.append("<pre id=\"config\">" + html.escape(yaml.safe_dump(
        {k: v for k, v in config_sections.items()}, sort_keys=False, default_flow_style=None))
        + "</pre>\n")
    return html_page("ViCoKD reproduction report", body)


def _plain(obj):
    """Snakemake params are Namespaces/lists of its own types: make them plain for YAML."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def main(snakemake) -> None:
    """Entry of the `report` rule."""
    p = snakemake.params
    exp = _plain(dict(p.experiments))
    metrics = tb.load_metrics(snakemake.input.metrics)
    probes = tb.load_probes(snakemake.input.probes)
    reference = cl.read_reference(snakemake.input.reference)
    figures = {"figure3": Path(snakemake.input.figure3).read_bytes(),
               "figure3_frame": Path(snakemake.input.figure3_frame).read_bytes()}
    figure4 = read_figure4(snakemake.input.figure4, snakemake.input.figure4_json,
                           snakemake.input.timelines)
    page = build_report(metrics, figures, reference, exp, p.data_format, int(p.seed),
                        _plain(dict(p.config_sections)), collect_benchmarks(p.benchmarks), probes,
                        figure4)
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(page, encoding="utf-8")
