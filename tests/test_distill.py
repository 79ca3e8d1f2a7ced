"""Unit tests of vicokd.distill on the real (tiny, randomly initialised) backbones."""

import math

import pytest
import torch

from vicokd.distill import (StudentConfig, batch_for_student, distillation_terms, make_student_loss,
                            make_teacher_vc_loss, supervised_loss_fn)
from test_experiments import EXPECTED_TERMS
from vicokd.errors import VicokdError
from vicokd.experiments import METHODS
from vicokd.losses import (feature_distillation, logit_distillation, two_way_loss,
                           view_consistency)
from vicokd.models import build_model, model_config

B, N, T, C, S, L, M = 2, 3, 8, 5, 16, 8, 16
SECTION = {"encoders": "finetune", "frames": T, "image_size": S, "patch_size": 8, "hidden_size": 16,
           "vit": {"layers": 1, "heads": 2, "intermediate_size": 32},
           "ast": {"layers": 1, "heads": 2, "intermediate_size": 32, "patch_size": 8},
           "temporal": {"layers": 1, "heads": 2}, "fusion": {"layers": 1, "heads": 2},
           "dropout": 0.0}


def make_models(backbone="multiasl", seed=0):
    torch.manual_seed(seed)
    teacher = build_model(model_config(SECTION, backbone, C, M, L, audio=True))
    torch.manual_seed(seed + 1)
    student = build_model(model_config(SECTION, backbone, C, M, L, audio=False))
    return teacher, student


def make_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    frame_labels = (torch.rand(B, T, C, generator=g) < 0.3).float()
    frame_labels[:, 0, 0] = 1
    return {
        "frames": torch.randn(B, N, T, 3, S, S, generator=g),
        "fbank": torch.randn(B, N, T, L, M, generator=g),
        "frame_labels": frame_labels,
        "sequence_labels": frame_labels.amax(1),
        "masks": (torch.rand(B, N, T, generator=g) < 0.7).float(),
    }


def test_student_config_defaults_and_checks():
    cfg = StudentConfig.from_section({"tau": 3.0, "weights": {"vc": 0.5}})
    assert cfg.tau == 3.0 and cfg.weights == {"fd": 1.0, "ld": 1.0, "vc": 0.5, "modal": 1.0,
                                              "dual": 1.0}
    with pytest.raises(VicokdError):
        StudentConfig.from_section({"weights": {"xyz": 1.0}})
    with pytest.raises(VicokdError):
        StudentConfig.from_section({"tau": 0})
    assert StudentConfig.from_section({}).fd_reduction == "sum"        # eq. 7 as written
    with pytest.raises(VicokdError, match="student.fd_reduction: 'max'"):
        StudentConfig.from_section({"fd_reduction": "max"})


def test_fd_reduction_mean_divides_only_fd_by_d():
    teacher, student = make_models("multiasl")
    student.eval()
    batch = make_batch()
    cfg = {r: StudentConfig(fd_reduction=r) for r in ("sum", "mean")}
    parts = {r: make_student_loss("vicokd", "frame", c, teacher)(student, batch)[1]
             for r, c in cfg.items()}
    d = student.cfg.hidden_size
    assert parts["mean"]["fd"] == pytest.approx(parts["sum"]["fd"] / d, rel=1e-5)
    for term in ("ld", "vc", "frame", "seq"):
        assert parts["mean"][term] == pytest.approx(parts["sum"][term], rel=1e-6)
    dual = {r: make_student_loss("dualkd", "frame", c, teacher)(student, batch)[1]["dual"]
            for r, c in cfg.items()}
    assert dual["mean"] == pytest.approx(dual["sum"], rel=1e-6)        # DualKD's L2 still sums


