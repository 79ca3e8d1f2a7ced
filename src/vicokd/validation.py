"""Choosing the default's settings on a validation part of the train split (never the test split).

    python -m vicokd.validation --results results --home home1 --out benchmarks/results/validation.json \
        --try teacher.lr=1e-3 --try teacher.lr=4e-3 --try model.frames=12 ...

The train half of results/{home}/split.json is cut once more (seeded, 25 % of its sequences for
validation); each setting trains the teacher and the non-distilled student (`student`, frame
supervision, seed 0) on the rest and scores them on the validation part, beside the random-score
mAP of that part. The baseline is config.yaml as given (`--config`); each `--try key=value`
changes one key of it. Results go to a JSON file (docs/model.md keeps the log).

`--students` names other student runs as method-supervision (e.g. `vicokd-sequence cokd-frame`;
the distilling ones learn from the teacher trained on the same part) and `--seeds` their seeds;
a setting that changes no `model:` or `teacher:` key reuses the teacher trained before it:

    python -m vicokd.validation --home home1 --backbones multiasl --students cokd-frame \
        vicokd-frame --seeds 0 1 --try student.weights.vc=10 --try student.fd_reduction=mean
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from .data.dataset import DataFiles
from .runs.outputs import RunOutputs
from .runs.student import train_student
from .runs.teacher import train_teacher
from .storage import read_json, write_json

VAL_FRACTION = 0.25


def validation_split(split_path: str, seed: int = 0) -> dict:
    """{"train": ..., "test": validation ids} from the train half of a split.json."""
    train = sorted(str(s) for s in read_json(split_path)["train"])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    n_val = max(1, int(round(VAL_FRACTION * len(train))))
    val = sorted(train[i] for i in order[:n_val])
    return {"train": sorted(set(train) - set(val)), "test": val}


def apply(config: dict, change: str) -> dict:
    """config with `section.key[.sub]=value` (value parsed as YAML; several joined by ';')."""
    out = copy.deepcopy(config)
    for one in change.split(";"):
        key, value = one.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def run_setting(config: dict, files: DataFiles, backbone: str, work: Path,
                students: tuple[str, ...] = ("student-frame",), seeds: tuple[int, ...] = (0,),
                teachers: dict | None = None) -> dict:
    """Train the teacher (or reuse the one of `teachers` trained on the same model:, teacher:
    and data) and each student run (method-supervision) at each seed; their validation mAP."""
    def outputs(name):
        return RunOutputs(*(str(work / name / f) for f in ("model.pt", "curve.csv",
                                                           "metrics.json", "predictions.h5")))
    t0 = time.perf_counter()
    teachers = {} if teachers is None else teachers
    key = json.dumps([config["model"], config["teacher"], backbone, vars(files)], sort_keys=True)
    if key not in teachers:
        name = f"teacher{len(teachers)}"
        metrics = train_teacher(files, outputs(name), config["model"], config["teacher"], backbone)
        teachers[key] = (metrics, outputs(name).model)
    teacher, teacher_model = teachers[key]
    row = {"teacher": {"map": teacher["map"], "frame_map": teacher["frame_map"]}}
    runs = {}
    for run in students:
        method, supervision = run.rsplit("-", 1)
        for seed in seeds:
            m = train_student(files, outputs("student"), config["model"], config["student"],
                              backbone, method, supervision, seed,
                              teacher_path=teacher_model if method != "student" else None)
            runs[f"{run}-seed{seed}"] = {"map": m["map"], "frame_map": m["frame_map"]}
    if list(runs) == ["student-frame-seed0"]:
        row["student"] = runs["student-frame-seed0"]          # the first rounds' rows
    else:
        row["students"] = runs
    return {**row, "chance": teacher["chance"], "frame_chance": teacher["frame_chance"],
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vicokd.validation", description=__doc__)
    parser.add_argument("--results", default="results")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--home", default="home1")
    parser.add_argument("--backbones", nargs="+", default=["multitrans", "multiasl", "multitsf"])
    parser.add_argument("--try", dest="tries", action="append", default=[],
                        help="a change of the config, e.g. 'teacher.lr=4e-3;student.lr=4e-3' (repeatable)")
    parser.add_argument("--students", nargs="+", default=["student-frame"],
                        help="student runs as method-supervision (default: student-frame)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default="benchmarks/results/validation.json")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    res = Path(args.results) / args.home
    frozen = config["model"].get("encoders") == "frozen"
    out_path = Path(args.out)
    log = json.loads(out_path.read_text()) if out_path.is_file() else []
    teachers: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "split.json"
        write_json(split, validation_split(str(res / "split.json")))
        for change in [None, *args.tries]:
            cfg = apply(config, change) if change else config
            frozen = cfg["model"].get("encoders") == "frozen"
            source = str(res / ("features.h5" if frozen else "frames.h5"))
            files = DataFiles(frames=source, labels=str(res / "labels.h5"), split=str(split),
                              audio=source if frozen else str(res / "audio.h5"),
                              masks=str(res / "masks.h5") if (res / "masks.h5").is_file() else None)
            for backbone in args.backbones:
                if backbone == "multitsf" and files.masks is None:
                    continue
                row = {"home": args.home, "backbone": backbone, "change": change or "baseline",
                       **run_setting(cfg, files, backbone, Path(tmp) / "runs",
                                     tuple(args.students), tuple(args.seeds), teachers)}
                print(json.dumps(row), flush=True)
                log.append(row)
                write_json(out_path, log)


if __name__ == "__main__":
    main()
