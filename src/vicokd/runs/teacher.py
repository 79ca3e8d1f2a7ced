"""The `teacher` rule: train the audio-visual teacher of one home and backbone, then write its
four outputs (runs/outputs.py; see docs/model.md)."""

from __future__ import annotations

import logging

import torch

from ..config import fill
from ..data.dataset import (DataFiles, input_identity, model_input_sizes, require_audio,
                            require_frame_labels, split_datasets)
from ..distill import supervised_loss_fn
from ..models import build_model, model_config
from ..runner import optional_input
from ..train import fit, train_config, without_speed_options
from .outputs import RunOutputs, checkpoint_path, write_outputs

log = logging.getLogger(__name__)


def train_teacher(files: DataFiles, outputs: RunOutputs, model_section: dict,
                  teacher_section: dict, backbone: str, threads: int = 1,
                  on_epoch_end=None) -> dict:
    """Train one teacher and write its four outputs; returns the metrics."""
    torch.set_num_threads(max(1, int(threads)))
    model_section, teacher_section = fill("model", model_section), fill("teacher", teacher_section)
    tcfg = train_config(teacher_section, model_section)
    require_audio(files, "the teacher")
    train_set, test_set = split_datasets(files, model_section, tcfg.seed,
                                         bool(teacher_section["cache"]))
    if teacher_section["supervision"] == "frame":
        require_frame_labels(train_set, "teacher.supervision: sequence")
    mcfg = model_config(model_section, backbone, train_set.num_classes, audio=True,
                        **model_input_sizes(train_set, model_section, audio=True))
    torch.manual_seed(tcfg.seed)                       # the weights' initialisation
    model = build_model(mcfg)
    loss_fn = supervised_loss_fn(float(teacher_section["lambda_seq"]),
                                 str(teacher_section["supervision"]))
    fingerprint = {"model": model_section, "backbone": backbone,
                   "teacher": without_speed_options(teacher_section),
                   "classes": train_set.classes, "audio_shape": list(train_set.audio_shape or ()),
                   "train": train_set.ids, "test": test_set.ids, "inputs": input_identity(files)}
    ckpt = checkpoint_path(outputs.model)
    log.info("teacher %s: %d train / %d test sequences, %d views, %d classes, checkpoint %s",
             backbone, len(train_set), len(test_set), train_set.views, train_set.num_classes, ckpt)
    result = fit(model, loss_fn, train_set, test_set, tcfg, ckpt, fingerprint, on_epoch_end)
    config = {"model": model_section, "teacher": teacher_section, "backbone": backbone}
    metrics = write_outputs(outputs, model, result, test_set, config, tcfg.epochs)
    log.info("teacher %s: test mAP %.2f (chance %.2f), frame mAP %.2f, %.1fs", backbone,
             metrics["map"] or float("nan"), metrics["chance"] or float("nan"),
             metrics["frame_map"] or float("nan"), metrics["seconds"])
    return metrics


def main(snakemake) -> None:
    """Entry of the `teacher` rule."""
    inp = snakemake.input
    files = DataFiles(frames=inp.frames, audio=optional_input(inp, "audio"), labels=inp.labels,
                      split=inp.split, masks=optional_input(inp, "masks"))
    train_teacher(files, RunOutputs.of(snakemake.output), dict(snakemake.params.model),
                  dict(snakemake.params.teacher), snakemake.wildcards.backbone, snakemake.threads)
