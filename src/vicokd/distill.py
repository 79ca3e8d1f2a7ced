"""The loss of every training run, as `loss_fn(model, batch) -> (loss, parts)` for the loop
(vicokd.train): the supervision (eq. 5), the backbone's own auxiliary loss, and the terms the
run's method adds (a row of vicokd.experiments: METHODS for the students, TEACHER_METHODS for
the teacher and teacher-vc):

    FD     eq. 7: squared L2 between teacher and student F_attn, and between their F_av
    LD     eq. 8: tau^2 KL(p_T || p_S) on the fused frame logits [B, T, C]
    VC     eq. 9-10: view consistency of the model's own per-view frame predictions
    vis    the learned visibility (method vc_visibility "learned"): BCE of the student's
           visibility logits [B, N, T] against the teacher's per-view evidence for the
           sequence's labelled classes; VC then weighs view pairs by it instead of the masks
    modal  ModalKD: squared L2 student F_v -> teacher F_v, student pseudo-audio -> teacher F_a
    dual   DualKD: squared L2 on F_fusion

    loss = supervision + auxiliary + sum over the method's terms of weight * term

Supervision (eq. 5): "frame" = L_F + lambda L_S; "sequence" = L_S only. A model sees the batch
through `visible_batch`: a visual-only model (a student) never gets the audio, and under
"sequence" supervision nobody gets the frame labels, so they cannot be used by accident.

A frozen teacher (eval mode, no parameter requires grad), needed by FD, LD, modal and dual,
runs on the same sampled frames with its audio, in the same step under `torch.no_grad()`.
A new method is a row in vicokd.experiments; a new term is also one function in TERM_LOSSES.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import default
from .errors import VicokdError
from .experiments import SUPERVISIONS, TERMS, Method, get_method
from .losses import (FD_REDUCTIONS, feature_distillation, logit_distillation, supervised_loss,
                     view_consistency)
from .models import model_inputs
from .train import LossFn


@dataclass
class LossConfig:
    """What a run's loss reads from its teacher:/student: section (defaults: the schema's)."""
    lambda_seq: float = default("student.lambda_seq")
    tau: float = default("student.tau")
    weights: dict = field(default_factory=lambda: default("student.weights"))
    fd_reduction: str = default("student.fd_reduction")     # FD over D: "sum" (eq. 7) or "mean"

    @classmethod
    def of_student(cls, section: dict) -> "LossConfig":
        cfg = cls(lambda_seq=float(section["lambda_seq"]), tau=float(section["tau"]),
                  weights=dict(section["weights"]), fd_reduction=str(section["fd_reduction"]))
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

    @classmethod
    def of_teacher(cls, section: dict) -> "LossConfig":
        """The teachers distill nothing; teacher-vc weighs its VC by `teacher.vc_weight`."""
        return cls(lambda_seq=float(section["lambda_seq"]),
                   weights={"vc": float(section["vc_weight"])})


# -- the terms (pure functions of model outputs) -----------------------------------------------

def view_consistency_loss(out: dict, masks: torch.Tensor | None, method: Method
                          ) -> torch.Tensor:
    """VC (eq. 9-10) of the per-view frame logits [B, N, T, C] softmaxed per view, with the
    visibility [B, N, T] the method takes: the human masks, none, or the model's own learned
    visibility (its sigmoid, no gradient: only the `vis` term trains it)."""
    if method.vc_visibility == "learned":
        masks = torch.sigmoid(out["visibility_logits"].float()).detach()
    if masks is None and method.vc_use_mask:
        raise VicokdError(f"method '{method.name}' needs the human masks (masks.h5), and the "
                          "batch has none")
    probs = torch.softmax(out["view_frame_logits"].float(), dim=-1)
    if masks is None:
        masks = probs.new_ones(probs.shape[:3])
    return view_consistency(probs, masks.to(probs.device),
                            confidence_weighting=method.vc_confidence_weighting,
                            use_mask=method.vc_use_mask, divergence=method.vc_divergence)


def visibility_targets(teacher_out: dict, sequence_labels: torch.Tensor) -> torch.Tensor:
    """[B, N, T] in [0, 1]: per view and frame, the teacher's highest sigmoid score among the
    sequence's labelled classes (0 where it has none): where the teacher, which hears and was
    trained on frame labels, finds evidence of what happens in the sequence."""
    scores = torch.sigmoid(teacher_out["view_frame_logits"].float())            # [B, N, T, C]
    labelled = sequence_labels[:, None, None, :].to(scores.dtype)
    return (scores * labelled).amax(-1)


def learned_visibility_loss(student_out: dict, teacher_out: dict) -> torch.Tensor:
    """BCE of the student's visibility logits [B, N, T] against `visibility_targets`."""
    return torch.nn.functional.binary_cross_entropy_with_logits(
        student_out["visibility_logits"].float(), teacher_out["visibility_targets"])


def _pairs(s: dict, t: dict, *keys: str) -> tuple[list, list]:
    return [s[k].float() for k in keys], [t[k].float() for k in keys]


