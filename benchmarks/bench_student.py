"""Wall time of one student job (what the `student` rule runs, minus Snakemake's start-up) on
the embedded default, one thread: the Table 1 budget needs 72 student jobs in 30 minutes with 2
at a time, i.e. about 50 s per job at most, including ~5 s of imports.

Usage (from the repo root): python -m benchmarks student, or
python benchmarks/bench_student.py [--home home1] [--backbone multiasl] [--methods student vicokd]
Uses results/{home}/*.h5, split.json and results/{home}/{backbone}/teacher/model.pt when they
exist; otherwise fabricated artifacts of the default's shapes (80 sequences of 10-30 s, 5 views,
decode.size frames, 38 x mel_bins fbank per frame) and a random-init teacher (same cost).
Writes benchmarks/results/student.json and prints it, with the machine's load beside it."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def fabricate(root: Path, config: dict, backbone: str, seed: int = 0):
    """Artifacts with the default's shapes (random content: only the cost matters here)."""
    import numpy as np
    import torch

    from vicokd.data.dataset import DataFiles
    from vicokd.model_configs import model_config
    from vicokd.models import build_model, save_model
    from vicokd.storage import atomic_h5, write_dataset, write_json

    rng = np.random.default_rng(seed)
    classes = config["dataset"]["classes"]
    c, size, mel = len(classes), int(config["decode"]["size"]), int(config["audio"]["mel_bins"])
    views = int(config["synthetic"]["views"]["home1"])
    n_seq = int(config["synthetic"]["sequences"])
    lo, hi = config["synthetic"]["duration"]
    fps = float(config["decode"]["fps"])
    seg = 38
    ids = [f"seq{i:03d}" for i in range(n_seq)]
    paths = {k: root / f"{k}.h5" for k in ("frames", "audio", "labels", "masks")}
    with atomic_h5(paths["frames"], "frames") as ff, atomic_h5(paths["audio"], "audio") as fa, \
            atomic_h5(paths["labels"], "labels", classes=classes) as fl, \
            atomic_h5(paths["masks"], "masks") as fm:
        fa.attrs["fbank_mean"], fa.attrs["fbank_std"] = 0.0, 1.0
        for sid in ids:
            length = int(rng.uniform(lo, hi) * fps)
            labels = (rng.random((length, c)) < 0.2).astype(np.uint8)
            write_dataset(ff.create_group(sid), "frames",
                          rng.integers(0, 255, (views, length, size, size, 3), dtype=np.uint8),
                          ("V", "T", "H", "W", "3"))
            write_dataset(fa.create_group(sid), "fbank",
                          rng.normal(size=(views, length, seg, mel)).astype(np.float16),
                          ("V", "T", "L", "mel"))
            g = fl.create_group(sid)
            write_dataset(g, "frame_labels", labels, ("T", "C"))
            write_dataset(g, "sequence_labels", labels.max(0), ("C",))
            g = fm.create_group(sid)
            write_dataset(g, "mask", rng.random((views, length)) < 0.5, ("V", "T"))
    n_test = int(round(0.3 * n_seq))
    write_json(root / "split.json", {"train": ids[n_test:], "test": ids[:n_test]})
    files = DataFiles(frames=str(paths["frames"]), audio=str(paths["audio"]),
                      labels=str(paths["labels"]), masks=str(paths["masks"]),
                      split=str(root / "split.json"))
    torch.manual_seed(0)
    teacher = build_model(model_config(config["model"], backbone, c, mel_bins=mel,
                                       audio_length=seg, audio=True))
    save_model(root / "teacher.pt", teacher, {"classes": classes})
    return files, str(root / "teacher.pt")


def main(argv=()) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default="home1")
    ap.add_argument("--backbone", default="multiasl")
    ap.add_argument("--methods", nargs="+", default=["student", "vicokd"])
    ap.add_argument("--supervision", default="sequence")
    ap.add_argument("--epochs", type=int, default=None, help="default: config student.epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "student.json"))
    args = ap.parse_args(list(argv))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    t_import = time.perf_counter()
    import torch
    import yaml

    from vicokd.data.dataset import DataFiles
    from vicokd.runs.outputs import RunOutputs
    from vicokd.runs.student import train_student
    import_seconds = time.perf_counter() - t_import

    torch.set_num_threads(args.threads)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    student = dict(config["student"])
    if args.epochs:
        student["epochs"] = args.epochs
    model = dict(config["model"], device="cpu")
    res = REPO / "results" / args.home
    teacher_pt = res / args.backbone / "teacher" / "model.pt"
    tmp = Path(tempfile.mkdtemp(prefix="bench_student_"))
    if all((res / f).is_file() for f in ("frames.h5", "audio.h5", "labels.h5", "masks.h5",
                                         "split.json")) and teacher_pt.is_file():
        source = f"results/{args.home} and its {args.backbone} teacher"
        files = DataFiles(frames=str(res / "frames.h5"), audio=str(res / "audio.h5"),
                          labels=str(res / "labels.h5"), masks=str(res / "masks.h5"),
                          split=str(res / "split.json"))
        teacher = str(teacher_pt)
    else:
        source = "fabricated artifacts of the default's shapes, random-init teacher"
        files, teacher = fabricate(tmp, config, args.backbone)

    runs = {}
    for method in args.methods:
        out = tmp / "results" / args.home / args.backbone / f"{method}-{args.supervision}-seed0"
        outputs = RunOutputs(model=str(out / "model.pt"), curve=str(out / "curve.csv"),
                             metrics=str(out / "metrics.json"),
                             predictions=str(out / "predictions.h5"))
        t0 = time.perf_counter()
        metrics = train_student(files, outputs, model, student, args.backbone, method,
                                args.supervision, 0, teacher, args.threads)
        wall = time.perf_counter() - t0
        runs[method] = {"wall_seconds": round(wall, 2),
                        "per_epoch_seconds": round(wall / student["epochs"], 3),
                        "job_estimate_seconds": round(wall + import_seconds, 2),
                        "test_map": metrics["map"], "test_frame_map": metrics["frame_map"]}
        print(f"{method}: {wall:.1f} s for {student['epochs']} epochs", flush=True)
    report = {
        "what": "one student job: dataset checks, training, per-epoch test evaluation, outputs",
        "data": source, "backbone": args.backbone, "supervision": args.supervision,
        "epochs": student["epochs"], "batch_size": student["batch_size"],
        "threads": args.threads, "import_seconds": round(import_seconds, 2), "runs": runs,
        "budget_seconds_per_job": 30 * 60 * 2 / 72,
        "load_average": os.getloadavg(), "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    write_result(args.out, report)


if __name__ == "__main__":
    main(sys.argv[1:])
