"""The paper's scale on a CUDA GPU, in one command of at most ~5 minutes:
`python -m benchmarks gpu`.

At config/paper.yaml's scale (batch 12 x 5 views x T = 70, ViT-S/32 at 224 px, bf16 autocast,
gradient checkpointing) it measures, per backbone, the teacher's and the ViCoKD student's
training step time and peak GPU memory, and the share of the step spent waiting for data when
the batches come through the training loop's own path (vicokd.train.make_loader with the
DataLoader workers, pinned memory, uint8 frames normalised on the GPU) from a fabricated home
of paper-size HDF5 artifacts on local disk; then YOLOv10 mask throughput on the GPU (the masks
rule's PersonDetector, at 640 px as the official weights are trained). Writes
benchmarks/results/gpu.json and prints it. Without a CUDA GPU it says so and exits 0, writing
nothing. Random weights of the same shapes stand in for every checkpoint (the cost of a step
does not depend on them); masks.weights is used when that file exists.

Options: --backbones, --workers (default: teacher.workers of config/paper.yaml), --steps,
--budget (seconds; backbones left when it runs out are listed as skipped), --work (where the
fabricated home goes; default a temporary folder, deleted after)."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402

BACKBONES = ("multitrans", "multiasl", "multitsf")


def measure_training(cfg: dict, files, backbone: str, role: str, device, workers: int,
                     steps: int, warmup: int) -> dict:
    """Steps of `role` through the training loop's data path; wait = time in next(loader)."""
    import torch

    from benchmarks.paper_scale import build, train_step
    from vicokd.data.dataset import split_datasets
    from vicokd.train import make_loader, to_device

    sec, bs = cfg["model"], int(cfg["teacher"]["batch_size"])
    model, loss_fn, teacher = build(cfg, backbone, role, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)
    train_set, _ = split_datasets(files, sec, seed=0, cache=False)
    train_set.raw = True                                 # normalize_on_device
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    waits, totals, losses = [], [], []
    epoch = 0
    it = iter(make_loader(train_set, bs, True, 0, epoch, workers, pin_memory=True))
    for step in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:                            # next epoch: a new loader, as fit does
            epoch += 1
            it = iter(make_loader(train_set, bs, True, 0, epoch, workers, pin_memory=True))
            batch = next(it)
        t_wait = time.perf_counter() - t0
        batch = to_device(batch, device, train_set)
        losses.append(train_step(model, loss_fn, optimizer, batch, device.type, bf16=True))
        sync()
        if step >= warmup:
            waits.append(t_wait)
            totals.append(time.perf_counter() - t0)
    del it
    out = {"backbone": backbone, "role": role, "steps_timed": steps,
           "step_seconds": round(sum(totals) / len(totals), 3),
           "data_wait_seconds": round(sum(waits) / len(waits), 3),
           "data_wait_share": round(sum(waits) / sum(totals), 3),
           "loss_last": round(losses[-1], 4)}
    if cuda:
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
        out["peak_gpu_reserved_gb"] = round(torch.cuda.max_memory_reserved() / 1e9, 2)
    del model, optimizer, teacher
    if cuda:
        torch.cuda.empty_cache()
    return out


