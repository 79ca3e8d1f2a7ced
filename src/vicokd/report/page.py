"""The `report` rule: results/report.html, every table and figure on one self-contained page
(figures embedded as base64 PNG, inline CSS, no script, no external resource), with the config
that made them, the run time of each stage, and the paper's published figures beside ours.
It reads the tables and figures the table and figure rules wrote (results/table*.csv, *.png);
it recomputes none of them.
Table 1 comes with its yardsticks: the random-score band (†), the linear probe's rows, each
model's share of the probe's headroom over random scores, and whether each difference from the
non-distilled student exceeds the spread over seeds that Table 2 measures."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Mapping

import pandas as pd
import yaml

from ..experiments import PAPER_ABLATIONS, run_id, student_run
from ..storage import atomic_path
from . import claims as cl
from . import layout as lay
from . import tables as tb
from .figure4_page import figure4_section, read_figure4
from .html_parts import html_figure, html_page, html_table
from .loss_terms import vc_share
from .readings import (SHARE_NOTES, SPREAD_NOTES, fmt_share, spread_table, spread_verdicts,
                       table1_cells)
from .runtimes import benchmark_summary, collect_benchmarks
from .study_page import read_study, study_section
from .notes import data_note, table_notes, yardstick_notes
from .yardsticks import table_bands

PAPER_LABEL = ("Published figures of the ViCoKD paper on MultiSensor-Home (3-run means, "
               "transcribed from the paper): reference only, not results of this workflow.")

# --- the paper's tables, laid out like ours -------------------------------------------------------

def paper_table2_wide(ref2: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for bb, g in ref2.groupby("backbone", sort=False):
        row = {"Backbone": lay.label(bb, lay.BACKBONE_LABELS), "Method": "ViCoKD"}
        for r in g.itertuples():
            row[f"{lay.label(r.home, lay.HOME_LABELS)} {lay.label(r.supervision, lay.SUPERVISION_LABELS)}"] = \
                f"{r.mean:.2f} ± {r.std:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def combine_cells(ours: pd.DataFrame, paper: pd.DataFrame, keys: int) -> pd.DataFrame:
    """Ours and the paper's cell by cell: 'ours' over 'paper: …' (first `keys` columns shared)."""
    out = ours.copy()
    for c in ours.columns[keys:]:
        out[c] = [f"{a}\npaper: {b}" for a, b in zip(ours[c], paper[c])]
    return out


BEST_EPOCH_NOTES = [
    "The authors' code keeps the epoch with the best test mAP (it has no validation set); these "
    "are those figures (metrics.json: best_epoch_map at best_epoch), so that published numbers "
    "can be compared like for like.",
    "Choosing the epoch on the test split itself makes them optimistic: the reported figures "
    "(Table 1 above) are the last epoch's."]


# --- the page -----------------------------------------------------------------------------------------

# The tables the page shows, as the table rules wrote them (results/*.csv), by key.
TABLE_KEYS = ("table1", "table1_frame", "table1_best_epoch", "table2", "table3", "table4")


def table_runs(tables: Mapping[str, pd.DataFrame], seeds) -> tuple[list[str], list[str]]:
    """Every run the tables show, and those of them without a value (missing), sorted."""
    t1, t2, t3, t4 = (tables[k] for k in ("table1", "table2", "table3", "table4"))
    shown = {r: math.isnan(v) for r, v in zip(t1["run"], t1["value"]) if r}
    shown |= {r: math.isnan(v) for r, v in zip(t4["run"], t4["value"])}
    for col, value in (("teacher_run", "teacher"), ("teacher_vc_run", "teacher_vc")):
        shown |= {r: math.isnan(v) for r, v in zip(t3[col], t3[value])}
    for r in t2.itertuples():
        gone = set(filter(None, r.missing_runs.split(";")))
        shown |= {run_id(r.home, r.backbone, student_run(r.method, r.supervision, k)): False
                  for k in seeds}
        shown |= dict.fromkeys(gone, True)
    return sorted(shown), sorted(r for r, missing in shown.items() if missing)


