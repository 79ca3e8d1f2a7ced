"""Weakly labelled sequences (labels without times) through losses, metrics, the dataset, the
training runs and the probe: frame-level figures take only the sequences with frame labels,
sequence-level ones every sequence; a run that needs frame labels on data without any stops in
one line naming the setting to change."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from fake_artifacts import make_home, tiny_model_section
from vicokd.data.dataset import DataFiles, SequenceDataset, require_audio, require_frame_labels
from vicokd.errors import VicokdError
from vicokd.losses import supervised_loss, two_way_loss
from vicokd.metrics import (authors_protocol_map, authors_scores, evaluation_summary,
                            frame_mean_average_precision, mean_average_precision)
from vicokd.runs.outputs import RunOutputs
from vicokd.runs.student import train_student
from vicokd.runs.teacher import train_teacher

TEACHER = {"epochs": 2, "lr": 3e-3, "batch_size": 4, "seed": 0}
STUDENT = {"epochs": 2, "batch_size": 4, "lr": 1e-3}


def outputs(root, run="teacher"):
    d = root / "results" / "h" / "multiasl" / run
    return RunOutputs(*(str(d / n) for n in ("model.pt", "curve.csv", "metrics.json",
                                             "predictions.h5")))


# --- losses -----------------------------------------------------------------------------------

def test_frame_loss_takes_only_the_rows_of_sequences_with_frame_labels():
    torch.manual_seed(0)
    out = {"frame_logits": torch.randn(3, 5, 4, requires_grad=True),
           "sequence_logits": torch.randn(3, 4, requires_grad=True)}
    labels = (torch.rand(3, 5, 4) < 0.4).float()
    seq = (torch.rand(3, 4) < 0.5).float()
    batch = {"frame_labels": labels, "sequence_labels": seq,
             "has_frame_labels": torch.tensor([1.0, 0.0, 1.0])}
    loss, parts = supervised_loss(out, batch, 1.0, "frame")
    expected_frame = two_way_loss(out["frame_logits"][[0, 2]].reshape(-1, 4), labels[[0, 2]].reshape(-1, 4))
    expected_seq = two_way_loss(out["sequence_logits"], seq)             # every sequence
    assert parts["frame"] == pytest.approx(float(expected_frame.detach()))
    assert float(loss.detach()) == pytest.approx(float((expected_frame + expected_seq).detach()))
    # the weak sequence's (all-zero) frame labels would have changed it
    unmasked, _ = supervised_loss(out, {k: v for k, v in batch.items() if k != "has_frame_labels"})
    assert float(unmasked.detach()) != pytest.approx(float(loss.detach()))
    loss.backward()
    assert out["frame_logits"].grad[1].abs().sum() == 0                  # no gradient from its frames
    assert out["frame_logits"].grad[0].abs().sum() > 0


def test_a_batch_without_frame_labels_has_a_zero_frame_loss_on_the_graph():
    out = {"frame_logits": torch.randn(2, 3, 4, requires_grad=True),
           "sequence_logits": torch.randn(2, 4, requires_grad=True)}
    batch = {"frame_labels": torch.zeros(2, 3, 4), "sequence_labels": torch.eye(4)[:2],
             "has_frame_labels": torch.zeros(2)}
    loss, parts = supervised_loss(out, batch, 1.0, "frame")
    assert parts["frame"] == 0.0
    assert float(loss.detach()) == pytest.approx(parts["seq"])
    loss.backward()
    assert out["frame_logits"].grad is not None


# --- metrics ----------------------------------------------------------------------------------

def test_frame_map_counts_only_sequences_with_frame_labels():
    rng = np.random.default_rng(0)
    targets = [rng.integers(0, 2, (n, 3)) for n in (5, 7, 4)]
    scores = [rng.random((n, 3)) for n in (5, 7, 4)]
    flags = [True, False, True]
    expected = mean_average_precision(np.concatenate([targets[0], targets[2]]),
                                      np.concatenate([scores[0], scores[2]]))
    assert frame_mean_average_precision(targets, scores, flags) == pytest.approx(expected)
    assert frame_mean_average_precision(targets, scores) != pytest.approx(expected)
    assert np.isnan(frame_mean_average_precision(targets, scores, [False] * 3))
    seq_y, seq_s = rng.integers(0, 2, (3, 3)), rng.random((3, 3))
    s = evaluation_summary(seq_y, seq_s, targets, scores, ["a", "b", "c"], labelled=flags)
    assert s["frame_map"] == pytest.approx(expected) and s["n_frame_labelled"] == 2
    assert s["n_frames"] == 9 and s["map"] == pytest.approx(mean_average_precision(seq_y, seq_s))
    weak = evaluation_summary(seq_y, seq_s, targets, scores, ["a", "b", "c"], labelled=[False] * 3)
    assert weak["frame_map"] is None and weak["frame_chance"] is None and weak["n_frames"] == 0
    assert weak["map"] == s["map"]                                       # sequence mAP: all


def test_the_authors_scoring_per_backbone():
    """MultiTSF's code softmaxes the sequence logits over the classes before AP: that reorders
    sequences within a class (a sequence confident in many classes drops), so its mAP differs
    from the sigmoid one, which MultiASL's code uses and ours is."""
    logits = np.array([[4.0, 3.9], [1.0, -3.0], [0.5, 0.4]])
    targets = np.array([[1, 1], [0, 0], [1, 0]])
    sigmoid = 1 / (1 + np.exp(-logits))
    soft = authors_scores(sigmoid, logits, "multitsf")
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    assert np.array_equal(authors_scores(sigmoid, logits, "multiasl"), sigmoid)
    assert authors_scores(sigmoid, logits, "multitrans") is not None
    ours = mean_average_precision(targets, sigmoid)
    assert authors_protocol_map(targets, sigmoid, logits, "multiasl") == ours
    assert authors_protocol_map(targets, sigmoid, logits, "multitsf") == pytest.approx(
        mean_average_precision(targets, soft))
    assert authors_protocol_map(targets, sigmoid, logits, "multitsf") != pytest.approx(ours)


