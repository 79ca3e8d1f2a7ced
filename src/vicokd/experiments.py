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
# The distillation terms a method may add (vicokd.distill computes them).
TERMS = ("fd", "ld", "vc", "modal", "dual")

# Table 4 groups the ablations by the part of ViCoKD they take away, as the paper does.
VC_MODULE = "View-aware Consistency Module"
KD_STRATEGIES = "Knowledge Distillation Strategies"


@dataclass(frozen=True)
class Method:
    """Which distillation terms a method adds, the VC variant (for the ablations), how the
    paper prints its name, and, for an ablation, the group Table 4 puts it in."""
    name: str
    label: str
    fd: bool = False
    ld: bool = False
    vc: bool = False
    modal: bool = False
    dual: bool = False
    vc_confidence_weighting: bool = True
    vc_use_mask: bool = True
    vc_divergence: str = "js"
    ablation_group: str = ""

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(t for t in TERMS if getattr(self, t))

    @property
    def needs_teacher(self) -> bool:
        """Every term but VC reads the teacher's outputs."""
        return any(getattr(self, t) for t in ("fd", "ld", "modal", "dual"))

    @property
    def needs_masks(self) -> bool:
        """View consistency restricted to the frames where both views see a person."""
        return self.vc and self.vc_use_mask


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("student", "Student"),                                # no distillation
    Method("logitkd", "LogitKD", ld=True),
    Method("modalkd", "ModalKD", modal=True),
    Method("dualkd", "DualKD", dual=True, ld=True),
    Method("cokd", "CoKD", fd=True, ld=True),                    # ViCoKD without VC
    Method("vicokd", "ViCoKD", fd=True, ld=True, vc=True),
    Method("vicokd-noconfw", "w/o ConfW", fd=True, ld=True, vc=True,
           vc_confidence_weighting=False, ablation_group=VC_MODULE),
    Method("vicokd-nomask", "w/o Mask", fd=True, ld=True, vc=True, vc_use_mask=False,
           ablation_group=VC_MODULE),
    Method("vicokd-kl", "JS → KL", fd=True, ld=True, vc=True, vc_divergence="kl",
           ablation_group=VC_MODULE),
    Method("vicokd-nofd", "w/o FD", ld=True, vc=True, ablation_group=KD_STRATEGIES),
    Method("vicokd-nold", "w/o LD", fd=True, vc=True, ablation_group=KD_STRATEGIES),
)}
# config experiments.methods may name the methods Table 1 compares, experiments.ablations the rest.
TABLE1_METHODS = tuple(name for name, m in METHODS.items() if not m.ablation_group)
ABLATIONS = tuple(name for name, m in METHODS.items() if m.ablation_group)
# Table 2: ViCoKD and the non-distilled student over the seeds.
TABLE2_METHODS = ("student", "vicokd")
# Table 4 and Figure 3 use MultiASL, as in the paper.
ABLATION_BACKBONE = "multiasl"
FIGURE3_METHODS = ("student", "logitkd", "cokd", "vicokd")
# The view-consistency study (results/study/): ViCoKD against CoKD (ViCoKD without VC) and the
# non-distilled student, with MultiASL as the ablations, on homes of controlled co-visibility
# and view disparity.
STUDY_METHODS = ("student", "cokd", "vicokd")
STUDY_DIR = "study"


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
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
    """Whether a teacher (no method) or a student run reads masks.h5: MultiTSF's presence head,
    and view consistency restricted to seen frames. The other runs need not wait for the
    detector, so they train while it does. (teacher-vc always reads them: it adds VC.)"""
    if backbone in BACKBONES_WITH_MASKS:
        return True
    return method is not None and get_method(method).needs_masks


def reads_teacher(method: str) -> bool:
    """Whether a student run distills, so reads the teacher's model.pt and audio.h5."""
    return get_method(method).needs_teacher


# --- runs and their folders ----------------------------------------------------------------

TEACHER = "teacher"
TEACHER_VC = "teacher-vc"
# A student run's name; method names contain hyphens (vicokd-nomask), so the workflow
# constrains its wildcards to split it one way only.
STUDENT_RUN = "{method}-{supervision}-seed{seed}"
# A run id: the run's folder under results/ (and the name of its log and benchmark files).
RUN_ID = "{env}/{backbone}/{run}"
RESULTS = "results"
# The four files every training run writes into its folder.
RUN_OUTPUTS = {"model": "model.pt", "curve": "curve.csv", "metrics": "metrics.json",
               "predictions": "predictions.h5"}


# The linear probe of each home (rule probe): the reference rows of Table 1.
PROBE_FILE = "probe.json"


def probe_file(env: str) -> str:
    """results/{env}/probe.json."""
    return f"{RESULTS}/{env}/{PROBE_FILE}"


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


def figure3_runs(homes, supervisions, seed) -> list[str]:
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, seed))
            for env in homes for s in supervisions for m in FIGURE3_METHODS]


def study_runs(homes, supervisions, seeds) -> list[str]:
    """The student runs of the view-consistency study: every study method, supervision and seed
    in each study home, with the ablations' backbone."""
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, k)) for env in homes
            for m in STUDY_METHODS for s in supervisions for k in seeds]


def study_views_file(env: str) -> str:
    """results/study/{env}/views.json: the measured statistics of one study home's views."""
    return f"{RESULTS}/{STUDY_DIR}/{env}/views.json"
