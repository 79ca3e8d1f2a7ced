"""The `teacher` rule through snakemake: on fabricated artifacts (only the teacher rule may run),
and on the tiny config from scratch (the shared tiny run, then one more teacher)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import pytest
import yaml

from conftest import prepare_workdir, run_snakemake
from fake_artifacts import make_home

pytestmark = pytest.mark.e2e


def small_config(work, home="h1"):
    cfg = {"dataset": {"format": "multisensor_home", "root": "data",
                       "annotations": {home: "x.json"}, "classes": ["A", "B", "C", "D"]},
           "model": {"encoders": "finetune", "frames": 6, "image_size": 16, "patch_size": 8, "hidden_size": 16,
                     "vit": {"intermediate_size": 32}, "ast": {"intermediate_size": 32,
                                                                "patch_size": 8},
                     "device": "cpu"},
           "teacher": {"epochs": 2, "batch_size": 4},
           "masks": {"weights": "none.pt"},
           "experiments": {"homes": [home]}}
    path = work / "small.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_teacher_rule_on_fabricated_artifacts(tmp_path):
    work = prepare_workdir(tmp_path)
    files = make_home(work / "results" / "h1", n_seq=8, views=2)
    config = small_config(work)
    target = "results/h1/multitsf/teacher/metrics.json"
    run_snakemake(work, target, config=config, extra_args=["--allowed-rules=teacher"], cores=1)
    out = work / "results" / "h1" / "multitsf" / "teacher"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["n_test"] == 4 and 0 <= metrics["map"] <= 100
    assert len(list(csv.DictReader(open(out / "curve.csv")))) == 2
    with h5py.File(out / "predictions.h5") as f:
        assert f.attrs["kind"] == "predictions" and len(f) == 4
    assert (work / "benchmarks" / "results" / "h1" / "multitsf" / "teacher.tsv").is_file()
    assert "test mAP" in (work / "logs" / "h1" / "multitsf" / "teacher.log").read_text()
    assert not (work / "results" / "checkpoints" / "h1" / "multitsf" / "teacher" / "last.pt").exists()
    # a broken artifact: one line naming the file, exit code non-zero, no outputs
    split = json.loads(open(files.split).read())
    split["test"].append("ghost")
    open(files.split, "w").write(json.dumps(split))
    shutil.rmtree(out)
    proc = run_snakemake(work, target, config=config, extra_args=["--allowed-rules=teacher"],
                         cores=1, check=False)
    assert proc.returncode != 0
    assert "vicokd: error: " in proc.stderr and "sequence 'ghost' of the 'test' split" in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_tiny_config_trains_a_teacher_from_scratch(tiny_run):
    """The whole chain on the tiny config (synthetic home, data stages, bootstrap detector,
    masks, split), then a MultiTSF teacher (its backbone is outside the tiny grid: one more job);
    its metrics are well-formed and its curve has every epoch."""
    work = tiny_run
    target = "results/home2/multitsf/teacher/metrics.json"
    run_snakemake(work, target)
    out = work / "results" / "home2" / "multitsf" / "teacher"
    metrics = json.loads((out / "metrics.json").read_text())
    tiny = yaml.safe_load(open(Path(__file__).parent / "config" / "tiny.yaml"))
    assert metrics["epochs"] == tiny["teacher"]["epochs"]
    assert metrics["map"] is not None and 0 < metrics["map"] <= 100
    assert 0 < metrics["chance"] < 100
    rows = list(csv.DictReader(open(out / "curve.csv")))
    assert len(rows) == tiny["teacher"]["epochs"]
    split = json.loads((work / "results" / "home2" / "split.json").read_text())
    with h5py.File(out / "predictions.h5") as f:
        assert sorted(f) == sorted(split["test"])
        first = f[split["test"][0]]
        with h5py.File(work / "results" / "home2" / "labels.h5") as labels:
            length = labels[split["test"][0]]["frame_labels"].shape[0]
        # every decoded frame is scored, not only the T sampled
        assert first["frame_scores"].shape == (length, len(f.attrs["classes"]))
    # a dry run afterwards has nothing left to do (params are plain values: no spurious reruns)
    proc = run_snakemake(work, target, extra_args=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr
