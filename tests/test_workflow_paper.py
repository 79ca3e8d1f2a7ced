"""A home laid out exactly as the published MultiSensor-Home, run end to end through snakemake
with config/paper.yaml's dataset, split, label, mask and schedule settings and shrunken models:
5 views at 320x240 with their audio in the mp4s, `{id}-View{n}-Part{p}.mp4` in per-session
folders, the published JSON (video_url_1..5, tricks), the 16 classes of config/paper.yaml, the
official train.json / test.json, a timm ViT and the authors' audio MLP (config/paper.yaml's
encoders) whose random weights are saved to a local file here, and local YOLO weights saved
here."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, prepare_workdir, run_snakemake
from fake_artifacts import random_person_yolo
from mediafiles import write_mp4

pytestmark = pytest.mark.e2e

PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
CLASSES = PAPER["dataset"]["classes"]
HOME_DIR = PAPER["dataset"]["home_dirs"]["home1"]
VIEWS = 5
# (session folder, recording id, part): 4 train and 2 test recordings
TRAIN = [("01", "00", 1), ("01", "01", 1), ("02", "02", 1), ("02", "02", 2)]
TEST = [("01", "03", 1), ("02", "04", 1)]


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def entry(home: Path, session: str, rec: str, part: int, classes: list[str], rng) -> dict:
    """Write the 5 views of one recording; its annotation entry in the published format."""
    seconds = float(rng.uniform(4.0, 5.0))
    out = {}
    for v in range(1, VIEWS + 1):
        rel = f"{session}/{rec}-View{v}-Part{part}.mp4"
        write_mp4(home / rel, int(seconds * 25), 25, size=320, height=240, tone_hz=200.0 * v)
        out[f"video_url_{v}"] = rel
    out["tricks"] = []
    for c in classes:
        start = float(rng.uniform(0, seconds - 1.5))
        out["tricks"].append({"start": start, "end": start + float(rng.uniform(0.3, 1.2)),
                              "labels": [c]})
    return out


def fabricate(root: Path) -> dict:
    """The home's folder under root; every class in both halves of the official split."""
    rng = np.random.default_rng(0)
    home = root / HOME_DIR
    files = PAPER["split"]["files"]["home1"]
    halves = {"train": TRAIN, "test": TEST}
    ids = {}
    for half, recs in halves.items():
        entries = [entry(home, s, r, p, CLASSES[k::len(recs)], rng) for k, (s, r, p) in enumerate(recs)]
        (home / files[half]).write_text(json.dumps(entries, indent=1))
        ids[half] = sorted(f"{r}-View1-Part{p}" for _, r, p in recs)
    return ids


@pytest.fixture(scope="module")
def yolo_weights(tmp_path_factory) -> Path:
    """Local YOLOv10 weights whose class 0 is 'person' (random init, saved here)."""
    return random_person_yolo(tmp_path_factory.mktemp("yolo"), "yolov10.pt")


SMALL_VIT = {"layers": 1, "heads": 2, "intermediate_size": 64, "hidden_size": 48}
PATCH = 16                      # model.patch_size: the ViT's patch (timm and transformers alike)


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory) -> Path:
    """A timm ViT of config/paper.yaml's timm_model, shrunk, random weights saved to a local file
    (the form the authors' checkpoint takes)."""
    import torch

    from vicokd.encoders import EncoderConfig, ViTEncoder
    vit = PAPER["model"]["vit"]
    assert vit["source"] == "timm"
    enc = EncoderConfig(**SMALL_VIT, patch_size=PATCH, source="timm", timm_model=vit["timm_model"])
    path = tmp_path_factory.mktemp("vit") / "vit_small.pth"
    torch.save(ViTEncoder(enc, image_size=32, hidden_size=48, dropout=0.1).net.state_dict(), path)
    return path


