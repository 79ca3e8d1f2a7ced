from vicokd.runner import run_script
from vicokd.masks import main_masks

run_script(snakemake, main_masks)  # noqa: F821  (injected by Snakemake)
