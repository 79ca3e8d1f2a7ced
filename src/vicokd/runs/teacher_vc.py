"""The `teacher_vc` rule: the teacher trained with view consistency added (paper Table 3), on
the same data, seed, initialisation, schedule and supervision as the teacher (runs/teacher.py);
writes the four outputs of a run into results/{env}/{backbone}/teacher-vc/."""

from __future__ import annotations

from ..experiments import TEACHER_VC
from . import teacher


def main(snakemake) -> None:
    """Entry of the `teacher_vc` rule."""
    teacher.main(snakemake, run=TEACHER_VC)
