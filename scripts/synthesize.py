"""Entry of the `synthesize` rule: the work is in vicokd.synthetic."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.runner import run_script
from vicokd.synthetic import main

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
