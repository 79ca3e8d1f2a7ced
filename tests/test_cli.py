"""`vicokd predict`: a trained student scores a new multi-view recording (no audio read)."""

import json
import subprocess
import sys

import pytest

import netns
from conftest import workflow_env

pytestmark = pytest.mark.e2e


def run_cli(*args, cwd):
    return subprocess.run(netns.isolated([sys.executable, "-m", "vicokd.cli", *args]), cwd=cwd,
                          env=workflow_env(), capture_output=True, text=True)


def test_predict_scores_every_class_of_a_sequence(tiny_run, tmp_path):
    manifest = json.loads((tiny_run / "results/home1/manifest.json").read_text())
    seq = manifest["sequences"][0]
    videos = [tiny_run / manifest["root"] / v for v in seq["views"]]
    model = tiny_run / "results/home1/multiasl/vicokd-sequence-seed0/model.pt"
    out = tmp_path / "scores.json"
    proc = run_cli("predict", model, *videos, "--out", out, cwd=tmp_path)   # the model's size
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["classes"] == manifest["classes"]
    assert set(result["sequence_scores"]) == set(manifest["classes"])
    assert all(0 <= s <= 1 for s in result["sequence_scores"].values())
    assert len(result["frame_scores"]) == len(result["frame_times"])
    assert all(len(row) == len(manifest["classes"]) for row in result["frame_scores"])


def test_predict_refuses_a_teacher_and_a_missing_video(tiny_run, tmp_path):
    teacher = tiny_run / "results/home1/multiasl/teacher/model.pt"
    proc = run_cli("predict", teacher, tmp_path / "x.mp4", cwd=tmp_path)
    assert proc.returncode == 2 and "an audio-visual teacher" in proc.stderr
    student = tiny_run / "results/home1/multiasl/student-frame-seed0/model.pt"
    manifest = json.loads((tiny_run / "results/home1/manifest.json").read_text())
    videos = [tiny_run / manifest["root"] / v for v in manifest["sequences"][0]["views"]]
    proc = run_cli("predict", student, *videos[:-1], tmp_path / "gone.mp4", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"vicokd: error: {tmp_path / 'gone.mp4'}: video file not found"


def test_a_student_is_tied_to_the_encoders_it_was_trained_with(tiny_run, tmp_path):
    """A model.pt copied out of its run needs --encoders; another home's encoders are refused
    (their fingerprint is not the one model.pt records); its own work, given explicitly."""
    import shutil
    manifest = json.loads((tiny_run / "results/home1/manifest.json").read_text())
    videos = [tiny_run / manifest["root"] / v for v in manifest["sequences"][0]["views"]]
    model = tiny_run / "results/home1/multiasl/student-frame-seed0/model.pt"
    copied = tmp_path / "deployed" / "model.pt"
    copied.parent.mkdir()
    shutil.copy(model, copied)
    proc = run_cli("predict", copied, *videos, cwd=tmp_path)
    assert proc.returncode == 2 and "--encoders" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    other = tiny_run / "results/home2/encoders"
    proc = run_cli("predict", copied, *videos, "--encoders", other, cwd=tmp_path)
    assert proc.returncode == 2 and "fingerprint differs" in proc.stderr, proc.stderr
    own = tiny_run / "results/home1/encoders"
    proc = run_cli("predict", copied, *videos, "--encoders", own, "--out", tmp_path / "s.json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
