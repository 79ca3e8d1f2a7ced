"""Entry of the `split` rule: the work is in vicokd.split."""
from vicokd.split import main
from vicokd.runner import run_script

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
