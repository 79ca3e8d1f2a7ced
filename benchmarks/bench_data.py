"""The teacher's data path: one epoch of training batches from the HDF5 artifacts vs the same
batches made the way the MultiSensor-Home authors' reference code does (decode every view's mp4
with decord and compute its fbank with torchaudio, for every item, every epoch); the share of a
training step spent loading data; and h5py read strategies on the stored layout.

Usage (from the repo root, after `snakemake --cores 2 results/home1/masks.h5 results/home1/split.json`):
    python -m benchmarks data            or
    python benchmarks/bench_data.py [--home results/home1] [--backbone multitsf] [--threads 1]
Targets: HDF5 >= 20x faster than the reference path; loading <= 10% of a training step.
Writes benchmarks/results/data.json and prints it."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def reference_dataset_class():
    """A dataset that, like the reference code, goes back to the mp4 files for every item."""
    import numpy as np
    import torch

    from vicokd.data.frames import normalise_frames, resize_frames
    from vicokd.data.decode import decode_sequence
    from vicokd.data.media import frame_count, read_audio
    from vicokd.data.spectrogram import fbank_segments, segment_audio

    class ReferenceDataset(torch.utils.data.Dataset):
        def __init__(self, hdf5_set, manifest: dict, decode: dict, audio: dict, workdir: Path):
            self.h = hdf5_set                       # same sequences, sampling, normalisation
            self.root = workdir / manifest["root"]  # the manifest's root is relative to the run
            self.seqs = {s["id"]: s for s in manifest["sequences"]}
            self.decode, self.audio = decode, audio

        def __len__(self):
            return len(self.h)

        def __getitem__(self, i):
            sid = self.h.sequences[i].seq_id
            seq = self.seqs[sid]
            fps, sr = float(self.decode["fps"]), int(self.audio["sample_rate"])
            frames = decode_sequence(self.root, seq, fps, int(self.decode["size"]))
            count = frame_count(seq["duration"], fps)
            fbank = np.stack([fbank_segments(segment_audio(read_audio(self.root / v, sr), count,
                                                           fps, sr), self.audio)
                              for v in seq["views"]])
            idx = self.h.indices(i)
            fb = fbank[:, idx]
            item = {"frames": normalise_frames(resize_frames(frames[:, idx], self.h.size),
                                               self.h.image_mean, self.h.image_std),
                    "fbank": torch.from_numpy((fb - self.h.fbank_mean) / (2 * self.h.fbank_std)),
                    "frame_index": torch.from_numpy(idx)}
            return item

    return ReferenceDataset


def read_strategies(frames_path: str, ids: list[str], t: int, repeats: int = 3) -> dict:
    """ms per sequence to get T sampled frames of every view, three ways."""
    import h5py
    import numpy as np

    from vicokd.data.frames import read_frames
    from vicokd.data.sampling import sample_indices

    out = {}
    with h5py.File(frames_path, "r") as f:
        chunks = f[ids[0]]["frames"].chunks
        ways = {
            "whole_block_then_numpy": lambda ds, idx: ds[()][:, idx],
            "per_view_block_then_numpy": lambda ds, idx: np.stack([ds[v][idx] for v in range(ds.shape[0])]),
            "h5py_point_selection": lambda ds, idx: ds[:, np.unique(idx)],
            "read_frames (the data path's reader)": lambda ds, idx: read_frames(ds, idx),
        }
        for name, fn in ways.items():
            t0 = time.perf_counter()
            for _ in range(repeats):
                for sid in ids:
                    ds = f[sid]["frames"]
                    fn(ds, sample_indices(ds.shape[1], t, train=False))
            out[name] = 1000 * (time.perf_counter() - t0) / (repeats * len(ids))
    return {"chunks": list(chunks) if chunks else None, "ms_per_sequence": out}


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default="results/home1")
    ap.add_argument("--config", default=str(REPO / "config.yaml"))
    ap.add_argument("--backbone", default="multitsf", help="the slowest backbone of the three")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5, help="training steps timed")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data.json"))
    args = ap.parse_args(list(argv))

    import torch
    import yaml

    from vicokd.data.dataset import DataFiles, split_datasets
    from vicokd.data.manifest import load_manifest
    from vicokd.model_configs import model_config
    from vicokd.models import build_model
    from vicokd.config import fill
    from vicokd.distill import LossConfig, make_loss
    from vicokd.train import make_loader

    torch.set_num_threads(args.threads)
    home = Path(args.home)
    need = ["manifest.json", "frames.h5", "audio.h5", "labels.h5", "split.json"]
    missing = [n for n in need if not (home / n).is_file()]
    if missing:
        sys.exit(f"bench_data: {home} lacks {', '.join(missing)}; run "
                 f"`snakemake --cores 2 {home}/split.json {home}/audio.h5` first")
    config = yaml.safe_load(Path(args.config).read_text())
    msec, tsec = config["model"], config["teacher"]
    masks = home / "masks.h5"
    files = DataFiles(frames=str(home / "frames.h5"), audio=str(home / "audio.h5"),
                      labels=str(home / "labels.h5"), split=str(home / "split.json"),
                      masks=str(masks) if masks.is_file() else None)
    train_set, _ = split_datasets(files, msec, seed=0, cache=bool(tsec.get("cache", False)))
    plain_set, _ = split_datasets(files, msec, seed=0, cache=False)
    if files.masks is None and args.backbone == "multitsf":
        args.backbone = "multiasl"              # multitsf trains on the masks
    bs = int(tsec["batch_size"])

    # (1) one epoch of batches: HDF5 vs the reference per-item decode
    def epoch_seconds(ds):
        t0 = time.perf_counter()
        n = 0
        for batch in make_loader(ds, bs, shuffle=True, seed=0, epoch=0):
            n += batch["frames"].shape[0]
        return time.perf_counter() - t0, n

    epoch_seconds(plain_set)                                    # warm the page cache
    h5_s, n_items = epoch_seconds(plain_set)                    # every item read from HDF5
    manifest = load_manifest(home / "manifest.json")
    Ref = reference_dataset_class()
    ref_set = Ref(plain_set, manifest, config["decode"], config["audio"], home.resolve().parents[1])
    ref_s, _ = epoch_seconds(ref_set)

    # (2) loading vs a training step on the configured model
    mcfg = model_config(msec, args.backbone, train_set.num_classes, mel_bins=train_set.audio_shape[1],
                        audio_length=train_set.audio_shape[0])
    torch.manual_seed(0)
    model = build_model(mcfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=float(tsec["lr"]))
    loss_fn = make_loss("teacher", "frame", LossConfig.of_teacher(fill("teacher", tsec)))
    epoch_seconds(train_set)                # with cache on, the first epoch fills it
    load_t, step_t, steps = 0.0, 0.0, 0
    while steps < args.steps:
        it = iter(make_loader(train_set, bs, shuffle=True, seed=1, epoch=steps))
        while steps < args.steps:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            loss, _ = loss_fn(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            t2 = time.perf_counter()
            if steps > 0:                                       # the first step warms up
                load_t += t1 - t0
                step_t += t2 - t1
            steps += 1
    timed = max(steps - 1, 1)

    result = {
        "home": str(home), "items_per_epoch": n_items, "batch_size": bs,
        "views": train_set.views, "frames_T": train_set.t, "image_size": train_set.size,
        "hdf5_epoch_seconds": round(h5_s, 3),
        "reference_epoch_seconds": round(ref_s, 3),
        "speedup": round(ref_s / h5_s, 1),
        "speedup_target": 20,
        "backbone": args.backbone,
        "cache": train_set.cache,
        "load_ms_per_batch": round(1000 * load_t / timed, 2),
        "compute_ms_per_step": round(1000 * step_t / timed, 2),
        "load_share_of_step_percent": round(100 * load_t / (load_t + step_t), 2),
        "load_share_target_percent": 10,
        "read_strategies": read_strategies(files.frames, train_set.ids[:16], train_set.t),
        "threads": args.threads, "machine": platform.machine(), "load_avg": os.getloadavg(),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