def loss_terms_section(long: pd.DataFrame | None, png: bytes | None) -> str:
    """How hard each loss term pulls (results/loss_terms.csv and .png), and view consistency's
    pull beside FD's and the supervision's."""
    if long is None or long.empty:
        return ""
    out = "<h2>How hard each loss term pulls</h2>\n"
    if png:
        out += html_figure(png, "loss-terms", "Each weighted loss term's gradient norm on the "
                           "student's first trained layer, per epoch (first batch of each epoch), "
                           "MultiASL, ViCoKD and the learned-visibility variant; log scale.")
    share = vc_share(long)
    if not share.empty:
        share = pd.DataFrame({
            "Home": [lay.label(e, lay.HOME_LABELS) for e in share["home"]],
            "Supervision": [lay.label(s, lay.SUPERVISION_LABELS) for s in share["supervision"]],
            "Method": [lay.label(m, lay.METHOD_LABELS) for m in share["method"]],
            "VC / FD": share["vc_over_fd"].map(lambda v: f"{v:.2g}"),
            "VC / supervision": share["vc_over_supervision"].map(lambda v: f"{v:.2g}")})
        out += html_table(share, "vc-pull", "View consistency's pull on the first layer, over "
                          "FD's and over the supervision's (ratios of the mean gradient norms)",
                          ["From every epoch's first batch (curve.csv, grad_first_<term>); the "
                           "weights are the config's. results/loss_terms.csv has every term of "
                           "every method."])
    return out


