"""Loss functions of the paper, as pure functions of tensors.

- `two_way_loss`: the Two-way multi-label loss (Kobayashi, CVPR 2023) used for frame and
  sequence supervision (eq. 5).
- `supervised_loss`: the supervision of eq. 5 on a model's outputs, L = L_F + lambda L_S.
- `feature_distillation`: FD, eq. 7 (squared Euclidean distance per position).
- `logit_distillation`: LD, eq. 8 (tau^2 * KL(p_T || p_S) per position).
- `view_consistency`: VC, eq. 9-10 (masked, confidence-weighted JS between view pairs).

Shapes: B sequences, N views, T frames, C classes, D features. Every function returns a
scalar tensor that keeps the autograd graph of its (student) inputs, also when the loss is 0,
so callers can always sum and backpropagate.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .errors import VicokdError
from .experiments import SUPERVISIONS

__all__ = ["two_way_loss", "supervised_loss", "feature_distillation", "logit_distillation",
           "view_consistency", "DIVERGENCES"]

DIVERGENCES = ("js", "kl")


def _zero_like_graph(x: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that is still connected to `x` (so `.backward()` works and gives 0 grads)."""
    return x.sum() * 0.0


def _masked_logsumexp(v: torch.Tensor, mask: torch.Tensor, dim: int):
    """logsumexp of `v` over the entries where `mask` is True, along `dim`.

    Returns (lse, has): `has` says whether the line had any entry. Lines with none get a
    finite placeholder (never used by callers) instead of -inf, because the backward pass of
    logsumexp over all -inf produces NaN gradients."""
    has = mask.any(dim=dim)
    filled = v.masked_fill(~mask, float("-inf"))
    filled = torch.where(has.unsqueeze(dim), filled, torch.zeros_like(filled))
    return torch.logsumexp(filled, dim=dim), has


def two_way_loss(logits: torch.Tensor, targets: torch.Tensor, tp: float = 4.0,
                 tn: float = 1.0) -> torch.Tensor:
    """Two-way multi-label loss of logits `[N, C]` against 0/1 targets `[N, C]` -> scalar.

    Class-wise term: for each class (column) with at least one positive row,
    `softplus(tp * logsumexp(-x[pos] / tp) + tn * logsumexp(x[neg] / tn))`, averaged over
    those classes. Sample-wise term: the same over each row with at least one positive,
    averaged over those rows. A column or row without negatives contributes 0 (the
    log-sum-exp over nothing is -inf and softplus(-inf) = 0) but still counts in its mean.
    With no positive at all the loss is 0. Returns the sum of the two terms.
    """
    if logits.ndim != 2 or logits.shape != targets.shape:
        raise ValueError(f"two_way_loss: logits {tuple(logits.shape)} and targets "
                         f"{tuple(targets.shape)} must both be [N, C]")
    pos = targets > 0
    neg = ~pos
    if not bool(pos.any()):
        return _zero_like_graph(logits)
    total = logits.new_zeros(())
    for dim in (0, 1):  # dim 0: per class (over rows); dim 1: per row (over classes)
        lse_pos, has_pos = _masked_logsumexp(-logits / tp, pos, dim)
        lse_neg, has_neg = _masked_logsumexp(logits / tn, neg, dim)
        term = F.softplus(tp * lse_pos + tn * lse_neg)
        term = torch.where(has_neg, term, torch.zeros_like(term))
        total = total + term[has_pos].mean()
    return total


def supervised_loss(out: dict, batch: dict, lambda_seq: float = 1.0,
                    supervision: str = "frame") -> tuple[torch.Tensor, dict]:
    """L = L_F + lambda L_S (two-way loss); `supervision="sequence"` keeps L_S only.

    L_F: fused frame logits [B, T, C] vs frame labels, frames flattened to rows [B*T, C];
    L_S: sequence logits [B, C] vs sequence labels [B, C]. With weak labels the batch's
    `has_frame_labels` [B] (0/1) says which sequences have frame labels: L_F takes the rows of
    those only (0, still on the graph, when the batch has none); L_S takes every sequence."""
    seq = two_way_loss(out["sequence_logits"].float(), batch["sequence_labels"])
    parts = {"seq": float(seq.detach())}
    if supervision == "sequence":
        return lambda_seq * seq, parts
    if supervision != "frame":
        raise VicokdError(f"unknown supervision '{supervision}' ({' | '.join(SUPERVISIONS)})")
    logits, labels = out["frame_logits"].float(), batch["frame_labels"]
    c = logits.shape[-1]
    if "has_frame_labels" in batch:
        keep = batch["has_frame_labels"].reshape(-1) > 0
        logits, labels = logits[keep], labels[keep]
    frame = two_way_loss(logits.reshape(-1, c), labels.reshape(-1, c)) if logits.numel() \
        else _zero_like_graph(out["frame_logits"].float())
    parts["frame"] = float(frame.detach())
    return frame + lambda_seq * seq, parts


FD_REDUCTIONS = ("sum", "mean")


