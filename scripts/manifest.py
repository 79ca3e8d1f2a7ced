"""Entry of the `manifest` rule: the work is in vicokd.manifest."""
from vicokd.manifest import main
from vicokd.runner import run_script

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
