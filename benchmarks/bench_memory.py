"""Activation memory of the paper-sized teacher (config/paper.yaml), measured on the CPU.

Counts the bytes autograd saves for the backward pass (saved-tensor hooks, each storage once)
for a few frames, with and without gradient checkpointing, under bf16 autocast, and scales
them to one training step (batch x views x T frames). Parameters + Adam state are counted
from the model. Usage: python -m benchmarks memory [--views 5]. Writes
benchmarks/results/memory.json and prints it. An estimate for the GPU: allocator overhead,
cuDNN workspaces and fragmentation come on top."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def saved_bytes(model, frames, fbank) -> int:
    import torch

    seen: dict[tuple, int] = {}

    def pack(t):
        try:
            key = (t.untyped_storage().data_ptr(), t.device.type)
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except RuntimeError:
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(frames, fbank)
            loss = out["sequence_logits"].float().sum() + out["frame_logits"].float().sum()
    loss.backward()
    return sum(seen.values())


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--frames-probe", type=int, default=4, help="frames measured, then scaled")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "memory.json"))
    args = ap.parse_args(list(argv))

    import torch
    import yaml

    from vicokd.model_configs import model_config
    from vicokd.models import build_model

    torch.set_num_threads(1)
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    sec = paper["model"]
    sec["vit"]["checkpoint"] = sec["ast"]["checkpoint"] = None     # same shapes, random init
    t_probe, lf, mel = args.frames_probe, 38, 128
    result = {"config": "config/paper.yaml", "views": args.views, "T": sec["frames"],
              "batch": paper["teacher"]["batch_size"], "classes": 16}
    for ckpt in (False, True):
        sec["gradient_checkpointing"] = ckpt
        torch.manual_seed(0)
        model = build_model(model_config(sec, "multitsf", 16, mel_bins=mel, audio_length=lf)).train()
        # two probe sizes: the slope is the per-frame cost, the rest is fixed per step (e.g. the
        # bf16 copies of the weights that autocast saves)
        sizes = (t_probe, 2 * t_probe)
        totals = []
        for t in sizes:
            frames = torch.randn(1, 1, t, 3, sec["image_size"], sec["image_size"])
            fbank = torch.randn(1, 1, t, lf, mel)
            totals.append(saved_bytes(model, frames, fbank))
        per_frame = (totals[1] - totals[0]) / (sizes[1] - sizes[0])
        fixed = totals[0] - per_frame * sizes[0]
        items = result["batch"] * args.views * sec["frames"]
        result[f"activations_gb_checkpointing_{ckpt}"] = round((fixed + per_frame * items) / 1e9, 2)
        result[f"activation_mb_per_view_frame_checkpointing_{ckpt}"] = round(per_frame / 1e6, 3)
        result[f"fixed_mb_checkpointing_{ckpt}"] = round(fixed / 1e6, 1)
    n = sum(p.numel() for p in model.parameters())
    result["parameters_millions"] = round(n / 1e6, 1)
    # fp32 weights + grads + Adam's two moments
    result["weights_grads_adam_gb"] = round(16 * n / 1e9, 2)
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
