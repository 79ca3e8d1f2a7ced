# Helpers shared by the rule files. Names say what they return.

import os
import sys

from snakemake.io import expand

# The run ids each table shows come from the library (plain Python, shared with the table
# code), read from this checkout's src/ as the rule scripts do (scripts/_bootstrap.py).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from vicokd.runs import figure3_runs, table1_runs, table2_runs, table3_runs, table4_runs
from vicokd.distill import get_method
from vicokd.models import BACKBONES_WITH_MASKS

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


# Scheduling: the data stages, the detector and the masks before the training jobs.
DATA_PRIORITY = 10


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


# --- masks (workflow/rules/masks.smk)

DETECTOR_WEIGHTS = "results/detector/yolov10.pt"


def masks_inputs(wildcards):
    """The frames of one home and the YOLO weights the masks use: the configured file, or the
    bootstrap detector's. A configured file that does not exist (or a bootstrap detector without
    the synthetic homes' true boxes) is left out, so that the job says so in one line."""
    inputs = {"frames": f"results/{wildcards.env}/frames.h5"}
    weights = config["masks"]["weights"]
    if weights:
        if os.path.exists(weights):
            inputs["weights"] = weights
    elif IS_SYNTHETIC:
        inputs["weights"] = DETECTOR_WEIGHTS
    return inputs


def true_boxes_path(env):
    """The generator's true person boxes of one synthetic home."""
    return os.path.join(synthetic_home_dir(env), "boxes.h5")


# --- training (workflow/rules/train.smk)


def training_gpus():
    """1 when the config puts training on a GPU (model.device: cuda...), else 0; with
    `--resources gpu=1` that keeps two training jobs off one GPU."""
    return 1 if str(config["model"].get("device", "auto")).startswith("cuda") else 0


def masks_input(env, backbone, method=None):
    """{"masks": masks.h5} for the runs that read the human masks (MultiTSF's presence head,
    view consistency restricted to seen frames), else {}: the other runs need not wait for
    the detector, so they train while it does."""
    if backbone in BACKBONES_WITH_MASKS or (method is not None and get_method(method).needs_masks):
        return {"masks": f"results/{env}/masks.h5"}
    return {}


def teacher_inputs(wildcards):
    """Data of one home, with the masks only when the backbone reads them."""
    env = wildcards.env
    inputs = {"frames": f"results/{env}/frames.h5", "audio": f"results/{env}/audio.h5",
              "labels": f"results/{env}/labels.h5", "split": f"results/{env}/split.json"}
    return inputs | masks_input(env, wildcards.backbone)


# --- students (workflow/rules/train.smk)


def student_inputs(wildcards):
    """Data of one home; the masks when the backbone or method reads them; audio.h5 and the
    teacher's model.pt when the method distills."""
    env = wildcards.env
    inputs = {"frames": f"results/{env}/frames.h5", "labels": f"results/{env}/labels.h5",
              "split": f"results/{env}/split.json"}
    inputs |= masks_input(env, wildcards.backbone, wildcards.method)
    if get_method(wildcards.method).needs_teacher:
        inputs["audio"] = f"results/{env}/audio.h5"
        inputs["teacher"] = f"results/{env}/{wildcards.backbone}/teacher/model.pt"
    return inputs


# Table 1, 3, 4 and Figure 3 use one seed for every run (the paper's Table 1 shows 3-run means).
TABLE_SEED = 0 if 0 in SEEDS else SEEDS[0]
# The paper's published tables (reference data, never our results), read from the repository.
PAPER_REFERENCE = os.path.join(workflow.basedir, "workflow", "reference", "paper_multisensor_home.csv")


def run_files(runs, name="metrics.json"):
    """results/{run id}/{name} for run ids "{env}/{backbone}/{run}"."""
    return [f"results/{r}/{name}" for r in runs]


def table1_run_ids():
    return table1_runs(HOMES, BACKBONES, METHODS, SUPERVISIONS, TABLE_SEED)


def table2_run_ids():
    return table2_runs(HOMES, BACKBONES, SUPERVISIONS, SEEDS)


def table3_run_ids():
    return table3_runs(HOMES, BACKBONES)


def table4_run_ids():
    return table4_runs(HOMES, ABLATIONS, SUPERVISIONS, TABLE_SEED)


def report_run_ids():
    """Every run any table shows, once."""
    return sorted(set(table1_run_ids() + table2_run_ids() + table3_run_ids() + table4_run_ids()))
