"""One training step of the paper-size teacher and student of each backbone on the CPU:
config/paper.yaml's model (ViT-S/32 at 224 px, T = 70) with 5 views at batch 1, bf16 autocast
and gradient checkpointing, random weights of the same shapes; wall time and peak memory.

The student step is ViCoKD's (the frozen teacher's forward pass, then the student's forward,
every distillation term, backward and Adam). Each model runs in a process of its own, so the
peak resident memory (ru_maxrss) is that model's alone. Usage (from the repo root):
python -m benchmarks paper [--backbones multitsf] [--threads 2]. Writes
benchmarks/results/paper_cpu.json and prints it, with the machine's load beside it: the machine
may be shared, so the seconds are an upper bound; the memory is not affected."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402

BACKBONES = ("multitrans", "multiasl", "multitsf")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def one(backbone: str, role: str, views: int, batch: int, threads: int) -> dict:
    """Build one model and time one step, in this process."""
    import torch

    from benchmarks.paper_scale import build, paper_config, random_batch, timed, train_step

    torch.set_num_threads(threads)
    cfg = paper_config()
    cfg["model"]["gradient_checkpointing"] = True
    t_build, (model, loss_fn, teacher) = timed(lambda: build(cfg, backbone, role))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)
    data = random_batch(cfg, batch, views)
    before = current_rss_mb()
    seconds, loss = timed(lambda: train_step(model, loss_fn, optimizer, data, "cpu", bf16=True))
    params = sum(p.numel() for p in model.parameters())
    return {"backbone": backbone, "role": role, "step_seconds": round(seconds, 2),
            "peak_rss_mb": round(peak_rss_mb()), "rss_before_step_mb": round(before),
            "loss": round(loss, 4), "parameters_millions": round(params / 1e6, 2),
            "teacher_parameters_millions": round(sum(p.numel() for p in teacher.parameters()) / 1e6, 2)
            if teacher is not None else None,
            "build_seconds": round(t_build, 2)}


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    ap.add_argument("--roles", nargs="+", default=["teacher", "student"],
                    choices=["teacher", "student"])
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=2, metavar=("BACKBONE", "ROLE"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "paper_cpu.json"))
    args = ap.parse_args(list(argv))
    if args.one:                       # the child: one model, its figures as one JSON line
        print(json.dumps(one(*args.one, args.views, args.batch, args.threads)), flush=True)
        return

    from benchmarks.paper_scale import paper_config
    cfg = paper_config()
    runs = []
    for backbone in args.backbones:
        for role in args.roles:
            cmd = [sys.executable, "-m", "benchmarks.bench_paper", "--one", backbone, role,
                   "--views", str(args.views), "--batch", str(args.batch),
                   "--threads", str(args.threads)]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"bench_paper: {backbone} {role} failed:\n{proc.stderr[-3000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"{backbone:10s} {role:7s} step {runs[-1]['step_seconds']:7.1f} s  "
                  f"peak RSS {runs[-1]['peak_rss_mb']:6d} MB", flush=True)
    m = cfg["model"]
    result = {
        "what": "one training step on the CPU, bf16 autocast, gradient checkpointing, random "
                "weights; student = ViCoKD (frozen teacher forward + student step)",
        "config": "config.yaml + config/paper.yaml",
        "views": args.views, "batch": args.batch, "T": m["frames"], "image_size": m["image_size"],
        "patch_size": m["patch_size"], "vit": {k: v for k, v in m["vit"].items() if k != "checkpoint"},
        "audio_encoder": m.get("audio_encoder", "ast"),
        "threads": args.threads, "runs": runs,
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": __import__("torch").__version__,
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
