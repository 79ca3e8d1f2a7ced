"""The experiment grid as data: backbones, distillation methods and ablations, supervisions,
which runs read which artifacts, and the runs each table and figure shows, with the folder
every run writes to.

Plain Python with no heavy imports (no torch): Snakemake reads this module while it parses the
workflow (workflow/rules/common.smk), so a dry run stays quick, and the training and table code
read the same names and paths. A method, its paper label, its terms and its ablation group are
one row of METHODS; the run folder pattern is RUN_ID under results/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import VicokdError

BACKBONES = ("multitrans", "multiasl", "multitsf")
# MultiTSF's presence head trains on the human masks, teacher or student.
BACKBONES_WITH_MASKS = ("multitsf",)
SUPERVISIONS = ("frame", "sequence")
# The terms a run may add to its supervision (vicokd.distill computes each), and those of them
# that read the frozen teacher's outputs (the others, VC, read the model's own). `vis` trains
# the learned visibility that view consistency may use in place of the detector's masks.
TERMS = ("fd", "ld", "vc", "modal", "dual", "vis")
TEACHER_TERMS = ("fd", "ld", "modal", "dual", "vis")
# Where view consistency takes the visibility of each view and frame from: the detector's masks
# (masks.h5, the paper), nowhere (every frame counts), or the student's own visibility head.
VISIBILITIES = ("detector", "none", "learned")

# Table 4 groups the ablations by the part of ViCoKD they take away, as the paper does, and
# shows this project's extensions of the method in a group of their own.
VC_MODULE = "View-aware Consistency Module"
KD_STRATEGIES = "Knowledge Distillation Strategies"
BEYOND_THE_PAPER = "Beyond the paper"


@dataclass(frozen=True)
class Method:
    """The terms a run adds to its supervision (TERMS), the VC variant (for the ablations), how
    the paper prints its name, and, for an ablation, the group Table 4 puts it in. A new method
    is one row here (and, if it brings a new term, that term's loss in vicokd.distill)."""
    name: str
    label: str
    terms: tuple[str, ...] = ()
    vc_confidence_weighting: bool = True
    vc_visibility: str = "detector"
    vc_divergence: str = "js"
    ablation_group: str = ""

    def __post_init__(self):
        unknown = set(self.terms) - set(TERMS)
        if unknown:
            raise ValueError(f"method '{self.name}': unknown terms {sorted(unknown)}")
        if self.vc_visibility not in VISIBILITIES:
            raise ValueError(f"method '{self.name}': visibility '{self.vc_visibility}'")

    @property
    def vc_use_mask(self) -> bool:
        """View consistency weighs view pairs by a visibility (the masks, or a learned one)."""
        return self.vc_visibility != "none"

    @property
    def needs_teacher(self) -> bool:
        """Every term but VC reads the teacher's outputs."""
        return any(t in TEACHER_TERMS for t in self.terms)

    @property
    def needs_masks(self) -> bool:
        """View consistency restricted to the frames where both views see a person, by the
        detector's masks."""
        return "vc" in self.terms and self.vc_visibility == "detector"


# The students' methods (Tables 1, 2 and 4).
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("student", "Student"),                                # no distillation
    Method("logitkd", "LogitKD", ("ld",)),
    Method("modalkd", "ModalKD", ("modal",)),
    Method("dualkd", "DualKD", ("dual", "ld")),
    Method("cokd", "CoKD", ("fd", "ld")),                        # ViCoKD without VC
    Method("vicokd", "ViCoKD", ("fd", "ld", "vc")),
    Method("vicokd-noconfw", "w/o ConfW", ("fd", "ld", "vc"), vc_confidence_weighting=False,
           ablation_group=VC_MODULE),
    Method("vicokd-nomask", "w/o Mask", ("fd", "ld", "vc"), vc_visibility="none",
           ablation_group=VC_MODULE),
    Method("vicokd-kl", "JS → KL", ("fd", "ld", "vc"), vc_divergence="kl",
           ablation_group=VC_MODULE),
    Method("vicokd-nofd", "w/o FD", ("ld", "vc"), ablation_group=KD_STRATEGIES),
    Method("vicokd-nold", "w/o LD", ("fd", "vc"), ablation_group=KD_STRATEGIES),
    # The paper's future work: VC weighs view pairs by a visibility the student predicts itself,
    # learned from the teacher (docs/distillation.md), so no detector is needed at all.
    Method("vicokd-learnedvis", "Learned visibility", ("fd", "ld", "vc", "vis"),
           vc_visibility="learned", ablation_group=BEYOND_THE_PAPER),
    # Its control: the same visibility head and BCE, no VC. The view-consistency study runs it
    # to tell what the learned visibility's gain owes to VC; not in the default ablations.
    Method("cokd-vis", "CoKD + visibility head", ("fd", "ld", "vis"), vc_visibility="learned",
           ablation_group=BEYOND_THE_PAPER),
)}
# config experiments.methods may name the methods Table 1 compares, experiments.ablations the rest.
TABLE1_METHODS = tuple(name for name, m in METHODS.items() if not m.ablation_group)
ABLATIONS = tuple(name for name, m in METHODS.items() if m.ablation_group)
PAPER_ABLATIONS = tuple(name for name in ABLATIONS
                        if METHODS[name].ablation_group != BEYOND_THE_PAPER)