# Each term as term(student_out, teacher_out, masks, method, tau, fd_reduction) -> scalar, in
# the order the loss adds them. Features are [B, N, T, D]; FD averages the per-position squared
# distance over batch, views and frames (eq. 7), summed over D (or averaged: fd_reduction);
# ModalKD's and DualKD's squared L2 always sum. The student's F_a is its pseudo-audio (eq. 6).
TERM_LOSSES = {
    "fd": lambda s, t, masks, method, tau, fd_reduction: feature_distillation(
        *_pairs(s, t, "F_attn", "F_av"), fd_reduction),
    "ld": lambda s, t, masks, method, tau, fd_reduction: logit_distillation(
        s["frame_logits"].float(), t["frame_logits"].float(), tau),
    "modal": lambda s, t, masks, method, tau, fd_reduction: feature_distillation(
        *_pairs(s, t, "F_v", "F_a")),
    "dual": lambda s, t, masks, method, tau, fd_reduction: feature_distillation(
        *_pairs(s, t, "F_fusion")),
    "vc": lambda s, t, masks, method, tau, fd_reduction: view_consistency_loss(s, masks, method),
    "vis": lambda s, t, masks, method, tau, fd_reduction: learned_visibility_loss(s, t),
}
assert set(TERM_LOSSES) == set(TERMS)


def distillation_terms(method: Method, student_out: dict, teacher_out: dict | None,
                       masks: torch.Tensor | None, tau: float, fd_reduction: str = "sum"
                       ) -> dict[str, torch.Tensor]:
    """The method's unweighted terms {name: scalar}, in TERM_LOSSES order; FD sums over the D
    features as eq. 7 writes it (or, `fd_reduction` "mean", averages over them)."""
    if method.needs_teacher and teacher_out is None:
        raise VicokdError(f"method '{method.name}' needs the teacher's outputs")
    return {name: term(student_out, teacher_out, masks, method, tau, fd_reduction)
            for name, term in TERM_LOSSES.items() if name in method.terms}


# -- the training step's loss ------------------------------------------------------------------

def visible_batch(batch: dict, supervision: str, audio: bool = False) -> dict:
    """What a model may see: the audio only when it has an audio branch (the teachers), the
    frame labels only under frame supervision."""
    hidden = (set() if audio else {"fbank"}) | ({"frame_labels"} if supervision == "sequence"
                                                else set())
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


def make_loss(method: Method | str, supervision: str, cfg: LossConfig,
              teacher: torch.nn.Module | None = None) -> LossFn:
    """`loss_fn(model, batch) -> (loss, parts)` of one run (see the module docstring).

    The teacher (needed when the method distills) is frozen here and run on the full batch
    (frames + fbank) under no_grad; the model gets `visible_batch`."""
    method = get_method(method) if isinstance(method, str) else method
    if supervision not in SUPERVISIONS:
        raise VicokdError(f"unknown supervision '{supervision}' (one of {', '.join(SUPERVISIONS)})")
    if method.needs_teacher and teacher is None:
        raise VicokdError(f"method '{method.name}' needs a teacher model")
    if teacher is not None:
        freeze(teacher)

    def loss_fn(model, batch, keep: dict | None = None):
        """`keep` (a dict), when given, receives the model's outputs (`out`) and each weighted
        term of the loss as a tensor (`terms`: supervision, auxiliary, then the method's), so
        that the loop can measure how hard each one pulls (vicokd.train.term_gradient_norms)."""
        if "vis" in method.terms and not model.cfg.visibility_head:
            raise VicokdError(f"method '{method.name}' learns a visibility: the model needs its "
                              "head (model_config(..., visibility_head=True))")
        teacher_out = None
        if method.needs_teacher:
            if "fbank" not in batch:
                raise VicokdError(f"method '{method.name}': the teacher needs audio (audio.h5), "
                                  "and the batch has none")
            teacher.eval()     # even if a caller switched it back to train mode
            with torch.no_grad():
                teacher_out = teacher(batch["frames"], batch["fbank"])
                if "vis" in method.terms:
                    teacher_out["visibility_targets"] = visibility_targets(
                        teacher_out, batch["sequence_labels"])
        seen = visible_batch(batch, supervision, audio=bool(model.cfg.audio))
        if supervision == "frame" and "frame_labels" not in seen:
            raise VicokdError("frame supervision needs frame labels, and the batch has none")
        out = model(*model_inputs(model, seen))
        supervision_loss, parts = supervised_loss(out, seen, cfg.lambda_seq, supervision)
        aux, aux_parts = model.auxiliary_loss(out, seen)
        loss = supervision_loss + aux
        parts.update(aux_parts)
        weighted = {"supervision": supervision_loss, "auxiliary": aux}
        for name, value in distillation_terms(method, out, teacher_out, seen.get("masks"),
                                              cfg.tau, cfg.fd_reduction).items():
            weighted[name] = cfg.weights[name] * value
            loss = loss + weighted[name]
            parts[name] = float(value.detach())
        if keep is not None:
            keep.update(out=out, terms=weighted)
        return loss, parts

    return loss_fn
