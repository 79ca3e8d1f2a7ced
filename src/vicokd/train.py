"""The training loop shared by the teacher and the students.

Interface (read top to bottom):

    result = fit(model, loss_fn, train_set, test_set, cfg, checkpoint_path, fingerprint)

- `model`: a `vicokd.models.AVModel` (teacher or student); `model(frames, fbank)` returns the
  dict described in `vicokd.models`.
- `loss_fn(model, batch, keep=None) -> (loss, parts)`: `batch` is a dict of tensors already on the model's
  device (see `vicokd.data.dataset`); `loss` a scalar tensor, `parts` a dict of floats that is
  averaged per epoch and logged. `vicokd.distill.make_loss` makes every run's (the teacher's,
  teacher-vc's, a student's that also runs its frozen teacher).
- `train_set`, `test_set`: `vicokd.data.dataset.SequenceDataset` (training and evaluation
  sampling).
- `cfg`: `TrainConfig` (epochs, lr, weight decay, batch size, seed, device, bf16, workers).
- `checkpoint_path`: where `last.pt` goes after every epoch — NOT a declared Snakemake output
  (Snakemake deletes those before a job runs), e.g.
  `results/checkpoints/{env}/{backbone}/{run}/last.pt`. When the file exists, training resumes
  from it: model, optimiser, scheduler, history and every RNG state, so a killed job run again
  ends with the same metrics as an uninterrupted one. The `fingerprint` (a JSON-able dict of
  everything that defines the run) says what may resume: made by another config, it is a
  one-line VicokdError; made on other input data (its DATA_KEYS, e.g. `inputs`, the identity of
  each input artifact, differ: an upstream stage reran), the run starts afresh with a warning.
- Adam (weight decay), cosine annealing over the epochs from `lr` to `lr_min` (the authors'
  code ends at 1e-5; the embedded default at 0), one scheduler step per epoch; after
  every epoch an evaluation on `test_set` (sequence and frame mAP); tqdm shows loss and mAP.
- A NaN/inf loss stops with a VicokdError naming the epoch and step.

`fit` returns a `FitResult` (the per-epoch curve and the final test predictions);
`predict(model, dataset, ...)` gives sigmoid scores per test sequence.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .config import default, typed
from .data.dataset import EvaluationPasses
from .data.frames import collate_items
from .errors import VicokdError
from .metrics import authors_protocol_map, frame_mean_average_precision, mean_average_precision
from .models import model_inputs, resolve_device
from .storage import atomic_path

log = logging.getLogger("vicokd.train")

LossFn = Callable[..., "tuple[torch.Tensor, dict[str, float]]"]
# curve.csv: these columns, then per loss part `part_<name>` (its mean over the epoch's steps,
# unweighted) and per weighted term `grad_logits_<term>`, `grad_first_<term>` (term_gradient_norms
# on the epoch's first batch).
CURVE_COLUMNS = ("epoch", "train_loss", "test_map", "test_frame_map", "lr", "seconds")


@dataclass
class TrainConfig:
    """The loop's settings, from a teacher:/student: section and the device switches of
    `model:` (`train_config`). Defaults: the schema's `teacher:` and `model:` keys (`student:`
    declares the same keys)."""
    epochs: int
    lr: float
    weight_decay: float = default("teacher.weight_decay")
    lr_min: float = default("teacher.lr_min")           # where the cosine schedule ends (eta_min)
    batch_size: int = default("teacher.batch_size")
    seed: int = default("teacher.seed")
    device: str = default("model.device")
    bf16: bool = default("model.bf16")
    workers: int | str = default("teacher.workers")  # DataLoader processes, or "auto" (loader_workers)
    pin_memory: bool = default("teacher.pin_memory")    # page-locked batches: async GPU copies
    normalize_on_device: bool = default("teacher.normalize_on_device")  # uint8 frames to the GPU
    progress: bool = True


@dataclass
class FitResult:
    curve: list[dict]
    predictions: dict
    seconds: float
    resumed_from: int = 0


# -- data -----------------------------------------------------------------------------------------
def make_loader(dataset, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0,
                workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Shuffling depends on (seed, epoch) only, so a resumed run draws the same batches."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=workers, persistent_workers=False, drop_last=False,
                      pin_memory=pin_memory and torch.cuda.is_available(),
                      collate_fn=collate_items)


def loader_workers(setting: int | str, device: torch.device, threads: int | None = None) -> int:
    """DataLoader processes for teacher/student `workers`: a number as given; `auto`: none when
    training on the CPU (a worker would take a core from the step), else one per thread of the
    job (`threads`, default torch's, which the run sets from Snakemake's) but the one the
    training process keeps, at least one: at the paper's scale the GPU otherwise waits."""
    if setting != "auto":
        return int(setting)
    if torch.device(device).type != "cuda":
        return 0
    return max(1, (torch.get_num_threads() if threads is None else int(threads)) - 1)


