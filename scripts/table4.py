"""Entry of the `table4` rule: the work is in vicokd.report."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.report import table4_main
from vicokd.runner import run_script

run_script(snakemake, table4_main)  # noqa: F821 (snakemake is injected by the script directive)