# --- the dataset and the runs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def weak_home(tmp_path_factory):
    """8 sequences (test half: 0-3), sequence 1 of the test half and 5, 6 of the train half
    without frame labels."""
    return make_home(tmp_path_factory.mktemp("weak"), n_seq=8, views=2, lengths=(4, 8),
                     weak=(1, 5, 6))


@pytest.fixture(scope="module")
def weak_only(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("weakonly"), n_seq=8, views=2, lengths=(4, 8),
                     weak=tuple(range(8)))


def test_items_carry_the_frame_label_flag(weak_home):
    ds = SequenceDataset(weak_home, "train", frames=4, image_size=8, train=True)
    flags = [bool(ds[i]["has_frame_labels"]) for i in range(len(ds))]
    with h5py.File(weak_home.labels) as f:
        assert flags == [bool(f[s.seq_id].attrs["has_frame_labels"]) for s in ds.sequences]
    assert flags == [True, False, False, True] and ds.frame_labelled == 2
    require_frame_labels(ds, "teacher.supervision: sequence")          # two have them: fine


def test_frame_supervision_on_data_without_frame_labels_names_the_setting(weak_only, tmp_path):
    with pytest.raises(VicokdError) as err:
        train_teacher(weak_only, outputs(tmp_path), tiny_model_section(frames=4), TEACHER, "multiasl")
    assert "no sequence of the train split has any" in str(err.value)
    assert str(err.value).endswith("set teacher.supervision: sequence")
    with pytest.raises(VicokdError, match=r"set experiments.supervision: \[sequence\]$"):
        train_student(weak_only, outputs(tmp_path, "student-frame-seed0"),
                      tiny_model_section(frames=4), STUDENT, "multiasl", "student", "frame", 0)


def test_a_sequence_supervised_teacher_on_weak_data_has_no_frame_map(weak_only, tmp_path):
    m = train_teacher(weak_only, outputs(tmp_path), tiny_model_section(frames=4),
                      {**TEACHER, "supervision": "sequence"}, "multiasl")
    assert m["map"] is not None and m["frame_map"] is None and m["n_frame_labelled"] == 0
    assert m["frame_chance"] is None and m["chance"] is not None
    with h5py.File(outputs(tmp_path).predictions) as f:
        assert not any(f[k].attrs["has_frame_labels"] for k in f)


