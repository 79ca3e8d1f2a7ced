# Snakemake glue for rule table1: the work is in vicokd.report.
from vicokd.runner import run_script
from vicokd.report import table1_main

run_script(snakemake, table1_main)  # noqa: F821 (snakemake is injected by the script directive)
