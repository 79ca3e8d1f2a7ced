"""The `table2` rule: the paper's Table 2, ViCoKD (and the non-distilled student) over the seeds, from the runs'
metrics: a long CSV and the paper's layout in Markdown."""

from __future__ import annotations

from ..experiments import table2_runs
from .layout import table2_wide
from .tables import load_metrics, table2_long, write_table_files


def main(snakemake) -> None:
    """Entry of the `table2` rule."""
    exp = dict(snakemake.params.experiments)
    metrics = load_metrics(snakemake.input.metrics)
    long = table2_long(metrics, exp["homes"], exp["backbones"], exp["supervision"], exp["seeds"])
    write_table_files(snakemake, "table2", long, table2_wide(long, exp["homes"], exp["backbones"], exp["supervision"]), metrics,
                      table2_runs(exp["homes"], exp["backbones"], exp["supervision"], exp["seeds"]))
