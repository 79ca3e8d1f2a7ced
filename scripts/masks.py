"""Entry of the `masks` rule: the work is in vicokd.masks."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.masks import main_masks
from vicokd.runner import run_script

run_script(snakemake, main_masks)  # noqa: F821 (snakemake is injected by the script directive)
