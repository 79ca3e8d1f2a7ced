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
