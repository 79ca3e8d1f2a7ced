"""The three backbones: shapes, gradients into the encoders, each one's distinctive mechanism,
and the visual-only student variant."""

from __future__ import annotations

import pytest
import torch

from fake_artifacts import tiny_model_section
from vicokd.distill import LossConfig, make_loss
from vicokd.errors import VicokdError
from vicokd.model_configs import model_config
from vicokd.models import OUTPUT_KEYS, build_model, load_model, resolve_device, save_model

B, N, T, C, S, LF, M = 2, 3, 6, 5, 16, 8, 16


def make(backbone, audio=True, **over):
    torch.manual_seed(0)
    cfg = model_config(tiny_model_section(**over), backbone, C, mel_bins=M, audio_length=LF,
                       audio=audio)
    return build_model(cfg)


def batch(n=N, t=T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"frames": torch.randn(B, n, t, 3, S, S, generator=g),
            "fbank": torch.randn(B, n, t, LF, M, generator=g),
            "frame_labels": (torch.rand(B, t, C, generator=g) < 0.4).float(),
            "sequence_labels": torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 1]]).float(),
            "masks": (torch.rand(B, n, t, generator=g) < 0.5).float()}


@pytest.mark.parametrize("backbone", ["multitrans", "multiasl", "multitsf"])
@pytest.mark.parametrize("audio", [True, False])
def test_shapes_and_gradients_reach_the_encoders(backbone, audio):
    model = make(backbone, audio=audio)
    b = batch()
    out = model(b["frames"], b["fbank"] if audio else None)
    assert out["sequence_logits"].shape == (B, C)
    assert out["frame_logits"].shape == (B, T, C)
    assert out["view_frame_logits"].shape == (B, N, T, C)
    for key in ("F_v", "F_a", "F_attn", "F_av", "F_fusion"):
        assert out[key].shape == (B, N, T, 16), key
    assert set(OUTPUT_KEYS) <= set(out)
    torch.testing.assert_close(out["F_av"], out["F_v"] + out["F_attn"])
    loss, parts = make_loss("teacher", "frame", LossConfig())(model, b)
    assert torch.isfinite(loss) and "frame" in parts and "seq" in parts
    loss.backward()
    grads = [model.vit.net.embeddings.patch_embeddings.projection.weight.grad]
    grads.append(model.audio_net.net.embeddings.patch_embeddings.projection.weight.grad if audio else model.adapter[0].weight.grad)
    for g in grads:
        assert g is not None and g.abs().sum() > 0


@pytest.mark.parametrize("backbone", ["multitrans", "multitsf", "multiasl"])
def test_homes_with_different_view_counts(backbone):
    model = make(backbone)
    for n in (1, 4):
        b = batch(n=n)
        out = model(b["frames"], b["fbank"])
        assert out["view_frame_logits"].shape == (B, n, T, C)


def test_student_needs_no_audio_and_has_an_adapter():
    student = make("multitrans", audio=False)
    assert not hasattr(student, "ast")
    b = batch()
    student.eval()
    out = student(b["frames"])                       # no fbank at all
    torch.testing.assert_close(out["F_a"], student.adapter(out["F_v"]))
    teacher = make("multitrans")
    with pytest.raises(VicokdError):
        teacher(b["frames"], None)


def test_multitrans_attends_across_views():
    """Changing view 1's frames changes the fused tokens of view 0 (view attention), while view
    0's own per-view logits (from its temporal encoder only) stay the same."""
    model = make("multitrans").eval()
    b = batch()
    out1 = model(b["frames"], b["fbank"])
    frames2 = b["frames"].clone()
    frames2[:, 1] = torch.randn_like(frames2[:, 1])
    out2 = model(frames2, b["fbank"])
    torch.testing.assert_close(out1["view_frame_logits"][:, 0], out2["view_frame_logits"][:, 0])
    assert not torch.allclose(out1["fused_tokens"][:, 0], out2["fused_tokens"][:, 0])
    # and across time: view 0 at frame 0 sees view 1 at the last frame
    frames3 = b["frames"].clone()
    frames3[:, 1, -1] = torch.randn_like(frames3[:, 1, -1])
    out3 = model(frames3, b["fbank"])
    assert not torch.allclose(out1["fused_tokens"][:, 0, 0], out3["fused_tokens"][:, 0, 0])


