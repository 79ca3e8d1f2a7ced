"""Human-detection masks (issue 3): mask derivation, true-box mapping, YOLO on frames.h5,
bad input, and the detector + masks rules end to end on the tiny config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fabricate import fabricate_home  # noqa: E402
from fake_artifacts import random_person_yolo  # noqa: E402

from vicokd.data.media import source_indices  # noqa: E402
from vicokd.errors import VicokdError  # noqa: E402
from vicokd.masks.detector import (DetectorConfig, build_training_set, sample_frames,  # noqa: E402
                                   yolo_label_lines)
from vicokd.masks.masks import (MasksConfig, compute_masks, derive_mask, load_masks,  # noqa: E402
                                pack_detections)
from vicokd.masks.quality import mask_quality, precision_recall  # noqa: E402
from vicokd.masks.truth import true_person_boxes  # noqa: E402
from vicokd.masks.yolo import load_detector, select_device  # noqa: E402
from vicokd.storage import atomic_h5, write_dataset  # noqa: E402

NAN = np.nan


# --------------------------------------------------------------------------- derivation

def test_derive_mask_applies_score_threshold_inclusively():
    boxes = np.array([[[0, 0, 10, 10]], [[0, 0, 10, 10]], [[0, 0, 10, 10]]], np.float32)
    scores = np.array([[0.24], [0.25], [0.9]], np.float32)
    assert derive_mask(boxes, scores, conf=0.25, min_area=0).tolist() == [False, True, True]


def test_derive_mask_applies_area_threshold_in_pixels():
    boxes = np.array([[[0, 0, 4, 5]], [[10, 10, 15, 15]], [[0, 0, 2, 3]]], np.float32)  # 20, 25, 6
    scores = np.full((3, 1), 0.9, np.float32)
    assert derive_mask(boxes, scores, 0.25, min_area=20).tolist() == [True, True, False]
    assert derive_mask(boxes, scores, 0.25, min_area=21).tolist() == [False, True, False]


def test_derive_mask_empty_frames_and_padding_are_false():
    # [V=2, T=2, K=2]: an empty frame (all NaN), a frame with one real box and one pad row.
    boxes = np.full((2, 2, 2, 4), NAN, np.float32)
    scores = np.full((2, 2, 2), NAN, np.float32)
    boxes[1, 0, 0] = [1, 1, 9, 9]
    scores[1, 0, 0] = 0.8
    mask = derive_mask(boxes, scores, 0.25, 0)
    assert mask.dtype == bool and mask.shape == (2, 2)
    assert mask.tolist() == [[False, False], [True, False]]


def test_derive_mask_needs_one_box_passing_both_thresholds():
    # a confident tiny box and a large unsure box: neither alone passes both
    boxes = np.array([[[0, 0, 2, 2], [0, 0, 20, 20]]], np.float32)
    scores = np.array([[0.9, 0.1]], np.float32)
    assert derive_mask(boxes, scores, 0.25, 10).tolist() == [False]


def test_pack_detections_keeps_top_k_and_pads_with_nan():
    dets = [(np.zeros((0, 4)), np.zeros(0)),
            (np.array([[0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 3, 3]], float), np.array([0.3, 0.9, 0.5]))]
    boxes, scores = pack_detections(dets, k=2)
    assert boxes.shape == (2, 2, 4) and scores.shape == (2, 2)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert np.isnan(boxes[0]).all() and np.isnan(scores[0]).all()
    np.testing.assert_allclose(scores[1], [0.9, 0.5])
    np.testing.assert_allclose(boxes[1, :, 2], [2, 3])


def test_precision_recall_counts():
    pred = np.array([True, True, False, False, True])
    truth = np.array([True, False, True, False, True])
    q = precision_recall(pred, truth)
    assert (q["tp"], q["fp"], q["fn"]) == (2, 1, 1)
    assert q["precision"] == pytest.approx(2 / 3) and q["recall"] == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- true boxes

def test_source_indices_round_and_clip():
    # decoded frame i is source frame round(i / 2.5 * 25) = 10 i, clipped to the last frame
    np.testing.assert_array_equal(source_indices(4, 2.5, 25.0, 25), [0, 10, 20, 24])
    np.testing.assert_array_equal(source_indices(3, 2.5, 30.0, 100), [0, 12, 24])


def test_true_boxes_take_the_source_frames_decoding_keeps(tmp_path):
    # At 6.25 fps, decoded frames 1 and 5 fall half-way between source frames (2.5, 12.5):
    # decoding rounds half up (3, 13); rounding half to even would pick 2 and 12.
    path = tmp_path / "boxes.h5"
    n = 20
    boxes = np.full((1, n, 4), NAN, np.float32)
    visible = np.zeros((1, n), bool)
    visible[0, [3, 13]] = True
    boxes[0, [3, 13]] = [0.0, 0.0, 0.5, 0.5]
    with h5py.File(path, "w") as f:
        g = f.create_group("s")
        g["boxes"], g["visible"] = boxes, visible
        g.attrs["fps"] = 6.25
    kept = source_indices(6, 2.5, 6.25, n)
    np.testing.assert_array_equal(kept, [0, 3, 5, 8, 10, 13])
    _, v = true_person_boxes(path, "s", 1, 6, 64, 2.5)
    assert v[0].tolist() == visible[0, kept].tolist() == [False, True, False, False, False, True]


def test_true_person_boxes_map_source_frames_and_scale(tmp_path):
    path = tmp_path / "boxes.h5"
    boxes = np.full((1, 30, 4), NAN, np.float32)
    visible = np.zeros((1, 30), bool)
    boxes[0, 10] = [0.25, 0.5, 0.5, 1.0]
    visible[0, 10] = True
    with h5py.File(path, "w") as f:
        g = f.create_group("s")
        g["boxes"], g["visible"] = boxes, visible
        g.attrs["fps"] = 25.0
    b, v = true_person_boxes(path, "s", 1, 3, 64, 2.5)
    assert v.tolist() == [[False, True, False]]
    np.testing.assert_allclose(b[0, 1], [16, 32, 32, 64])
    assert np.isnan(b[0, 0]).all()


def test_yolo_label_lines_clip_and_skip():
    lines = yolo_label_lines(np.array([[-8, 0, 24, 32], [NAN] * 4, [5, 5, 5.5, 20]]), 64)
    assert lines == ["0 0.187500 0.250000 0.375000 0.500000"]


def test_sample_frames_favours_person_frames():
    rng = np.random.default_rng(0)
    take = sample_frames(n_pos=30, n_neg=300, quota=40, rng=rng)
    assert len(take) == len(set(take)) == 40
    assert (take < 30).sum() == 20  # half with a person, though they are 1 in 11
    take = sample_frames(n_pos=5, n_neg=300, quota=40, rng=rng)
    assert (take < 5).sum() == 5 and len(take) == 40  # all positives there are
    take = sample_frames(n_pos=100, n_neg=300, quota=40, rng=rng)
    assert (take < 100).sum() == 20
    take = sample_frames(n_pos=300, n_neg=100, quota=40, rng=rng)
    assert (take < 300).sum() == 30  # more than half: the frames' own share
    assert len(sample_frames(3, 4, 40, rng)) == 7


def test_build_training_set_uses_train_split_only(tmp_path):
    paths = fabricate_home(tmp_path / "home1", n_seq=6, views=2, frames=5, size=32)
    cfg = DetectorConfig(frames=30, seed=0)
    data = build_training_set({"home1": {k: str(v) for k, v in paths.items()}},
                              tmp_path / "ds", cfg, 2.5)
    test_ids = json.loads(paths["split"].read_text())["test"]
    names = [p.name for p in (tmp_path / "ds" / "images").rglob("*.png")]
    assert data["train"]["images"] == 30 and data["val"]["images"] > 0
    assert not any(f"__{sid}__" in n for n in names for sid in test_ids)
    val = {n.split("__")[1] for n in (p.name for p in (tmp_path / "ds/images/val").glob("*.png"))}
    train = {n.split("__")[1] for n in (p.name for p in (tmp_path / "ds/images/train").glob("*.png"))}
    assert not val & train  # validation sequences are held out from training
    assert val <= set(data["val_sequences"]["home1"])     # what bench_detector scores masks on
    assert not set(data["val_sequences"]["home1"]) & (train | set(test_ids))
    assert "path: /" in (tmp_path / "ds" / "data.yaml").read_text()  # absolute


# --------------------------------------------------------------------------- YOLO on frames.h5

@pytest.fixture(scope="session")
def random_person_weights(tmp_path_factory):
    """A random-init YOLOv10n checkpoint whose class 0 is 'person' (no download, no training)."""
    tmp = tmp_path_factory.mktemp("yolo")
    random_person_yolo(tmp)
    from ultralytics import YOLO
    classifier = YOLO("yolov8n-cls.yaml")
    classifier.save(str(tmp / "cls.pt"))
    return tmp


def test_compute_masks_writes_the_layout(tmp_path, random_person_weights):
    paths = fabricate_home(tmp_path, n_seq=2, views=2, frames=3, size=32)
    out = tmp_path / "masks.h5"
    cfg = MasksConfig(conf=0.0001, batch_size=4, max_det=3, imgsz=64, device="cpu")
    summary = compute_masks(paths["frames"], out, random_person_weights / "rand.pt", cfg)
    assert summary["frames"] == 2 * 2 * 3
    with h5py.File(out) as f:
        assert f.attrs["kind"] == "masks"
        for sid in ("seq00", "seq01"):
            g = f[sid]
            assert g["mask"].dtype == bool and g["mask"].shape == (2, 3)
            assert g["boxes"].dtype == np.float32 and g["boxes"].shape == (2, 3, 3, 4)
            assert g["scores"].dtype == np.float32 and g["scores"].shape == (2, 3, 3)
            # the stored mask is the derivation from the stored boxes
            np.testing.assert_array_equal(
                g["mask"][()], derive_mask(g["boxes"][()], g["scores"][()], cfg.conf, cfg.min_area))
            s = g["scores"][()]
            assert np.all(np.isnan(s) | (s >= cfg.conf))


def test_compute_masks_reads_rgb_and_hands_bgr_to_ultralytics(tmp_path, random_person_weights,
                                                             monkeypatch):
    from vicokd.masks import masks as masks_mod
    seen = []

    def fake_predict(self, source, **kwargs):
        seen.extend(source)
        return []
    paths = fabricate_home(tmp_path, n_seq=1, views=1, frames=1, size=32)
    with h5py.File(paths["frames"]) as f:
        rgb = f["seq00/frames"][0, 0]
    det = masks_mod.PersonDetector(random_person_weights / "rand.pt", MasksConfig(), "cpu")
    monkeypatch.setattr(type(det.model), "predict", fake_predict)
    det.detect(rgb[None])
    np.testing.assert_array_equal(seen[0], rgb[..., ::-1])


def test_masks_store_the_mean_person_score_of_every_detection(tmp_path, random_person_weights,
                                                               monkeypatch):
    """score [V, T] = mean confidence of all the frame's person detections (also those past the
    K kept boxes), 0 without one; the mask and the K boxes stay as before."""
    from vicokd.masks import masks as masks_mod
    box = np.array([[1, 1, 20, 30]], np.float32)
    frames_dets = [(np.repeat(box, 4, 0), np.array([0.9, 0.6, 0.3, 0.2], np.float32)),
                   (np.zeros((0, 4), np.float32), np.zeros(0, np.float32)),
                   (box, np.array([0.5], np.float32))]
    calls = []

    def fake_detect(self, frames):
        calls.append(len(frames))
        return frames_dets[:len(frames)]
    monkeypatch.setattr(masks_mod.PersonDetector, "detect", fake_detect)
    paths = fabricate_home(tmp_path, n_seq=1, views=1, frames=3, size=32)
    cfg = MasksConfig(conf=0.25, max_det=2, device="cpu")
    compute_masks(paths["frames"], tmp_path / "masks.h5", random_person_weights / "rand.pt", cfg)
    with h5py.File(tmp_path / "masks.h5") as f:
        g = f["seq00"]
        assert g["score"].dtype == np.float32 and g["score"].shape == (1, 3)
        np.testing.assert_allclose(g["score"][0], [0.5, 0.0, 0.5])     # (.9+.6+.3+.2)/4
        np.testing.assert_allclose(g["scores"][0, 0], [0.9, 0.6])       # the K = 2 best
        assert g["mask"][0].tolist() == [True, False, True]
    assert calls == [3]
    assert masks_mod.person_score([]).shape == (0,)


def _write_frames(path, data):
    with atomic_h5(path, "frames") as f:
        write_dataset(f.create_group("s"), "frames", data, ["a"] * data.ndim)


@pytest.mark.parametrize("data, fault", [
    (np.zeros((1, 2, 8, 8, 3), np.float32), "dtype"),
    (np.zeros((2, 8, 8, 3), np.uint8), "dimensions"),
    (np.zeros((1, 2, 8, 8, 4), np.uint8), "size 3"),
])
def test_bad_frames_file_is_one_line_error_and_no_masks(tmp_path, random_person_weights, data, fault):
    frames = tmp_path / "frames.h5"
    _write_frames(frames, data)
    out = tmp_path / "masks.h5"
    with pytest.raises(VicokdError) as exc:
        compute_masks(frames, out, random_person_weights / "rand.pt", MasksConfig(device="cpu"))
    msg = str(exc.value)
    assert str(frames) in msg and fault in msg and "\n" not in msg
    assert not out.exists() and not list(tmp_path.glob(".masks.h5*"))


def test_missing_weights_is_an_error_and_never_downloads(tmp_path):
    for name in ("yolov10x.pt", str(tmp_path / "nowhere.pt")):
        with pytest.raises(VicokdError, match="weights file not found"):
            load_detector(name)
    assert not Path("yolov10x.pt").exists()


def test_non_detection_weights_are_an_error(tmp_path, random_person_weights):
    with pytest.raises(VicokdError, match="not a detection model"):
        load_detector(random_person_weights / "cls.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(VicokdError, match="junk.pt: not loadable"):
        load_detector(junk)


def test_foreign_weights_never_advise_a_command_that_downloads(tmp_path, capfd):
    """Ultralytics' own message advised 'yolo predict model=yolo26n.pt' (a download)."""
    for name, obj in (("state.pt", {"model_state": {"w": torch.zeros(3)}}),
                      ("module.pt", torch.nn.Linear(2, 2))):
        torch.save(obj, tmp_path / name)
        with pytest.raises(VicokdError) as err:
            load_detector(tmp_path / name)
        msg = str(err.value)
        assert msg.startswith(f"{tmp_path / name}: not loadable as YOLO weights")
        assert "masks.weights must be a detection checkpoint" in msg
        assert "yolo predict" not in msg and "official Ultralytics model" not in msg, msg
    assert "model.save" not in capfd.readouterr().err


