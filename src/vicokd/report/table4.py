"""The `table4` rule: the paper's Table 4, the ablations of ViCoKD with MultiASL, from the runs'
metrics: a long CSV and the paper's layout in Markdown."""

from __future__ import annotations

from ..experiments import table4_runs
from .layout import table4_wide
from .tables import load_metrics, table4_long, write_table_files


def main(snakemake) -> None:
    """Entry of the `table4` rule."""
    exp, seed = dict(snakemake.params.experiments), int(snakemake.params.seed)
    metrics = load_metrics(snakemake.input.metrics)
    long = table4_long(metrics, exp["homes"], exp["ablations"], exp["supervision"], seed)
    write_table_files(snakemake, "table4", long, table4_wide(long, exp["homes"], exp["ablations"], exp["supervision"]), metrics,
                      table4_runs(exp["homes"], exp["ablations"], exp["supervision"], seed))