# Table 2: ViCoKD, CoKD (ViCoKD without VC) and the non-distilled student over the seeds, and
# the gains it judges against their spread: ViCoKD over the student (the paper's) and over CoKD
# (what view consistency adds).
TABLE2_METHODS = ("student", "cokd", "vicokd")
TABLE2_GAINS = (("vicokd", "student"), ("vicokd", "cokd"))
# Table 4 and Figure 3 use MultiASL, as in the paper.
ABLATION_BACKBONE = "multiasl"
FIGURE3_METHODS = ("student", "logitkd", "cokd", "vicokd")
# The loss-terms figure (report/loss_terms.py) draws these methods' per-term pulls.
LOSS_TERMS_METHODS = ("vicokd", "vicokd-learnedvis")

# The audio-visual teachers' runs: the teacher (supervision only) and, for Table 3, the teacher
# with view consistency added. Their loss is built like a student's from these rows.
TEACHER = "teacher"
TEACHER_VC = "teacher-vc"
TEACHER_METHODS: dict[str, Method] = {m.name: m for m in (
    Method(TEACHER, "Teacher"),
    Method(TEACHER_VC, "Teacher + VC", ("vc",)),
)}

# The view-consistency study (results/study/): ViCoKD against CoKD (ViCoKD without VC) and the
# non-distilled student, with MultiASL as the ablations, on homes of controlled co-visibility
# and view disparity; and ViCoKD with the learned visibility in place of the YOLO masks, with
# its control (the visibility head and its BCE without VC).
STUDY_METHODS = ("student", "cokd", "vicokd", "vicokd-learnedvis", "cokd-vis")
STUDY_DIR = "study"


def get_method(name: str) -> Method:
    """A student's method or a teacher's run (TEACHER, TEACHER_VC) by name."""
    try:
        return METHODS[name] if name in METHODS else TEACHER_METHODS[name]
    except KeyError:
        raise VicokdError(f"unknown distillation method '{name}' (one of "
                          f"{', '.join(METHODS)})") from None


def check_grid(experiments: dict) -> None:
    """The config's `experiments:` section names only known backbones, methods, ablations and
    supervisions; else a one-line error naming the key and the valid names."""
    valid = {"backbones": BACKBONES, "methods": TABLE1_METHODS, "ablations": ABLATIONS,
             "supervision": SUPERVISIONS}
    for key, names in valid.items():
        unknown = [n for n in experiments.get(key, []) if n not in names]
        if unknown:
            raise VicokdError(f"config experiments.{key}: unknown {', '.join(map(repr, unknown))} "
                              f"(valid: {', '.join(names)})")


# --- which runs read what ------------------------------------------------------------------

def reads_masks(backbone: str, method: str | None = None) -> bool:
    """Whether a run (a student's method, teacher or teacher-vc; None: the teacher) reads
    masks.h5: MultiTSF's presence head, and view consistency restricted to seen frames. The
    other runs need not wait for the detector, so they train while it does."""
    if backbone in BACKBONES_WITH_MASKS:
        return True
    return method is not None and get_method(method).needs_masks


def reads_teacher(method: str) -> bool:
    """Whether a student run distills, so reads the teacher's model.pt and audio.h5."""
    return get_method(method).needs_teacher


# --- runs and their folders ----------------------------------------------------------------

# A student run's name; method names contain hyphens (vicokd-nomask), so the workflow
# constrains its wildcards to split it one way only.
STUDENT_RUN = "{method}-{supervision}-seed{seed}"
# A run id: the run's folder under results/ (and the name of its log and benchmark files).
RUN_ID = "{env}/{backbone}/{run}"
RESULTS = "results"
# The four files every training run writes into its folder.
RUN_OUTPUTS = {"model": "model.pt", "curve": "curve.csv", "metrics": "metrics.json",
               "predictions": "predictions.h5"}


# The `model:` keys the frozen encoders read (the `features` rule's params: only they rerun it).
ENCODER_KEYS = ("image_size", "patch_size", "hidden_size", "vit", "ast", "audio_encoder",
                "features", "normalize")