def test_frame_figures_of_a_mixed_home_use_the_labelled_sequences(weak_home, tmp_path):
    m = train_teacher(weak_home, outputs(tmp_path), tiny_model_section(frames=4), TEACHER, "multiasl")
    assert m["n_frame_labelled"] == 3 and m["n_test"] == 4
    with h5py.File(outputs(tmp_path).predictions) as p, h5py.File(weak_home.labels) as f:
        kept = [k for k in p if f[k].attrs["has_frame_labels"]]
        assert len(kept) == 3 and all(p[k].attrs["has_frame_labels"] for k in kept)
        expected = frame_mean_average_precision([f[k]["frame_labels"][()] for k in kept],
                                                [p[k]["frame_scores"][()] for k in kept])
        seq = mean_average_precision(np.stack([f[k]["sequence_labels"][()] for k in p]),
                                     np.stack([p[k]["sequence_scores"][()] for k in p]))
    assert m["frame_map"] == pytest.approx(expected)
    assert m["map"] == pytest.approx(seq)                              # every test sequence


def test_without_audio_the_teacher_and_the_distilling_students_stop_in_one_line(weak_home, tmp_path):
    """issue 22 item 2: dataset.require_audio: false used to end in a KeyError."""
    silent = DataFiles(frames=weak_home.frames, labels=weak_home.labels, split=weak_home.split,
                       masks=weak_home.masks, audio=None)
    with pytest.raises(VicokdError) as err:
        train_teacher(silent, outputs(tmp_path), tiny_model_section(frames=4), TEACHER, "multiasl")
    msg = str(err.value)
    assert "the teacher needs audio, and dataset.require_audio is false" in msg
    assert "experiments.methods: [student]" in msg and "\n" not in msg
    with pytest.raises(VicokdError, match="method 'cokd' .* needs audio"):
        train_student(silent, outputs(tmp_path, "cokd-sequence-seed0"), tiny_model_section(frames=4),
                      STUDENT, "multiasl", "cokd", "sequence", 0, teacher_path=str(tmp_path / "t.pt"))
    with pytest.raises(VicokdError):
        require_audio(silent, "x")
    m = train_student(silent, outputs(tmp_path, "student-sequence-seed0"), tiny_model_section(frames=4),
                      STUDENT, "multiasl", "student", "sequence", 0)
    assert m["map"] is not None


def test_the_probe_fits_weak_sequences_to_their_sequence_labels(weak_home, tmp_path):
    from vicokd.runs.probe import run_probe, sequence_blocks, open_probe_data

    data = open_probe_data(DataFiles(frames=weak_home.frames, labels=weak_home.labels,
                                     split=weak_home.split, audio=weak_home.audio))
    try:
        with h5py.File(weak_home.labels) as f:
            weak_id = next(s for s in data.train if not f[s].attrs["has_frame_labels"])
            seq_y = f[weak_id]["sequence_labels"][()]
        _, y = next(sequence_blocks(data, weak_id))
        assert (y == seq_y).all()
        with h5py.File(weak_home.frames) as f, h5py.File(weak_home.labels) as lab:
            labelled_frames = sum(f[s]["frames"].shape[1] for s in data.test
                                  if lab[s].attrs["has_frame_labels"])
    finally:
        data.close()
    out = run_probe(DataFiles(frames=weak_home.frames, labels=weak_home.labels,
                              split=weak_home.split, audio=weak_home.audio))
    assert out["n_test_frames"] == labelled_frames and out["n_test"] == 4
    assert out["picture"]["frame_map"] is not None and out["frame_chance"] is not None


def test_the_probe_on_weak_only_data_has_no_frame_figures(weak_only):
    from vicokd.runs.probe import run_probe

    out = run_probe(DataFiles(frames=weak_only.frames, labels=weak_only.labels,
                              split=weak_only.split, audio=weak_only.audio))
    assert out["n_test_frames"] == 0 and out["picture"]["frame_map"] is None
    assert out["picture"]["map"] is not None and out["frame_chance"] is None
    json.dumps(out)
