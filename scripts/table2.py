# Snakemake glue for rule table2: the work is in vicokd.report.
from vicokd.runner import run_script
from vicokd.report import table2_main

run_script(snakemake, table2_main)  # noqa: F821 (snakemake is injected by the script directive)
