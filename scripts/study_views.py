"""Entry of the `study_views` rule: the work is in vicokd.study.views.main."""
import _bootstrap  # noqa: F401  (puts this checkout's src/ first on sys.path)
from vicokd.study.views import main
from vicokd.runner import run_script

run_script(snakemake, main)  # noqa: F821 (snakemake is injected by the script directive)
