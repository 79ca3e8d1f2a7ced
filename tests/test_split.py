"""The iterative-stratification split."""

import json

import numpy as np
import pytest

from vicokd.data.split import split_home, stratified_split
from vicokd.errors import VicokdError
from vicokd.storage import atomic_h5


def labels_file(path, y):
    with atomic_h5(path, kind="labels", classes=[f"c{k}" for k in range(y.shape[1])]) as f:
        for i, row in enumerate(y):
            f.create_group(f"s{i:03d}").create_dataset("sequence_labels", data=row.astype(np.uint8))
    return path


def test_split_is_seven_to_three_stratified_and_repeatable():
    rng = np.random.default_rng(0)
    y = (rng.random((100, 6)) < 0.3).astype(np.uint8)
    ids = [f"s{i}" for i in range(100)]
    train, test = stratified_split(ids, y, 0.3, seed=0)
    assert len(test) == 30 and len(train) == 70 and not set(train) & set(test)
    assert (train, test) == stratified_split(ids, y, 0.3, seed=0)
    assert (train, test) != stratified_split(ids, y, 0.3, seed=1)
    share = y[[ids.index(i) for i in test]].sum(0) / np.maximum(y.sum(0), 1)
    assert np.all(np.abs(share - 0.3) < 0.1)              # each class keeps about its 30 %


def test_split_file_counts_and_empty_class_error(tmp_path):
    y = np.zeros((10, 3), np.uint8)
    y[:, 0] = 1
    y[0, 1] = 1                                            # one sequence only: one half lacks it
    path = labels_file(tmp_path / "labels.h5", y)
    with pytest.raises(VicokdError, match="labels.h5: the split leaves classes without a sequence: c1"):
        split_home(path, tmp_path / "split.json", {"test_size": 0.3, "seed": 0})
    assert not (tmp_path / "split.json").exists()
    out = split_home(path, tmp_path / "split.json", {"test_size": 0.3, "seed": 0, "allow_empty_class": True})
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["train"] == out["train"] and len(saved["test"]) == 3
    assert saved["class_counts"]["train"]["c0"] + saved["class_counts"]["test"]["c0"] == 10


def entries(ids):
    """Annotation entries in the published format (no id field: the id is the first view's stem)."""
    return [{"video_url_1": f"{i}/{i}-View1-Part1.mp4", "video_url_2": f"{i}/{i}-View2-Part1.mp4",
             "tricks": [{"labels": ["c0"], "start": 0.0, "end": 1.0}]} for i in ids]


def official_files(tmp_path, train, test):
    (tmp_path / "train_data.json").write_text(json.dumps(entries(train)))
    (tmp_path / "test_data.json").write_text(json.dumps(entries(test)))
    return {"train": tmp_path / "train_data.json", "test": tmp_path / "test_data.json"}


def stems(names):
    return [f"{n}-View1-Part1" for n in names]


def test_official_split_files_make_the_halves(tmp_path, caplog):
    y = np.zeros((6, 3), np.uint8)
    y[:, 0] = 1
    path = tmp_path / "labels.h5"
    with atomic_h5(path, kind="labels", classes=["c0", "c1", "c2"]) as f:
        for sid, row in zip(stems("abcdef"), y):
            f.create_group(sid).create_dataset("sequence_labels", data=row)
    files = official_files(tmp_path, ["d", "a", "b"], ["e", "c"])
    out = split_home(path, tmp_path / "split.json", {"test_size": 0.3, "seed": 0,
                                                      "allow_empty_class": True}, files)
    assert out["train"] == stems("abd") and out["test"] == stems("ce")   # the home's order
    assert out["source"] == "official files"
    assert "left out: f-View1-Part1" in caplog.text                  # in neither file: warned


@pytest.mark.parametrize("train,test,fault", [
    (["a", "zz"], ["c"], r"train_data.json: sequence 'zz-View1-Part1' is not in this home's annotations"),
    (["a", "b"], ["b"], r"test_data.json: sequence 'b-View1-Part1' is also in the train file"),
    (["a", "a"], ["b"], r"train_data.json: sequence id 'a-View1-Part1' appears twice"),
])
def test_official_split_unknown_or_repeated_ids_are_one_line_errors(tmp_path, train, test, fault):
    path = tmp_path / "labels.h5"
    with atomic_h5(path, kind="labels", classes=["c0"]) as f:
        for sid in stems("abc"):
            f.create_group(sid).create_dataset("sequence_labels", data=np.ones(1, np.uint8))
    with pytest.raises(VicokdError, match=fault) as err:
        split_home(path, tmp_path / "split.json", {"test_size": 0.3, "seed": 0},
                   official_files(tmp_path, train, test))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "split.json").exists()
