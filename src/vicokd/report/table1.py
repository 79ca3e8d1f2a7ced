"""The `table1` rule: the paper's Table 1 from the runs' metrics and the homes' probes, in
sequence-level mAP, frame-level mAP and by the authors' protocol (each run's best test epoch):
a long CSV per metric (vicokd.report.tables.table1_tidy) and the paper's layout in Markdown."""

from __future__ import annotations

from ..experiments import table1_runs
from .layout import TITLES, table1_wide, write_markdown
from .notes import table_notes, yardstick_notes
from .tables import (load_metrics, load_probes, missing_runs, table1_long, table1_tidy,
                     without_frame_labels, write_table)
from .yardsticks import home_bands, home_prevalence

# The metrics Table 1 is written in: metrics.json key -> (csv output, markdown output, title).
METRICS = {"map": ("csv", "md", "table1"), "frame_map": ("frame_csv", "frame_md", "table1_frame"),
           "best_epoch_map": ("best_epoch_csv", None, "table1_best_epoch")}


def main(snakemake) -> None:
    """Entry of the `table1` rule."""
    p = snakemake.params
    exp, seed = dict(p.experiments), int(p.seed)
    metrics = load_metrics(snakemake.input.metrics)
    probes = load_probes(snakemake.input.probes)
    grid = (exp["homes"], exp["backbones"], exp["methods"], exp["supervision"])
    for key, (csv_out, md_out, title) in METRICS.items():
        long = table1_long(metrics, *grid, seed=seed, key=key, probes=probes)
        write_table(table1_tidy(long, key), getattr(snakemake.output, csv_out))
        if md_out is None:
            continue
        runs = table1_runs(*grid, seed)
        weak = without_frame_labels(metrics, runs) if key != "map" else []
        missing = [r for r in missing_runs(metrics, runs, key) if r not in weak]
        notes = table_notes("table1", exp, p.data_format, seed, missing, key=key)
        if weak:
            notes.append(f"No frame-level mAP for {len(weak)} run(s): their test split has no "
                         "sequence with frame labels (labels without times only).")
        notes += yardstick_notes(home_bands(metrics, probes, exp["homes"], key),
                                 home_prevalence(metrics, probes, exp["homes"], key), key,
                                 probe_rows=any(probes.values()))
        write_markdown(table1_wide(long, exp["homes"], exp["backbones"], exp["supervision"]),
                       getattr(snakemake.output, md_out), TITLES[title], notes)
