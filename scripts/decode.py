"""Entry of the `decode` rule: the work is in vicokd.frames."""
from vicokd.frames import main
from vicokd.runner import run_script

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
