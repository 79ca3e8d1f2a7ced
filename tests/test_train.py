"""The training loop: repeatability, resume after a kill, foreign checkpoints, NaN losses, and
the teacher's four outputs."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
import torch

from fake_artifacts import make_home, tiny_model_section
from vicokd.errors import VicokdError
from vicokd.runs.outputs import RunOutputs, checkpoint_path
from vicokd.runs.teacher import train_teacher

TEACHER = {"epochs": 3, "lr": 3e-3, "weight_decay": 5e-4, "batch_size": 2, "lambda_seq": 1.0,
           "seed": 0}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("home"), n_seq=8, views=2, lengths=(4, 9))


def outputs(root, backbone="multiasl"):
    d = root / "results" / "h" / backbone / "teacher"
    return RunOutputs(*(str(d / n) for n in ("model.pt", "curve.csv", "metrics.json",
                                             "predictions.h5")))


def test_checkpoint_path_is_outside_the_outputs():
    assert str(checkpoint_path("results/home1/multitsf/teacher/model.pt")) == \
        "results/checkpoints/home1/multitsf/teacher/last.pt"


def test_outputs_and_repeatability(home, tmp_path):
    a = train_teacher(home, outputs(tmp_path / "a"), tiny_model_section(), TEACHER, "multiasl")
    b = train_teacher(home, outputs(tmp_path / "b"), tiny_model_section(), TEACHER, "multiasl")
    assert a["map"] == b["map"] and a["frame_map"] == b["frame_map"]
    o = outputs(tmp_path / "a")
    rows = list(csv.DictReader(open(o.curve)))
    assert list(rows[0])[:6] == ["epoch", "train_loss", "test_map", "test_frame_map", "lr",
                                 "seconds"]
    # then, sorted: the authors'-protocol figure, each loss part's mean and each term's pull
    assert list(rows[0])[6:] == sorted(list(rows[0])[6:])
    assert {"authors_map", "part_seq", "part_frame", "grad_first_supervision",
            "grad_logits_supervision", "grad_first_auxiliary"} <= set(rows[0])
    assert float(rows[0]["grad_first_supervision"]) > 0
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[0]["lr"]) == pytest.approx(3e-3) and float(rows[2]["lr"]) < 3e-3  # cosine
    m = json.load(open(o.metrics))
    for key in ("map", "frame_map", "per_class_ap", "chance", "chance_band", "prevalence",
                "frame_chance", "frame_chance_band", "epochs", "seconds", "n_test"):
        assert key in m
    assert m["n_test"] == 4 and m["epochs"] == 3 and set(m["per_class_ap"]) == {
        "Act0", "Act1", "Act2", "Act3"}
    assert m["map"] == pytest.approx(float(rows[-1]["test_map"]))
    with h5py.File(o.predictions) as f:
        assert f.attrs["kind"] == "predictions"
        assert [str(c) for c in f.attrs["classes"]] == ["Act0", "Act1", "Act2", "Act3"]
        test_ids = json.load(open(home.split))["test"]
        assert sorted(f) == sorted(test_ids)
        g = f[test_ids[0]]
        with h5py.File(home.labels) as lab:
            length = lab[test_ids[0]]["frame_labels"].shape[0]
        assert length > 6           # more decoded frames than T: every one of them is scored
        assert g["sequence_scores"].shape == (4,) and g["frame_scores"].shape == (length, 4)
        assert g["view_frame_scores"].shape == (2, length, 4)
        assert (g["frame_index"][()] == np.arange(length)).all()
        assert (g["frame_scores"][()] > 0).all() and (g["frame_scores"][()] < 1).all()
    # a finished job leaves no checkpoint behind: a rerun with changed inputs starts afresh
    assert not checkpoint_path(o.model).exists()


class Killed(Exception):
    pass


def kill_after(epoch):
    def hook(e, row):
        if e == epoch:
            raise Killed
    return hook


@pytest.mark.parametrize("backbone", ["multitsf"])
def test_resume_after_a_kill_gives_the_same_metrics(home, tmp_path, backbone):
    section = tiny_model_section()
    whole = train_teacher(home, outputs(tmp_path / "whole", backbone), section, TEACHER, backbone)
    o = outputs(tmp_path / "killed", backbone)
    with pytest.raises(Killed):
        train_teacher(home, o, section, TEACHER, backbone, on_epoch_end=kill_after(1))
    assert checkpoint_path(o.model).is_file()
    resumed = train_teacher(home, o, section, TEACHER, backbone)
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["map"] == whole["map"] and resumed["frame_map"] == whole["frame_map"]
    w = list(csv.DictReader(open(outputs(tmp_path / "whole", backbone).curve)))
    r = list(csv.DictReader(open(o.curve)))
    assert [x["train_loss"] for x in w] == [x["train_loss"] for x in r]
    a = torch.load(outputs(tmp_path / "whole", backbone).model, weights_only=False)["state_dict"]
    b = torch.load(o.model, weights_only=False)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_a_checkpoint_on_other_input_data_starts_afresh_with_a_warning(tmp_path, caplog):
    """Killed at epoch 1, then an upstream stage rewrote the frames (decode.size changed): the
    teacher must not resume on the new data; it trains afresh, as a run that was never killed."""
    data = tmp_path / "data"
    o = outputs(tmp_path / "killed")
    with pytest.raises(Killed):
        train_teacher(make_home(data, n_seq=8, views=2, lengths=(4, 9)), o, tiny_model_section(),
                      TEACHER, "multiasl", on_epoch_end=kill_after(1))
    assert checkpoint_path(o.model).is_file()
    new = make_home(data, n_seq=8, views=2, lengths=(4, 9), seed=7)    # same ids, new frames
    after = train_teacher(new, o, tiny_model_section(), TEACHER, "multiasl")
    assert after["resumed_from_epoch"] == 0
    assert "checkpoint made on other input data (differs in: audio, frames, labels, masks); " \
           "starting afresh" in caplog.text
    fresh = train_teacher(new, outputs(tmp_path / "fresh"), tiny_model_section(), TEACHER,
                          "multiasl")
    assert after["map"] == fresh["map"] and after["frame_map"] == fresh["frame_map"]


def test_checkpoint_from_another_config_is_an_error(home, tmp_path):
    o = outputs(tmp_path)
    with pytest.raises(Killed):
        train_teacher(home, o, tiny_model_section(), TEACHER, "multiasl",
                      on_epoch_end=kill_after(1))
    with pytest.raises(VicokdError, match=r"last.pt: checkpoint was made by another config "
                                          r"\(differs in: teacher\)") as err:
        train_teacher(home, o, tiny_model_section(), {**TEACHER, "lr": 1e-2}, "multiasl")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("backbone", ["multitrans", "multiasl", "multitsf"])
def test_non_finite_loss_names_epoch_and_step(home, tmp_path, backbone):
    nan = {"image_mean": float("nan"), "image_std": 0.5, "fbank_mean": None, "fbank_std": None}
    with pytest.raises(VicokdError, match=r"non-finite loss \(nan\) at epoch 1, step 1"):
        train_teacher(home, outputs(tmp_path, backbone),
                      tiny_model_section(normalize=nan), TEACHER, backbone)
    # and nothing was written
    assert not list((tmp_path / "results" / "h").rglob("*.pt"))


def test_teacher_learns_the_fabricated_home(tmp_path_factory):
    """On data where every class is visible and audible, a few epochs beat chance clearly."""
    files = make_home(tmp_path_factory.mktemp("learn"), n_seq=16, views=2, lengths=(6, 10),
                      seed=3)
    m = train_teacher(files, outputs(tmp_path_factory.mktemp("out"), "multitrans"),
                      tiny_model_section(dropout=0.0),
                      {**TEACHER, "epochs": 8, "lr": 3e-3, "batch_size": 4}, "multitrans")
    assert m["frame_map"] > m["frame_chance"] + 15


def test_resume_may_change_threads_and_cache(home, tmp_path):
    o = outputs(tmp_path)
    with pytest.raises(Killed):
        train_teacher(home, o, tiny_model_section(), TEACHER, "multiasl", on_epoch_end=kill_after(1))
    m = train_teacher(home, o, tiny_model_section(), {**TEACHER, "threads": 2, "cache": True},
                      "multiasl")
    assert m["resumed_from_epoch"] == 1


def test_cosine_ends_at_lr_min_and_metrics_carry_the_best_epoch(home, tmp_path):
    section = {**TEACHER, "epochs": 2, "lr": 1e-3, "lr_min": 1e-5}
    m = train_teacher(home, outputs(tmp_path), tiny_model_section(), section, "multiasl")
    rows = list(csv.DictReader(open(outputs(tmp_path).curve)))
    # epoch 2 of 2 starts halfway down the cosine from lr to lr_min (eta_min), not to 0
    assert float(rows[1]["lr"]) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2, rel=1e-4)
    maps = [float(r["test_map"]) for r in rows]
    # the reported figure stays the last epoch's; the authors' protocol is beside it, labelled
    assert m["map"] == pytest.approx(maps[-1])
    assert m["best_epoch"] == 1 + int(np.argmax(maps))
    assert m["best_epoch_map"] == pytest.approx(max(maps))
    assert "authors' protocol" in m["best_epoch_protocol"]


def test_best_epoch_takes_the_first_of_equal_epochs():
    from vicokd.runs.outputs import best_epoch
    curve = [{"epoch": 1, "test_map": 40.0, "test_frame_map": 9.0},
             {"epoch": 2, "test_map": 55.0, "test_frame_map": 10.0},
             {"epoch": 3, "test_map": 55.0, "test_frame_map": 12.0},
             {"epoch": 4, "test_map": float("nan"), "test_frame_map": 1.0}]
    assert best_epoch(curve) == {"best_epoch_map": 55.0, "best_epoch_frame_map": 10.0,
                                 "best_epoch": 2, "best_epoch_scoring": "sigmoid"}
    assert best_epoch([])["best_epoch"] is None


def test_best_epoch_is_chosen_and_reported_as_the_authors_score_the_backbone():
    """Their MultiTSF scores softmax over classes: its figure, and the epoch it picks, may
    differ from our sigmoid-scored test_map, which stays what `map` reports."""
    from vicokd.runs.outputs import best_epoch
    curve = [{"epoch": 1, "test_map": 60.0, "authors_map": 50.0, "test_frame_map": 9.0},
             {"epoch": 2, "test_map": 55.0, "authors_map": 58.0, "test_frame_map": None}]
    assert best_epoch(curve, "multitsf") == {"best_epoch_map": 58.0, "best_epoch_frame_map": None,
                                             "best_epoch": 2, "best_epoch_scoring": "softmax"}
    assert best_epoch(curve, "multiasl")["best_epoch_scoring"] == "sigmoid"
    # a curve from before the authors' score was kept: selection by test_map, sigmoid
    old = [{k: v for k, v in r.items() if k != "authors_map"} for r in curve]
    assert best_epoch(old, "multitsf")["best_epoch"] == 1
    assert best_epoch(old, "multitsf")["best_epoch_scoring"] == "sigmoid"


def test_normalising_on_the_device_trains_the_same_model(home, tmp_path):
    section = {**TEACHER, "epochs": 1}
    a = train_teacher(home, outputs(tmp_path / "a"), tiny_model_section(), section, "multitsf")
    b = train_teacher(home, outputs(tmp_path / "b"), tiny_model_section(),
                      {**section, "normalize_on_device": True, "pin_memory": True}, "multitsf")
    assert a["map"] == b["map"] and a["frame_map"] == b["frame_map"]
