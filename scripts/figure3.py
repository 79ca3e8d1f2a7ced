"""Entry of the `figure3` rule: the work is in vicokd.figures."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.figures import figure3_main
from vicokd.runner import run_script

run_script(snakemake, figure3_main)  # noqa: F821 (snakemake is injected by the script directive)
