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
from vicokd.config import without_speed_keys
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


def params_of(section, drop=()):
    """A rule's params of one config section: every key that changes results, i.e. all but the
    speed keys the schema marks `x-speed` (threads, loader workers, caches, device placement;
    jobs read those from the config: vicokd.runner.job_sections) and `drop` (keys the rule's
    code does not read). So changing a speed option, or a key of another rule, reruns nothing."""
    values = without_speed_keys(section, config[section])
    return dict(sorted((k, v) for k, v in values.items() if k not in drop))


# --- paths: one home's artifacts, logs and timings (names from vicokd.experiments.HOME_FILES)


def home_path(name, env="{env}"):
    """results/{env}/<file> of a home's artifact `name` ("frames", "split", ...)."""
    return grid.home_file(env, name)


def home_log(stage, env="{env}"):
    return f"logs/{env}/{stage}.log"


def home_benchmark(stage, env="{env}"):
    return f"benchmarks/results/{env}/{stage}.tsv"


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


def annotation_paths(env):
    """The annotation files of one home, always as a list."""
    paths = annotation_path(env)
    return paths if isinstance(paths, list) else [paths]


def split_file_paths(env):
    """{"train": path, "test": path} of a home's official split files (split.files, relative to
    the home's folder), or None when the home is split by iterative stratification."""
    files = (config["split"].get("files") or {}).get(env)
    if not files:
        return None
    return {half: os.path.join(home_root(env), files[half]) for half in ("train", "test")}


def id_list_paths(env):
    """The official split files of a home that are plain-text id lists (.txt, MM-Office's
    split_train.txt / split_test.txt): they also choose which clips the home has."""
    files = split_file_paths(env) or {}
    return [path for path in files.values() if path.lower().endswith(".txt")]


def existing(paths):
    """The paths that exist: a missing file is then named in one line by the job that reads
    it, not by Snakemake's MissingInputException."""
    return [p for p in paths if os.path.exists(p)]


def split_inputs(wildcards):
    """The manifest and labels of one home, and its official split files when split.files
    names them (relative to the home's folder, home_root); else the split is made by iterative stratification."""
    inputs = {"manifest": home_path("manifest", wildcards.env),
              "labels": home_path("labels", wildcards.env)}
    files = split_file_paths(wildcards.env)
    if files:   # the job names a missing one (split_files)
        inputs |= {f"{half}_file": path for half, path in files.items() if os.path.exists(path)}
    return inputs


def split_files(wildcards):
    """The official split files of a home, missing or not ({"train", "test"}), or None."""
    return split_file_paths(wildcards.env)


def synthetic_home_dir(env):
    """Folder the generator writes one synthetic home to."""
    return os.path.join(DATA_ROOT, env)


def synthetic_settings(env):
    """The `synthetic:` section one home is generated from, as params: the section without its
    speed keys and the other homes' blocks of `synthetic.homes`, so that adding a home (the
    study's) reruns no other."""
    section = {k: v for k, v in params_of("synthetic").items() if k != "homes"}
    block = config["synthetic"]["homes"].get(env)
    return section | ({"homes": {env: block}} if block is not None else {})


@functools.lru_cache(maxsize=None)
def recordings(env):
    """The recordings the annotation files of a real home name (paths: its videos and separate
    audio files); none when they cannot be read, so that the manifest job says why in one line."""
    from vicokd.data.annotations import read_home

    try:
        sequences = read_home(annotation_paths(env), config["dataset"], home_root(env),
                              existing(id_list_paths(env)) or None)
    except VicokdError:
        return ()
    return tuple(os.path.join(home_root(env), f) for seq in sequences
                 for f in [*seq.views, *seq.audio])


def manifest_inputs(wildcards):
    """The annotation files (and the id lists that choose a home's clips) and the videos they
    name: the generated folder of a synthetic home, or the recordings of a real one (those that
    exist: the job names a missing one)."""
    env = wildcards.env
    inputs = {"annotations": existing(annotation_paths(env)), "id_lists": existing(id_list_paths(env))}
    if IS_SYNTHETIC:
        inputs["annotations"] = annotation_path(env)
        inputs["videos"] = os.path.join(synthetic_home_dir(env), "videos")
    else:
        inputs["videos"] = existing(recordings(env))
    return inputs


def manifest_files(wildcards):
    """What the manifest job reads, missing or not (it names a missing one in one line, with
    the files its folder has): {"annotations": [...], "id_lists": [...]}."""
    return {"annotations": annotation_paths(wildcards.env), "id_lists": id_list_paths(wildcards.env)}


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


def results_file(name):
    """results/<name>: the tables, figures and report of the whole grid."""
    return f"{grid.RESULTS}/{name}"


def all_targets():
    """What `snakemake` with no target builds: the report, which needs every table and figure."""
    return [results_file("report.html")]


# --- masks (workflow/rules/masks.smk)

DETECTOR_WEIGHTS = "results/detector/yolov10.pt"


def masks_inputs(wildcards):
    """The frames of one home and the YOLO weights the masks use: the configured file, or the
    bootstrap detector's. A configured file that does not exist (or a bootstrap detector without
    the synthetic homes' true boxes) is left out, so that the job says so in one line."""
    inputs = {"frames": home_path("frames", wildcards.env)}
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
    return {"masks": home_path("masks", env)} if grid.reads_masks(backbone, method) else {}


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
FROZEN_ENCODERS = config["model"]["encoders"] == "frozen"


