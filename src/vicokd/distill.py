"""The loss of each training run, as `loss_fn(model, batch) -> (loss, parts)` for the loop
(vicokd.train): the teacher's (supervision, eq. 5), teacher-vc's (plus view consistency), and a
student's (supervision plus its method's distillation terms, paper §3.2 and §4.1).

A method (a row of vicokd.experiments.METHODS) names the terms it adds to the student's
supervision:

    FD     eq. 7: squared L2 between teacher and student F_attn, and between their F_av
    LD     eq. 8: tau^2 KL(p_T || p_S) on the fused frame logits [B, T, C]
    VC     eq. 9-10: view consistency of the student's per-view frame predictions
    modal  ModalKD: squared L2 student F_v -> teacher F_v, student pseudo-audio -> teacher F_a
    dual   DualKD: squared L2 on F_fusion

Supervision (eq. 5): "frame" = L_F + lambda L_S; "sequence" = L_S only. Under "sequence"
the student's loss is handed a batch with no frame labels at all (they are removed before the
student or its loss see the batch), so the student cannot use them by accident.

The teacher is frozen (eval mode, no parameter requires grad) and runs on the same sampled
frames, with its audio, in the same step under `torch.no_grad()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

import torch

from .config import default, fill
from .errors import VicokdError
from .experiments import METHODS, SUPERVISIONS, TERMS, Method, get_method
from .losses import (FD_REDUCTIONS, feature_distillation, logit_distillation, supervised_loss,
                     view_consistency)
from .models import model_inputs


@dataclass
class StudentConfig:
    """The `student:` section of config.yaml (defaults: the schema's)."""
    epochs: int = default("student.epochs")
    lr: float = default("student.lr")
    weight_decay: float = default("student.weight_decay")
    batch_size: int = default("student.batch_size")
    lambda_seq: float = default("student.lambda_seq")
    tau: float = default("student.tau")
    weights: dict = field(default_factory=lambda: default("student.weights"))
    fd_reduction: str = default("student.fd_reduction")

    @classmethod
    def from_section(cls, section: dict) -> "StudentConfig":
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in fill("student", section).items() if k in names}
        cfg = cls(**kwargs)
        unknown = set(cfg.weights) - set(TERMS)
        if unknown:
            raise VicokdError(f"config student.weights: unknown term(s) {sorted(unknown)} "
                              f"(known: {', '.join(TERMS)})")
        if cfg.tau <= 0:
            raise VicokdError(f"config student.tau: must be > 0, got {cfg.tau}")
        if cfg.fd_reduction not in FD_REDUCTIONS:
            raise VicokdError(f"config student.fd_reduction: '{cfg.fd_reduction}' is not one of "
                              f"{', '.join(FD_REDUCTIONS)}")
        return cfg


# -- loss pieces (pure functions of model outputs) -------------------------------------------

def view_consistency_loss(out: dict, masks: torch.Tensor | None, method: Method
                          ) -> torch.Tensor:
    """VC (eq. 9-10) of the per-view frame logits [B, N, T, C] softmaxed per view, with the
    human masks [B, N, T] (the method's variant: weighting, mask use, divergence)."""
    if masks is None and method.vc_use_mask:
        raise VicokdError(f"method '{method.name}' needs the human masks (masks.h5), and the "
                          "batch has none")
    probs = torch.softmax(out["view_frame_logits"].float(), dim=-1)
    if masks is None:
        masks = probs.new_ones(probs.shape[:3])
    return view_consistency(probs, masks.to(probs.device),
                            confidence_weighting=method.vc_confidence_weighting,
                            use_mask=method.vc_use_mask, divergence=method.vc_divergence)


def distillation_terms(method: Method, student_out: dict, teacher_out: dict | None,
                       masks: torch.Tensor | None, tau: float, fd_reduction: str = "sum"
                       ) -> dict[str, torch.Tensor]:
    """The method's unweighted terms {name: scalar}. Features are [B, N, T, D]; FD averages
    the per-position squared distance over batch, views and frames (eq. 7), summed over D
    (or, `fd_reduction` "mean", averaged over D)."""
    if method.needs_teacher and teacher_out is None:
        raise VicokdError(f"method '{method.name}' needs the teacher's outputs")
    s, t = student_out, teacher_out
    terms: dict[str, torch.Tensor] = {}
    if method.fd:
        terms["fd"] = feature_distillation([s["F_attn"].float(), s["F_av"].float()],
                                           [t["F_attn"].float(), t["F_av"].float()], fd_reduction)
    if method.ld:
        terms["ld"] = logit_distillation(s["frame_logits"].float(), t["frame_logits"].float(), tau)
    if method.modal:
        # the student's F_a is its pseudo-audio (the adapter's output, eq. 6)
        terms["modal"] = feature_distillation([s["F_v"].float(), s["F_a"].float()],
                                              [t["F_v"].float(), t["F_a"].float()])
    if method.dual:
        terms["dual"] = feature_distillation([s["F_fusion"].float()], [t["F_fusion"].float()])
    if method.vc:
        terms["vc"] = view_consistency_loss(s, masks, method)
    return terms


