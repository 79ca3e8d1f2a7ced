"""vicokd.runs.student without Snakemake: resume after an interruption, checkpoints tied to the
run's config and teacher, teacher checks."""

from __future__ import annotations

import json

import pytest
import torch

from fake_artifacts import make_home, tiny_model_section
from vicokd.errors import VicokdError
from vicokd.model_configs import model_config
from vicokd.models import build_model, save_model
from vicokd.runs.outputs import RunOutputs, checkpoint_path
from vicokd.runs.student import train_student

STUDENT = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "tau": 2.0}


class Interrupt(Exception):
    pass


def outputs(root, run):
    d = root / "results" / "h1" / "multiasl" / run
    return RunOutputs(model=str(d / "model.pt"), curve=str(d / "curve.csv"),
                      metrics=str(d / "metrics.json"), predictions=str(d / "predictions.h5"))


@pytest.fixture()
def home(tmp_path):
    files = make_home(tmp_path / "data", n_seq=6, views=2, lengths=(4, 6))
    model = tiny_model_section(frames=4)
    torch.manual_seed(0)
    teacher = build_model(model_config(model, "multiasl", 4, mel_bins=16, audio_length=8))
    teacher_pt = tmp_path / "teacher.pt"
    save_model(teacher_pt, teacher, {"classes": [f"Act{c}" for c in range(4)]})
    return tmp_path, files, model, teacher_pt


def test_resume_after_interruption_gives_the_same_result(home):
    root, files, model, teacher_pt = home
    full = train_student(files, outputs(root / "a", "vicokd-frame-seed0"), model, STUDENT,
                         "multiasl", "vicokd", "frame", 0, str(teacher_pt))

    out = outputs(root / "b", "vicokd-frame-seed0")

    def stop(epoch, row):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_student(files, out, model, STUDENT, "multiasl", "vicokd", "frame", 0,
                      str(teacher_pt), on_epoch_end=stop)
    ckpt = checkpoint_path(out.model)
    assert ckpt.is_file() and not (root / "b" / "results" / "h1" / "multiasl" /
                                   "vicokd-frame-seed0" / "metrics.json").exists()
    resumed = train_student(files, out, model, STUDENT, "multiasl", "vicokd", "frame", 0,
                            str(teacher_pt))
    assert resumed["resumed_from_epoch"] == 1 and not ckpt.exists()
    assert resumed["map"] == pytest.approx(full["map"])
    assert resumed["frame_map"] == pytest.approx(full["frame_map"])


def test_checkpoint_of_another_config_is_refused_of_another_teacher_restarted(home, caplog):
    root, files, model, teacher_pt = home
    out = outputs(root, "logitkd-frame-seed0")

    def stop(epoch, row):
        raise Interrupt

    with pytest.raises(Interrupt):
        train_student(files, out, model, STUDENT, "multiasl", "logitkd", "frame", 0,
                      str(teacher_pt), on_epoch_end=stop)
    with pytest.raises(VicokdError, match="another config.*student"):
        train_student(files, out, model, {**STUDENT, "tau": 4.0}, "multiasl", "logitkd",
                      "frame", 0, str(teacher_pt))
    # a retrained teacher (another file) must not resume the old distillation: a fresh start
    torch.manual_seed(5)
    other = build_model(model_config(model, "multiasl", 4, mel_bins=16, audio_length=8))
    save_model(teacher_pt, other, {"classes": [f"Act{c}" for c in range(4)]})
    metrics = train_student(files, out, model, STUDENT, "multiasl", "logitkd", "frame", 0,
                            str(teacher_pt))
    assert metrics["resumed_from_epoch"] == 0
    assert "checkpoint made on other input data (differs in: teacher); starting afresh" in caplog.text


def test_teacher_checks(home, tmp_path):
    root, files, model, teacher_pt = home
    out = outputs(root, "cokd-frame-seed0")
    with pytest.raises(VicokdError, match="multitsf"):
        train_student(files, out, model, STUDENT, "multitsf", "cokd", "frame", 0,
                      str(teacher_pt))
    wrong = tmp_path / "wrong.pt"
    t = build_model(model_config(model, "multiasl", 4, mel_bins=16, audio_length=8))
    save_model(wrong, t, {"classes": ["a", "b", "c", "d"]})
    with pytest.raises(VicokdError, match="classes"):
        train_student(files, out, model, STUDENT, "multiasl", "cokd", "frame", 0, str(wrong))
    student_pt = tmp_path / "student.pt"
    s = build_model(model_config(model, "multiasl", 4, mel_bins=16, audio_length=8, audio=False))
    save_model(student_pt, s, {"classes": [f"Act{c}" for c in range(4)]})
    with pytest.raises(VicokdError, match="audio"):
        train_student(files, out, model, STUDENT, "multiasl", "cokd", "frame", 0,
                      str(student_pt))
    with pytest.raises(VicokdError, match="needs the teacher"):
        train_student(files, out, model, STUDENT, "multiasl", "cokd", "frame", 0, None)
    assert not (root / "results" / "h1" / "multiasl" / "cokd-frame-seed0").exists()


def test_seeds_give_different_students(home):
    root, files, model, teacher_pt = home
    one = {**STUDENT, "epochs": 1}
    m0 = train_student(files, outputs(root, "student-sequence-seed0"), model, one, "multiasl",
                       "student", "sequence", 0)
    m1 = train_student(files, outputs(root, "student-sequence-seed1"), model, one, "multiasl",
                       "student", "sequence", 1)
    w0 = torch.load(outputs(root, "student-sequence-seed0").model, weights_only=False)
    w1 = torch.load(outputs(root, "student-sequence-seed1").model, weights_only=False)
    key = "classifier.weight"
    assert not torch.equal(w0["state_dict"][key], w1["state_dict"][key])
    assert json.loads(open(outputs(root, "student-sequence-seed1").metrics).read())["seed"] == 1
    assert m0["seed"] == 0 and m1["seed"] == 1
