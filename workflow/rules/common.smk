# Helpers shared by the rule files. Names say what they return.

import functools
import os
import sys

from snakemake.io import expand

# The grid (backbones, methods, which runs read what, the run ids each table shows) comes from
# vicokd.experiments, plain Python with no torch, read from this checkout's src/ as the rule
# scripts do (scripts/_bootstrap.py). Nothing else of the library is imported here, so that
# parsing the workflow (every dry run) stays quick.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from vicokd import experiments as grid
from vicokd.errors import VicokdError

try:
    grid.check_grid(config["experiments"])
except VicokdError as exc:
    sys.exit(f"vicokd: error: {exc}")
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

# Method names contain hyphens (vicokd-nomask): the wildcards are constrained so that a student
# run's name (grid.STUDENT_RUN) splits one way only.
wildcard_constraints:
    env="[^/]+",
    backbone="|".join(grid.BACKBONES),
    method="|".join(grid.METHODS),
    supervision="|".join(grid.SUPERVISIONS),
    seed=r"\d+",


# Scheduling: the data stages, the detector and the masks before the training jobs.
DATA_PRIORITY = 10


def home_root(env):
    """The folder one home's annotation files, split files and videos are relative to:
    dataset.root, or root/home_dirs[env] when the homes are folders of their own (as the
    published MultiSensor-Home1 and -Home2 are)."""
    return os.path.join(DATA_ROOT, (config["dataset"].get("home_dirs") or {}).get(env, ""))


def annotation_path(env):
    """Path of the annotation file of one home, or the list of its files."""
    try:
        rel = config["dataset"]["annotations"][env]
    except KeyError:
        if IS_SYNTHETIC and env in config["synthetic"]["homes"]:
            # a generated home of its own settings (the study homes): where synthesize writes
            return os.path.join(synthetic_home_dir(env), "annotations.json")
        raise ValueError(f"config.yaml: dataset.annotations has no entry for home '{env}'")
    if isinstance(rel, list):
        return [os.path.join(home_root(env), r) for r in rel]
    return os.path.join(home_root(env), rel)


def split_inputs(wildcards):
    """The manifest and labels of one home, and its official split files when split.files
    names them (relative to the home's folder, home_root); else the split is made by iterative stratification."""
    inputs = {"manifest": f"results/{wildcards.env}/manifest.json",
              "labels": f"results/{wildcards.env}/labels.h5"}
    files = (config["split"].get("files") or {}).get(wildcards.env)
    if files:
        inputs |= {f"{half}_file": os.path.join(home_root(wildcards.env), files[half])
                   for half in ("train", "test")}
    return inputs


def synthetic_home_dir(env):
    """Folder the generator writes one synthetic home to."""
    return os.path.join(DATA_ROOT, env)


def synthetic_settings(env):
    """The `synthetic:` section one home is generated from: the section without the other
    homes' blocks of `synthetic.homes`, so that adding a home (the study's) reruns no other."""
    section = {k: v for k, v in config["synthetic"].items() if k != "homes"}
    block = config["synthetic"]["homes"].get(env)
    return section | ({"homes": {env: block}} if block is not None else {})


@functools.lru_cache(maxsize=None)
def recordings(env):
    """The recordings the annotation file of a real home names (paths); none when the file
    cannot be read, so that the manifest job says why in one line."""
    from vicokd.data.annotations import read_annotation_files

    dataset = config["dataset"]
    try:
        sequences = read_annotation_files(annotation_path(env), dataset["format"],
                                          dataset["classes"], dataset["view_pattern"])
    except VicokdError:
        return ()
    return tuple(os.path.join(home_root(env), view) for seq in sequences for view in seq.views)


def manifest_inputs(wildcards):
    """The annotation file and the videos it names: the generated folder of a synthetic home,
    or the recordings of a real one (those that exist: the job names a missing one)."""
    inputs = {"annotations": annotation_path(wildcards.env)}
    if IS_SYNTHETIC:
        inputs["videos"] = os.path.join(synthetic_home_dir(wildcards.env), "videos")
    else:
        inputs["videos"] = [path for path in recordings(wildcards.env) if os.path.exists(path)]
    return inputs


def recording_stamps(wildcards):
    """{path: [bytes, modification time in ns]} of each recording of a real home (a param of
    `manifest`): a replaced or repaired file reruns the manifest and every stage after it, also
    when it was restored with an older modification time, which inputs alone would not see."""
    if IS_SYNTHETIC:
        return {}                       # the generator's own output: its job reruns them
    stamps = {}
    for path in recordings(wildcards.env):
        st = os.stat(path) if os.path.exists(path) else None
        stamps[path] = [st.st_size, st.st_mtime_ns] if st else None
    return stamps


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
    return 1 if str(config["model"]["device"]).startswith("cuda") else 0


def masks_input(env, backbone, method=None):
    """{"masks": masks.h5} for the runs that read the human masks (grid.reads_masks), else {}."""
    return {"masks": f"results/{env}/masks.h5"} if grid.reads_masks(backbone, method) else {}


# A student run's name, as wildcards.
STUDENT_RUN = grid.student_run("{method}", "{supervision}", "{seed}")