def small_config(work: Path, weights: Path, vit_file: Path) -> Path:
    """config/paper.yaml with the data on this machine and models shrunk to CPU size."""
    small = {
        "dataset": {"root": "data"},
        "decode": {"size": 64},
        "masks": {"weights": str(weights), "device": "cpu"},
        "model": {"frames": 6, "image_size": 32, "patch_size": PATCH, "hidden_size": 48,
                  "vit": {**SMALL_VIT, "checkpoint": str(vit_file)},
                  "mlp": {"hidden_sizes": [32]},
                  "temporal": {"layers": 1}, "fusion": {"layers": 1}, "device": "cpu"},
        "teacher": {"epochs": 2, "batch_size": 2, "threads": 1, "workers": 0},
        "student": {"epochs": 2, "batch_size": 2, "threads": 1, "workers": 0},
        "experiments": {"homes": ["home1"], "backbones": ["multitsf"],
                        "methods": ["student", "vicokd"], "supervision": ["frame"], "seeds": [0]},
    }
    path = work / "paper-small.yaml"
    path.write_text(yaml.safe_dump(merge(PAPER, small)))
    return path


def test_the_published_layout_runs_end_to_end_with_the_papers_settings(tmp_path, yolo_weights,
                                                                         vit_file):
    assert PAPER["model"]["encoders"] == "finetune" and PAPER["model"]["audio_encoder"] == "mlp"
    work = prepare_workdir(tmp_path)
    ids = fabricate(work / "data")
    config = small_config(work, yolo_weights, vit_file)
    student = "results/home1/multitsf/vicokd-frame-seed0/metrics.json"
    run_snakemake(work, "results/home1/multitsf/teacher/metrics.json", student, config=config)
    res = work / "results" / "home1"

    manifest = json.loads((res / "manifest.json").read_text())
    assert len(manifest["sequences"]) == len(TRAIN) + len(TEST)
    assert all(len(s["views"]) == VIEWS for s in manifest["sequences"])
    assert manifest["has_audio"]
    # the official split, not a stratified one
    split = json.loads((res / "split.json").read_text())
    assert split["source"] == "official files"
    assert (sorted(split["train"]), sorted(split["test"])) == (ids["train"], ids["test"])
    # the authors' label rule: round(start * 2.5) .. round(end * 2.5) inclusive
    seq = manifest["sequences"][0]
    with h5py.File(res / "labels.h5") as f:
        assert f.attrs["rule"] == "rounded"
        y = f[seq["id"]]["frame_labels"][()]
    expected = np.zeros_like(y)
    for s in seq["segments"]:
        expected[round(s["start"] * 2.5):round(s["end"] * 2.5) + 1, CLASSES.index(s["label"])] = 1
    np.testing.assert_array_equal(y, expected)
    # masks: the binary mask and the mean person score per view and frame
    with h5py.File(res / "masks.h5") as f, h5py.File(res / "frames.h5") as fr:
        g = f[seq["id"]]
        T = fr[seq["id"]]["frames"].shape[1]
        assert g["mask"].shape == (VIEWS, T) and g["score"].shape == (VIEWS, T)
        score = g["score"][()]
        assert np.all((score == 0) | (score > PAPER["masks"].get("conf", 0.25)))
        assert np.array_equal(score > 0, np.isfinite(g["scores"][()]).any(-1))
    for rel in ("multitsf/teacher/metrics.json", "multitsf/vicokd-frame-seed0/metrics.json"):
        m = json.loads((res / rel).read_text())
        assert m["n_test"] == len(TEST) and m["epochs"] == 2
        # the best epoch is chosen and scored as the authors' code does (MultiTSF: a softmax
        # over the classes), so it is the best of the curve's authors_map, not above `map`
        rows = list(csv.DictReader(open(res / rel.replace("metrics.json", "curve.csv"))))
        assert m["best_epoch"] in (1, 2) and m["best_epoch_scoring"] == "softmax"
        assert m["best_epoch_map"] == pytest.approx(max(float(r["authors_map"]) for r in rows))
    # the teacher is the paper.yaml network: timm ViT from the local file, the MLP audio encoder
    import torch
    blob = torch.load(res / "multitsf" / "teacher" / "model.pt", map_location="cpu", weights_only=False)
    assert blob["config"]["audio_encoder"] == "mlp" and blob["config"]["vit"]["source"] == "timm"
    curve = (res / "multitsf" / "teacher" / "curve.csv").read_text().splitlines()
    assert float(curve[2].split(",")[4]) == pytest.approx(1e-5 + (1e-4 - 1e-5) / 2, rel=1e-3)