def build_report(tables: Mapping[str, pd.DataFrame], figures: Mapping[str, bytes],
                 reference: pd.DataFrame, experiments: Mapping, data_format: str, seed: int,
                 config_sections: Mapping, bench: pd.DataFrame,
                 figure4: Mapping | None = None, study: Mapping | None = None) -> str:
    """The whole page as a string. `tables`: TABLE_KEYS -> the long table (tables.read_table);
    `figures`: 'figure3' and optionally 'figure3_frame' PNGs; `figure4`:
    figure4_page.read_figure4; `study`: study_page.read_study, when the config has a study."""
    exp = experiments
    homes, bbs, methods = exp["homes"], exp["backbones"], exp["methods"]
    sups, seeds, ablations = exp["supervision"], exp["seeds"], exp["ablations"]
    t1args = (homes, bbs, methods, sups)
    t1, t1f, t1b, t2, t3, t4 = (tables[k] for k in TABLE_KEYS)

    paper_metrics = cl.reference_metrics(reference, seed)
    p1 = tb.table1_long(paper_metrics, *t1args, seed=seed)
    p2 = cl.reference_table2_long(reference)
    p3 = tb.table3_long(paper_metrics, homes, bbs)
    papers_ablations = [m for m in ablations if m in PAPER_ABLATIONS]
    p4 = tb.table4_long(paper_metrics, homes, papers_ablations, sups, seed)

    ours_claims = cl.claims(t1, t2, t3, t4)
    paper_claims = cl.claims(p1, p2, p3, p4)
    claims_df = pd.DataFrame({
        "Claim of the paper": ours_claims["claim"],
        "Paper (MultiSensor-Home)": [cl.fmt_claim(h, t) for h, t in
                                     zip(paper_claims["holds"], paper_claims["tested"])],
        "This run": [cl.fmt_claim(h, t) for h, t in zip(ours_claims["holds"], ours_claims["tested"])],
    })

    all_runs, missing = table_runs(tables, seeds)
    yardsticks = {"map": table_bands(t1, homes), "frame_map": table_bands(t1f, homes)}
    probe_rows = bool(t1["reference"].astype(bool).any())

    def notes(table, long, key="map"):
        """A table's notes: its missing runs are the cells of `long` with no value."""
        if "run" in long.columns:
            gone = sorted(set(long.loc[long["value"].isna() & (long["run"] != ""), "run"]))
        elif "missing_runs" in long.columns:
            gone = sorted(r for v in long["missing_runs"] for r in v.split(";") if r)
        else:
            gone = sorted(set(long.loc[long["teacher"].isna(), "teacher_run"])
                          | set(long.loc[long["teacher_vc"].isna(), "teacher_vc_run"]))
        return (table_notes(table, exp, data_format, seed, gone, key)
                + yardstick_notes(*yardsticks[key], key, probe_rows and table == "table1"))

    bands = {key: yardsticks[key][0] for key in ("map", "frame_map")}
    band_lines = [f"Random scores, mean (95 % band) [%], {what}: "
                  + ", ".join(f"{lay.label(env, lay.HOME_LABELS)} {lay.fmt_band(b)}"
                              for env, b in bands[key].items()) + f"; {lay.IN_BAND} marks a value inside it."
                  for key, what in (("map", "sequence level"), ("frame_map", "frame level"))
                  if bands[key]]
    t1_cols = (homes, bbs, sups)

    body = ["<h1>ViCoKD reproduction: tables and figures</h1>\n"]
    banner = [data_note(data_format),
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
    w1 = lay.table1_wide(t1, *t1_cols)
    body.append(html_table(w1, "table1", lay.TITLES["table1"], notes("table1", t1)))
    body.append(html_table(combine_cells(lay.table1_wide(t1[~t1["reference"]], *t1_cols),
                                         lay.table1_wide(p1, *t1_cols), 2),
                           "table1-vs-paper", "Table 1, ours (top of each cell) beside the paper's "
                           "published figure (below)", [PAPER_LABEL]))
    body.append(html_table(lay.table1_wide(t1f, *t1_cols), "table1-frame",
                           lay.TITLES["table1_frame"],
                           notes("table1", t1f, "frame_map")
                           + ["Frame-level mAP scores every test frame, so it is far less noisy "
                              "than the sequence-level mAP on a small test split."]))
    body.append(html_table(lay.table1_wide(t1b, *t1_cols), "table1-best-epoch",
                           lay.TITLES["table1_best_epoch"], BEST_EPOCH_NOTES))
    body.append(html_table(lay.table1_wide(p1, *t1_cols), "paper-table1",
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
    body.append(html_table(lay.table2_wide(t2, homes, bbs, sups), "table2", lay.TITLES["table2"],
                           notes("table2", t2)))
    body.append(html_table(paper_table2_wide(p2), "paper-table2",
                           "The paper's Table 2 (published, ViCoKD only)", [PAPER_LABEL], paper=True))

    body.append("<h2>Table 3</h2>\n")
    body.append(html_table(lay.table3_wide(t3, homes, bbs), "table3", lay.TITLES["table3"],
                           notes("table3", t3)))
    body.append(html_table(lay.table3_wide(p3, homes, bbs), "paper-table3",
                           "The paper's Table 3 (published)", [PAPER_LABEL], paper=True))

    body.append("<h2>Table 4</h2>\n")
    body.append(html_table(lay.table4_wide(t4, homes, ablations, sups), "table4", lay.TITLES["table4"],
                           notes("table4", t4)))
    body.append(html_table(lay.table4_wide(p4, homes, papers_ablations, sups), "paper-table4",
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

    body.append(loss_terms_section(tables.get("loss_terms"), figures.get("loss_terms")))
    body.append(study_section(study))

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
    inp = snakemake.input
    tables = {key: tb.read_table(getattr(inp, key)) for key in (*TABLE_KEYS, "loss_terms")}
    figures = {key: Path(getattr(inp, name)).read_bytes() for key, name in (
        ("figure3", "figure3"), ("figure3_frame", "figure3_frame"),
        ("loss_terms", "loss_terms_png"))}
    figure4 = read_figure4(inp.figure4, inp.figure4_json, inp.timelines)
    study = read_study(inp.study_csv, inp.study_png) if hasattr(inp, "study_csv") else None
    page = build_report(tables, figures, cl.read_reference(inp.reference),
                        _plain(dict(p.experiments)), p.data_format, int(p.seed),
                        _plain(dict(p.config_sections)), collect_benchmarks(p.benchmarks),
                        figure4, study)
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(page, encoding="utf-8")
