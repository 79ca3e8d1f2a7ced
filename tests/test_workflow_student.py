"""The `student` and `teacher_vc` rules through snakemake, on fabricated artifacts (only the
training rules may run): the teacher, one student per method, teacher-vc; a student-only run
on data without audio (and the probe on it); a bad teacher file."""

from __future__ import annotations

import csv
import json
import os

import h5py
import pytest
import torch
import yaml

from conftest import prepare_workdir, run_snakemake
from fake_artifacts import make_home, tiny_model_section
from vicokd.experiments import METHODS

pytestmark = pytest.mark.e2e

# (a flag after the list ends it: --allowed-rules takes several values)
RULES = ["--allowed-rules", "teacher", "student", "teacher_vc", "--printshellcmds"]


def write_config(work, home="h1", **over):
    cfg = {"dataset": {"format": "multisensor_home", "root": "data",
                       "annotations": {home: "x.json"}, "classes": ["A", "B", "C", "D"]},
           "model": tiny_model_section(frames=4),
           "teacher": {"epochs": 1, "batch_size": 4},
           "student": {"epochs": 1, "batch_size": 4},
           "masks": {"weights": "none.pt"},
           "experiments": {"homes": [home], "backbones": ["multiasl"]}}
    cfg.update(over)
    path = work / "small.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_every_method_and_teacher_vc(tmp_path):
    work = prepare_workdir(tmp_path)
    make_home(work / "results" / "h1", n_seq=6, views=3, lengths=(4, 6))
    config = write_config(work)
    runs = [f"{m}-frame-seed0" for m in METHODS] + ["vicokd-sequence-seed0",
                                                    "student-sequence-seed0", "teacher-vc"]
    targets = [f"results/h1/multiasl/{r}/metrics.json" for r in runs]
    run_snakemake(work, *targets, config=config, extra_args=RULES, cores=2)
    base = work / "results" / "h1" / "multiasl"
    teacher_state = torch.load(base / "teacher" / "model.pt", weights_only=False)["state_dict"]
    for run in runs:
        out = base / run
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["epochs"] == 1 and metrics["n_test"] == 3 and 0 <= metrics["map"] <= 100
        assert len(list(csv.DictReader(open(out / "curve.csv")))) == 1
        with h5py.File(out / "predictions.h5") as f:
            assert f.attrs["kind"] == "predictions" and len(f) == 3
        blob = torch.load(out / "model.pt", weights_only=False)
        if run == "teacher-vc":
            assert blob["config"]["audio"] and metrics["loss"]["weights"] == {"vc": 1.0}
            continue
        method = run.rsplit("-", 2)[0]
        assert metrics["method"] == method and metrics["terms"] == list(METHODS[method].terms)
        assert not blob["config"]["audio"]
        # a fresh student: its visual encoder is not the teacher's
        key = "vit.net.embeddings.patch_embeddings.projection.weight"
        assert not torch.equal(blob["state_dict"][key], teacher_state[key])
        assert (work / "benchmarks" / "results" / "h1" / "multiasl" / f"{run}.tsv").is_file()
        log = (work / "logs" / "h1" / "multiasl" / f"{run}.log").read_text()
        assert "test mAP" in log
        assert not (work / "results" / "checkpoints" / "h1" / "multiasl" / run / "last.pt").exists()
    # different methods train different students
    maps = {json.loads((base / r / "metrics.json").read_text())["frame_map"] for r in runs}
    assert len(maps) > 3


def test_student_without_audio_and_bad_teacher(tmp_path):
    work = prepare_workdir(tmp_path)
    files = make_home(work / "results" / "h1", n_seq=6, views=2, lengths=(4, 6))
    os.remove(files.audio)                          # no audio.h5 at all
    config = write_config(work, dataset={
        "format": "multisensor_home", "root": "data", "annotations": {"h1": "x.json"},
        "classes": ["A", "B", "C", "D"], "require_audio": False})
    target = "results/h1/multiasl/student-sequence-seed1/metrics.json"
    # the linear probe runs on the same data, reading the picture only
    run_snakemake(work, target, "results/h1/probe.json", config=config,
                  extra_args=[*RULES[:-1], "probe", RULES[-1]], cores=1)
    metrics = json.loads((work / target).read_text())
    assert metrics["seed"] == 1 and metrics["terms"] == []
    probe = json.loads((work / "results" / "h1" / "probe.json").read_text())
    assert probe["sound"] is None and probe["both"] is None and probe["picture"]["frame_map"] > 0

    # a distilling method with a broken teacher file: one line, non-zero exit, no outputs
    # (on data with audio: without it a distilling method stops before reading the teacher)
    make_home(work / "results" / "h1", n_seq=6, views=2, lengths=(4, 6))
    config = write_config(work)
    teacher = work / "results" / "h1" / "multiasl" / "teacher" / "model.pt"
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b"not a model")
    target = "results/h1/multiasl/logitkd-frame-seed0/metrics.json"
    proc = run_snakemake(work, target, config=config, extra_args=["--allowed-rules", "student", "--printshellcmds"],
                         cores=1, check=False)
    assert proc.returncode != 0
    assert "vicokd: error: " in proc.stderr and "not a vicokd model file" in proc.stderr
    out = work / "results" / "h1" / "multiasl" / "logitkd-frame-seed0"
    assert not out.exists() or not any(out.iterdir())


def test_only_the_runs_that_read_masks_wait_for_them(tmp_path):
    # masks.h5 is not there (the detector would still be training): the teacher and the
    # mask-free methods run; a method with masked view consistency cannot start.
    work = prepare_workdir(tmp_path)
    files = make_home(work / "results" / "h1", n_seq=6, views=2, lengths=(4, 6))
    os.remove(files.masks)
    config = write_config(work)
    base = "results/h1/multiasl"
    targets = [f"{base}/{r}/metrics.json" for r in ("cokd-frame-seed0", "vicokd-nomask-frame-seed0")]
    run_snakemake(work, *targets, config=config, extra_args=RULES, cores=2)
    assert all((work / t).is_file() for t in targets)
    proc = run_snakemake(work, f"{base}/vicokd-frame-seed0/metrics.json", config=config,
                         extra_args=RULES, cores=1, check=False)
    assert proc.returncode != 0 and "results/h1/masks.h5" in proc.stderr + proc.stdout
