"""Evidence maps (vicokd.saliency): Grad-CAM's element-wise form on the ViT's patch tokens, with
frozen and with finetuned encoders, and the share of a map inside a box."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from fake_artifacts import make_home, tiny_model_section
from figure4_fixtures import FEATURES, frozen_section
from vicokd.data.dataset import DataFiles, SequenceDataset, model_input_sizes
from vicokd.frozen import FrozenEncoders, frozen_config_from_section
from vicokd.errors import VicokdError
from vicokd.model_configs import model_config
from vicokd.models import build_model
from vicokd.runs.features import write_features
from vicokd.saliency import (HomeInputs, ModelEvidence, box_coverage, grad_cam, patch_edges,
                             peak_in_box, pixel_map, share_inside)
from vicokd.storage import atomic_h5, write_dataset
from vicokd.train import predict


# --- the map of one view-frame, and its share inside a box ----------------------------------------

def test_grad_cam_keeps_positive_token_evidence_and_sums_to_one():
    act = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 0.0]])      # [P=4, H=2]
    grad = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [0.0, 5.0]])
    maps, empty = grad_cam(act, grad)
    np.testing.assert_allclose(maps, [1 / 3, 2 / 3, 0.0, 0.0])                   # 1, 2, -2 -> 0, 0
    assert not empty
    maps, empty = grad_cam(act, -grad.abs())                                     # evidence against
    np.testing.assert_allclose(maps, [0.25] * 4)
    assert empty
    batch, flags = grad_cam(torch.rand(3, 5, 7, 4), torch.randn(3, 5, 7, 4))
    assert batch.shape == (3, 5, 7) and flags.shape == (3, 5)
    np.testing.assert_allclose(batch.sum(-1), 1.0)


def test_box_coverage_and_share_inside_are_exact_on_patches():
    edges = patch_edges(grid=4, patch=8, image_size=32, frame_size=96)         # 24 px patches
    np.testing.assert_allclose(edges, [0, 24, 48, 72, 96])
    box = np.array([[48.0, 24.0, 72.0, 48.0]])                                  # exactly patch (1, 2)
    cover = box_coverage(box, edges)
    expected = np.zeros((4, 4))
    expected[1, 2] = 1.0
    np.testing.assert_allclose(cover, expected)
    half = box_coverage(np.array([[48.0, 24.0, 60.0, 48.0], [np.nan] * 4]), edges)
    assert half[1, 2] == pytest.approx(0.5) and half.sum() == pytest.approx(0.5)
    both = box_coverage(np.array([[0.0, 0.0, 24.0, 24.0], [0.0, 0.0, 12.0, 24.0]]), edges)
    assert both[0, 0] == pytest.approx(1.0) and both.sum() == pytest.approx(1.0)   # counted once
    uniform = np.full((4, 4), 1 / 16)
    big = box_coverage(np.array([[10.0, 20.0, 70.0, 90.0]]), edges)
    assert share_inside(uniform, big) == pytest.approx(60 * 70 / 96 ** 2)       # its area share
    peaked = np.zeros((4, 4))
    peaked[1, 2] = 1.0
    assert share_inside(peaked, cover) == 1.0
    assert share_inside(peaked, big) == pytest.approx(22 / 24)                  # x to 70 of 72
    assert share_inside(peaked, box_coverage(np.full((1, 4), np.nan), edges)) == 0.0
    # the pointing game: the map's peak patch in the box or not
    assert peak_in_box(peaked, cover) and not peak_in_box(np.roll(peaked, 1, 0), cover)
    two = np.stack([peaked, np.roll(peaked, 1, 0)])
    assert peak_in_box(two, np.stack([cover, cover])).tolist() == [True, False]
    # the patches cover 30 of 32 model pixels: the last 2 (6 decoded pixels) are no patch's
    edges = patch_edges(grid=3, patch=10, image_size=32, frame_size=96)
    assert edges[-1] == pytest.approx(90.0)
    px = pixel_map(np.full((3, 3), 1 / 9), edges, 96)
    assert px.sum() == pytest.approx(1.0) and px[:, 90:].sum() == 0 and px[90:].sum() == 0


# --- frozen encoders: a model whose evidence is known -------------------------------------------------

def one_patch_encoders(section, patch_index: int, seed: int = 0) -> FrozenEncoders:
    """Frozen encoders whose whitening keeps only the output token of one patch (the first K
    channels of token 1 + patch_index): every feature, so every logit, depends on it alone."""
    enc = FrozenEncoders(frozen_config_from_section(section, mel_bins=16, audio_length=8))
    k = enc.cfg.features.components
    h = enc.vit.hidden_size
    w = enc.video_whitening
    w.mean.zero_()
    w.components.zero_()
    start = (1 + patch_index) * h
    w.components[start:start + k, :k] = torch.eye(k)
    w.scale.fill_(1.0)
    return enc


def write_features_with(enc: FrozenEncoders, frames_h5: str, out, section) -> None:
    from vicokd.runs.features import HomeReader

    reader = HomeReader(frames_h5, None, section)
    with atomic_h5(out, kind="features", config={"model": section}, components=enc.cfg.features.components,
                   audio=False) as f:
        for sid in reader.ids():
            write_dataset(f.create_group(sid), "video", enc.video(reader.picture(sid)).half().numpy(),
                          ("V", "L", "K"))
    reader.close()


@pytest.mark.parametrize("patch_index", [0, 6, 15])
def test_a_model_that_reads_one_patch_has_its_map_there(tmp_path, patch_index):
    section = frozen_section(image_size=16, patch_size=4, hidden_size=16)       # a 4 x 4 grid
    section["features"] = {**FEATURES, "components": 8}
    files = make_home(tmp_path, n_seq=4, views=2, lengths=(7, 9), size=32, classes=4)
    enc = one_patch_encoders(section, patch_index)
    write_features_with(enc, files.frames, tmp_path / "features.h5", section)
    enc.save(tmp_path / "encoders")
    torch.manual_seed(0)
    model = build_model(model_config(section, "multiasl", 4, mel_bins=1, audio_length=1,
                                     audio=False, feature_size=8))
    inputs = HomeInputs(frames=files.frames, features=str(tmp_path / "features.h5"),
                        encoders=str(tmp_path / "encoders"))
    ev = ModelEvidence(model, section, inputs)                  # loads the saved encoders
    row, col = divmod(patch_index, 4)
    seen = 0
    for c in range(4):
        out = ev.sequence("seq000", range(7), classes=[c] * 7)
        assert out.maps.shape == (2, 7, 4, 4)
        np.testing.assert_allclose(out.maps.sum((-2, -1)), 1.0)
        live = ~out.empty
        assert (out.maps[live][:, row, col] == 1.0).all()          # all of it on that patch
        seen += int(live.sum())
    assert seen > 0
    ev.close()


# --- frozen encoders: the real features stage -------------------------------------------------------------

def frozen_home(tmp_path):
    section = frozen_section()
    files = make_home(tmp_path / "h", n_seq=6, views=2, lengths=(5, 11), size=32, classes=4)
    write_features(files.frames, files.audio, files.split, str(tmp_path / "features.h5"),
                   str(tmp_path / "encoders"), section)
    feats = DataFiles(frames=str(tmp_path / "features.h5"), audio=str(tmp_path / "features.h5"),
                      labels=files.labels, split=files.split)
    return section, files, feats


def test_frozen_maps_are_deterministic_and_score_as_predict(tmp_path):
    section, files, feats = frozen_home(tmp_path)
    test = SequenceDataset(feats, "test", frames=section["frames"], image_size=16, train=False)
    torch.manual_seed(1)
    teacher = build_model(model_config(section, "multiasl", test.num_classes, audio=True,
                                       **model_input_sizes(test, section, audio=True)))
    pred = predict(teacher, test)
    inputs = HomeInputs(frames=files.frames, features=feats.frames, encoders=str(tmp_path / "encoders"))
    ev = ModelEvidence(teacher, section, inputs)
    for i, info in enumerate(test.sequences):
        frames = list(range(info.length))
        a = ev.sequence(info.seq_id, frames)
        b = ev.sequence(info.seq_id, frames)
        assert np.array_equal(a.maps, b.maps) and np.array_equal(a.empty, b.empty)
        np.testing.assert_allclose(a.maps.sum((-2, -1)), 1.0)
        # the cached features enter the model: the scores are predict()'s (predictions.h5)
        np.testing.assert_allclose(a.frame_scores, pred["frame_scores"][i], atol=1e-6)
        np.testing.assert_allclose(a.view_scores, pred["view_frame_scores"][i], atol=1e-6)
        assert (a.classes == pred["frame_scores"][i].argmax(1)).all()
    # a subset of frames gives the same maps as the whole sequence at those frames
    sid, length = test.sequences[0].seq_id, test.sequences[0].length
    part = ev.sequence(sid, [length - 1, 0])
    whole = ev.sequence(sid, range(length))
    np.testing.assert_allclose(part.maps, whole.maps[:, [length - 1, 0]])
    ev.close()


def test_features_from_other_encoders_are_refused(tmp_path):
    section, files, feats = frozen_home(tmp_path)
    with h5py.File(feats.frames, "a") as f:
        sid = sorted(f)[0]
        f[sid]["video"][...] = f[sid]["video"][()] + np.float16(1.0)
    torch.manual_seed(0)
    student = build_model(model_config(section, "multiasl", 4, mel_bins=1, audio_length=1,
                                       audio=False, feature_size=FEATURES["components"]))
    ev = ModelEvidence(student, section, HomeInputs(files.frames, feats.frames,
                                                     str(tmp_path / "encoders")))
    with pytest.raises(VicokdError, match="do not reproduce these features"):
        ev.sequence(sid, [0])
    with pytest.raises(VicokdError, match="outside"):
        ev.sequence(sorted(h5py.File(files.frames))[1], [99])
    ev.close()
    with pytest.raises(VicokdError, match="features.h5"):
        ModelEvidence(student, section, HomeInputs(files.frames))


# --- finetuned encoders ---------------------------------------------------------------------------------

def test_finetuned_maps_score_as_predict_and_sit_where_the_frame_has_content(tmp_path):
    section = tiny_model_section(image_size=16, patch_size=4, audio_encoder="mlp", frames=6)
    files = make_home(tmp_path, n_seq=4, views=2, lengths=(4, 9), size=32, classes=3)
    test = SequenceDataset(files, "test", frames=6, image_size=16, train=False)
    torch.manual_seed(0)
    teacher = build_model(model_config(section, "multiasl", test.num_classes, audio=True,
                                       **model_input_sizes(test, section, audio=True)))
    pred = predict(teacher, test)
    ev = ModelEvidence(teacher, section, HomeInputs(files.frames, audio=files.audio))
    info = test.sequences[0]
    out = ev.sequence(info.seq_id, range(info.length))
    np.testing.assert_allclose(out.frame_scores, pred["frame_scores"][0], atol=1e-5)
    np.testing.assert_allclose(out.maps.sum((-2, -1)), 1.0)
    again = ev.sequence(info.seq_id, range(info.length))
    assert np.array_equal(out.maps, again.maps)
    ev.close()
    with pytest.raises(VicokdError, match="audio.h5"):
        ModelEvidence(teacher, section, HomeInputs(files.frames))
    # tokens with no content carry no evidence: a frame that is black (0 once normalised with
    # mean 0) except in its top-right patch, a ViT without position embeddings or patch bias
    student = build_model(model_config(section, "multiasl", 3, audio=False, mel_bins=1,
                                       audio_length=1))
    emb = student.vit.net.embeddings
    with torch.no_grad():
        emb.position_embeddings.zero_()
        emb.cls_token.normal_()
        emb.patch_embeddings.projection.bias.zero_()
    frames = np.zeros((2, 3, 16, 16, 3), np.uint8)                  # the model's size: no resize
    frames[:, :, 0:4, 12:16] = np.random.default_rng(0).integers(1, 255, (2, 3, 4, 4, 3))
    with atomic_h5(tmp_path / "black.h5", "frames", fps=2.5, size=16) as f:
        write_dataset(f.create_group("s"), "frames", frames, ("V", "T", "H", "W", "3"))
    section = {**section, "normalize": {"image_mean": 0.0, "image_std": 0.5}}
    ev = ModelEvidence(student, section, HomeInputs(str(tmp_path / "black.h5")))
    live = 0
    for c in range(3):
        out = ev.sequence("s", range(3), classes=[c] * 3)
        ok = ~out.empty
        assert (out.maps[ok][:, 0, 3] == 1.0).all()                   # row 0, last column
        live += int(ok.sum())
    assert live > 0
    ev.close()
