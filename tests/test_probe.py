"""The linear probe (vicokd.runs.probe): features, the streamed ridge fit, and a fabricated home
where one class is a pixel pattern in one view and another a tone in another view."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from vicokd.data.dataset import DataFiles
from vicokd.errors import VicokdError
from vicokd.runs import probe as pb
from vicokd.storage import atomic_h5, read_json, write_dataset, write_json

SIZE, MEL, SEG = 40, 16, 6
TONE_BINS = slice(9, 12)


def make_probe_home(root: Path, n_seq: int = 24, views: int = 2, seed: int = 0, lengths=(8, 20),
                    audio: bool = True) -> DataFiles:
    """Class "Pattern" is a checkerboard drawn in view 0 only; class "Tone" is a bump in mel bins
    9-11 of view 1's fbank only; class "Noise" has no cue at all. Frames are otherwise noise,
    the fbank a random level per segment."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    classes = ["Pattern", "Tone", "Noise"]
    ids = [f"s{i:02d}" for i in range(n_seq)]
    checker = ((np.indices((SIZE // 2, SIZE // 2)).sum(0) // 2) % 2 * 200).astype(np.uint8)
    paths = DataFiles(frames=str(root / "frames.h5"), labels=str(root / "labels.h5"),
                      split=str(root / "split.json"), audio=str(root / "audio.h5") if audio else None)
    with atomic_h5(paths.frames, "frames") as ff, atomic_h5(paths.labels, "labels", classes=classes) as fl:
        fa_ctx = atomic_h5(root / "audio.h5", "audio") if audio else None
        fa = fa_ctx.__enter__() if fa_ctx else None
        for sid in ids:
            length = int(rng.integers(*lengths))
            y = (rng.random((length, 3)) < [0.35, 0.35, 0.35]).astype(np.uint8)
            frames = rng.integers(50, 70, (views, length, SIZE, SIZE, 3), dtype=np.uint8)
            fbank = rng.normal(-8.0, 1.0, (views, length, SEG, MEL)) + rng.normal(0, 2.0, (views, length, 1, 1))
            for t in np.flatnonzero(y[:, 0]):
                frames[0, t, :SIZE // 2, :SIZE // 2] = checker[..., None]
            fbank[1, y[:, 1] > 0, :, TONE_BINS] += 4.0
            write_dataset(ff.create_group(sid), "frames", frames, ("V", "T", "H", "W", "3"))
            g = fl.create_group(sid)
            write_dataset(g, "frame_labels", y, ("T", "C"))
            write_dataset(g, "sequence_labels", y.max(0).astype(np.uint8), ("C",))
            if fa is not None:
                write_dataset(fa.create_group(sid), "fbank", fbank.astype(np.float16),
                              ("V", "T", "L", "mel"))
        if fa_ctx:
            fa_ctx.__exit__(None, None, None)
    write_json(paths.split, {"train": ids[: n_seq * 2 // 3], "test": ids[n_seq * 2 // 3:]})
    return paths


@pytest.fixture(scope="module")
def probe_home(tmp_path_factory):
    # long sequences: ~5500 training rows, well above the 2080 features (with about as many
    # rows as features, a ridge at lambda = 100 is at its noisiest)
    return make_probe_home(tmp_path_factory.mktemp("probe"), n_seq=12, lengths=(300, 400))


def test_picture_features_grey_and_next_frame_difference():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 4, 8, 8, 3), dtype=np.uint8)
    frames[:, 2] = frames[:, 3]
    whole = pb.picture_features(frames, has_next=False)
    assert whole.shape == (2, 4, 2 * pb.PROBE_SIZE ** 2) and whole.dtype == np.float32
    grey, diff = whole[..., :pb.PROBE_SIZE ** 2], whole[..., pb.PROBE_SIZE ** 2:]
    assert 0 <= grey.min() and grey.max() <= 1
    assert np.allclose(diff[:, 0], np.abs(grey[:, 1] - grey[:, 0]))
    assert np.all(diff[:, 2] == 0) and np.all(diff[:, 3] == 0)      # same frame; last frame
    # a block that ends before the sequence does reads one frame more, for the difference
    assert np.allclose(pb.picture_features(frames[:, :3], has_next=True), whole[:, :2])


def test_sound_features_mean_and_std_per_mel_bin():
    fb = np.arange(2 * 3 * 4 * 5, dtype=np.float16).reshape(2, 3, 4, 5)
    f = pb.sound_features(fb)
    assert f.shape == (2, 3, 10)
    assert np.allclose(f[1, 2, :5], fb[1, 2].astype(np.float32).mean(0))
    assert np.allclose(f[1, 2, 5:], fb[1, 2].astype(np.float32).std(0))


def test_streamed_ridge_equals_the_direct_solution():
    rng = np.random.default_rng(1)
    x = rng.normal(50.0, 3.0, (300, 6)) * [1, 1, 1, 1, 1, 0]   # far from 0, one constant column
    y = (x[:, :2] @ [[1.0, 0.2], [-0.5, 1.0]] + rng.normal(0, 1, (300, 2)) > 0).astype(float)
    sums = pb.RidgeSums()
    for part in np.array_split(np.arange(300), 7):
        sums.add(x[part], y[part])
    model = sums.fit(np.arange(6), lam=10.0)
    mu, sd = x.mean(0), x.std(0)
    sd[sd < 1e-6] = 1.0
    xs = (x - mu) / sd
    w = np.linalg.solve(xs.T @ xs + 10.0 * np.eye(6), xs.T @ (y - y.mean(0)))
    assert np.allclose(model.weights, w, atol=1e-8)
    assert np.allclose(model.predict(x), xs @ w + y.mean(0), atol=1e-8)
    sub = sums.fit(np.array([1, 3]), lam=10.0)                   # a subset of the columns
    ws = np.linalg.solve(xs[:, [1, 3]].T @ xs[:, [1, 3]] + 10.0 * np.eye(2),
                         xs[:, [1, 3]].T @ (y - y.mean(0)))
    assert np.allclose(sub.weights, ws, atol=1e-8)


def test_picture_probe_finds_the_pattern_and_sound_probe_the_tone(probe_home):
    out = pb.run_probe(probe_home)
    assert out["features"] == {"picture": 2 * pb.PROBE_SIZE ** 2, "sound": 2 * MEL,
                               "both": 2 * pb.PROBE_SIZE ** 2 + 2 * MEL}
    assert out["n_test"] == 4 and out["lambda"] == 100.0
    # the frame-level AP of each class tells what each probe reads
    pic, snd, both = (out[k]["frame_per_class_ap"] for k in pb.KINDS)
    assert pic["Pattern"] > 90 and pic["Tone"] < 60
    assert snd["Tone"] > 95 and snd["Pattern"] < 60
    assert both["Pattern"] > 90 and both["Tone"] > 85 and both["Noise"] < 60
    assert out["both"]["frame_map"] > out["picture"]["frame_map"] > out["frame_chance_band"][1]
    assert out["both"]["frame_map"] > out["sound"]["frame_map"] > out["frame_chance_band"][1]
    assert 0 < out["frame_prevalence"] < out["frame_chance"] < 100
    lo, hi = out["frame_chance_band"]
    assert lo <= out["frame_chance"] <= hi
    # every long test sequence holds every class: any score ranks them perfectly
    assert out["chance"] == out["prevalence"] == out["both"]["map"] == 100.0
    with h5py.File(probe_home.labels) as f:
        assert out["n_test_frames"] == sum(len(f[s]["frame_labels"]) for s in read_json(probe_home.split)["test"])
    # reading fewer frames at a time changes nothing
    again = pb.run_probe(probe_home, block=50)
    for kind in pb.KINDS:
        assert again[kind]["frame_map"] == pytest.approx(out[kind]["frame_map"], abs=1e-6)


def test_probe_without_audio_reads_the_picture_only(tmp_path):
    files = make_probe_home(tmp_path, n_seq=9, audio=False)
    out = pb.run_probe(files)
    assert out["sound"] is None and out["both"] is None
    assert out["features"] == {"picture": 2 * pb.PROBE_SIZE ** 2, "sound": None, "both": None}
    assert out["picture"]["map"] is not None


def test_a_sequence_missing_from_the_frames_is_a_one_line_error(tmp_path):
    files = make_probe_home(tmp_path, n_seq=6)
    write_json(files.split, {"train": ["s00", "s01", "ghost"], "test": ["s05"]})
    with pytest.raises(VicokdError, match="sequence 'ghost'"):
        pb.run_probe(files)