def test_cuda_demanded_without_gpu_is_an_error(tmp_path, random_person_weights):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    paths = fabricate_home(tmp_path, n_seq=1, views=1, frames=1, size=32)
    out = tmp_path / "masks.h5"
    with pytest.raises(VicokdError, match="no CUDA GPU"):
        compute_masks(paths["frames"], out, random_person_weights / "rand.pt",
                      MasksConfig(device="cuda"))
    assert not out.exists()
    assert select_device("auto", "x", "masks.device") == "cpu"


def test_mask_quality_scores_test_frames_only(tmp_path):
    paths = fabricate_home(tmp_path, n_seq=3, views=2, frames=4, size=32)
    split = json.loads(paths["split"].read_text())
    out = tmp_path / "masks.h5"
    # perfect masks on the test sequence, all-True (wrong) on the train ones
    with atomic_h5(out, "masks") as f, h5py.File(paths["frames"]) as ff:
        for sid in ff:
            V, T = ff[sid]["frames"].shape[:2]
            if sid in split["test"]:
                _, vis = true_person_boxes(paths["boxes"], sid, V, T, 32, 2.5)
            else:
                vis = np.ones((V, T), bool)
            f.create_group(sid)["mask"] = vis
    q = mask_quality(out, paths["split"], paths["boxes"], 2.5, "home1")
    loaded = load_masks(out, split["test"])
    assert set(loaded) == set(split["test"]) and all(m.dtype == bool for m in loaded.values())
    with pytest.raises(VicokdError, match="no mask for sequence 'nope'"):
        load_masks(out, ["nope"])
    assert q["precision"] == 1.0 and q["recall"] == 1.0
    assert q["frames"] == 2 * 4 * len(split["test"]) and len(q["per_view"]) == 2


