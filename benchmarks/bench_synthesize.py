"""How long the embedded default (config.yaml `synthetic:`) takes to generate, both homes.

`python -m benchmarks.bench_synthesize [--sequences N] [--out DIR] [--keep]` generates the
homes into a temporary folder (or DIR), writes benchmarks/results/synthesize.json and prints
it. The machine may be shared: the load average before and after is recorded beside the time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import machine_note  # noqa: E402
from vicokd.synthetic.synthesize import generate_home  # noqa: E402
from vicokd.storage import write_json  # noqa: E402

RESULT = REPO / "benchmarks" / "results" / "synthesize.json"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sequences", type=int, default=None, help="per home (default: config)")
    ap.add_argument("--out", default=None, help="folder to generate into (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated homes")
    ap.add_argument("--probe", metavar="DIR", default=None,
                    help="skip generating: measure how visible/audible each class is in the "
                         "homes already generated under DIR (writes synthetic_cues.json)")
    args = ap.parse_args(argv if argv is not None else [])
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if args.probe:
        return probe_cues(Path(args.probe), config)
    section = dict(config["synthetic"])
    if args.sequences:
        section["sequences"] = args.sequences
    classes = config["dataset"]["classes"]
    root = Path(args.out or tempfile.mkdtemp(prefix="vicokd-synth-"))
    load_before = os.getloadavg()
    cpu_before = _cpu_seconds()
    homes = {}
    start = time.perf_counter()
    for env in section["views"]:
        t0 = time.perf_counter()
        home = root / env
        stats = generate_home(env, section, classes, home / "annotations.json",
                              home / "boxes.h5", home / "synthetic_stats.json", home / "videos")
        seconds = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (home / "videos").glob("*.mp4"))
        homes[env] = {"seconds": round(seconds, 1), "sequences": stats["sequences"],
                      "views": stats["views"], "video_seconds": round(
                          stats["duration"]["mean"] * stats["sequences"] * stats["views"], 1),
                      "mp4_megabytes": round(size / 1e6, 1),
                      "co_visibility": stats["co_visibility"]}
    total = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    result = {
        "benchmark": "synthesize",
        "what": "generate every home of config.yaml synthetic: (mp4 + annotations + boxes + stats)",
        "config": section,
        "total_seconds": round(total, 1),
        "target_seconds": 180,
        # CPU time of this process and its workers: independent of what else runs; divided
        # by the cores used, it estimates the wall time on an idle machine
        "cpu_seconds": round(cpu, 1),
        "idle_estimate_seconds": round(cpu / min(section["workers"], os.cpu_count() or 1), 1),
        "homes": homes,
        "workers": section["workers"], **machine_note(load_before),
    }
    write_json(RESULT, result)
    print(json.dumps(result, indent=2))
    if args.out is None and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"homes kept in {root}")
    return result


def probe_cues(root: Path, config: dict) -> dict:
    """Per class, how well a linear probe finds it from the picture alone and from the sound
    alone: frame-level AP (%) on the last 30 % of each home's sequences, trained on the rest.

    Picture: the frame downscaled to the models' 32x32 px (grey) and its difference to the
    frame 80 ms later (motion). Sound: mean and spread of the 128-bin log-mel fbank over the
    0.4 s around the frame. One sample per view and frame at 2.5 fps; a frame's score is the
    highest over its views. Ridge regression, so the figure is about the data, not a model."""
    import decord
    import numpy as np
    import torch
    import torchaudio
    from sklearn.metrics import average_precision_score

    from vicokd.synthetic.stats import frame_labels

    classes = config["dataset"]["classes"]
    out = {}
    for env in sorted(p.name for p in root.iterdir() if (p / "annotations.json").is_file()):
        entries = json.loads((root / env / "annotations.json").read_text())
        feats = {"video": [], "audio": []}
        labels = []
        for e in entries:
            urls = [e[k] for k in sorted(k for k in e if k.startswith("video_url_"))]
            per_view = {"video": [], "audio": []}
            for url in urls:
                vr = decord.VideoReader(str(root / url), width=32, height=32)
                n, fps = len(vr), vr.get_avg_fps()
                idx = np.arange(0, n - 2, fps / 2.5).astype(int)
                a = vr.get_batch(list(idx)).asnumpy().mean(-1) / 255
                b = vr.get_batch(list(idx + 2)).asnumpy().mean(-1) / 255
                per_view["video"].append(np.concatenate(
                    [a.reshape(len(idx), -1), np.abs(b - a).reshape(len(idx), -1)], 1))
                wav = decord.AudioReader(str(root / url), sample_rate=16000, mono=True)[:].asnumpy()
                fb = torchaudio.compliance.kaldi.fbank(
                    torch.from_numpy(wav * 32768).float(), num_mel_bins=128, frame_length=25,
                    frame_shift=10, sample_frequency=16000).numpy()
                centre = (idx / fps * 100).astype(int)
                seg = [fb[max(0, c - 20):c + 20] for c in centre]
                per_view["audio"].append(np.stack([np.concatenate([x.mean(0), x.std(0)])
                                                   for x in seg]))
            for k in feats:
                feats[k].append(np.stack(per_view[k]))          # [V, T, D]
            lab = frame_labels(e["tricks"], n, fps, classes)
            labels.append(lab[idx])
        cut = int(round(0.7 * len(entries)))
        result = {}
        for k, xs in feats.items():
            def stack(seqs):
                return np.concatenate([x.reshape(-1, x.shape[-1]) for x in seqs])
            xtr = stack(xs[:cut])
            ytr = np.concatenate([np.repeat(y[None], x.shape[0], 0).reshape(-1, len(classes))
                                  for x, y in zip(xs[:cut], labels[:cut])]).astype(float)
            mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
            z = (xtr - mu) / sd
            w = np.linalg.solve(z.T @ z + 100.0 * np.eye(z.shape[1]), z.T @ (ytr - ytr.mean(0)))
            scores = np.concatenate([(((x - mu) / sd) @ w).max(axis=0) for x in xs[cut:]])
            yte = np.concatenate(labels[cut:])
            result[k] = {c: round(100 * float(average_precision_score(yte[:, j], scores[:, j])), 1)
                         for j, c in enumerate(classes) if yte[:, j].any()}
        result["prevalence"] = {c: round(100 * float(yte[:, j].mean()), 1)
                                for j, c in enumerate(classes)}
        out[env] = result
    path = REPO / "benchmarks" / "results" / "synthetic_cues.json"
    write_json(path, out)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
