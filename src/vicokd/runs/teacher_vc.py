"""The `teacher_vc` rule: the teacher trained with view consistency added (paper Table 3),
same initialisation, data and schedule as the teacher; writes the four outputs of a run
(runs/outputs.py) into results/{env}/{backbone}/teacher-vc/.
"""

from __future__ import annotations

import logging

import torch

from ..config import fill
from ..data.dataset import (DataFiles, input_identity, model_input_sizes, require_audio,
                            require_frame_labels, split_datasets)
from ..distill import make_teacher_vc_loss
from ..experiments import TEACHER_VC
from ..models import build_model, model_config
from ..runner import optional_input
from ..train import fit, train_config, without_speed_options
from .outputs import RunOutputs, checkpoint_path, write_outputs

log = logging.getLogger(__name__)


def train_teacher_vc(files: DataFiles, outputs: RunOutputs, model_section: dict,
                     teacher_section: dict, backbone: str, threads: int = 1,
                     on_epoch_end=None) -> dict:
    """The teacher's training (same init seed, data, schedule) with VC added, weight
    `teacher.vc_weight` (paper Table 3)."""
    torch.set_num_threads(max(1, int(threads)))
    model_section, teacher_section = fill("model", model_section), fill("teacher", teacher_section)
    tcfg = train_config(teacher_section, model_section)
    vc_weight = float(teacher_section["vc_weight"])
    require_audio(files, "the teacher (teacher-vc)")
    train_set, test_set = split_datasets(files, model_section, tcfg.seed,
                                         bool(teacher_section["cache"]))
    if teacher_section["supervision"] == "frame":
        require_frame_labels(train_set, "teacher.supervision: sequence")
    mcfg = model_config(model_section, backbone, train_set.num_classes, audio=True,
                        **model_input_sizes(train_set, model_section, audio=True))
    torch.manual_seed(tcfg.seed)
    model = build_model(mcfg)
    loss_fn = make_teacher_vc_loss(float(teacher_section["lambda_seq"]), vc_weight,
                                   str(teacher_section["supervision"]))
    fingerprint = {"model": model_section, "teacher": without_speed_options(teacher_section),
                   "backbone": backbone, "vc_weight": vc_weight, "classes": train_set.classes,
                   "audio_shape": list(train_set.audio_shape or ()), "train": train_set.ids,
                   "test": test_set.ids, "inputs": input_identity(files)}
    config = {"model": model_section, "teacher": teacher_section, "backbone": backbone,
              "method": TEACHER_VC}
    log.info("teacher-vc %s: vc weight %g, %d train / %d test sequences", backbone, vc_weight,
             len(train_set), len(test_set))
    ckpt = checkpoint_path(outputs.model)
    result = fit(model, loss_fn, train_set, test_set, tcfg, ckpt, fingerprint, on_epoch_end)
    metrics = write_outputs(outputs, model, result, test_set, config, tcfg.epochs,
                            {"method": TEACHER_VC, "vc_weight": vc_weight})
    log.info("teacher-vc %s: test mAP %.2f, frame mAP %.2f, %.1fs", backbone,
             metrics["map"] or float("nan"), metrics["frame_map"] or float("nan"),
             metrics["seconds"])
    return metrics


def main(snakemake) -> None:
    """Entry of the `teacher_vc` rule."""
    inp = snakemake.input
    files = DataFiles(frames=inp.frames, audio=optional_input(inp, "audio"), labels=inp.labels,
                      masks=inp.masks, split=inp.split)
    train_teacher_vc(files, RunOutputs.of(snakemake.output), dict(snakemake.params.model),
                     dict(snakemake.params.teacher), snakemake.wildcards.backbone,
                     snakemake.threads)