def to_device(batch: dict, device: torch.device, dataset=None) -> dict:
    """The batch on `device` (asynchronous from pinned memory), normalised there when the
    dataset hands out raw items (`normalize_on_device`)."""
    batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
             for k, v in batch.items()}
    return dataset.on_device(batch) if getattr(dataset, "raw", False) else batch


# -- evaluation -----------------------------------------------------------------------------------
@torch.no_grad()
def predict(model, dataset, batch_size: int = 8, device: torch.device | str = "cpu",
            bf16: bool = False, workers: int = 0, pin_memory: bool = False) -> dict:
    """Sigmoid scores on every sequence of `dataset` and on every one of its decoded frames
    (`EvaluationPasses`), as numpy arrays: sequence_scores [S, C] and sequence_labels [S, C]
    (from pass 0, evaluation sampling), sequence_logits [S, C] beside them, has_frame_labels [S]
    (bool: weakly labelled sequences have none); per sequence s, lists of frame_scores [L_s, C],
    view_frame_scores [N, L_s, C], frame_labels [L_s, C] and frame_index [L_s] (0..L_s-1)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    n = len(dataset)
    seq_scores: list = [None] * n
    seq_labels: list = [None] * n
    seq_logits: list = [None] * n
    frames: list = [None] * n
    views: list = [None] * n
    for batch in make_loader(EvaluationPasses(dataset), batch_size, False, workers=workers,
                             pin_memory=pin_memory):
        batch = to_device(batch, device, dataset)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(*model_inputs(model, batch))
        seq = torch.sigmoid(out["sequence_logits"].float()).cpu().numpy()
        frame = torch.sigmoid(out["frame_logits"].float()).cpu().numpy()
        view = torch.sigmoid(out["view_frame_logits"].float()).cpu().numpy()
        for j, i in enumerate(batch["index"].tolist()):
            length = dataset.sequences[i].length
            if frames[i] is None:
                frames[i] = np.zeros((length, frame.shape[-1]), np.float32)
                views[i] = np.zeros((view.shape[1], length, view.shape[-1]), np.float32)
            idx = batch["frame_index"][j].cpu().numpy()
            frames[i][idx] = frame[j]
            views[i][:, idx] = view[j]
            if int(batch["pass"][j]) == 0:
                seq_scores[i] = seq[j]
                seq_logits[i] = out["sequence_logits"][j].float().cpu().numpy()
                seq_labels[i] = batch["sequence_labels"][j].cpu().numpy()
    model.train(was_training)
    return {"sequence_scores": np.stack(seq_scores), "sequence_labels": np.stack(seq_labels),
            "sequence_logits": np.stack(seq_logits),
            "has_frame_labels": np.array([getattr(s, "has_frame_labels", True)
                                          for s in dataset.sequences], dtype=bool),
            "frame_scores": frames, "view_frame_scores": views,
            "frame_labels": [dataset.frame_labels(i).astype(np.float32) for i in range(n)],
            "frame_index": [np.arange(dataset.sequences[i].length, dtype=np.int64)
                            for i in range(n)]}


def score(pred: dict) -> tuple[float, float]:
    """(sequence mAP %, frame mAP %) of `predict`'s output; frame mAP over the sequences with
    frame labels (NaN when none has)."""
    return (mean_average_precision(pred["sequence_labels"], pred["sequence_scores"]),
            frame_mean_average_precision(pred["frame_labels"], pred["frame_scores"],
                                         pred.get("has_frame_labels")))


def authors_map(pred: dict, model) -> float:
    """The sequence mAP as the authors' code of the model's backbone scores it
    (metrics.authors_protocol_map): what their best-epoch selection reads."""
    backbone = getattr(getattr(model, "cfg", None), "backbone", "")
    return authors_protocol_map(pred["sequence_labels"], pred["sequence_scores"],
                                pred["sequence_logits"], backbone)


def term_gradient_norms(model, keep: dict) -> dict[str, float]:
    """How hard each weighted loss term of one batch pulls: the L2 norm of its gradient on the
    per-view frame logits [B, N, T, C] (what view consistency acts on) and on the model's first
    trained layer (`model.first_layer()`, what every term reaches). `keep`: what the loss
    function stored (vicokd.distill.make_loss). A term with no path to a tensor counts 0."""
    logits, first = keep["out"]["view_frame_logits"], model.first_layer()
    norms = {}
    for name, value in keep["terms"].items():
        grads = (None, None)
        if value.requires_grad:
            grads = torch.autograd.grad(value, [logits, first], retain_graph=True,
                                        allow_unused=True)
        for where, g in zip(("logits", "first"), grads):
            norms[f"grad_{where}_{name}"] = 0.0 if g is None else float(g.float().norm())
    return norms


# -- checkpoints ----------------------------------------------------------------------------------
def _rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def fingerprint_text(fingerprint: dict) -> str:
    """The fingerprint as it is stored and compared: JSON with sorted keys."""
    return json.dumps(fingerprint, sort_keys=True, default=str)


def save_checkpoint(path: Path, model, optimizer, scheduler, epoch: int, curve: list,
                    fingerprint: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "curve": curve, "rng": _rng_states(),
                    "fingerprint": fingerprint_text(fingerprint)}, tmp)


# Fingerprint keys that say which data a run reads, not how it trains: a checkpoint made on
# other data (an upstream stage reran) is stale, not a fault; the run starts afresh with a warning.
DATA_KEYS = ("inputs", "classes", "audio_shape", "train", "test")


def load_checkpoint(path: Path, fingerprint: dict, device) -> dict | None:
    """The state saved in `path`; None (and a warning) when it was made on other input data;
    a one-line VicokdError when it was made by another config or is unreadable."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        found = state["fingerprint"]
    except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint is one clear line
        raise VicokdError(f"{path}: unreadable training checkpoint ({type(exc).__name__}); "
                          "delete it to start over") from None
    if found != fingerprint_text(fingerprint):
        old, new = json.loads(found), json.loads(fingerprint_text(fingerprint))
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if keys and set(keys) <= set(DATA_KEYS):
            changed = sorted(set(old.get("inputs") or {}) | set(new.get("inputs") or {}))
            changed = [n for n in changed if (old.get("inputs") or {}).get(n)
                       != (new.get("inputs") or {}).get(n)]
            log.warning("%s: checkpoint made on other input data (differs in: %s); starting "
                        "afresh", path, ", ".join(changed or keys))
            return None
        raise VicokdError(f"{path}: checkpoint was made by another config (differs in: "
                          f"{', '.join(keys) or 'layout'}); delete it to start over")
    return state