# -- the training step's loss ------------------------------------------------------------------

def batch_for_student(batch: dict, supervision: str) -> dict:
    """What the student may see: no audio ever, and no frame labels under sequence supervision."""
    hidden = {"fbank"} | ({"frame_labels"} if supervision == "sequence" else set())
    return {k: v for k, v in batch.items() if k not in hidden}


def freeze(teacher: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (no dropout) and no parameter takes a gradient."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def check_student_teacher(student, teacher) -> None:
    """The teacher must see audio, the student must not, and their features must match."""
    if getattr(teacher.cfg, "audio", True) is not True:
        raise VicokdError("the teacher model has no audio branch (is it a student checkpoint?)")
    if getattr(student.cfg, "audio", False):
        raise VicokdError("the student must be built without audio (cfg.audio = False)")
    if student.cfg.backbone != teacher.cfg.backbone:
        raise VicokdError(f"teacher backbone '{teacher.cfg.backbone}' differs from the "
                          f"student's '{student.cfg.backbone}'")
    if student.cfg.encoders != teacher.cfg.encoders:
        raise VicokdError(f"the teacher was trained with model.encoders '{teacher.cfg.encoders}', "
                          f"the student with '{student.cfg.encoders}'")
    if student.cfg.hidden_size != teacher.cfg.hidden_size:
        raise VicokdError(f"teacher hidden_size {teacher.cfg.hidden_size} differs from the "
                          f"student's {student.cfg.hidden_size}: features cannot be distilled")


def supervised_loss_fn(lambda_seq: float = 1.0, supervision: str = "frame"
                       ) -> Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict]]:
    """The teacher's loss: supervision (eq. 5) plus the backbone's auxiliary loss."""

    def loss_fn(model, batch):
        out = model(*model_inputs(model, batch))
        loss, parts = supervised_loss(out, batch, lambda_seq, supervision)
        aux, aux_parts = model.auxiliary_loss(out, batch)
        parts.update(aux_parts)
        return loss + aux, parts

    return loss_fn


def make_student_loss(method: Method | str, supervision: str, cfg: StudentConfig,
                      teacher: torch.nn.Module | None = None
                      ) -> Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict]]:
    """`loss_fn(model, batch) -> (loss, parts)` for the training loop.

    loss = supervision (eq. 5) + the backbone's own auxiliary loss + sum_k w_k * term_k.
    The teacher (needed unless the method is `student` or VC-only) is frozen here and run on
    the full batch (frames + fbank) under no_grad; the student gets `batch_for_student`."""
    method = get_method(method) if isinstance(method, str) else method
    if supervision not in SUPERVISIONS:
        raise VicokdError(f"unknown supervision '{supervision}' (one of {', '.join(SUPERVISIONS)})")
    if method.needs_teacher and teacher is None:
        raise VicokdError(f"method '{method.name}' needs a teacher model")
    if teacher is not None:
        freeze(teacher)
    weights = cfg.weights

    def loss_fn(model, batch):
        teacher_out = None
        if method.needs_teacher:
            if "fbank" not in batch:
                raise VicokdError(f"method '{method.name}': the teacher needs audio (audio.h5), "
                                  "and the batch has none")
            teacher.eval()     # even if a caller switched it back to train mode
            with torch.no_grad():
                teacher_out = teacher(batch["frames"], batch["fbank"])
        seen = batch_for_student(batch, supervision)
        if supervision == "frame" and "frame_labels" not in seen:
            raise VicokdError("frame supervision needs frame labels, and the batch has none")
        out = model(seen["frames"])
        loss, parts = supervised_loss(out, seen, cfg.lambda_seq, supervision)
        aux, aux_parts = model.auxiliary_loss(out, seen)
        loss = loss + aux
        parts.update(aux_parts)
        for name, value in distillation_terms(method, out, teacher_out, seen.get("masks"),
                                              cfg.tau, cfg.fd_reduction).items():
            loss = loss + weights[name] * value
            parts[name] = float(value.detach())
        return loss, parts

    return loss_fn


def make_teacher_vc_loss(lambda_seq: float, vc_weight: float
                         ) -> Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict]]:
    """teacher-vc (paper Table 3): the teacher's own loss (frame supervision, eq. 5, plus the
    backbone's auxiliary loss) plus `vc_weight` * VC (eq. 9-10) of its per-view predictions."""
    method = METHODS["vicokd"]

    def loss_fn(model, batch):
        out = model(batch["frames"], batch["fbank"])
        loss, parts = supervised_loss(out, batch, lambda_seq, "frame")
        aux, aux_parts = model.auxiliary_loss(out, batch)
        vc = view_consistency_loss(out, batch.get("masks"), method)
        parts.update(aux_parts)
        parts["vc"] = float(vc.detach())
        return loss + aux + vc_weight * vc, parts

    return loss_fn
