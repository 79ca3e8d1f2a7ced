"""The `teacher` rule: the audio-visual teacher of one home and backbone, trained with the
supervision `teacher.supervision` (eq. 5) on the run skeleton (runs/training.py)."""

from __future__ import annotations

from ..data.dataset import DataFiles
from ..distill import LossConfig
from ..experiments import TEACHER, get_method
from ..runner import job_sections
from .outputs import RunOutputs
from .training import RunSpec, data_files, run_sections, train_run


def teacher_spec(model_section: dict, teacher_section: dict, backbone: str,
                 run: str = TEACHER) -> RunSpec:
    """The teacher's run (`run` TEACHER), or teacher-vc's (TEACHER_VC: the same data, seed,
    initialisation and schedule, with VC added at `teacher.vc_weight`, paper Table 3)."""
    model_section, section = run_sections(model_section, "teacher", teacher_section)
    return RunSpec(name=run, backbone=backbone, method=get_method(run),
                   supervision=str(section["supervision"]), seed=int(section["seed"]),
                   init_seed=int(section["seed"]), audio=True,
                   loss=LossConfig.of_teacher(section), section_name="teacher",
                   section=section, model_section=model_section)


def train_teacher(files: DataFiles, outputs: RunOutputs, model_section: dict,
                  teacher_section: dict, backbone: str, run: str = TEACHER,
                  on_epoch_end=None) -> dict:
    """Train one teacher (or teacher-vc) and write its four outputs; returns the metrics."""
    return train_run(teacher_spec(model_section, teacher_section, backbone, run), files,
                     outputs, on_epoch_end)


def main(snakemake, run: str = TEACHER) -> None:
    """Entry of the `teacher` rule (and, with `run` TEACHER_VC, of `teacher_vc`)."""
    model_section, section = job_sections(snakemake, "model", "teacher")
    train_teacher(data_files(snakemake.input), RunOutputs.of(snakemake.output), model_section,
                  section, snakemake.wildcards.backbone, run)