# -- the loop -------------------------------------------------------------------------------------
def fit(model, loss_fn: LossFn, train_set, test_set, cfg: TrainConfig, checkpoint_path,
        fingerprint: dict, on_epoch_end: Callable[[int, dict], None] | None = None) -> FitResult:
    """Train `model` with `loss_fn`; see the module docstring."""
    device = resolve_device(cfg.device)
    cfg = replace(cfg, workers=loader_workers(cfg.workers, device))
    checkpoint_path = Path(checkpoint_path)
    model.to(device)
    for dataset in (train_set, test_set):
        if hasattr(dataset, "raw"):
            dataset.raw = cfg.normalize_on_device
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1),
                                                           eta_min=cfg.lr_min)
    curve: list[dict] = []
    start = 0
    state = load_checkpoint(checkpoint_path, fingerprint, device) if checkpoint_path.is_file() else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        curve = state["curve"]
        start = state["epoch"]
        _set_rng_states(state["rng"])
        log.info("resuming from %s after epoch %d of %d", checkpoint_path, start, cfg.epochs)
    else:
        # dropout draws from torch's global RNG: seed it here so that runs repeat
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
    elapsed = sum(row["seconds"] for row in curve)

    pred = None
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="train",
               unit="epoch", disable=not cfg.progress)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        losses, part_sums, pulls = [], {}, {}
        loader = make_loader(train_set, cfg.batch_size, True, cfg.seed, epoch, cfg.workers,
                             cfg.pin_memory)
        for step, batch in enumerate(loader):
            batch = to_device(batch, device, train_set)
            keep = {} if step == 0 else None
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss, parts = loss_fn(model, batch, keep=keep)
            if not torch.isfinite(loss):
                raise VicokdError(f"{checkpoint_path.parent}: non-finite loss ({float(loss.detach())}) at "
                                  f"epoch {epoch + 1}, step {step + 1}; parts {parts}")
            if keep:                     # the epoch's first batch: how hard each term pulls
                pulls = term_gradient_norms(model, keep)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            for k, v in parts.items():
                part_sums[k] = part_sums.get(k, 0.0) + v
        scheduler.step()
        pred = predict(model, test_set, cfg.batch_size, device, cfg.bf16, cfg.workers,
                       cfg.pin_memory)
        test_map, test_frame_map = score(pred)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "test_map": test_map,
               "test_frame_map": test_frame_map, "lr": lr, "seconds": seconds,
               "authors_map": authors_map(pred, model),   # the authors'-protocol figure
               **{f"part_{k}": v / max(len(losses), 1) for k, v in part_sums.items()}, **pulls}
        curve.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", mAP=f"{test_map:.1f}",
                        frame_mAP=f"{test_frame_map:.1f}")
        log.info("epoch %d/%d loss %.4f %s test mAP %.2f frame mAP %.2f (%.1fs)", epoch + 1,
                 cfg.epochs, row["train_loss"],
                 " ".join(f"{k} {v / max(len(losses), 1):.3f}" for k, v in part_sums.items()),
                 test_map, test_frame_map, seconds)
        save_checkpoint(checkpoint_path, model, optimizer, scheduler, epoch + 1, curve, fingerprint)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    bar.close()
    if pred is None:                    # resumed after the last epoch: only evaluate
        pred = predict(model, test_set, cfg.batch_size, device, cfg.bf16, cfg.workers,
                       cfg.pin_memory)
    return FitResult(curve=curve, predictions=pred, seconds=elapsed, resumed_from=start)


def train_config(section: dict, model_section: dict, seed: int | None = None) -> TrainConfig:
    """TrainConfig from a complete teacher:/student: section plus the device switches of a
    complete `model:` section; `seed` (a student's, from its run) overrides the section's."""
    values = {**section, "device": str(model_section["device"]), "bf16": bool(model_section["bf16"])}
    if seed is not None:
        values["seed"] = seed
    cfg = typed(TrainConfig, values)
    # numbers as numbers also from a config that skipped the schema check (YAML reads 1e-3 as text)
    return replace(cfg, epochs=int(cfg.epochs), lr=float(cfg.lr), lr_min=float(cfg.lr_min),
                   weight_decay=float(cfg.weight_decay), batch_size=int(cfg.batch_size),
                   seed=int(cfg.seed))
