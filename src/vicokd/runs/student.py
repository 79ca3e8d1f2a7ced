"""The `student` rule: a visual-only student trained by one distillation method, on the run
skeleton (runs/training.py; see docs/distillation.md).

Checkpoints: results/checkpoints/{env}/{backbone}/{run}/last.pt (not a declared output; a killed
job run again resumes from it, and it is deleted once the outputs are complete).
"""

from __future__ import annotations

from ..data.dataset import DataFiles
from ..distill import LossConfig
from ..experiments import get_method, student_run
from ..runner import job_sections, optional_input
from .outputs import RunOutputs
from .training import RunSpec, data_files, run_sections, train_run

# The student's initial weights come from its own seed stream, so that a student at seed k never
# starts from the same draw as a teacher initialised with seed k.
STUDENT_INIT_OFFSET = 1_000_003


def student_init_seed(seed: int) -> int:
    return STUDENT_INIT_OFFSET + int(seed)


def student_spec(model_section: dict, student_section: dict, backbone: str, method: str,
                 supervision: str, seed: int, teacher_path: str | None = None) -> RunSpec:
    """A student's run: a fresh visual-only model (never the teacher's weights) that learns
    from `supervision` and the terms of `method`, from the teacher at `teacher_path`."""
    model_section, section = run_sections(model_section, "student", student_section)
    return RunSpec(name=student_run(method, supervision, seed), backbone=backbone,
                   method=get_method(method), supervision=supervision, seed=int(seed),
                   init_seed=student_init_seed(seed), audio=False,
                   loss=LossConfig.of_student(section), section_name="student",
                   section=section, model_section=model_section, teacher_path=teacher_path)


def train_student(files: DataFiles, outputs: RunOutputs, model_section: dict,
                  student_section: dict, backbone: str, method: str, supervision: str,
                  seed: int, teacher_path: str | None = None, on_epoch_end=None) -> dict:
    """Train one visual-only student and write its four outputs; returns the metrics.

    `files.audio` and `teacher_path` are needed only by methods that distill from the teacher
    (all but `student`); the student itself never receives audio."""
    spec = student_spec(model_section, student_section, backbone, method, supervision, seed,
                        teacher_path)
    return train_run(spec, files, outputs, on_epoch_end)


def main(snakemake) -> None:
    """Entry of the `student` rule."""
    model_section, section = job_sections(snakemake, "model", "student")
    p = snakemake.params
    train_student(data_files(snakemake.input), RunOutputs.of(snakemake.output), model_section,
                  section, snakemake.wildcards.backbone, p.method, p.supervision, int(p.seed),
                  optional_input(snakemake.input, "teacher"))
