"""The encoders: timm and transformers ViTs, the audio MLP, the whitening, the frozen label-free
features (stage, files and the models that train on them), and evaluation on every frame."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from fake_artifacts import make_home, tiny_model_section
from vicokd.data.dataset import DataFiles, EvaluationPasses, SequenceDataset, model_input_sizes
from vicokd.data.sampling import evaluation_passes
from vicokd.distill import LossConfig, make_loss
from vicokd.encoders import AudioMLP, EncoderConfig, ViTEncoder
from vicokd.frozen import FrozenEncoders, Whitening, audio_moments, frozen_config_from_section
from vicokd.errors import VicokdError
from vicokd.model_configs import model_config
from vicokd.models import build_model, load_model, save_model
from vicokd.runs.features import write_features
from vicokd.runs.outputs import RunOutputs
from vicokd.runs.student import train_student
from vicokd.runs.teacher import train_teacher
from vicokd.train import predict

FEATURES = {"components": 8, "seed": 0, "batch_size": 64}


# -- evaluation on every decoded frame ------------------------------------------------------------

@pytest.mark.parametrize("length,t", [(1, 4), (3, 8), (8, 8), (9, 4), (26, 24), (75, 24)])
def test_evaluation_passes_sample_every_frame_once_more_or_less(length, t):
    passes = evaluation_passes(length, t)
    assert all(p.shape == (t,) for p in passes)
    assert (passes[0] == (np.arange(t) * length) // t).all()        # pass 0 = evaluation sampling
    assert set(np.concatenate(passes).tolist()) == set(range(length))
    assert len(passes) == max(1, -(-length // t))                    # ceil(L / T) passes
    for p in passes:
        assert (np.diff(p) >= 0).all() and p.max() < length


def test_predict_scores_every_decoded_frame(tmp_path):
    files = make_home(tmp_path / "h", lengths=(9, 20))
    ds = SequenceDataset(files, "test", frames=4, image_size=16, train=False)
    assert len(EvaluationPasses(ds)) > len(ds)
    model = build_model(model_config(tiny_model_section(frames=4), "multitsf", ds.num_classes,
                                     mel_bins=16, audio_length=8))
    pred = predict(model, ds)
    for i, info in enumerate(ds.sequences):
        assert pred["frame_scores"][i].shape == (info.length, ds.num_classes)
        assert pred["view_frame_scores"][i].shape == (ds.views, info.length, ds.num_classes)
        assert (pred["frame_scores"][i] > 0).all()                  # no frame left unscored
        assert (pred["frame_labels"][i] == ds.frame_labels(i)).all()
    # the sequence score is pass 0's, i.e. the model on the evaluation sampling
    item = ds[0]
    model.eval()
    with torch.no_grad():
        direct = torch.sigmoid(model(item["frames"][None], item["fbank"][None])["sequence_logits"])
    np.testing.assert_allclose(pred["sequence_scores"][0], direct[0].numpy(), atol=1e-5)


# -- encoders -------------------------------------------------------------------------------------

def test_timm_vit_random_and_from_a_local_weights_file(tmp_path):
    enc = EncoderConfig(source="timm", layers=1, heads=2, intermediate_size=32, patch_size=8,
                        hidden_size=16)
    vit = ViTEncoder(enc, image_size=32, hidden_size=16, dropout=0.0)
    tokens = vit(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 1 + 16, 16)
    # a weights file saved here loads offline into the named architecture (the authors' form)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in vit.net.state_dict().items()},
              str(tmp_path / "vit.safetensors"))
    again = ViTEncoder(EncoderConfig(source="timm", checkpoint=str(tmp_path / "vit.safetensors"),
                                     layers=1, heads=2, intermediate_size=32, patch_size=8,
                                     hidden_size=16), 32, 16, 0.0)
    with pytest.raises(VicokdError, match="local weights file"):
        ViTEncoder(EncoderConfig(source="timm", checkpoint="timm/vit_small_patch32_224"), 32, 16, 0.0)
    with pytest.raises(VicokdError, match="source"):
        ViTEncoder(EncoderConfig(source="hub"), 32, 16, 0.0)
    assert again.hidden_size == vit.hidden_size


def test_authors_timm_architecture_loads_its_weights_file(tmp_path):
    """vit_small_patch32_224 (the authors' encoder) from a local file, resampled to 64 px."""
    import timm
    from safetensors.torch import save_file
    net = timm.create_model("vit_small_patch32_224", pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    vit_s32 = dict(source="timm", patch_size=32, hidden_size=384, layers=12, heads=6,
                   intermediate_size=1536)
    vit = ViTEncoder(EncoderConfig(checkpoint=str(tmp_path / "w.safetensors"), **vit_s32),
                     image_size=64, hidden_size=16, dropout=0.0)
    assert vit.hidden_size == 384
    torch.testing.assert_close(vit.net.patch_embed.proj.weight, net.patch_embed.proj.weight)
    assert vit(torch.randn(1, 3, 64, 64)).shape == (1, 1 + 4, 384)
    with pytest.raises(VicokdError, match="w.safetensors"):     # sizes that do not fit the file
        ViTEncoder(EncoderConfig(checkpoint=str(tmp_path / "w.safetensors"),
                                 **{**vit_s32, "layers": 2}), 64, 16, 0.0)


@pytest.mark.parametrize("audio_encoder", ["ast", "mlp"])
@pytest.mark.parametrize("source", ["transformers", "timm"])
def test_finetune_switches_train_end_to_end_and_reload(tmp_path, audio_encoder, source):
    section = tiny_model_section(audio_encoder=audio_encoder, mlp={"hidden_sizes": [24]},
                                 vit={"layers": 1, "heads": 2, "intermediate_size": 32,
                                      "source": source})
    model = build_model(model_config(section, "multiasl", 5, mel_bins=16, audio_length=8))
    assert isinstance(model.audio_net, AudioMLP) == (audio_encoder == "mlp")
    g = torch.Generator().manual_seed(0)
    batch = {"frames": torch.randn(2, 2, 6, 3, 16, 16, generator=g),
             "fbank": torch.randn(2, 2, 6, 8, 16, generator=g),
             "frame_labels": (torch.rand(2, 6, 5, generator=g) < 0.4).float(),
             "sequence_labels": torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 1]]).float()}
    loss, _ = make_loss("teacher", "frame", LossConfig())(model, batch)
    loss.backward()
    first_audio = next(model.audio_net.parameters())
    assert first_audio.grad is not None and first_audio.grad.abs().sum() > 0
    assert next(model.vit.parameters()).grad is not None
    save_model(tmp_path / "m.pt", model.eval())
    again = load_model(tmp_path / "m.pt").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch["frames"], batch["fbank"])["sequence_logits"],
                                   again(batch["frames"], batch["fbank"])["sequence_logits"])


def test_whitening_keeps_the_top_components_at_unit_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 6, generator=g) * torch.tensor([10.0, 5.0, 1.0, 0.5, 0.1, 0.01])
    w = Whitening(6, 3).fit(x)
    y = w(x)
    assert y.shape == (2000, 3)
    np.testing.assert_allclose(y.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(0).numpy(), 1, atol=0.02)
    # the kept directions are the largest-variance axes
    assert set(w.components.abs().argmax(0).tolist()) == {0, 1, 2}


def test_audio_moments_are_mean_and_std_per_mel_bin():
    fb = torch.arange(24.0).reshape(1, 4, 6)
    m = audio_moments(fb)
    torch.testing.assert_close(m[0, :6], fb[0].mean(0))
    torch.testing.assert_close(m[0, 6:], fb[0].std(0, unbiased=False))


# -- the features stage and training on its output ------------------------------------------------

def _features(tmp_path, files, **over):
    section = tiny_model_section(features=FEATURES, **over)
    out = tmp_path / "features.h5"
    write_features(files.frames, files.audio, files.split, str(out), str(tmp_path / "encoders"),
                   section)
    return out, section


def test_features_stage_is_label_free_and_reloadable(tmp_path):
    files = make_home(tmp_path / "h", lengths=(6, 14))
    out, section = _features(tmp_path, files)
    with h5py.File(out) as f, h5py.File(files.frames) as fr:
        assert f.attrs["kind"] == "features" and sorted(f) == sorted(fr)
        sid = sorted(f)[0]
        v, length = fr[sid]["frames"].shape[:2]
        assert f[sid]["video"].shape == (v, length, 8) and f[sid]["video"].dtype == np.float16
        assert f[sid]["audio"].shape == (v, length, 8)
        assert json.loads(f.attrs["config"])["model"]["features"] == FEATURES
    # the encoders folder rebuilds the same features (the form a user's checkpoint takes)
    enc = FrozenEncoders.load(tmp_path / "encoders")
    from vicokd.runs.features import HomeReader
    reader = HomeReader(files.frames, files.audio, section)
    with h5py.File(out) as f:
        np.testing.assert_allclose(enc.video(reader.picture(sid)).numpy(), f[sid]["video"][()],
                                   atol=2e-2, rtol=1e-2)
    reader.close()
    # labels never enter: scrambling every label gives identical features
    with h5py.File(files.labels, "a") as lab:
        for sid in lab:
            lab[sid]["frame_labels"][...] = 1 - lab[sid]["frame_labels"][()]
    out2 = tmp_path / "again"
    out2.mkdir()
    again, _ = _features(out2, files)
    with h5py.File(out) as a, h5py.File(again) as b:
        for sid in a:
            assert (a[sid]["video"][()] == b[sid]["video"][()]).all()


def test_models_train_on_features_and_reject_the_wrong_input(tmp_path):
    files = make_home(tmp_path / "h", n_seq=10, lengths=(8, 16))
    out, section = _features(tmp_path, files)
    frozen = {**section, "encoders": "frozen", "frames": 6}
    feats = DataFiles(frames=str(out), audio=str(out), labels=files.labels, split=files.split,
                      masks=files.masks)
    ds = SequenceDataset(feats, "train", frames=6, image_size=16, train=True)
    assert ds.features and ds.feature_size == 8
    item = ds[0]
    assert item["frames"].shape == (3, 6, 8) and item["fbank"].shape == (3, 6, 8)
    assert model_input_sizes(ds, frozen, audio=True)["feature_size"] == 8
    with pytest.raises(VicokdError, match="encoders"):
        model_input_sizes(ds, {**frozen, "encoders": "finetune"}, audio=True)
    teacher_dir = tmp_path / "t"
    run = RunOutputs(*(str(teacher_dir / n) for n in ("model.pt", "curve.csv", "metrics.json",
                                                        "predictions.h5")))
    cfg = {"epochs": 2, "lr": 2e-3, "batch_size": 4, "seed": 0}
    m = train_teacher(feats, run, frozen, cfg, "multitsf")
    assert m["map"] is not None and m["frame_map"] is not None
    student = RunOutputs(*(str(tmp_path / "s" / n) for n in ("model.pt", "curve.csv",
                                                               "metrics.json", "predictions.h5")))
    sm = train_student(feats, student, frozen, {**cfg, "weights": {}}, "multitsf", "vicokd",
                       "sequence", 0, teacher_path=run.model)
    assert sm["map"] is not None
    with pytest.raises(VicokdError, match="encoders"):
        train_teacher(files, RunOutputs(*(str(tmp_path / "x" / n) for n in (
            "model.pt", "curve.csv", "metrics.json", "predictions.h5"))), frozen, cfg, "multitsf")


def test_frozen_encoders_sizes_follow_the_model_section():
    cfg = frozen_config_from_section(tiny_model_section(features=FEATURES, audio_encoder="mlp"),
                                     mel_bins=16, audio_length=8)
    enc = FrozenEncoders(cfg)
    assert enc.ast is None and enc.audio_in == 32                    # moments only
    assert enc.video_in == 2 * (1 + 4) * 16                           # every token, and its change


def test_encoders_fingerprint_follows_the_files_and_ignores_hidden_ones(tmp_path):
    """Snakemake touches `.snakemake_timestamp` inside a directory output after the job that
    fingerprinted it; that must not make every trained model refuse its own encoders."""
    from vicokd.frozen import folder_fingerprint
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "weights.bin").write_bytes(b"\x01\x02")
    (tmp_path / "frozen.json").write_text("{}")
    before = folder_fingerprint(tmp_path)
    (tmp_path / ".snakemake_timestamp").touch()
    assert folder_fingerprint(tmp_path) == before
    (tmp_path / "vit" / "weights.bin").write_bytes(b"\x01\x03")
    assert folder_fingerprint(tmp_path) != before