def run_wildcards(run):
    """The run id of run `run` (grid.TEACHER, grid.TEACHER_VC or STUDENT_RUN) of any home and
    backbone, as a wildcard pattern."""
    return grid.run_id("{env}", "{backbone}", run)


def run_outputs(run):
    """The four outputs of a training run (model, curve, metrics, predictions) by name."""
    return {key: grid.run_file(run_wildcards(run), name) for key, name in grid.RUN_OUTPUTS.items()}


def run_log(run):
    return f"logs/{run_wildcards(run)}.log"


def run_benchmark(run):
    return f"benchmarks/results/{run_wildcards(run)}.tsv"


# model.encoders: frozen -> the models train on the features stage's cached encoder outputs,
# which stand for frames.h5 and audio.h5; finetune -> on the decoded frames and fbank.
FROZEN_ENCODERS = config["model"].get("encoders", "finetune") == "frozen"
# The model: keys the features stage reads (vicokd.runs.features.ENCODER_KEYS).
ENCODER_KEYS = ("image_size", "patch_size", "hidden_size", "vit", "ast", "audio_encoder",
                "features", "normalize")


def encoder_inputs(env, audio=True):
    """What the models read as pictures (and sound): features.h5, or frames.h5 and audio.h5."""
    if FROZEN_ENCODERS:
        inputs = {"frames": f"results/{env}/features.h5"}
        return inputs | ({"audio": f"results/{env}/features.h5"} if audio else {})
    inputs = {"frames": f"results/{env}/frames.h5"}
    return inputs | ({"audio": f"results/{env}/audio.h5"} if audio else {})


def features_inputs(wildcards):
    """frames.h5, the split (the whitening is fitted on the train half) and, when the data has
    audio, audio.h5; never labels.h5: the features are label-free."""
    env = wildcards.env
    inputs = {"frames": f"results/{env}/frames.h5", "split": f"results/{env}/split.json"}
    if config["dataset"].get("require_audio", True):
        inputs["audio"] = f"results/{env}/audio.h5"
    return inputs


def teacher_inputs(wildcards):
    """Data of one home, with the masks only when the backbone reads them."""
    env = wildcards.env
    inputs = encoder_inputs(env) | {"labels": f"results/{env}/labels.h5",
                                    "split": f"results/{env}/split.json"}
    return inputs | masks_input(env, wildcards.backbone)


def teacher_vc_inputs(wildcards):
    env = wildcards.env
    return encoder_inputs(env) | {"labels": f"results/{env}/labels.h5",
                                  "masks": f"results/{env}/masks.h5",
                                  "split": f"results/{env}/split.json"}


def probe_inputs(wildcards):
    """The artifacts the models read, audio.h5 only when the data has audio
    (dataset.require_audio): without it the probe reads the picture only."""
    env = wildcards.env
    inputs = {"frames": f"results/{env}/frames.h5", "labels": f"results/{env}/labels.h5",
              "split": f"results/{env}/split.json"}
    if config["dataset"]["require_audio"]:
        inputs["audio"] = f"results/{env}/audio.h5"
    return inputs


def probe_files():
    """results/{env}/probe.json of every home (the reference rows of Table 1 and Figure 3)."""
    return [grid.probe_file(env) for env in HOMES]


# --- students (workflow/rules/train.smk)


def student_inputs(wildcards):
    """Data of one home; the masks when the backbone or method reads them; audio.h5 and the
    teacher's model.pt when the method distills."""
    env = wildcards.env
    distills = grid.reads_teacher(wildcards.method)
    inputs = encoder_inputs(env, audio=distills) | {"labels": f"results/{env}/labels.h5",
                                                    "split": f"results/{env}/split.json"}
    inputs |= masks_input(env, wildcards.backbone, wildcards.method)
    if distills:
        inputs["teacher"] = grid.run_file(grid.run_id(env, wildcards.backbone, grid.TEACHER),
                                          grid.RUN_OUTPUTS["model"])
    return inputs


# Table 1, 3, 4 and Figure 3 use one seed for every run (the paper's Table 1 shows 3-run means).
TABLE_SEED = 0 if 0 in SEEDS else SEEDS[0]
# The paper's published tables (reference data, never our results), read from the repository.
PAPER_REFERENCE = os.path.join(workflow.basedir, "workflow", "reference", "paper_multisensor_home.csv")


def run_files(runs, name=grid.RUN_OUTPUTS["metrics"]):
    """results/{run id}/{name} for run ids "{env}/{backbone}/{run}"."""
    return [grid.run_file(r, name) for r in runs]


def table1_run_ids():
    return grid.table1_runs(HOMES, BACKBONES, METHODS, SUPERVISIONS, TABLE_SEED)


def table2_run_ids():
    return grid.table2_runs(HOMES, BACKBONES, SUPERVISIONS, SEEDS)


def table3_run_ids():
    return grid.table3_runs(HOMES, BACKBONES)


def table4_run_ids():
    return grid.table4_runs(HOMES, ABLATIONS, SUPERVISIONS, TABLE_SEED)


def report_run_ids():
    """Every run any table shows, once."""
    return sorted(set(table1_run_ids() + table2_run_ids() + table3_run_ids() + table4_run_ids()))
