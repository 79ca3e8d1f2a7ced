# Snakemake glue for rule table3: the work is in vicokd.report.
from vicokd.runner import run_script
from vicokd.report import table3_main

run_script(snakemake, table3_main)  # noqa: F821 (snakemake is injected by the script directive)
