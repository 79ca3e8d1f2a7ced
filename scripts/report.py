# Snakemake glue for rule report: the work is in vicokd.html_report.
from vicokd.runner import run_script
from vicokd.html_report import main

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
