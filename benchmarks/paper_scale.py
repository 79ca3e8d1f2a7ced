"""The paper-scale models and batches that bench_paper (CPU) and bench_gpu (CUDA) time:
config.yaml with config/paper.yaml merged on top, as `snakemake --configfile config/paper.yaml`
reads it, every encoder checkpoint replaced by a random initialisation of the same shapes
(nothing is on this machine; the cost of a step does not depend on the weights)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
METHOD = "vicokd"            # the student step distills with every term (FD + LD + VC)


def merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, recursively (how Snakemake merges a --configfile)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def paper_config() -> dict:
    """config.yaml + config/paper.yaml, with no checkpoint to load."""
    cfg = merge(yaml.safe_load((REPO / "config.yaml").read_text()),
                yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    for enc in cfg["model"].values():
        if isinstance(enc, dict) and "checkpoint" in enc:
            enc["checkpoint"] = None
    return cfg


def segment_length(cfg: dict) -> int:
    """L: fbank frames per decoded frame (0.4 s at 2.5 FPS, 25 ms window, 10 ms shift: 38)."""
    a, fps = cfg["audio"], float(cfg["decode"]["fps"])
    return int((1000.0 / fps - a["frame_length_ms"]) // a["frame_shift_ms"]) + 1


def build(cfg: dict, backbone: str, role: str, device="cpu"):
    """(model to train, loss_fn, frozen teacher or None) of `role` ("teacher" or "student")."""
    import torch

    from vicokd.config import fill
    from vicokd.distill import LossConfig, make_loss
    from vicokd.model_configs import model_config
    from vicokd.models import build_model

    sec, classes = cfg["model"], len(cfg["dataset"]["classes"])
    mel, seg = int(cfg["audio"]["mel_bins"]), segment_length(cfg)
    torch.manual_seed(0)
    teacher = build_model(model_config(sec, backbone, classes, mel_bins=mel, audio_length=seg,
                                       audio=True)).to(device)
    if role == "teacher":
        return teacher.train(), make_loss("teacher", "frame", LossConfig(lambda_seq=1.0)), None
    student = build_model(model_config(sec, backbone, classes, mel_bins=mel, audio_length=seg,
                                       audio=False)).to(device).train()
    loss_fn = make_loss(METHOD, "frame", LossConfig.of_student(fill("student", cfg["student"])), teacher)
    return student, loss_fn, teacher


def random_batch(cfg: dict, batch: int, views: int, device="cpu", raw: bool = False) -> dict:
    """One batch of the paper's shapes: frames [B, N, T, 3, S, S] (uint8 when `raw`), fbank,
    frame and sequence labels, masks."""
    import torch

    g = torch.Generator().manual_seed(0)
    t, size = int(cfg["model"]["frames"]), int(cfg["model"]["image_size"])
    classes, mel, seg = len(cfg["dataset"]["classes"]), int(cfg["audio"]["mel_bins"]), segment_length(cfg)
    frames = torch.randint(0, 256, (batch, views, t, 3, size, size), dtype=torch.uint8, generator=g)
    if not raw:
        frames = (frames.float() / 255 - 0.5) / 0.5
    fbank = torch.randn(batch, views, t, seg, mel, generator=g)
    frame_labels = (torch.rand(batch, t, classes, generator=g) < 0.15).float()
    out = {"frames": frames, "fbank": fbank.half() if raw else fbank,
           "frame_labels": frame_labels, "sequence_labels": frame_labels.amax(1),
           "masks": (torch.rand(batch, views, t, generator=g) < 0.5).float()}
    return {k: v.to(device) for k, v in out.items()}


def train_step(model, loss_fn, optimizer, batch: dict, device_type: str, bf16: bool = True) -> float:
    """One training step as vicokd.train.fit runs it; returns the loss."""
    import torch

    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        loss, _ = loss_fn(model, batch)
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite loss {float(loss)}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def timed(fn, sync=lambda: None) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


# frames.h5 layouts a fabricated home can take: the decode stage's (what a user's run writes) and
# the one-chunk-per-view layout that decode wrote before issue 20 (files made then still work).
LAYOUTS = ("decode", "view")


def fabricate_home(root: Path, cfg: dict, sequences: int, views: int, length: int, size: int,
                   seed: int = 0, layout: str = "decode"):
    """Paper-shaped artifacts (frames.h5 uint8 [V, L, size, size, 3] in `layout`, audio.h5,
    labels.h5, masks.h5, split.json) with random content; returns DataFiles."""
    import numpy as np

    from vicokd.data.dataset import DataFiles
    from vicokd.data.decode import write_frames
    from vicokd.storage import atomic_h5, write_dataset, write_json

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    rng = np.random.default_rng(seed)
    classes = list(cfg["dataset"]["classes"])
    c, mel, seg = len(classes), int(cfg["audio"]["mel_bins"]), segment_length(cfg)
    ids = [f"seq{i:03d}" for i in range(sequences)]
    root.mkdir(parents=True, exist_ok=True)
    paths = {k: root / f"{k}.h5" for k in ("frames", "audio", "labels", "masks")}
    block = rng.integers(0, 256, (views, length, size, size, 3), dtype=np.uint8)
    with atomic_h5(paths["frames"], "frames") as ff, atomic_h5(paths["audio"], "audio") as fa, \
            atomic_h5(paths["labels"], "labels", classes=classes) as fl, \
            atomic_h5(paths["masks"], "masks") as fm:
        fa.attrs["fbank_mean"], fa.attrs["fbank_std"] = -4.27, 4.57
        for k, sid in enumerate(ids):
            frames = np.roll(block, k, axis=1)           # distinct blocks, no new random draw
            if layout == "decode":
                write_frames(ff.create_group(sid), frames)
            else:
                write_dataset(ff.create_group(sid), "frames", frames, ("V", "T", "H", "W", "3"),
                              chunks=(1,) + frames.shape[1:])
            write_dataset(fa.create_group(sid), "fbank",
                          rng.normal(-4, 4, (views, length, seg, mel)).astype(np.float16),
                          ("V", "T", "L", "mel"))
            y = (rng.random((length, c)) < 0.15).astype(np.uint8)
            g = fl.create_group(sid)
            write_dataset(g, "frame_labels", y, ("T", "C"))
            write_dataset(g, "sequence_labels", y.max(0), ("C",))
            write_dataset(fm.create_group(sid), "mask", rng.random((views, length)) < 0.5, ("V", "T"))
    half = max(1, sequences // 2)
    write_json(root / "split.json", {"train": ids, "test": ids[:half]})
    return DataFiles(frames=str(paths["frames"]), audio=str(paths["audio"]),
                     labels=str(paths["labels"]), split=str(root / "split.json"),
                     masks=str(paths["masks"]))