# dataset.require_audio: false -- recordings without audio: no audio.h5 (nor audio features) is
# made, so the teacher and the distilling students have none to read and stop at once, saying
# in one line what to change (vicokd.data.dataset.require_audio); the plain students run.
HAS_AUDIO = bool(config["dataset"]["require_audio"])
if not HAS_AUDIO:
    print("vicokd: note: dataset.require_audio is false: the teachers and the distilling "
          "students need audio and will stop; the non-distilled students (method student) run",
          file=sys.stderr)


def encoder_inputs(env, audio=True):
    """What the models read as pictures (and sound): features.h5, or frames.h5 and audio.h5
    (no sound when the data has no audio, dataset.require_audio: false)."""
    picture, sound = ("features", "features") if FROZEN_ENCODERS else ("frames", "audio")
    audio = audio and HAS_AUDIO
    return {"frames": home_path(picture, env)} | ({"audio": home_path(sound, env)} if audio else {})


def features_inputs(wildcards):
    """frames.h5, the split (the whitening is fitted on the train half) and, when the data has
    audio, audio.h5; never labels.h5: the features are label-free."""
    env = wildcards.env
    inputs = {"frames": home_path("frames", env), "split": home_path("split", env)}
    if HAS_AUDIO:
        inputs["audio"] = home_path("audio", env)
    return inputs


def labelled_inputs(env):
    """The labels and the split of one home: what every training run reads beside its inputs."""
    return {"labels": home_path("labels", env), "split": home_path("split", env)}


def teacher_inputs(wildcards):
    """Data of one home, with the masks only when the backbone reads them."""
    env = wildcards.env
    return encoder_inputs(env) | labelled_inputs(env) | masks_input(env, wildcards.backbone)


def teacher_vc_inputs(wildcards):
    """The teacher's data and the masks (its view consistency reads them)."""
    env = wildcards.env
    return (encoder_inputs(env) | labelled_inputs(env)
            | masks_input(env, wildcards.backbone, grid.TEACHER_VC))


def probe_inputs(wildcards):
    """The artifacts the models read, audio.h5 only when the data has audio
    (dataset.require_audio): without it the probe reads the picture only."""
    env = wildcards.env
    inputs = {"frames": home_path("frames", env)} | labelled_inputs(env)
    if config["dataset"]["require_audio"]:
        inputs["audio"] = home_path("audio", env)
    return inputs


def probe_files():
    """results/{env}/probe.json of every home (the reference rows of Table 1 and Figure 3)."""
    return [grid.probe_file(env) for env in HOMES]


# --- students (workflow/rules/train.smk)


def student_params(wildcards):
    """The `student:` keys a student's run reads: the weights of its method's terms only, tau
    only when it distils logits, fd_reduction only with FD; so changing `weights.vc` reruns the
    VC methods alone."""
    terms = grid.get_method(wildcards.method).terms
    values = params_of("student", drop=("weights", "tau", "fd_reduction"))
    values["weights"] = {t: w for t, w in config["student"]["weights"].items() if t in terms}
    if "ld" in terms:
        values["tau"] = config["student"]["tau"]
    if "fd" in terms:
        values["fd_reduction"] = config["student"]["fd_reduction"]
    return dict(sorted(values.items()))


def student_inputs(wildcards):
    """Data of one home; the masks when the backbone or method reads them; audio.h5 and the
    teacher's model.pt when the method distills."""
    env = wildcards.env
    distills = grid.reads_teacher(wildcards.method)
    inputs = encoder_inputs(env, audio=distills) | labelled_inputs(env)
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


# --- report (workflow/rules/report.smk)

REPORT_CAPTIONS = os.path.join(workflow.basedir, "workflow", "report")


def captioned(path, caption, category):
    """An output that `snakemake --report` shows, with workflow/report/<caption>.rst."""
    return report(path, caption=os.path.join(REPORT_CAPTIONS, f"{caption}.rst"), category=category)


def table_params():
    """What every table and figure rule reads of the config."""
    return dict(experiments=config["experiments"], data_format=config["dataset"]["format"],
                seed=TABLE_SEED)


def figure3_run_ids():
    return grid.figure3_runs(HOMES, SUPERVISIONS, TABLE_SEED)


def loss_terms_run_ids():
    """The MultiASL students whose per-term pulls the report shows: every method of Table 1
    and the learned-visibility variant when the grid has it."""
    methods = METHODS + [a for a in ABLATIONS if a in grid.LOSS_TERMS_METHODS]
    return grid.loss_terms_runs(HOMES, methods, SUPERVISIONS, TABLE_SEED)


# --- Figure 4 and the timelines (workflow/rules/report.smk)


def figure4_home_inputs(wildcards):
    """The runs Figure 4 measures in one home (grid.FIGURE4_MEASURED, in that order) and the
    artifacts their inputs are rebuilt from, with the person boxes."""
    env = wildcards.env
    runs = list(grid.figure4_runs(env, SUPERVISIONS, TABLE_SEED).values())
    inputs = {"models": run_files(runs, grid.RUN_OUTPUTS["model"]),
              "predictions": run_files(runs, grid.RUN_OUTPUTS["predictions"]),
              "frames": home_path("frames", env), **labelled_inputs(env),
              "boxes": true_boxes_path(env) if IS_SYNTHETIC else home_path("masks", env)}
    if FROZEN_ENCODERS:
        inputs |= {"features": home_path("features", env), "encoders": home_path("encoders", env)}
    elif HAS_AUDIO:
        inputs["audio"] = home_path("audio", env)
    return inputs


def timeline_prediction_files():
    """predictions.h5 of the runs the timelines draw (grid.FIGURE4_SHOWN), home by home."""
    return [grid.run_file(rid, grid.RUN_OUTPUTS["predictions"]) for env in HOMES
            for name, rid in grid.figure4_runs(env, SUPERVISIONS, TABLE_SEED).items()
            if name in grid.FIGURE4_SHOWN]
