"""`vicokd predict` checks what it is given against what model.pt records (views, decode size
and rate) and fails in one line, never with a traceback or plausible scores."""

from __future__ import annotations

import json

import pytest
import torch

from fake_artifacts import tiny_model_section
from mediafiles import write_mp4
from vicokd.cli import main
from vicokd.model_configs import model_config
from vicokd.models import build_model, save_model

CLASSES = ["Act0", "Act1", "Act2", "Act3"]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    section = tiny_model_section(frames=4)
    torch.manual_seed(0)
    model = build_model(model_config(section, "multiasl", 4, mel_bins=16, audio_length=8,
                                     audio=False))
    path = root / "model.pt"
    save_model(path, model, {"classes": CLASSES, "run_config": {"model": section},
                             "data": {"views": 2, "fps": 2.5, "size": 32}})
    old = root / "old.pt"                          # as written before model.pt recorded its data
    save_model(old, model, {"classes": CLASSES, "run_config": {"model": section}})
    videos = [write_mp4(root / f"cam{i}.mp4", 60, 25, size=48, audio_seconds=0) for i in range(3)]
    return path, old, videos


def run(capsys, *args):
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_model_s_views_size_and_rate_are_the_defaults(student, capsys):
    path, _, videos = student
    code, out, err = run(capsys, path, *videos[:2])
    assert code == 0, err
    result = json.loads(out)
    assert set(result["sequence_scores"]) == set(CLASSES)
    assert result["decoded_frames"] == 6 and result["frame_times"][1] - result["frame_times"][0] >= 0.4
    code, out, err = run(capsys, path, *videos[:2], "--size", 32, "--fps", 2.5)
    assert code == 0, err


@pytest.mark.parametrize("args, fault", [
    (("{v0}",), "a student of 2 views, given 1 video(s)"),
    (("{v0}", "{v1}", "{v2}"), "a student of 2 views, given 3 video(s)"),
    (("{v0}", "{v1}", "--size", "48"), "trained on frames decoded at size 32, --size 48 differs"),
    (("{v0}", "{v1}", "--fps", "5"), "trained on frames decoded at fps 2.5, --fps 5 differs"),
    (("{v0}", "{v1}", "--fps", "0"), "--fps must be a positive number, got 0.0"),
    (("{v0}", "{v1}", "--out", "{blocked}/scores.json"), "a-file: cannot create the folder"),
])
def test_what_it_cannot_score_is_one_line(student, capsys, tmp_path, args, fault):
    path, _, videos = student
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    args = [a.format(v0=videos[0], v1=videos[1], v2=videos[2], blocked=blocked) for a in args]
    code, out, err = run(capsys, path, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("vicokd: error: ") and fault in err, err


def test_an_older_model_file_needs_the_rate_and_size_named(student, capsys):
    _, old, videos = student
    code, _, err = run(capsys, old, *videos[:2])
    assert code == 2 and "records no decode fps" in err and "pass --fps" in err
    code, _, err = run(capsys, old, *videos[:2], "--fps", 2.5, "--size", 32)
    assert code == 0, err
