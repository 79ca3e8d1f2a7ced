"""Masks at GPU speed (issue 20): the batched letterbox made on the device against ultralytics'
own LetterBox, and the on-device detection path (the one CUDA runs, here on the CPU in float32)
against ultralytics' predictor path that the CPU keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fake_artifacts import random_person_yolo
from vicokd.masks.masks import MasksConfig, PersonDetector
from vicokd.masks.yolo import LETTERBOX_PAD, letterbox_batch

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A random-init YOLOv10n whose class 0 is 'person' (no download, no training)."""
    return random_person_yolo(tmp_path_factory.mktemp("yolo"))


@pytest.mark.parametrize("frame, size, auto", [
    ((96, 96), (128, 128), False),       # the bootstrap detector on the embedded default
    ((224, 224), (640, 640), True),      # YOLOv10-B on config/paper.yaml's frames
    ((240, 320), (640, 640), True),      # not square: padded to a multiple of the stride
    ((240, 320), (640, 640), False),     # not square: padded to the full size
    ((500, 700), (640, 640), False),     # shrunk
])
def test_batched_letterbox_is_ultralytics_letterbox_within_one_grey_level(random_weights, frame,
                                                                         size, auto):
    from ultralytics.data.augment import LetterBox
    frames = RNG.integers(0, 256, (3,) + frame + (3,), dtype=np.uint8)
    ref = np.stack([LetterBox(size, auto=auto, stride=32)(image=f.copy()) for f in frames])
    got = letterbox_batch(torch.from_numpy(frames), size, 32, auto)
    assert got.dtype == torch.float32 and got.shape == (3, 3) + ref.shape[1:3]
    levels = (got * 255).round().permute(0, 2, 3, 1).numpy().astype(int)
    diff = np.abs(levels - ref.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.8     # OpenCV's fixed-point weights
    pad = ref == LETTERBOX_PAD
    assert np.array_equal(levels[pad.all(-1)], ref[pad.all(-1)])


@pytest.mark.parametrize("frame, imgsz", [(64, 64), (96, 128)])
def test_on_device_path_finds_what_the_predictor_path_finds(random_weights, frame, imgsz):
    frames = RNG.integers(0, 256, (10, frame, frame, 3), dtype=np.uint8)
    cfg = MasksConfig(conf=0.0001, batch_size=4, max_det=3, imgsz=imgsz, device="cpu")
    plain = PersonDetector(random_weights, cfg, "cpu")
    fast = PersonDetector(random_weights, cfg, "cpu", on_device=True)
    assert not plain.on_device and fast.on_device and not fast.half    # float32 on the CPU
    a, b = plain.detect(frames), fast.detect(frames)
    assert len(a) == len(b) == len(frames)
    tol = 1e-4 if frame == imgsz else 0.5                 # no resize: the very same input
    for (boxes_a, scores_a), (boxes_b, scores_b) in zip(a, b):
        assert boxes_b.shape == boxes_a.shape and boxes_b.dtype == np.float32
        np.testing.assert_allclose(boxes_b, boxes_a, atol=tol)
        np.testing.assert_allclose(scores_b, scores_a, atol=tol / 100)


def test_a_gpu_takes_the_on_device_path_in_half_precision(random_weights):
    cfg = MasksConfig(device="cuda")
    gpu = PersonDetector(random_weights, cfg, "cuda")      # set up lazily: no GPU needed here
    assert gpu.on_device and gpu.half and gpu.device == 0
    cpu = PersonDetector(random_weights, MasksConfig(device="cpu"), "cpu")
    assert not cpu.on_device and not cpu.half and cpu.device == "cpu"
