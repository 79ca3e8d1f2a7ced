"""Fabricated training outputs (metrics.json, curve.csv, benchmark files) for the report tests:
the files the teacher and student rules write, with values chosen by the test."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

HOMES = ["home1", "home2"]
BACKBONES = ["multitrans", "multiasl", "multitsf"]
METHODS = ["student", "logitkd", "modalkd", "dualkd", "cokd", "vicokd"]
ABLATIONS = ["vicokd-noconfw", "vicokd-nomask", "vicokd-kl", "vicokd-nofd", "vicokd-nold",
             "vicokd-learnedvis"]
SUPERVISIONS = ["frame", "sequence"]
SEEDS = [0, 1, 2]
EXPERIMENTS = dict(homes=HOMES, backbones=BACKBONES, methods=METHODS, ablations=ABLATIONS,
                   supervision=SUPERVISIONS, seeds=SEEDS)


def fake_map(env: str, backbone: str, run: str) -> float:
    """A deterministic, distinct mAP per run (so every difference is checkable)."""
    rng = np.random.default_rng(zlib.crc32(f"{env}/{backbone}/{run}".encode()))
    return round(float(rng.uniform(20, 90)), 4)


def all_runs(exp=EXPERIMENTS) -> list[tuple[str, str, str]]:
    runs = set()
    for env in exp["homes"]:
        for bb in exp["backbones"]:
            runs |= {(env, bb, "teacher"), (env, bb, "teacher-vc")}
            for m in exp["methods"] + exp["ablations"]:
                for s in exp["supervision"]:
                    for k in exp["seeds"]:
                        runs.add((env, bb, f"{m}-{s}-seed{k}"))
    return sorted(runs)


# The random-score chance and prevalence of every fabricated run's test split: sequence values
# (20-90) fall inside the band now and then, frame values (map / 2 + 40) never.
YARDSTICKS = {"chance": 40.0, "chance_band": [35.0, 45.0], "prevalence": 30.0,
              "frame_chance": 8.0, "frame_chance_band": [7.0, 9.5], "frame_prevalence": 6.0}
# A home's probe.json: (map, frame_map) per kind.
PROBE_VALUES = {"picture": (70.0, 60.0), "sound": (60.0, 50.0), "both": (85.0, 75.0)}


def write_probe(root: Path, env: str, values=PROBE_VALUES) -> Path:
    """results/{env}/probe.json with the given (map, frame_map) per kind (None: no audio)."""
    path = root / "results" / env / "probe.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = {kind: None if v is None else {"map": v[0], "frame_map": v[1]} for kind, v in values.items()}
    path.write_text(json.dumps({**probe, **YARDSTICKS, "lambda": 100.0, "n_test": 9}))
    return path


def write_run(root: Path, env: str, backbone: str, run: str, map_value, frame_map=None,
              epochs: int = 4) -> Path:
    d = root / "results" / env / backbone / run
    d.mkdir(parents=True, exist_ok=True)
    metrics = {"map": map_value, "frame_map": frame_map if frame_map is not None else
               (None if map_value is None else map_value / 2 + 40),
               "per_class_ap": {"Walk": 0.5, "Cough": None}, **YARDSTICKS, "epochs": epochs,
               "seconds": 3.0, "n_test": 9,
               # the authors' protocol: a better epoch before the last
               "best_epoch_map": None if map_value is None else map_value + 1.5,
               "best_epoch": epochs - 1}
    (d / "metrics.json").write_text(json.dumps(metrics))
    lines = ["epoch,train_loss,test_map,test_frame_map,lr,seconds"]
    for e in range(1, epochs + 1):
        v = (map_value or 30) * e / epochs
        lines.append(f"{e},{1.0 / e:.4f},{v:.3f},{v / 2 + 20:.3f},0.001,{e * 0.5}")
    (d / "curve.csv").write_text("\n".join(lines) + "\n")
    return d


def fabricate(root: Path, values: dict | None = None, skip=(), exp=EXPERIMENTS) -> dict:
    """Write every run of `exp` and each home's probe.json under root/results (except the runs
    in `skip`); returns {run: map}."""
    values = dict(values or {})
    written = {}
    for env, bb, run in all_runs(exp):
        if (env, bb, run) in skip:
            continue
        v = values.get((env, bb, run), fake_map(env, bb, run))
        write_run(root, env, bb, run, v)
        written[(env, bb, run)] = v
    for env in exp["homes"]:
        write_probe(root, env)
    return written


def fabricate_benchmarks(root: Path) -> None:
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"home1/decode.tsv": 12.5, "home1/multiasl/teacher.tsv": 100.0,
             "home1/multiasl/vicokd-frame-seed0.tsv": 50.0,
             "home1/multiasl/vicokd-nomask-frame-seed0.tsv": 40.0, "detector.tsv": 30.0}
    for rel, s in files.items():
        p = root / "benchmarks" / "results" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(head + f"{s}\t0:00:{int(s):02d}\t200.5\t300\t150\t160\t1\t2\t90\t{s}\n")
