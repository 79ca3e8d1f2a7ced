# Helpers shared by the rule files. Names say what they return.

import os

from snakemake.io import expand

# The run ids each table shows (plain Python, shared with the table code).
from vicokd.runs import figure3_runs, table1_runs, table2_runs, table3_runs, table4_runs

HOMES = config["experiments"]["homes"]
BACKBONES = config["experiments"]["backbones"]
METHODS = config["experiments"]["methods"]
ABLATIONS = config["experiments"]["ablations"]
SUPERVISIONS = config["experiments"]["supervision"]
SEEDS = config["experiments"]["seeds"]
IS_SYNTHETIC = config["dataset"]["format"] == "synthetic"
DATA_ROOT = config["dataset"]["root"]
# For --software-deployment-method conda (path relative to the rule files).
CONDA_ENV = "../../envs/vicokd.yaml"

# Method names contain hyphens (vicokd-nomask): the wildcards are constrained so that
# "{method}-{supervision}-seed{seed}" splits one way only.
wildcard_constraints:
    env="[^/]+",
    backbone="multitrans|multiasl|multitsf",
    method="|".join(["student", "logitkd", "modalkd", "dualkd", "cokd", "vicokd",
                     "vicokd-noconfw", "vicokd-nomask", "vicokd-kl", "vicokd-nofd", "vicokd-nold"]),
    supervision="frame|sequence",
    seed=r"\d+",


def annotation_path(env):
    """Path of the annotation file of one home."""
    try:
        rel = config["dataset"]["annotations"][env]
    except KeyError:
        raise ValueError(f"config.yaml: dataset.annotations has no entry for home '{env}'")
    return os.path.join(DATA_ROOT, rel)


def synthetic_home_dir(env):
    """Folder the generator writes one synthetic home to."""
    return os.path.join(DATA_ROOT, env)


def manifest_inputs(wildcards):
    """The annotation file and, for the synthetic homes, the generated videos it names."""
    inputs = {"annotations": annotation_path(wildcards.env)}
    if IS_SYNTHETIC:
        inputs["videos"] = os.path.join(synthetic_home_dir(wildcards.env), "videos")
    return inputs


def all_targets():
    """What `snakemake` with no target builds: the report, which needs every table and figure."""
    return ["results/report.html"]
