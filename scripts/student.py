"""Entry of the `student` rule: the work is in vicokd.student."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.runner import run_script
from vicokd.student import main

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
