"""The paper's scale on a CUDA GPU, in one command of at most ~5 minutes:
`python -m benchmarks gpu`.

At config/paper.yaml's scale (batch 12 x 5 views x T = 70, ViT-S/32 at 224 px, bf16 autocast,
gradient checkpointing) it measures, from a fabricated home of paper-size HDF5 artifacts on
local disk (decode's layout, random content):

- the loader alone: items/s of vicokd.train.make_loader with the workers config/paper.yaml gets
  on this machine (`workers: auto`: the job's threads - 1), pinned memory, uint8 frames;
- per backbone and role (the teacher, the ViCoKD student with its frozen teacher): the training
  step through the training loop's own data path, split into the time spent waiting for the
  next batch and the rest (compute: copy to the GPU, normalisation, forward, backward, Adam),
  the peak GPU memory, and one evaluation forward pass;
- the masks rule's detector at YOLOv10-B's shape (640 px on 224 px frames) and at the bootstrap
  detector's (128 px on 96 px frames), on ultralytics' predictor path (float32, OpenCV letterbox
  per frame: what ran before issue 20) and on the batched on-device float16 path, with the
  agreement of their masks (on real frames when benchmarks/results/mask_sample.npz and
  results/detector/yolov10.pt are here: bench_masks writes the first, the detector rule the
  second);
- the GPU-hours of the grid (Tables 1-4 as this workflow runs them: 180 runs, the paper's 152
  plus CoKD's seeds in Table 2 and the learned-visibility row of Table 4; 100 epochs) projected from those
  step and evaluation times for a range of training sequences per home.

Writes benchmarks/results/gpu.json and prints it. Without a CUDA GPU it says so and exits 0,
writing nothing. Random weights of the same shapes stand in for every checkpoint (the cost of a
step does not depend on them); masks.weights is used when that file exists.

Options: --backbones, --workers (default: what `workers: auto` gives a config/paper.yaml job
here), --steps, --budget (seconds; backbones left when it runs out are listed as skipped),
--train-sequences (per home, for the projection), --work (where the fabricated home goes;
default a temporary folder, deleted after)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import scratch_folder, write_result  # noqa: E402

BACKBONES = ("multitrans", "multiasl", "multitsf")
ROLES = ("teacher", "student")
# Evaluation passes per test sequence (vicokd.data.dataset.evaluation_passes): ceil(L / T), 2
# for sequences of T..2T decoded frames; T = 70 is the dataset's mean length (paper §4.1).
EVAL_PASSES = 2


def measure_training(cfg: dict, files, backbone: str, role: str, device, workers: int,
                     steps: int, warmup: int) -> dict:
    """Steps of `role` through the training loop's data path: the wait is the time in
    next(loader); the rest of the step (to the GPU, normalise, forward, backward, Adam) is the
    compute. Then one evaluation forward pass on the last batch."""
    import torch

    from benchmarks.paper_scale import build, train_step
    from vicokd.data.dataset import split_datasets
    from vicokd.models import model_inputs
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
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
        model(*model_inputs(model, batch))               # warm-up of the evaluation shapes
        sync()
        t0 = time.perf_counter()
        model(*model_inputs(model, batch))
        sync()
        eval_s = time.perf_counter() - t0
    wait, total = sum(waits) / len(waits), sum(totals) / len(totals)
    out = {"backbone": backbone, "role": role, "steps_timed": steps,
           "step_seconds": round(total, 3), "data_wait_seconds": round(wait, 3),
           "compute_seconds": round(total - wait, 3), "data_wait_share": round(wait / total, 3),
           "eval_forward_seconds": round(eval_s, 3), "loss_last": round(losses[-1], 4)}
    if cuda:
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
        out["peak_gpu_reserved_gb"] = round(torch.cuda.max_memory_reserved() / 1e9, 2)
    train_set.close()
    del model, optimizer, teacher
    if cuda:
        torch.cuda.empty_cache()
    return out


def measure_masks(cfg: dict, files, device: str, frames_n: int, work: Path, smoke: bool,
                  sample: Path | None, sample_weights: Path | None) -> dict:
    """Frames/s of the masks rule's detector per shape and path, and the paths' agreement."""
    import h5py
    import numpy as np

    from benchmarks.mask_speed import (SHAPES, agreement, detector_weights, frames_per_second,
                                       random_frames)
    from vicokd.config import typed
    from vicokd.masks.masks import MasksConfig
    from vicokd.masks.yolo import prepare_ultralytics

    prepare_ultralytics(work / ".ultralytics")
    out = {}
    for shape in ("yolov10b", "bootstrap"):
        s = SHAPES[shape]
        mcfg = typed(MasksConfig, cfg["masks"])
        mcfg.device = device
        mcfg.imgsz = mcfg.imgsz or (64 if smoke else s["imgsz"])
        real = shape == "bootstrap" and sample is not None and sample_weights is not None
        if real:
            weights, source = sample_weights, str(sample_weights)
            frames, frames_src = np.load(sample)["frames"][:frames_n], str(sample)
        else:
            weights, source = detector_weights(shape, work, mcfg.weights if shape == "yolov10b" else None)
            if shape == "yolov10b":                      # the fabricated home's 224 px frames
                with h5py.File(files.frames) as f:
                    chunks = []
                    for sid in f:
                        d = f[sid]["frames"][()]
                        chunks.append(d.reshape(-1, *d.shape[2:]))
                        if sum(len(c) for c in chunks) >= frames_n:
                            break
                frames, frames_src = np.concatenate(chunks)[:frames_n], "fabricated (random)"
            else:
                frames, frames_src = random_frames(frames_n, 32 if smoke else s["frame"]), "random (smooth)"
        runs, dets = {}, {}
        for path, on_device in (("predictor", False), ("on_device", True)):
            runs[path], dets[path] = frames_per_second(weights, frames, mcfg, device, on_device)
        out[shape] = {"weights": source, "frames": frames_src, "frame_size": int(frames.shape[1]),
                      **runs, "agreement": agreement(dets["predictor"], dets["on_device"],
                                                     mcfg.conf, mcfg.min_area)}
        print(f"masks {shape}: predictor {runs['predictor']['frames_per_second']} frames/s, "
              f"on_device {runs['on_device']['frames_per_second']} frames/s "
              f"({runs['on_device']['precision']}), masks agree on "
              f"{out[shape]['agreement']['mask_agreement']:.4f} of frames", flush=True)
    return out


def grid_gpu_hours(runs: list[dict], cfg: dict, train_sequences: int, epochs: int) -> dict:
    """GPU-hours of Tables 1-4 (the runs vicokd.experiments lists for the config's grid) at
    `train_sequences` per home (test: 3/7 of that, the 7:3 split), `epochs` each: per run,
    epochs x (ceil(S_train / B) training steps + ceil(S_test x EVAL_PASSES / B) evaluation
    forwards). `fed`: the steps' compute only (no wait for data); `as_measured`: whole steps,
    wait included. Backbones not measured take the measured ones' mean of their role."""
    from vicokd import experiments as ex

    e, bs = cfg["experiments"], int(cfg["teacher"]["batch_size"])
    ids = set(ex.table1_runs(e["homes"], e["backbones"], e["methods"], e["supervision"], 0))
    ids |= set(ex.table2_runs(e["homes"], e["backbones"], e["supervision"], e["seeds"]))
    ids |= set(ex.table3_runs(e["homes"], e["backbones"]))
    ids |= set(ex.table4_runs(e["homes"], e["ablations"], e["supervision"], 0))
    timing = {(r["backbone"], r["role"]): r for r in runs}

    def seconds(backbone, role, key):
        if (backbone, role) in timing:
            return timing[(backbone, role)][key]
        same = [r[key] for r in runs if r["role"] == role]
        return sum(same) / len(same)

    test_sequences = round(train_sequences * 3 / 7)
    steps = math.ceil(train_sequences / bs)
    evals = math.ceil(test_sequences * EVAL_PASSES / bs)
    fed = as_measured = 0.0
    teachers = 0
    for rid in ids:
        _, backbone, run = rid.split("/")
        role = "teacher" if run in (ex.TEACHER, ex.TEACHER_VC) else "student"
        teachers += role == "teacher"
        ev = evals * seconds(backbone, role, "eval_forward_seconds")
        fed += epochs * (steps * seconds(backbone, role, "compute_seconds") + ev)
        as_measured += epochs * (steps * seconds(backbone, role, "step_seconds") + ev)
    return {"train_sequences_per_home": train_sequences, "test_sequences_per_home": test_sequences,
            "runs": len(ids), "teacher_runs": teachers, "epochs": epochs,
            "steps_per_epoch": steps, "evaluation_forwards_per_epoch": evals,
            "gpu_hours_fed": round(fed / 3600, 1), "gpu_hours_as_measured": round(as_measured / 3600, 1)}


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=24, help="sequences of the fabricated home")
    ap.add_argument("--length", type=int, default=100, help="decoded frames per sequence")
    ap.add_argument("--mask-frames", type=int, default=2048)
    ap.add_argument("--mask-sample", default=str(REPO / "benchmarks" / "results" / "mask_sample.npz"))
    ap.add_argument("--mask-weights", default=str(REPO / "results" / "detector" / "yolov10.pt"))
    ap.add_argument("--budget", type=float, default=240.0, help="seconds for the training part")
    ap.add_argument("--train-sequences", type=int, nargs="+", default=[150, 300, 600],
                    help="training sequences per home, for the projected GPU-hours")
    ap.add_argument("--epochs", type=int, default=100, help="epochs per run in the projection")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu.json"))
    # the same code on the CPU at a tiny scale (a test runs it; never a measurement)
    ap.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(list(argv))

    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("bench_gpu: no CUDA GPU on this machine: skipped (nothing measured, nothing written)")
        return

    from dataclasses import replace

    from benchmarks.bench_loader import loader_rate
    from benchmarks.paper_scale import fabricate_home, paper_config
    from vicokd.storage import read_json, write_json
    from vicokd.train import loader_workers

    cfg = paper_config()
    cfg["model"]["gradient_checkpointing"] = True
    cfg["model"]["bf16"] = True
    views = 5
    if args.cpu_smoke:
        device = torch.device("cpu")
        cfg["model"].update(frames=4, image_size=32, patch_size=16, hidden_size=48)
        for enc in ("vit", "ast"):
            cfg["model"][enc].update(layers=1, heads=2, intermediate_size=32, hidden_size=48)
        cfg["teacher"]["batch_size"] = 2
        cfg["masks"]["weights"] = None
        args.sequences, args.length, args.mask_frames = 4, 6, 8
    else:
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
    # what `workers: auto` gives a config/paper.yaml job on this machine (Snakemake's threads:
    # the config's, at most the cores)
    threads = min(int(cfg["teacher"]["threads"]), os.cpu_count() or 1)
    workers = args.workers if args.workers is not None else \
        loader_workers(cfg["teacher"]["workers"], torch.device("cuda"), threads)
    size = int(cfg["model"]["image_size"])
    sample = Path(args.mask_sample) if Path(args.mask_sample).is_file() else None
    sample_weights = Path(args.mask_weights) if Path(args.mask_weights).is_file() else None
    started = time.perf_counter()
    with scratch_folder(args.work, "vicokd-gpu-bench-") as work:
        t0 = time.perf_counter()
        files = fabricate_home(work, cfg, args.sequences, views, args.length, size)
        fabricate_s = time.perf_counter() - t0
        # the loader alone: each worker makes several batches per epoch (the train list
        # names every sequence `repeat` times), so that start-up does not dominate
        repeat = max(2, 2 * workers * int(cfg["teacher"]["batch_size"]) // args.sequences)
        split = read_json(files.split)
        write_json(work / "split_repeated.json", {"train": split["train"] * repeat,
                                                  "test": split["test"]})
        loader = loader_rate(replace(files, split=str(work / "split_repeated.json")), cfg,
                             workers, 2, device.type == "cuda")
        loader["train_list_repeat"] = repeat
        print(f"loader alone, {workers} workers: {loader['items_per_second']:.1f} items/s "
              f"({loader['items_per_second_per_worker']:.1f} per worker)", flush=True)
        runs, skipped = [], []
        train_start = time.perf_counter()
        for backbone in args.backbones:
            for role in ROLES:
                if time.perf_counter() - train_start > args.budget:
                    skipped.append(f"{backbone} {role}")
                    continue
                runs.append(measure_training(cfg, files, backbone, role, device, workers,
                                             args.steps, args.warmup))
                r = runs[-1]
                print(f"{backbone:10s} {role:7s} step {r['step_seconds']:.3f} s = compute "
                      f"{r['compute_seconds']:.3f} + data wait {r['data_wait_seconds']:.3f} "
                      f"({100 * r['data_wait_share']:.1f} %), peak "
                      f"{r.get('peak_gpu_memory_gb', float('nan'))} GB", flush=True)
        masks = measure_masks(cfg, files, "cpu" if args.cpu_smoke else "cuda", args.mask_frames,
                              work, args.cpu_smoke, sample, sample_weights)
    m = cfg["model"]
    result = {
        "what": "paper-scale training steps on one GPU (bf16, gradient checkpointing, random "
                "weights; student = ViCoKD with its frozen teacher) through vicokd's data path, "
                "the loader alone, YOLOv10 mask throughput per shape and path, and the paper's "
                "grid in GPU-hours projected from the steps",
        "smoke_test_on_cpu": bool(args.cpu_smoke),
        "batch": int(cfg["teacher"]["batch_size"]), "views": views, "T": m["frames"],
        "image_size": size, "audio_encoder": m.get("audio_encoder", "ast"),
        "data_path": {"workers": workers, "threads": threads, "pin_memory": True,
                      "normalize_on_device": True,
                      "fabricated_home": {"sequences": args.sequences, "frames_per_view": args.length,
                                          "seconds_to_write": round(fabricate_s, 1)}},
        "loader_alone": loader,
        "training": runs, "skipped_for_time": skipped, "masks": masks,
        "projected_grid": [grid_gpu_hours(runs, cfg, s, args.epochs) for s in args.train_sequences]
        if runs else [],
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