@pytest.mark.parametrize("method", list(METHODS))
def test_loss_composition(method):
    """loss = supervision + backbone aux + sum of the method's weighted terms, and only those."""
    teacher, student = make_models("multitsf")
    student.eval()      # no dropout: the reference below sees the same outputs
    batch = make_batch()
    weights = {"fd": 0.3, "ld": 0.7, "vc": 1.9, "modal": 0.11, "dual": 2.3}
    cfg = StudentConfig(tau=1.7, lambda_seq=0.4, weights=weights)
    m = METHODS[method]
    loss, parts = make_student_loss(m, "frame", cfg, teacher if m.needs_teacher else None)(
        student, batch)
    assert set(parts) - {"frame", "seq", "presence"} == EXPECTED_TERMS[method]

    with torch.no_grad():
        s = student(batch["frames"])
        t = teacher(batch["frames"], batch["fbank"])
        ref = two_way_loss(s["frame_logits"].reshape(-1, C), batch["frame_labels"].reshape(-1, C))
        ref = ref + 0.4 * two_way_loss(s["sequence_logits"], batch["sequence_labels"])
        ref = ref + student.auxiliary_loss(s, batch)[0]
        if m.fd:
            ref = ref + 0.3 * feature_distillation([s["F_attn"], s["F_av"]], [t["F_attn"], t["F_av"]])
        if m.ld:
            ref = ref + 0.7 * logit_distillation(s["frame_logits"], t["frame_logits"], 1.7)
        if m.modal:
            ref = ref + 0.11 * feature_distillation([s["F_v"], s["F_a"]], [t["F_v"], t["F_a"]])
        if m.dual:
            ref = ref + 2.3 * feature_distillation([s["F_fusion"]], [t["F_fusion"]])
        if m.vc:
            probs = torch.softmax(s["view_frame_logits"], -1)
            ref = ref + 1.9 * view_consistency(probs, batch["masks"], m.vc_confidence_weighting,
                                               m.vc_use_mask, m.vc_divergence)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_vc_variants_differ():
    teacher, student = make_models()
    student.eval()
    batch = make_batch()
    with torch.no_grad():
        s = student(batch["frames"])
        t = teacher(batch["frames"], batch["fbank"])
    vals = {name: float(distillation_terms(METHODS[name], s, t, batch["masks"], 2.0)["vc"])
            for name in ("vicokd", "vicokd-noconfw", "vicokd-nomask", "vicokd-kl")}
    assert len({round(v, 9) for v in vals.values()}) == 4
    assert all(v > 0 and math.isfinite(v) for v in vals.values())


@pytest.mark.parametrize("backbone", ["multitrans", "multiasl", "multitsf"])
def test_gradients_reach_student_never_teacher(backbone):
    teacher, student = make_models(backbone)
    loss_fn = make_student_loss("vicokd", "frame", StudentConfig(), teacher)
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    loss, _ = loss_fn(student, make_batch())
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    grads = {n: p.grad for n, p in student.named_parameters()}
    # the visual encoder and the cross-modal adapter both learn
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("vit."))
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items()
               if n.startswith("adapter."))


def test_distillation_pulls_student_towards_teacher():
    """A few steps on the FD + LD terms alone shrink them (the terms train the student)."""
    teacher, student = make_models()
    cfg = StudentConfig(lambda_seq=0.0, weights={"fd": 1.0, "ld": 1.0, "vc": 0.0})
    batch = make_batch()
    method = METHODS["cokd"]
    student.eval()
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)

    def kd(batch):
        with torch.no_grad():
            t = teacher(batch["frames"], batch["fbank"])
        s = student(batch["frames"])
        return sum(distillation_terms(method, s, t, None, cfg.tau).values())

    before = float(kd(batch))
    for _ in range(15):
        opt.zero_grad()
        kd(batch).backward()
        opt.step()
    assert float(kd(batch)) < 0.8 * before


def test_student_needs_no_audio():
    _, student = make_models()
    batch = make_batch()
    del batch["fbank"]
    loss, parts = make_student_loss("student", "frame", StudentConfig())(student, batch)
    assert torch.isfinite(loss)
    # with audio in the batch, the student's outputs do not depend on it
    student.eval()
    b1, b2 = make_batch(), make_batch()
    b2["fbank"] = torch.randn_like(b2["fbank"]) * 100
    out1 = student(batch_for_student(b1, "frame")["frames"])
    out2 = student(batch_for_student(b2, "frame")["frames"])
    assert torch.equal(out1["frame_logits"], out2["frame_logits"])
    assert "fbank" not in batch_for_student(b1, "frame")


