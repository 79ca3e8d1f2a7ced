"""MM-Office as the MultiASL authors publish it, weak labels only, run end to end through
snakemake with config/mm-office.yaml (shrunken models): the clip ids of split_train.txt /
split_test.txt are the sequences, each clip's camera files (train/ and test/, MultiASL's layout)
its views, its microphone files (audio/train, audio/test, the dataset's layout) its sound, and
gt.json's labels without times its sequence labels. The teacher trains with sequence labels
(AV_S), the students V_S, and Table 1 gets their cells; there is no frame-level mAP to report.
Every file here is fabricated by the test, in the published schema and naming."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, prepare_workdir, run_snakemake
from mediafiles import write_mp4, write_wav

pytestmark = pytest.mark.e2e

MM = yaml.safe_load((REPO / "config" / "mm-office.yaml").read_text())
CLASSES = MM["dataset"]["classes"]
CAMERAS, MICROPHONES = 2, 2
TRAIN = [f"recid{r:03d}_{h}" for r in range(3) for h in (0, 1)]
TEST = ["recid003_0", "recid003_1", "recid004_0"]


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def fabricate(root: Path) -> None:
    """gt.json (every split clip with labels without times, plus a strongly labelled clip that
    no split file names), the two split files, the cameras and the microphones."""
    rng = np.random.default_rng(0)
    db = {}
    for k, clip in enumerate(TRAIN + TEST):
        labels = {CLASSES[k % len(CLASSES)], CLASSES[(k + 5) % len(CLASSES)]}
        db[clip] = {"subset": "train",
                    "annotations": [{"segment": None, "label": x} for x in sorted(labels)]}
        half = "train" if clip in TRAIN else "test"
        seconds = float(rng.uniform(3.0, 4.0))
        for cam in range(CAMERAS):
            write_mp4(root / half / f"split0_id{cam:02d}_s3_{clip}.mp4", int(seconds * 10), 10,
                      size=32, audio_seconds=0)
        for mic in range(MICROPHONES):
            write_wav(root / "audio" / half / f"split0_id{mic:02d}_s3_{clip}.wav", seconds,
                      16000, 200.0 * (1 + mic + k % 3))
    db["recid008_front"] = {"subset": "test",
                            "annotations": [{"segment": [6.0, 14.0], "label": "enter"}]}
    (root / "gt.json").write_text(json.dumps({"database": db}))
    (root / "split_train.txt").write_text("\n".join(TRAIN) + "\n")
    (root / "split_test.txt").write_text("\n".join(TEST) + "\n")


def small_config(work: Path) -> Path:
    small = {
        "dataset": {"root": "data"},
        "decode": {"size": 32},
        "model": {"frames": 6, "image_size": 32, "patch_size": 16, "hidden_size": 32,
                  "features": {"components": 16}, "device": "cpu"},
        "teacher": {"epochs": 2, "batch_size": 4},
        "student": {"epochs": 2, "batch_size": 4},
        "split": {"allow_empty_class": True},
        "experiments": {"backbones": ["multiasl"], "methods": ["student", "cokd"], "seeds": [0]},
    }
    path = work / "mm-office-small.yaml"
    path.write_text(yaml.safe_dump(merge(MM, small)))
    return path


def test_weakly_labelled_mm_office_runs_to_the_v_s_cells_of_table1(tmp_path):
    work = prepare_workdir(tmp_path)
    fabricate(work / "data")
    run_snakemake(work, "results/table1.csv", config=small_config(work))
    res = work / "results" / "office"

    manifest = json.loads((res / "manifest.json").read_text())
    seqs = {s["id"]: s for s in manifest["sequences"]}
    assert sorted(seqs) == sorted(TRAIN + TEST)                  # not recid008_front
    first = seqs["recid000_0"]
    assert first["views"] == [f"train/split0_id{c:02d}_s3_recid000_0.mp4" for c in range(CAMERAS)]
    assert first["audio_files"] == [f"audio/train/split0_id{m:02d}_s3_recid000_0.wav"
                                    for m in range(MICROPHONES)]
    assert manifest["has_audio"] and not any(s["has_frame_labels"] for s in seqs.values())
    with h5py.File(res / "labels.h5") as f:
        assert f.attrs["frame_labelled"] == 0
        assert [CLASSES[c] for c in np.flatnonzero(f["recid000_0"]["sequence_labels"][()])] == \
            sorted(first["clip_labels"], key=CLASSES.index)
    split = json.loads((res / "split.json").read_text())
    assert split["source"] == "official files"
    assert (split["train"], split["test"]) == (sorted(TRAIN), sorted(TEST))
    assert split["frame_labelled"] == {"train": 0, "test": 0}

    teacher = json.loads((res / "multiasl" / "teacher" / "metrics.json").read_text())
    assert teacher["map"] is not None and teacher["frame_map"] is None
    assert teacher["n_frame_labelled"] == 0 and teacher["n_test"] == len(TEST)
    student = json.loads((res / "multiasl" / "student-sequence-seed0" / "metrics.json").read_text())
    assert student["map"] is not None and student["frame_map"] is None
    table = pd.read_csv(work / "results" / "table1.csv")
    cells = table[(table["home"] == "office") & (table["backbone"] == "multiasl")]
    assert set(cells["supervision"]) == {"sequence"}
    for method in ("teacher", "student", "cokd"):
        value = cells[cells["method"] == method]["value"]
        assert len(value) == 1 and np.isfinite(value.iloc[0])
    frame_notes = (work / "results" / "table1_frame_map.md").read_text()
    assert "no sequence with frame labels" in frame_notes and "Missing runs" not in frame_notes
