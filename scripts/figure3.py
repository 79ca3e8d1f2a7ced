# Snakemake glue for rule figure3: the work is in vicokd.figures.
from vicokd.runner import run_script
from vicokd.figures import figure3_main

run_script(snakemake, figure3_main)  # noqa: F821 (snakemake is injected by the script directive)