def feature_distillation(student_feats: Sequence[torch.Tensor],
                         teacher_feats: Sequence[torch.Tensor],
                         reduction: str = "sum") -> torch.Tensor:
    """FD (eq. 7): for each (student, teacher) pair of tensors `[..., D]`, the mean over every
    leading position of `sum_D (s - t)^2`; the pairs summed -> scalar.

    E.g. pairs of `[B, N, T, D]` features give the squared distance averaged over batch, views
    and frames. (Not `F.mse_loss`, which would also divide by D.) `reduction="mean"` takes
    the mean over D in place of the sum (the term divided by D: `student.fd_reduction`, so that
    its size does not grow with the feature width). The teacher tensors are targets: they are
    detached, so no gradient reaches the teacher.
    """
    if reduction not in FD_REDUCTIONS:
        raise ValueError(f"feature_distillation: reduction '{reduction}' is not one of "
                         f"{', '.join(FD_REDUCTIONS)}")
    student_feats, teacher_feats = list(student_feats), list(teacher_feats)
    if not student_feats or len(student_feats) != len(teacher_feats):
        raise ValueError(f"feature_distillation: {len(student_feats)} student and "
                         f"{len(teacher_feats)} teacher tensors; need equal, non-zero counts")
    total = None
    for s, t in zip(student_feats, teacher_feats):
        if s.shape != t.shape:
            raise ValueError(f"feature_distillation: student {tuple(s.shape)} vs teacher "
                             f"{tuple(t.shape)}")
        squared = (s - t.detach().to(s.dtype)).pow(2)
        d = (squared.sum(dim=-1) if reduction == "sum" else squared.mean(dim=-1)).mean()
        total = d if total is None else total + d
    return total


def logit_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       tau: float) -> torch.Tensor:
    """LD (eq. 8): `tau^2 * KL(p_T || p_S)` with `p = softmax(logits / tau)` over the last
    axis, averaged over every leading position -> scalar. Logits `[..., C]`, e.g. the fused
    frame logits `[B, T, C]` (mean over batch and frames; not `kl_div`'s "batchmean", which
    divides by the first dimension only). The teacher logits are detached.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logit_distillation: student {tuple(student_logits.shape)} vs "
                         f"teacher {tuple(teacher_logits.shape)}")
    if tau <= 0:
        raise ValueError(f"logit_distillation: tau must be > 0, got {tau}")
    log_ps = F.log_softmax(student_logits / tau, dim=-1)
    log_pt = F.log_softmax(teacher_logits.detach().to(student_logits.dtype) / tau, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=-1)
    return (tau ** 2) * kl.mean()


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis, natural log, finite for zero probabilities
    (0 * log 0 = 0; a zero in q where p > 0 is clamped to the smallest normal float)."""
    tiny = torch.finfo(p.dtype).tiny
    return (p * (p.clamp_min(tiny).log() - q.clamp_min(tiny).log())).sum(dim=-1)


def view_consistency(probs: torch.Tensor, masks: torch.Tensor,
                     confidence_weighting: bool = True, use_mask: bool = True,
                     divergence: str = "js") -> torch.Tensor:
    """VC (eq. 9-10) of per-view class distributions `probs [B, N, T, C]` (rows sum to 1)
    with visibility masks `masks [B, N, T]` (bool or 0/1) -> scalar.

    For every view pair i < j and frame t: `w * m_i * m_j * JS(p_i, p_j)`, with
    `w = max_c p_i * max_c p_j` (a weight: computed without gradient). The terms are summed,
    divided by (number of pairs * T) and averaged over the batch; 0 when N = 1.
    Switches (the paper's ablations): `confidence_weighting=False` sets w = 1,
    `use_mask=False` ignores the masks, `divergence="kl"` uses KL(p_i || p_j) in place of JS.
    """
    if probs.ndim != 4:
        raise ValueError(f"view_consistency: probs must be [B, N, T, C], got {tuple(probs.shape)}")
    if tuple(masks.shape) != tuple(probs.shape[:3]):
        raise ValueError(f"view_consistency: masks {tuple(masks.shape)} must be [B, N, T] = "
                         f"{tuple(probs.shape[:3])}")
    if divergence not in DIVERGENCES:
        raise ValueError(f"view_consistency: divergence must be one of {DIVERGENCES}, "
                         f"got {divergence!r}")
    _, n_views, n_frames, _ = probs.shape
    if n_views < 2:
        return _zero_like_graph(probs)
    i_idx, j_idx = torch.triu_indices(n_views, n_views, offset=1, device=probs.device)
    p_i, p_j = probs[:, i_idx], probs[:, j_idx]            # [B, P, T, C]
    if divergence == "js":
        m = 0.5 * (p_i + p_j)
        div = 0.5 * _kl(p_i, m) + 0.5 * _kl(p_j, m)        # [B, P, T]
    else:
        div = _kl(p_i, p_j)
    if confidence_weighting:
        with torch.no_grad():                              # a weight, not a target
            conf = probs.amax(dim=-1)                      # [B, N, T]
            weight = conf[:, i_idx] * conf[:, j_idx]
        div = div * weight
    if use_mask:
        mk = masks.to(probs.dtype)
        div = div * (mk[:, i_idx] * mk[:, j_idx])
    n_pairs = i_idx.numel()
    return div.sum(dim=(1, 2)).div(n_pairs * n_frames).mean()
