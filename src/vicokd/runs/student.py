"""The `student` rule: train a visual-only student by one distillation method, then write its
four outputs (runs/outputs.py; see docs/distillation.md).

Checkpoints: results/checkpoints/{env}/{backbone}/{run}/last.pt (not a declared output; a killed
job run again resumes from it, and it is deleted once the outputs are complete).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import torch

from ..config import fill
from ..data.dataset import (DataFiles, input_identity, model_input_sizes, require_audio,
                            require_frame_labels, split_datasets)
from ..distill import StudentConfig, check_student_teacher, freeze, make_student_loss
from ..errors import VicokdError
from ..experiments import get_method
from ..models import build_model, load_model_file, model_config, resolve_device
from ..runner import optional_input
from ..train import fit, train_config, without_speed_options
from .outputs import RunOutputs, checkpoint_path, write_outputs

log = logging.getLogger(__name__)

# The student's initial weights come from its own seed stream, so that a student at seed k never
# starts from the same draw as a teacher initialised with seed k.
STUDENT_INIT_OFFSET = 1_000_003


def student_init_seed(seed: int) -> int:
    return STUDENT_INIT_OFFSET + int(seed)


def load_teacher(path, backbone: str, classes: list[str], device) -> torch.nn.Module:
    """The frozen teacher of model.pt, checked against the run (backbone, classes, audio)."""
    teacher, blob = load_model_file(path)
    blob_classes = blob.get("classes")
    if teacher.cfg.backbone != backbone:
        raise VicokdError(f"{path}: a '{teacher.cfg.backbone}' teacher, the student is "
                          f"'{backbone}'")
    if not teacher.cfg.audio:
        raise VicokdError(f"{path}: not an audio-visual teacher (no audio branch)")
    if blob_classes is not None and list(blob_classes) != list(classes):
        raise VicokdError(f"{path}: the teacher's classes {list(blob_classes)} differ from the "
                          f"data's {list(classes)}")
    if teacher.cfg.num_classes != len(classes):
        raise VicokdError(f"{path}: the teacher has {teacher.cfg.num_classes} classes, the data "
                          f"{len(classes)}")
    return freeze(teacher.to(device))


def train_student(files: DataFiles, outputs: RunOutputs, model_section: dict,
                  student_section: dict, backbone: str, method: str, supervision: str,
                  seed: int, teacher_path: str | None = None, threads: int = 1,
                  on_epoch_end=None) -> dict:
    """Train one visual-only student and write its four outputs; returns the metrics.

    `files.audio` and `teacher_path` are needed only by methods that distill from the teacher
    (all but `student`); the student itself never receives audio."""
    torch.set_num_threads(max(1, int(threads)))
    spec = get_method(method)
    model_section, student_section = fill("model", model_section), fill("student", student_section)
    scfg = StudentConfig.from_section(student_section)
    if spec.needs_teacher:
        require_audio(files, f"method '{method}' (it distills from the audio-visual teacher)")
    if spec.needs_teacher and (teacher_path is None or files.audio is None):
        raise VicokdError(f"method '{method}' distills from the teacher: it needs the teacher's "
                          "model.pt and audio.h5")
    if not spec.needs_teacher:
        files = DataFiles(frames=files.frames, labels=files.labels, split=files.split,
                          audio=None, masks=files.masks)
    tcfg = train_config({**student_section, "seed": int(seed)}, model_section)
    train_set, test_set = split_datasets(files, model_section, tcfg.seed,
                                         bool(student_section["cache"]))
    if supervision == "frame":
        require_frame_labels(train_set, "experiments.supervision: [sequence]")
    teacher = None
    sizes = model_input_sizes(train_set, model_section, audio=False)
    if spec.needs_teacher:
        teacher = load_teacher(teacher_path, backbone, train_set.classes,
                               resolve_device(tcfg.device))
        sizes.update(mel_bins=teacher.cfg.mel_bins, audio_length=teacher.cfg.audio_length)
    mcfg = model_config(model_section, backbone, train_set.num_classes, audio=False, **sizes)
    torch.manual_seed(student_init_seed(seed))        # a fresh student, never the teacher's weights
    model = build_model(mcfg)
    if teacher is not None:
        check_student_teacher(model, teacher)
    loss_fn = make_student_loss(spec, supervision, scfg, teacher)
    fingerprint = {"model": model_section, "student": without_speed_options(student_section),
                   "backbone": backbone, "method": method, "supervision": supervision,
                   "seed": int(seed),
                   "classes": train_set.classes, "train": train_set.ids, "test": test_set.ids,
                   "inputs": input_identity(files, teacher=teacher_path if teacher else None)}
    config = {"model": model_section, "student": student_section, "backbone": backbone,
              "method": method, "supervision": supervision, "seed": int(seed)}
    ckpt = checkpoint_path(outputs.model)
    log.info("student %s %s-%s seed %d: terms %s, %d train / %d test sequences, %d views, "
             "checkpoint %s", backbone, method, supervision, seed,
             "+".join(spec.terms) or "none", len(train_set), len(test_set), train_set.views, ckpt)
    result = fit(model, loss_fn, train_set, test_set, tcfg, ckpt, fingerprint, on_epoch_end)
    metrics = write_outputs(outputs, model, result, test_set, config, tcfg.epochs,
                            {"method": method, "supervision": supervision, "seed": int(seed),
                             "terms": list(spec.terms), "student": asdict(scfg)})
    log.info("student %s %s-%s seed %d: test mAP %.2f (chance %.2f), frame mAP %.2f, %.1fs",
             backbone, method, supervision, seed, metrics["map"] or float("nan"),
             metrics["chance"] or float("nan"), metrics["frame_map"] or float("nan"),
             metrics["seconds"])
    return metrics


def main(snakemake) -> None:
    """Entry of the `student` rule."""
    inp = snakemake.input
    files = DataFiles(frames=inp.frames, labels=inp.labels, split=inp.split,
                      masks=optional_input(inp, "masks"), audio=optional_input(inp, "audio"))
    teacher = optional_input(inp, "teacher")
    w = snakemake.wildcards
    train_student(files, RunOutputs.of(snakemake.output), dict(snakemake.params.model),
                  dict(snakemake.params.student), w.backbone, snakemake.params.method,
                  snakemake.params.supervision, int(snakemake.params.seed), teacher,
                  snakemake.threads)
