# vicokd: View-aware Cross-modal Knowledge Distillation, from recordings to the paper's tables.
# Run `snakemake --cores 8 results/table1.csv`; see the README for everything else.

import os
import sys

from snakemake.utils import min_version

min_version("8.0")


configfile: "config.yaml"


# Every key checked against workflow/schemas/config.schema.yaml (unknown keys and wrong values
# stop here, in one line), and its defaults filled in: vicokd.config, from this checkout's src/.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from vicokd.config import check_config
from vicokd.errors import VicokdError

try:
    cli_files = list(workflow.overwrite_configfiles or [])  # they win over configfile: above
    check_config(config, [f for f in workflow.configfiles if f not in cli_files] + cli_files,
                 command_line=dict(workflow.config_settings.config or {}))  # --config: wins over all
except VicokdError as exc:
    sys.exit(f"vicokd: error: {exc}")


# Run before the first job (not in a dry run): a results/ or logs/ that cannot be written (a
# read-only mount, no permission) stops the run in one line, rather than in Snakemake's
# traceback when the first job removes its old outputs.
onstart:
    from vicokd.storage import unwritable

    for folder in ("results", "logs", "benchmarks/results"):
        fault = unwritable(folder)
        if fault:
            sys.exit(f"vicokd: error: {folder}/: cannot be written: {fault}")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/study.smk"


rule all:
    input:
        all_targets(),
    default_target: True
