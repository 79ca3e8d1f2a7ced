# vicokd: View-aware Cross-modal Knowledge Distillation, from recordings to the paper's tables.
# Run `snakemake --cores 8 results/table1.csv`; see the README for everything else.

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