def measure_masks(cfg: dict, files, device: str, frames_n: int, imgsz: int, work: Path) -> dict:
    """Frames/s of the masks rule's detector on the fabricated frames."""
    import h5py
    import numpy as np

    from vicokd.masks.masks import MasksConfig, PersonDetector
    from vicokd.masks.yolo import prepare_ultralytics

    prepare_ultralytics(work / ".ultralytics")
    mcfg = MasksConfig.from_dict(cfg["masks"])
    weights = Path(mcfg.weights) if mcfg.weights else None
    if weights is not None and weights.is_file():
        source = str(weights)
    else:                                               # same architecture, random weights
        from ultralytics import YOLO
        arch = (weights.stem if weights is not None else "yolov10b") + ".yaml"
        model = YOLO(arch)
        model.model.names = {i: ("person" if i == 0 else f"c{i}") for i in range(80)}
        weights = work / f"random_{Path(arch).stem}.pt"
        model.save(str(weights))
        source = f"random-init {arch}"
        mcfg.imgsz = mcfg.imgsz or imgsz
    with h5py.File(files.frames) as f:
        chunks, n = [], 0
        for sid in f:
            d = f[sid]["frames"][()]
            chunks.append(d.reshape(-1, *d.shape[2:]))
            n += len(chunks[-1])
            if n >= frames_n:
                break
    frames = np.concatenate(chunks)[:frames_n]
    det = PersonDetector(weights, mcfg, device)
    det.detect(frames[:mcfg.batch_size])                # warm-up
    t0 = time.perf_counter()
    det.detect(frames)
    seconds = time.perf_counter() - t0
    return {"frames_per_second": round(len(frames) / seconds, 1), "frames": int(len(frames)),
            "batch_size": mcfg.batch_size, "imgsz": det.imgsz, "frame_size": int(frames.shape[1]),
            "weights": source}


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=24, help="sequences of the fabricated home")
    ap.add_argument("--length", type=int, default=100, help="decoded frames per sequence")
    ap.add_argument("--mask-frames", type=int, default=2048)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds for the training part")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu.json"))
    # the same code on the CPU at a tiny scale (a test runs it; never a measurement)
    ap.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(list(argv))

    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("bench_gpu: no CUDA GPU on this machine: skipped (nothing measured, nothing written)")
        return

    from benchmarks.paper_scale import fabricate_home, paper_config
    cfg = paper_config()
    cfg["model"]["gradient_checkpointing"] = True
    cfg["model"]["bf16"] = True
    views, imgsz = 5, 640
    if args.cpu_smoke:
        device = torch.device("cpu")
        cfg["model"].update(frames=4, image_size=32, patch_size=16, hidden_size=48)
        for enc in ("vit", "ast"):
            cfg["model"][enc].update(layers=1, heads=2, intermediate_size=32, hidden_size=48)
        cfg["teacher"]["batch_size"] = 2
        cfg["masks"]["weights"] = None
        args.sequences, args.length, args.mask_frames, imgsz = 4, 6, 8, 64
    else:
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
    workers = args.workers if args.workers is not None else int(cfg["teacher"].get("workers", 0))
    size = int(cfg["model"]["image_size"])
    started = time.perf_counter()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vicokd-gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        files = fabricate_home(work, cfg, args.sequences, views, args.length, size)
        fabricate_s = time.perf_counter() - t0
        runs, skipped = [], []
        train_start = time.perf_counter()
        for backbone in args.backbones:
            for role in ("teacher", "student"):
                if time.perf_counter() - train_start > args.budget:
                    skipped.append(f"{backbone} {role}")
                    continue
                runs.append(measure_training(cfg, files, backbone, role, device, workers,
                                             args.steps, args.warmup))
                r = runs[-1]
                print(f"{backbone:10s} {role:7s} step {r['step_seconds']:.3f} s, data wait "
                      f"{100 * r['data_wait_share']:.1f} %, peak "
                      f"{r.get('peak_gpu_memory_gb', float('nan'))} GB", flush=True)
        masks = measure_masks(cfg, files, "cpu" if args.cpu_smoke else "cuda", args.mask_frames,
                              imgsz, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    m = cfg["model"]
    result = {
        "what": "paper-scale training steps on one GPU (bf16, gradient checkpointing, random "
                "weights; student = ViCoKD with its frozen teacher) through vicokd's data path, "
                "and YOLOv10 mask throughput",
        "smoke_test_on_cpu": bool(args.cpu_smoke),
        "batch": int(cfg["teacher"]["batch_size"]), "views": views, "T": m["frames"],
        "image_size": size, "audio_encoder": m.get("audio_encoder", "ast"),
        "data_path": {"workers": workers, "pin_memory": True, "normalize_on_device": True,
                      "fabricated_home": {"sequences": args.sequences, "frames_per_view": args.length,
                                          "seconds_to_write": round(fabricate_s, 1)}},
        "training": runs, "skipped_for_time": skipped, "masks": masks,
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "gpu_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1)
        if device.type == "cuda" else None,
        "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
