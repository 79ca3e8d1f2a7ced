"""The training data path alone, at the paper's shapes: items/s that vicokd.train.make_loader
delivers per DataLoader worker, with no model behind it.

A home of config/paper.yaml's shapes is fabricated on local disk (5 views, 224 px frames,
L = 100 decoded frames per sequence, fbank [38, 128]; random content) and read the way a
teacher of config/paper.yaml reads it: T = 70 sampled frames per view, batch 12, uint8 frames
(normalize_on_device), pinned memory when CUDA is present. An epoch's train list repeats the
fabricated sequences (`--repeat`) so that an epoch has several batches per worker without
more disk; every epoch makes a new loader, as the training loop does (worker start-up counts).

Usage: python -m benchmarks loader [--workers 0 1 2] [--epochs 2] [--layout decode|view]
Target (issue 20): the GPU consumes ~40 items/s (0.3 s of compute per batch of 12), so 12
workers must each deliver >= 3.5 items/s; on the 2-core development machine the per-worker
figure is the proxy. Other jobs on the machine lower the wall-clock figures, so the CPU time of
the reading processes is recorded too (items per CPU-second: what one idle core delivers).
Also times one item composed in the training process, per frames.h5 layout. Writes
benchmarks/results/loader.json and prints it."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import scratch_folder, write_result  # noqa: E402


def loader_rate(files, cfg: dict, workers: int, epochs: int, pin: bool) -> dict:
    """Items/s of the training loader over `epochs` epochs (a new loader each, as fit makes)."""
    import torch

    from vicokd.data.dataset import split_datasets
    from vicokd.train import make_loader

    bs = int(cfg["teacher"]["batch_size"])
    train_set, _ = split_datasets(files, cfg["model"], seed=0, cache=False)
    train_set.raw = True                                     # normalize_on_device
    items, first = 0, None
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for batch in make_loader(train_set, bs, True, 0, epoch, workers, pin_memory=pin):
            items += batch["frames"].shape[0]
            if first is None:
                first = time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    frames = batch["frames"]
    del batch
    train_set.close()
    cpu = {k: v - cpu0[k] for k, v in cpu_seconds().items()}   # the workers are joined by now
    return {"workers": workers, "items": items, "seconds": round(seconds, 2),
            "items_per_second": round(items / seconds, 2),
            "items_per_second_per_worker": round(items / seconds / max(workers, 1), 2),
            # CPU time hardly grows with other jobs on the machine, wall time does: items per
            # CPU-second of the processes that read is what one idle core would deliver
            "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
            "items_per_cpu_second_reading": round(items / max(cpu["workers" if workers else
                                                                    "training_process"], 1e-9), 2),
            "first_batch_seconds": round(first, 2),
            "batch_frames": {"shape": list(frames.shape), "dtype": str(frames.dtype),
                             "pinned": bool(frames.is_pinned()) if torch.cuda.is_available() else False}}


def cpu_seconds() -> dict:
    """CPU time (user + system) of this process and of its joined children (loader workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"training_process": me.ru_utime + me.ru_stime, "workers": kids.ru_utime + kids.ru_stime}


def read_ms(files, cfg: dict, items: int = 12) -> dict:
    """ms per item to compose items in the training process (no worker, no collate)."""
    from vicokd.data.dataset import split_datasets

    train_set, _ = split_datasets(files, cfg["model"], seed=0, cache=False)
    train_set.raw = True
    train_set[0]                                             # open the files
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(items):
        train_set[i % len(train_set)]
    ms = 1000 * (time.perf_counter() - t0) / items
    cpu_ms = 1000 * (time.process_time() - cpu0) / items
    train_set.close()
    return {"item_ms": round(ms, 1), "item_cpu_ms": round(cpu_ms, 1)}


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=12, help="distinct fabricated sequences")
    ap.add_argument("--repeat", type=int, default=4, help="times the train list names each")
    ap.add_argument("--length", type=int, default=100, help="decoded frames per sequence (L)")
    ap.add_argument("--layouts", nargs="+", default=["decode", "view"],
                    help="frames.h5 layouts: decode (what the decode stage writes), view "
                         "(one chunk per view, as decode wrote before issue 20)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    ap.add_argument("--work", default=None, help="folder for the fabricated home (default: a "
                                                 "temporary one, deleted after)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "loader.json"))
    args = ap.parse_args(list(argv))

    import torch

    from benchmarks.paper_scale import fabricate_home, paper_config
    from vicokd.storage import read_json, write_json

    torch.set_num_threads(args.threads)
    cfg = paper_config()
    views, size = 5, int(cfg["decode"]["size"])
    pin = torch.cuda.is_available()
    load_before = [round(x, 2) for x in os.getloadavg()]
    layouts = {}
    with scratch_folder(args.work, "vicokd-loader-bench-") as work:
        for layout in args.layouts:
            home = work / layout
            t0 = time.perf_counter()
            files = fabricate_home(home, cfg, args.sequences, views, args.length, size,
                                   layout=layout)
            split = read_json(files.split)
            write_json(files.split, {"train": split["train"] * args.repeat, "test": split["test"]})
            made = time.perf_counter() - t0
            import h5py
            with h5py.File(files.frames) as f:
                chunks = f[split["train"][0]]["frames"].chunks
            runs = [loader_rate(files, cfg, w, args.epochs, pin) for w in args.workers]
            layouts[layout] = {"chunks": list(chunks) if chunks else None,
                               "seconds_to_fabricate": round(made, 1),
                               "in_process": read_ms(files, cfg), "loader": runs}
            for r in runs:
                print(f"{layout:6s} workers {r['workers']}: {r['items_per_second']:.2f} items/s, "
                      f"{r['items_per_second_per_worker']:.2f} per worker, "
                      f"{r['items_per_cpu_second_reading']:.2f} per CPU-second", flush=True)
            shutil.rmtree(home, ignore_errors=True)
    m = cfg["model"]
    result = {
        "what": "items/s of vicokd.train.make_loader alone (no model) at config/paper.yaml's "
                "shapes, uint8 frames (normalize_on_device), a new loader per epoch",
        "batch": int(cfg["teacher"]["batch_size"]), "views": views, "T": m["frames"],
        "image_size": m["image_size"], "frames_per_sequence": args.length,
        "sequences": args.sequences, "train_list_repeat": args.repeat, "epochs": args.epochs,
        "pin_memory": pin, "target_items_per_second_per_worker": 3.5,
        "layouts": layouts,
        "threads": args.threads, "cpus": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if pin else None,
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