# The artifacts of one home, in results/{env}/ (DESIGN.md's names): what the rules write and
# read, the report and the tests look for.
HOME_FILES = {"manifest": "manifest.json", "frames": "frames.h5", "audio": "audio.h5",
              "labels": "labels.h5", "split": "split.json", "masks": "masks.h5",
              "masks_quality": "masks_quality.json", "features": "features.h5",
              "encoders": "encoders", "probe": "probe.json", "figure4": "figure4.png",
              "figure4_json": "figure4.json"}


def home_file(env: str, name: str) -> str:
    """results/{env}/{file} of one home's artifact `name` (a key of HOME_FILES)."""
    return f"{RESULTS}/{env}/{HOME_FILES[name]}"


def probe_file(env: str) -> str:
    """results/{env}/probe.json: the linear probe of a home (the reference rows of Table 1)."""
    return home_file(env, "probe")


def run_id(env: str, backbone: str, run: str) -> str:
    return RUN_ID.format(env=env, backbone=backbone, run=run)


def student_run(method: str, supervision: str, seed: int | str) -> str:
    return STUDENT_RUN.format(method=method, supervision=supervision, seed=seed)


_STUDENT_RUN_NAME = re.compile(STUDENT_RUN.format(method="(?P<method>.+)",
                                                  supervision="(?P<supervision>[^-]+)",
                                                  seed=r"(?P<seed>\d+)"))


def method_of_run(run: str) -> str | None:
    """The method of a student run's name (STUDENT_RUN); None for any other name."""
    match = _STUDENT_RUN_NAME.fullmatch(run)
    return match["method"] if match else None


def run_file(rid: str, name: str) -> str:
    """results/{run id}/{name}."""
    return f"{RESULTS}/{rid}/{name}"


# --- the runs each table and figure shows, as run ids ----------------------------------------

def table1_runs(homes, backbones, methods, supervisions, seed) -> list[str]:
    runs = []
    for env in homes:
        for bb in backbones:
            runs.append(run_id(env, bb, TEACHER))
            runs += [run_id(env, bb, student_run(m, s, seed)) for m in methods for s in supervisions]
    return runs


def table2_runs(homes, backbones, supervisions, seeds) -> list[str]:
    return [run_id(env, bb, student_run(m, s, k)) for env in homes for bb in backbones
            for m in TABLE2_METHODS for s in supervisions for k in seeds]


def table3_runs(homes, backbones) -> list[str]:
    return [run_id(env, bb, r) for env in homes for bb in backbones for r in (TEACHER, TEACHER_VC)]


def table4_runs(homes, ablations, supervisions, seed) -> list[str]:
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, seed)) for env in homes
            for m in ["vicokd", *ablations] for s in supervisions]


def loss_terms_runs(homes, methods, supervisions, seed) -> list[str]:
    """The MultiASL students of `methods` whose per-term pulls the report shows."""
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, seed))
            for env in homes for s in supervisions for m in methods]


def figure3_runs(homes, supervisions, seed) -> list[str]:
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, seed))
            for env in homes for s in supervisions for m in FIGURE3_METHODS]


# Figure 4 (MultiASL, as in the paper): the maps of the teacher, the non-distilled student and
# ViCoKD side by side; the share of the maps inside the person's box is also measured for CoKD
# (ViCoKD without its view consistency, which is what is said to make the maps human-centric).
FIGURE4_SHOWN = (TEACHER, "student", "vicokd")
FIGURE4_MEASURED = (TEACHER, "student", "cokd", "vicokd")


def figure4_supervision(supervisions) -> str:
    """The students' labels in Figure 4: frame labels (the paper's main setting) when the grid
    has them."""
    return "frame" if "frame" in supervisions else list(supervisions)[0]


def figure4_runs(env: str, supervisions, seed) -> dict[str, str]:
    """{model name: run id} of the runs Figure 4 measures in one home."""
    sup = figure4_supervision(supervisions)
    return {name: run_id(env, ABLATION_BACKBONE,
                         name if name == TEACHER else student_run(name, sup, seed))
            for name in FIGURE4_MEASURED}


def study_runs(homes, supervisions, seeds) -> list[str]:
    """The student runs of the view-consistency study: every study method, supervision and seed
    in each study home, with the ablations' backbone."""
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, k)) for env in homes
            for m in STUDY_METHODS for s in supervisions for k in seeds]


def study_views_file(env: str) -> str:
    """results/study/{env}/views.json: the measured statistics of one study home's views."""
    return f"{RESULTS}/{STUDY_DIR}/{env}/views.json"
