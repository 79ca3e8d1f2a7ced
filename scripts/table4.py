# Snakemake glue for rule table4: the work is in vicokd.report.
from vicokd.runner import run_script
from vicokd.report import table4_main

run_script(snakemake, table4_main)  # noqa: F821 (snakemake is injected by the script directive)
