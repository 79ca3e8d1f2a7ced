from vicokd.runner import run_script
from vicokd.masks import main_quality

run_script(snakemake, main_quality)  # noqa: F821  (injected by Snakemake)
