"""Entry of the `detector` rule: the work is in vicokd.detect."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.detect import main_detector
from vicokd.runner import run_script

run_script(snakemake, main_detector)  # noqa: F821 (snakemake is injected by the script directive)
