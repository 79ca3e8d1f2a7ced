from vicokd.runner import run_script
from vicokd.detect import main_detector

run_script(snakemake, main_detector)  # noqa: F821  (injected by Snakemake)
