"""Entry of the `masks_quality` rule: the work is in vicokd.masks."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.masks import main_quality
from vicokd.runner import run_script

run_script(snakemake, main_quality)  # noqa: F821 (snakemake is injected by the script directive)
