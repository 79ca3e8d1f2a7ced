"""The training data path at the paper's scale (issue 20): decode's one-chunk-per-frame layout,
reads of only the sampled frames, raw batches read into one buffer and handed on uncopied,
channels moved on the device, and the number of loader workers picked from the job's threads."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO
from fake_artifacts import make_home
from vicokd.config import check_config
from vicokd.data.dataset import EvaluationPasses, SequenceDataset
from vicokd.data.frames import (collate_items, one_chunk_per_frame, read_chunk, read_frames,
                                resize_frames, resize_frames_hwc)
from vicokd.data.decode import write_frames
from vicokd.errors import VicokdError
from vicokd.storage import atomic_h5
from vicokd.train import loader_workers, make_loader, to_device

RNG = np.random.default_rng(0)
BLOCK = RNG.integers(0, 256, (3, 9, 12, 12, 3), dtype=np.uint8)       # [V, L, H, W, 3]


def stored(tmp_path, layout: str) -> h5py.Dataset:
    """BLOCK written in `layout`: decode's, one chunk per view, contiguous, compressed."""
    f = h5py.File(tmp_path / f"{layout}.h5", "w")
    g = f.create_group("s")
    if layout == "decode":
        write_frames(g, BLOCK)
    elif layout == "view":
        g.create_dataset("frames", data=BLOCK, chunks=(1,) + BLOCK.shape[1:])
    elif layout == "contiguous":
        g.create_dataset("frames", data=BLOCK)
    else:
        g.create_dataset("frames", data=BLOCK, chunks=(1, 1) + BLOCK.shape[2:], compression="gzip")
    return g["frames"]


def test_decode_stores_one_uncompressed_chunk_per_frame_of_a_view(tmp_path):
    ds = stored(tmp_path, "decode")
    assert ds.chunks == (1, 1, 12, 12, 3) and ds.compression is None
    assert one_chunk_per_frame(ds)
    assert not one_chunk_per_frame(stored(tmp_path, "gzip"))      # a filter: chunks aren't frames
    assert not one_chunk_per_frame(stored(tmp_path, "view"))
    np.testing.assert_array_equal(ds[()], BLOCK)


@pytest.mark.parametrize("layout", ["decode", "view", "contiguous", "gzip"])
def test_read_frames_takes_exactly_the_sampled_frames(tmp_path, layout):
    ds = stored(tmp_path, layout)
    idx = np.array([0, 0, 3, 2, 8, 8])                  # repeats (L < T) and any order
    np.testing.assert_array_equal(read_frames(ds, idx), BLOCK[:, idx])
    out = np.full((3, len(idx), 12, 12, 3), 7, np.uint8)
    assert read_frames(ds, idx, out) is out
    np.testing.assert_array_equal(out, BLOCK[:, idx])


def test_a_chunk_is_read_without_h5py_writing_into_the_buffer_itself(tmp_path):
    """h5py before 3.9 has no `out` argument: the chunk's bytes are copied in."""
    dsid = stored(tmp_path, "decode").id

    class OldH5py:
        def read_direct_chunk(self, offsets, dxpl=None):
            return dsid.read_direct_chunk(offsets)

    out = np.zeros(12 * 12 * 3, np.uint8)
    read_chunk(OldH5py(), (2, 5, 0, 0, 0), out)
    np.testing.assert_array_equal(out.reshape(12, 12, 3), BLOCK[2, 5])


def test_channels_last_resize_has_resize_frames_values():
    x = RNG.integers(0, 256, (2, 3, 20, 20, 3), dtype=np.uint8)
    hwc = resize_frames_hwc(x, 8)
    assert hwc.shape == (2, 3, 8, 8, 3) and hwc.dtype == torch.uint8
    torch.testing.assert_close(hwc.movedim(-1, -3), resize_frames(x, 8), rtol=0, atol=0)
    np.testing.assert_array_equal(resize_frames_hwc(x, 20).numpy(), x)   # no resize: as stored


def test_collate_hands_on_a_batch_buffer_and_stacks_anything_else():
    buf = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4).clone()
    items = [{"frames": buf[j], "index": torch.tensor(j)} for j in range(2)]
    batch = collate_items(items)
    assert batch["frames"] is buf and list(batch) == ["frames", "index"]
    assert batch["index"].tolist() == [0, 1]
    swapped = collate_items(items[::-1])                 # rows out of order: a copy, in order given
    assert swapped["frames"] is not buf and torch.equal(swapped["frames"], buf.flip(0))
    loose = [{"frames": buf[j].clone(), "index": torch.tensor(j)} for j in range(2)]
    assert torch.equal(collate_items(loose)["frames"], buf)
    part = collate_items(items[:1])                      # one row of a two-row buffer: stacked
    assert part["frames"].shape == (1, 3, 4) and part["frames"].data_ptr() != buf.data_ptr()
    assert collate_items([torch.tensor(1), torch.tensor(2)]).tolist() == [1, 2]   # not items


