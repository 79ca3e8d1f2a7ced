"""The frame sampler and the HDF5 dataset, against small fabricated artifacts."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from fake_artifacts import make_home
from vicokd.data.dataset import SequenceDataset
from vicokd.data.sampling import sample_indices
from vicokd.errors import VicokdError
from vicokd.train import make_loader


def test_evaluation_sampling_is_floor_k_l_over_t():
    assert sample_indices(20, 4, train=False).tolist() == [0, 5, 10, 15]
    assert sample_indices(10, 4, train=False).tolist() == [0, 2, 5, 7]
    # shorter than T: frames repeat
    assert sample_indices(3, 6, train=False).tolist() == [0, 0, 1, 1, 2, 2]
    assert sample_indices(1, 3, train=False).tolist() == [0, 0, 0]


@pytest.mark.parametrize("length,t", [(50, 16), (17, 16), (16, 16), (5, 16), (1, 4)])
def test_training_sampling_stays_in_its_interval(length, t):
    rng = np.random.default_rng(0)
    k = np.arange(t)
    lo, hi = (k * length) // t, ((k + 1) * length) // t
    seen = set()
    for _ in range(200):
        idx = sample_indices(length, t, train=True, rng=rng)
        assert idx.shape == (t,) and idx.dtype == np.int64
        empty = hi <= lo
        assert np.all(idx[empty] == lo[empty])
        assert np.all((idx[~empty] >= lo[~empty]) & (idx[~empty] < hi[~empty]))
        assert np.all(np.diff(idx) >= 0)
        seen.update(idx.tolist())
    # every decoded frame can be drawn when L >= T
    if length >= t:
        assert seen == set(range(length))


def test_dataset_items_and_batches(tmp_path):
    files = make_home(tmp_path, n_seq=6, views=3, lengths=(4, 9), classes=4, size=16, seg=8,
                      mel=16)
    ds = SequenceDataset(files, "train", frames=6, image_size=8, train=True, seed=0)
    test = SequenceDataset(files, "test", frames=6, image_size=8, train=False)
    assert len(ds) == 3 and len(test) == 3 and ds.num_classes == 4
    assert ds.classes == ["Act0", "Act1", "Act2", "Act3"] and ds.audio_shape == (8, 16)
    item = ds[0]
    assert item["frames"].shape == (3, 6, 3, 8, 8) and item["frames"].dtype == torch.float32
    assert item["fbank"].shape == (3, 6, 8, 16) and item["fbank"].dtype == torch.float32
    assert item["frame_labels"].shape == (6, 4) and item["sequence_labels"].shape == (4,)
    assert item["masks"].shape == (3, 6)
    # the sampled frames, labels and masks agree with the file
    sid = ds.sequences[0].seq_id
    idx = item["frame_index"].numpy()
    with h5py.File(files.labels) as f:
        np.testing.assert_array_equal(item["frame_labels"].numpy(), f[sid]["frame_labels"][()][idx])
    with h5py.File(files.masks) as f:
        np.testing.assert_array_equal(item["masks"].numpy(), f[sid]["mask"][()][:, idx])
    with h5py.File(files.audio) as f:       # fabricated stats: mean 0, std 1 -> x / 2
        expected = f[sid]["fbank"][()][:, idx].astype(np.float32) / 2
        np.testing.assert_allclose(item["fbank"].numpy(), expected, rtol=1e-6)
    with h5py.File(files.frames) as f:      # normalised to [-1, 1], resized 16 -> 8
        raw = f[sid]["frames"][()][:, idx]
        assert item["frames"].min() >= -1 and item["frames"].max() <= 1
        np.testing.assert_allclose(item["frames"].mean().item(), (raw.mean() / 255 - 0.5) / 0.5,
                                   atol=0.02)
    # evaluation is deterministic, training changes with the epoch but repeats for a seed
    np.testing.assert_array_equal(test[1]["frame_index"], test[1]["frame_index"])
    a = ds[2]["frame_index"].clone()
    np.testing.assert_array_equal(a, ds[2]["frame_index"])
    draws = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        draws.add(tuple(ds[2]["frame_index"].tolist()))
    assert len(draws) > 1
    batch = next(iter(make_loader(ds, 2, shuffle=True)))
    assert batch["frames"].shape == (2, 3, 6, 3, 8, 8)


def test_file_stays_open_per_process(tmp_path, monkeypatch):
    files = make_home(tmp_path, n_seq=4)
    ds = SequenceDataset(files, "train", frames=4, image_size=8, train=True)
    import vicokd.data.dataset as mod
    calls = []
    real = mod.open_h5
    monkeypatch.setattr(mod, "open_h5", lambda p, k: calls.append(k) or real(p, k))
    for i in range(len(ds)):
        ds[i]
        ds[i]
    assert sorted(calls) == ["audio", "frames", "labels", "masks"]
    import pickle
    clone = pickle.loads(pickle.dumps(ds))          # what a worker receives: no open handles
    assert clone._handles is None
    ds.close()


def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


def test_mismatched_frames_and_audio_shapes(tmp_path):
    files = make_home(tmp_path, n_seq=4)
    sid = json.loads(open(files.split).read())["train"][0]

    def shorten(f):
        data = f[sid]["fbank"][()][:, :-1]
        del f[sid]["fbank"]
        f[sid].create_dataset("fbank", data=data)
    _edit(files.audio, shorten)
    with pytest.raises(VicokdError, match=rf"audio.h5:/{sid}/fbank: expected size"):
        SequenceDataset(files, "train", frames=4, image_size=8, train=True)


def test_class_count_mismatch(tmp_path):
    files = make_home(tmp_path, n_seq=4, classes=4)
    sid = json.loads(open(files.split).read())["train"][1]

    def widen(f):
        for name in ("frame_labels", "sequence_labels"):
            data = f[sid][name][()]
            del f[sid][name]
            pad = np.zeros(data.shape[:-1] + (1,), np.uint8)
            f[sid].create_dataset(name, data=np.concatenate([data, pad], -1))
    _edit(files.labels, widen)
    with pytest.raises(VicokdError, match="5 classes, other sequences have 4") as err:
        SequenceDataset(files, "train", frames=4, image_size=8, train=True)
    assert "\n" not in str(err.value)


def test_classes_attribute_disagrees(tmp_path):
    files = make_home(tmp_path, n_seq=4, classes=4)
    _edit(files.labels, lambda f: f.attrs.__setitem__("classes", ["a", "b", "c"]))
    with pytest.raises(VicokdError, match="names 3 classes, the label arrays have 4"):
        SequenceDataset(files, "test", frames=4, image_size=8, train=False)


def test_split_naming_unknown_sequence(tmp_path):
    files = make_home(tmp_path, n_seq=4)
    split = json.loads(open(files.split).read())
    split["test"].append("ghost")
    open(files.split, "w").write(json.dumps(split))
    with pytest.raises(VicokdError, match="sequence 'ghost' of the 'test' split is not in"):
        SequenceDataset(files, "test", frames=4, image_size=8, train=False)
    open(files.split, "w").write(json.dumps({"train": split["train"]}))
    with pytest.raises(VicokdError, match="no 'test' list"):
        SequenceDataset(files, "test", frames=4, image_size=8, train=False)


def test_wrong_dtype_and_wrong_kind(tmp_path):
    files = make_home(tmp_path, n_seq=4)
    sid = json.loads(open(files.split).read())["train"][0]

    def as_float(f):
        data = f[sid]["mask"][()].astype(np.float32)
        del f[sid]["mask"]
        f[sid].create_dataset("mask", data=data)
    _edit(files.masks, as_float)
    with pytest.raises(VicokdError, match="expected dtype bool"):
        SequenceDataset(files, "train", frames=4, image_size=8, train=True)
    files.masks = files.audio
    with pytest.raises(VicokdError, match="expected a 'masks' file"):
        SequenceDataset(files, "train", frames=4, image_size=8, train=True)


def test_views_differ_within_a_home(tmp_path):
    files = make_home(tmp_path, n_seq=4, views=3)
    sid = json.loads(open(files.split).read())["train"][1]

    def drop_view(f):
        data = f[sid]["frames"][()][:2]
        del f[sid]["frames"]
        f[sid].create_dataset("frames", data=data)
    _edit(files.frames, drop_view)
    with pytest.raises(VicokdError, match="2 views, other sequences of this home have 3"):
        SequenceDataset(files, "train", frames=4, image_size=8, train=True)


def test_cached_items_equal_uncached(tmp_path):
    files = make_home(tmp_path, n_seq=4, size=24)
    plain = SequenceDataset(files, "train", frames=5, image_size=8, train=True)
    cached = SequenceDataset(files, "train", frames=5, image_size=8, train=True, cache=True)
    for epoch in range(2):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert set(a) == set(b)
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert len(cached._cache) == len(cached)


def test_raw_items_normalised_on_the_device_equal_the_normalised_ones(tmp_path):
    """normalize_on_device: uint8 frames and float16 fbank through the loader (workers, pinned
    memory), normalised after the copy: the batch the model sees is the same."""
    from vicokd.train import to_device
    files = make_home(tmp_path, n_seq=6, views=2, lengths=(4, 9), classes=3, size=16, seg=8, mel=16)
    ds = SequenceDataset(files, "test", frames=5, image_size=8, train=False)
    plain = next(iter(make_loader(ds, 3, shuffle=False)))
    ds.raw = True
    raw = next(iter(make_loader(ds, 3, shuffle=False, workers=1, pin_memory=True)))
    assert raw["frames"].dtype == torch.uint8 and raw["fbank"].dtype == torch.float16
    assert raw["frames"].element_size() * 4 == plain["frames"].element_size()
    done = to_device(raw, torch.device("cpu"), ds)
    for key in ("frames", "fbank", "frame_labels", "masks"):
        torch.testing.assert_close(done[key], plain[key], rtol=0, atol=0)
    # an already normalised batch passes unchanged
    assert to_device(plain, torch.device("cpu"), ds)["frames"] is not None
    torch.testing.assert_close(ds.on_device(dict(plain))["frames"], plain["frames"])