def test_multiasl_pools_the_top_k_frames_by_actionness():
    model = make("multiasl", frames=16).eval()
    b = batch(t=16)
    out = model(b["frames"], b["fbank"])
    k = 16 // 8
    assert out["actionness"].shape == (B, 16)
    assert ((out["actionness"] > 0) & (out["actionness"] < 1)).all()
    idx = out["actionness"].topk(k, dim=1).indices
    for i in range(B):
        expected = out["frame_logits"][i, idx[i]].mean(0)
        torch.testing.assert_close(out["sequence_logits"][i], expected)
    # fused frame features are the max over views
    feats = out["F_fusion"].max(1).values
    torch.testing.assert_close(out["frame_logits"], model.classifier(feats))


def test_multiasl_action_selection_loss_trains_actionness():
    model = make("multiasl").train()
    b = batch()
    out = model(b["frames"], b["fbank"])
    aux, parts = model.auxiliary_loss(out, b)
    top = out["frame_logits"].argmax(-1)
    target = b["sequence_labels"].gather(1, top)
    expected = torch.nn.functional.binary_cross_entropy(out["actionness"], target)
    torch.testing.assert_close(aux, expected)
    aux.backward()
    assert model.actionness_head.weight.grad.abs().sum() > 0
    assert parts["action_selection"] > 0


def test_multitsf_presence_head_learns_the_masks():
    """The presence head is trained with BCE on the masks: a few steps on the auxiliary loss
    alone drive it down, and the fused features come from per-time device attention."""
    model = make("multitsf", dropout=0.0).train()
    b = batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        out = model(b["frames"], b["fbank"])
        assert out["presence_logits"].shape == (B, N, T)
        aux, parts = model.auxiliary_loss(out, b)
        first = first if first is not None else parts["presence"]
        opt.zero_grad()
        aux.backward()
        opt.step()
    assert parts["presence"] < 0.5 * first
    # device attention is per time step: changing frame t of one view leaves other times alone
    model.eval()
    out1 = model(b["frames"], b["fbank"])
    presence = out1["presence_logits"]
    x = b["frames"].clone()
    x[:, 1, 2] = torch.randn_like(x[:, 1, 2])
    out2 = model(x, b["fbank"])
    assert not torch.allclose(out1["frame_logits"][:, 2], out2["frame_logits"][:, 2])
    assert not torch.allclose(presence[:, 0, 2], out2["presence_logits"][:, 0, 2])


def test_save_and_load_roundtrip(tmp_path):
    model = make("multitsf").eval()
    b = batch()
    save_model(tmp_path / "model.pt", model)
    again = load_model(tmp_path / "model.pt").eval()
    torch.testing.assert_close(model(b["frames"], b["fbank"])["sequence_logits"],
                               again(b["frames"], b["fbank"])["sequence_logits"])
    (tmp_path / "bad.pt").write_text("nope")
    with pytest.raises(VicokdError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


def test_bf16_and_gradient_checkpointing_run_on_cpu():
    model = make("multitrans", gradient_checkpointing=True).train()
    b = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = make_loss("teacher", "frame", LossConfig())(model, b)
    loss.backward()
    assert model.vit.net.embeddings.patch_embeddings.projection.weight.grad is not None


def test_local_checkpoints_only(tmp_path):
    with pytest.raises(VicokdError, match="local directory"):
        make("multitrans", vit={"checkpoint": "google/vit-base-patch16-224"})
    # a saved AST made for long clips is loaded with its position grid interpolated
    from transformers import ASTConfig, ASTModel
    long = ASTModel(ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=32, patch_size=8, frequency_stride=8,
                              time_stride=8, max_length=64, num_mel_bins=M))
    long.save_pretrained(tmp_path / "ast")
    model = make("multiasl", ast={"checkpoint": str(tmp_path / "ast"), "patch_size": 8})
    assert model.audio_net.net.config.max_length == LF
    b = batch()
    assert model(b["frames"], b["fbank"])["F_a"].shape == (B, N, T, 16)
    loaded, source = model.audio_net.net.state_dict(), long.state_dict()
    shared = [k for k in source if "position" not in k]
    assert len(shared) > 10
    for k in shared:
        torch.testing.assert_close(loaded[k], source[k])
    assert loaded["embeddings.position_embeddings"].shape[1] < \
        source["embeddings.position_embeddings"].shape[1]


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(VicokdError, match="no GPU"):
            resolve_device("cuda")