def decode_layout_home(tmp_path, size: int):
    """make_home's artifacts with frames.h5 rewritten in decode's layout."""
    files = make_home(tmp_path / "src", n_seq=6, views=2, lengths=(3, 11), classes=3, size=size,
                      seg=8, mel=16)
    with h5py.File(files.frames) as f:
        blocks = {sid: f[sid]["frames"][()] for sid in f}
    with atomic_h5(tmp_path / "frames.h5", "frames") as out:
        for sid, block in blocks.items():
            write_frames(out.create_group(sid), block)
    files.frames = str(tmp_path / "frames.h5")
    return files


@pytest.mark.parametrize("stored_size", [8, 16])        # read straight into the batch; resized
@pytest.mark.parametrize("workers", [0, 1])
def test_raw_batches_reach_the_model_as_the_normalised_ones(tmp_path, stored_size, workers):
    files = decode_layout_home(tmp_path, stored_size)
    for train in (False, True):
        ds = SequenceDataset(files, "train" if train else "test", frames=5, image_size=8,
                             train=train)
        plain = next(iter(make_loader(ds, 3, shuffle=False)))
        ds.raw = True
        raw = next(iter(make_loader(ds, 3, shuffle=False, workers=workers)))
        assert raw["frames"].dtype == torch.uint8 and raw["frames"].shape == (3, 2, 5, 8, 8, 3)
        if workers:                                      # came through shared memory, uncopied
            assert raw["frames"].is_shared()
        done = to_device(raw, torch.device("cpu"), ds)
        assert done["frames"].shape == plain["frames"].shape == (3, 2, 5, 3, 8, 8)
        for key in ("frames", "fbank", "frame_labels", "masks", "frame_index"):
            torch.testing.assert_close(done[key], plain[key], rtol=0, atol=0)
        ds.close()


@pytest.mark.parametrize("raw", [False, True])
def test_evaluation_passes_fetched_as_a_batch_equal_one_by_one(tmp_path, raw):
    files = decode_layout_home(tmp_path, 8)
    ds = SequenceDataset(files, "test", frames=4, image_size=8, train=False)
    ds.raw = raw
    passes = EvaluationPasses(ds)
    js = list(range(len(passes)))
    for one, many in zip([passes[j] for j in js], passes.__getitems__(js)):
        assert set(one) == set(many)
        for key in one:
            torch.testing.assert_close(one[key], many[key], rtol=0, atol=0)


def test_cached_raw_items_equal_uncached(tmp_path):
    files = decode_layout_home(tmp_path, 16)
    plain = SequenceDataset(files, "train", frames=5, image_size=8, train=True)
    cached = SequenceDataset(files, "train", frames=5, image_size=8, train=True, cache=True)
    plain.raw = cached.raw = True
    for _ in range(2):                                   # the second pass reads the cache
        a, b = plain.__getitems__([0, 1, 2]), cached.__getitems__([0, 1, 2])
        for x, y in zip(a, b):
            for key in x:
                torch.testing.assert_close(x[key], y[key], rtol=0, atol=0)


def test_auto_workers_follow_the_jobs_threads_on_a_gpu_and_are_none_on_the_cpu():
    assert loader_workers("auto", torch.device("cpu"), threads=16) == 0
    assert loader_workers("auto", torch.device("cuda"), threads=16) == 15
    assert loader_workers("auto", torch.device("cuda"), threads=1) == 1
    assert loader_workers(3, torch.device("cpu"), threads=16) == 3
    torch_threads = torch.get_num_threads()
    assert loader_workers("auto", torch.device("cuda")) == max(1, torch_threads - 1)


@pytest.mark.parametrize("value, ok", [("auto", True), (0, True), (12, True), (-1, False),
                                       ("many", False), (2.5, False)])
def test_workers_take_a_count_or_auto(value, ok):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for section in ("teacher", "student"):
        cfg = copy.deepcopy(config)
        cfg[section]["workers"] = value
        if ok:
            assert check_config(cfg)[section]["workers"] == value
        else:
            with pytest.raises(VicokdError, match=f"config key '{section}.workers'"):
                check_config(cfg)
