"""Entry of the `table3` rule: the work is in vicokd.report."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.report import table3_main
from vicokd.runner import run_script

run_script(snakemake, table3_main)  # noqa: F821 (snakemake is injected by the script directive)
