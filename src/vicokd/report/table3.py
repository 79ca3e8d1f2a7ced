"""The `table3` rule: the paper's Table 3, the teacher against the teacher trained with view consistency, from the runs'
metrics: a long CSV and the paper's layout in Markdown."""

from __future__ import annotations

from ..experiments import table3_runs
from .layout import table3_wide
from .tables import load_metrics, table3_long, write_table_files


def main(snakemake) -> None:
    """Entry of the `table3` rule."""
    exp = dict(snakemake.params.experiments)
    metrics = load_metrics(snakemake.input.metrics)
    long = table3_long(metrics, exp["homes"], exp["backbones"])
    write_table_files(snakemake, "table3", long, table3_wide(long, exp["homes"], exp["backbones"]), metrics,
                      table3_runs(exp["homes"], exp["backbones"]))