def test_teacher_needs_audio_for_kd():
    teacher, student = make_models()
    batch = make_batch()
    del batch["fbank"]
    with pytest.raises(VicokdError, match="audio"):
        make_student_loss("logitkd", "frame", StudentConfig(), teacher)(student, batch)
    with pytest.raises(VicokdError, match="teacher"):
        make_student_loss("logitkd", "frame", StudentConfig(), None)


def test_sequence_supervision_never_sees_frame_labels():
    _, student = make_models()
    student.eval()
    b1, b2 = make_batch(), make_batch()
    b2["frame_labels"] = torch.full_like(b2["frame_labels"], float("nan"))
    seen = batch_for_student(b1, "sequence")
    assert "frame_labels" not in seen and "fbank" not in seen
    fn = make_student_loss("student", "sequence", StudentConfig())
    l1, p1 = fn(student, b1)
    l2, p2 = fn(student, b2)
    assert "frame" not in p1 and "seq" in p1
    assert l1.item() == l2.item() and math.isfinite(l1.item())
    # frame supervision does read them
    lf, pf = make_student_loss("student", "frame", StudentConfig())(student, b1)
    assert "frame" in pf and lf.item() != pytest.approx(l1.item())


def test_frame_supervision_without_frame_labels_is_an_error():
    _, student = make_models()
    batch = make_batch()
    del batch["frame_labels"]
    with pytest.raises(VicokdError, match="frame labels"):
        make_student_loss("student", "frame", StudentConfig())(student, batch)


def test_vc_needs_masks_unless_nomask():
    teacher, student = make_models()
    batch = make_batch()
    del batch["masks"]
    with pytest.raises(VicokdError, match="masks"):
        make_student_loss("vicokd", "frame", StudentConfig(), teacher)(student, batch)
    loss, _ = make_student_loss("vicokd-nomask", "frame", StudentConfig(), teacher)(student, batch)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", list(METHODS))
def test_needs_masks_says_which_methods_fail_without_them(name):
    # the workflow gives masks.h5 only to the runs whose method says it needs them
    teacher, student = make_models()
    batch = make_batch()
    del batch["masks"]
    loss_fn = make_student_loss(name, "frame", StudentConfig(), teacher)
    if METHODS[name].needs_masks:
        with pytest.raises(VicokdError, match="masks"):
            loss_fn(student, batch)
    else:
        loss, _ = loss_fn(student, batch)
        assert torch.isfinite(loss)


def test_teacher_vc_loss_adds_vc():
    teacher, _ = make_models()
    teacher.eval()
    batch = make_batch()
    base, parts = make_teacher_vc_loss(1.0, 0.0)(teacher, batch)
    with_vc, parts_vc = make_teacher_vc_loss(1.0, 2.0)(teacher, batch)
    assert parts_vc["vc"] > 0
    assert with_vc.item() == pytest.approx(base.item() + 2.0 * parts_vc["vc"], rel=1e-5)


@pytest.fixture(scope="module")
def models_of():
    cache = {}

    def get(backbone):
        if backbone not in cache:
            cache[backbone] = make_models(backbone)
        return cache[backbone]
    return get


@pytest.mark.parametrize("backbone", ["multitrans", "multiasl", "multitsf"])
@pytest.mark.parametrize("run", ["teacher", "teacher-vc", *METHODS])
def test_nan_inputs_give_a_nan_loss_never_an_exception(models_of, backbone, run):
    """The training loop's one-line 'non-finite loss' needs the loss to come back: no loss
    piece may raise on NaN (MultiASL's action-selection BCE on probabilities did)."""
    teacher, student = models_of(backbone)
    batch = make_batch()
    batch["frames"] = torch.full_like(batch["frames"], float("nan"))
    if run == "teacher":
        loss, _ = supervised_loss_fn()(teacher, batch)
    elif run == "teacher-vc":
        loss, _ = make_teacher_vc_loss(1.0, 1.0)(teacher, batch)
    else:
        loss, _ = make_student_loss(run, "frame", StudentConfig(), teacher)(student, batch)
    assert not torch.isfinite(loss)