# --------------------------------------------------------------------------- end to end

@pytest.mark.e2e
def test_detector_and_masks_run_end_to_end_on_tiny(tiny_run):
    from conftest import run_snakemake
    run_snakemake(tiny_run, "results/home1/masks.h5", "results/home1/masks_quality.json")
    metrics = json.loads((tiny_run / "results/detector/metrics.json").read_text())
    assert {"precision", "recall", "map50"} <= set(metrics)
    assert (tiny_run / "results/detector/yolov10.pt").is_file()
    with h5py.File(tiny_run / "results/home1/masks.h5") as f, \
            h5py.File(tiny_run / "results/home1/frames.h5") as ff:
        assert f.attrs["kind"] == "masks" and set(f) == set(ff)
        for sid in f:
            V, T = ff[sid]["frames"].shape[:2]
            assert f[sid]["mask"].shape == (V, T) and f[sid]["mask"].dtype == bool
            assert f[sid]["boxes"].shape[:2] == (V, T) and f[sid]["boxes"].shape[3] == 4
    q = json.loads((tiny_run / "results/home1/masks_quality.json").read_text())
    assert q["split"] == "test" and q["frames"] > 0  # quality is not asserted on tiny


@pytest.mark.e2e
def test_missing_configured_weights_fail_in_one_line(tiny_run, tmp_path):
    # In a copy, so that the shared tiny run keeps its masks: only the masks rule may run.
    import shutil

    from conftest import prepare_workdir, run_snakemake
    (tmp_path / "work" / "results" / "home2").mkdir(parents=True)
    work = prepare_workdir(tmp_path / "work")
    shutil.copy(tiny_run / "results/home2/frames.h5", work / "results/home2/frames.h5")
    cfg = tmp_path / "missing.yaml"
    cfg.write_text((Path(__file__).parent / "config" / "tiny.yaml").read_text()
                   + f"\nmasks: {{weights: {tmp_path / 'yolov10x.pt'}}}\n")
    proc = run_snakemake(work, "results/home2/masks.h5", config=cfg, check=False,
                         extra_args=["--allowed-rules=masks"])
    assert proc.returncode != 0
    assert f"vicokd: error: {tmp_path / 'yolov10x.pt'}: YOLO weights file not found" in proc.stderr
    assert not (work / "results/home2/masks.h5").exists()


def test_prepare_ultralytics_serves_the_font_locally(random_person_weights):
    # the dataset check asks for Arial.ttf; without a local copy it would download it
    from ultralytics.utils.checks import check_font
    from ultralytics.utils import SETTINGS
    font = Path(check_font("Arial.ttf"))
    assert font.is_file() and font.stat().st_size > 10_000
    assert SETTINGS["sync"] is False
