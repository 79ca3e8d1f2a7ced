from vicokd.runner import run_script
from vicokd.teacher import main

run_script(snakemake, main)  # noqa: F821 - injected by Snakemake
