"""Unit tests of vicokd.distill on the real (tiny, randomly initialised) backbones."""

import math

import pytest
import torch

from vicokd.config import fill
from vicokd.distill import LossConfig, distillation_terms, make_loss, visible_batch
from test_experiments import EXPECTED_TERMS
from vicokd.errors import VicokdError
from vicokd.experiments import METHODS
from vicokd.losses import (feature_distillation, logit_distillation, two_way_loss,
                           view_consistency)
from vicokd.model_configs import model_config
from vicokd.models import build_model

B, N, T, C, S, L, M = 2, 3, 8, 5, 16, 8, 16
SECTION = fill("model", {"encoders": "finetune", "frames": T, "image_size": S, "patch_size": 8, "hidden_size": 16,
           "vit": {"layers": 1, "heads": 2, "intermediate_size": 32},
           "ast": {"layers": 1, "heads": 2, "intermediate_size": 32, "patch_size": 8},
           "temporal": {"layers": 1, "heads": 2}, "fusion": {"layers": 1, "heads": 2},
           "dropout": 0.0})


def make_models(backbone="multiasl", seed=0):
    torch.manual_seed(seed)
    teacher = build_model(model_config(SECTION, backbone, C, M, L, audio=True))
    torch.manual_seed(seed + 1)
    # with the learned visibility's head, which only vicokd-learnedvis reads
    student = build_model(model_config(SECTION, backbone, C, M, L, audio=False,
                                       visibility_head=True))
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
    cfg = LossConfig.of_student(fill("student", {"tau": 3.0, "weights": {"vc": 0.5}}))
    assert cfg.tau == 3.0 and cfg.weights == {"fd": 1.0, "ld": 1.0, "vc": 0.5, "modal": 1.0,
                                              "dual": 1.0, "vis": 1.0}
    with pytest.raises(VicokdError):
        LossConfig.of_student(fill("student", {"weights": {"xyz": 1.0}}))
    with pytest.raises(VicokdError):
        LossConfig.of_student(fill("student", {"tau": 0}))
    assert LossConfig.of_student(fill("student", {})).fd_reduction == "sum"        # eq. 7 as written
    with pytest.raises(VicokdError, match="student.fd_reduction: 'max'"):
        LossConfig.of_student(fill("student", {"fd_reduction": "max"}))


def test_fd_reduction_mean_divides_only_fd_by_d():
    teacher, student = make_models("multiasl")
    student.eval()
    batch = make_batch()
    cfg = {r: LossConfig(fd_reduction=r) for r in ("sum", "mean")}
    parts = {r: make_loss("vicokd", "frame", c, teacher)(student, batch)[1]
             for r, c in cfg.items()}
    d = student.cfg.hidden_size
    assert parts["mean"]["fd"] == pytest.approx(parts["sum"]["fd"] / d, rel=1e-5)
    for term in ("ld", "vc", "frame", "seq"):
        assert parts["mean"][term] == pytest.approx(parts["sum"][term], rel=1e-6)
    dual = {r: make_loss("dualkd", "frame", c, teacher)(student, batch)[1]["dual"]
            for r, c in cfg.items()}
    assert dual["mean"] == pytest.approx(dual["sum"], rel=1e-6)        # DualKD's L2 still sums


@pytest.mark.parametrize("method", list(METHODS))
def test_loss_composition(method):
    """loss = supervision + backbone aux + sum of the method's weighted terms, and only those."""
    teacher, student = make_models("multitsf")
    student.eval()      # no dropout: the reference below sees the same outputs
    batch = make_batch()
    weights = {"fd": 0.3, "ld": 0.7, "vc": 1.9, "modal": 0.11, "dual": 2.3, "vis": 0.6}
    cfg = LossConfig(tau=1.7, lambda_seq=0.4, weights=weights)
    m = METHODS[method]
    loss, parts = make_loss(m, "frame", cfg, teacher if m.needs_teacher else None)(
        student, batch)
    assert set(parts) - {"frame", "seq", "presence"} == EXPECTED_TERMS[method]

    with torch.no_grad():
        s = student(batch["frames"])
        t = teacher(batch["frames"], batch["fbank"])
        ref = two_way_loss(s["frame_logits"].reshape(-1, C), batch["frame_labels"].reshape(-1, C))
        ref = ref + 0.4 * two_way_loss(s["sequence_logits"], batch["sequence_labels"])
        ref = ref + student.auxiliary_loss(s, batch)[0]
        if "fd" in m.terms:
            ref = ref + 0.3 * feature_distillation([s["F_attn"], s["F_av"]], [t["F_attn"], t["F_av"]])
        if "ld" in m.terms:
            ref = ref + 0.7 * logit_distillation(s["frame_logits"], t["frame_logits"], 1.7)
        if "modal" in m.terms:
            ref = ref + 0.11 * feature_distillation([s["F_v"], s["F_a"]], [t["F_v"], t["F_a"]])
        if "dual" in m.terms:
            ref = ref + 2.3 * feature_distillation([s["F_fusion"]], [t["F_fusion"]])
        visibility = batch["masks"]
        if "vis" in m.terms:
            target = (torch.sigmoid(t["view_frame_logits"])
                      * batch["sequence_labels"][:, None, None, :]).amax(-1)
            ref = ref + 0.6 * torch.nn.functional.binary_cross_entropy_with_logits(
                s["visibility_logits"], target)
            visibility = torch.sigmoid(s["visibility_logits"])
        if "vc" in m.terms:
            probs = torch.softmax(s["view_frame_logits"], -1)
            ref = ref + 1.9 * view_consistency(probs, visibility, m.vc_confidence_weighting,
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
    loss_fn = make_loss("vicokd", "frame", LossConfig(), teacher)
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
    cfg = LossConfig(lambda_seq=0.0, weights={"fd": 1.0, "ld": 1.0, "vc": 0.0})
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
    loss, parts = make_loss("student", "frame", LossConfig())(student, batch)
    assert torch.isfinite(loss)
    # with audio in the batch, the student's outputs do not depend on it
    student.eval()
    b1, b2 = make_batch(), make_batch()
    b2["fbank"] = torch.randn_like(b2["fbank"]) * 100
    out1 = student(visible_batch(b1, "frame")["frames"])
    out2 = student(visible_batch(b2, "frame")["frames"])
    assert torch.equal(out1["frame_logits"], out2["frame_logits"])
    assert "fbank" not in visible_batch(b1, "frame")


def test_teacher_needs_audio_for_kd():
    teacher, student = make_models()
    batch = make_batch()
    del batch["fbank"]
    with pytest.raises(VicokdError, match="audio"):
        make_loss("logitkd", "frame", LossConfig(), teacher)(student, batch)
    with pytest.raises(VicokdError, match="teacher"):
        make_loss("logitkd", "frame", LossConfig(), None)


def test_sequence_supervision_never_sees_frame_labels():
    _, student = make_models()
    student.eval()
    b1, b2 = make_batch(), make_batch()
    b2["frame_labels"] = torch.full_like(b2["frame_labels"], float("nan"))
    seen = visible_batch(b1, "sequence")
    assert "frame_labels" not in seen and "fbank" not in seen
    fn = make_loss("student", "sequence", LossConfig())
    l1, p1 = fn(student, b1)
    l2, p2 = fn(student, b2)
    assert "frame" not in p1 and "seq" in p1
    assert l1.item() == l2.item() and math.isfinite(l1.item())
    # frame supervision does read them
    lf, pf = make_loss("student", "frame", LossConfig())(student, b1)
    assert "frame" in pf and lf.item() != pytest.approx(l1.item())


def test_frame_supervision_without_frame_labels_is_an_error():
    _, student = make_models()
    batch = make_batch()
    del batch["frame_labels"]
    with pytest.raises(VicokdError, match="frame labels"):
        make_loss("student", "frame", LossConfig())(student, batch)


def test_vc_needs_masks_unless_nomask():
    teacher, student = make_models()
    batch = make_batch()
    del batch["masks"]
    with pytest.raises(VicokdError, match="masks"):
        make_loss("vicokd", "frame", LossConfig(), teacher)(student, batch)
    loss, _ = make_loss("vicokd-nomask", "frame", LossConfig(), teacher)(student, batch)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", list(METHODS))
def test_needs_masks_says_which_methods_fail_without_them(name):
    # the workflow gives masks.h5 only to the runs whose method says it needs them
    teacher, student = make_models()
    batch = make_batch()
    del batch["masks"]
    loss_fn = make_loss(name, "frame", LossConfig(), teacher)
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
    base, parts = make_loss("teacher-vc", "frame", LossConfig(lambda_seq=1.0, weights={"vc": 0.0}))(teacher, batch)
    with_vc, parts_vc = make_loss("teacher-vc", "frame", LossConfig(lambda_seq=1.0, weights={"vc": 2.0}))(teacher, batch)
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
        loss, _ = make_loss("teacher", "frame", LossConfig())(teacher, batch)
    elif run == "teacher-vc":
        loss, _ = make_loss("teacher-vc", "frame", LossConfig(lambda_seq=1.0, weights={"vc": 1.0}))(teacher, batch)
    else:
        loss, _ = make_loss(run, "frame", LossConfig(), teacher)(student, batch)
    assert not torch.isfinite(loss)


@pytest.mark.parametrize("backbone", ["multitrans", "multiasl", "multitsf"])
def test_each_terms_pull_is_measured_without_changing_the_loss(backbone):
    """make_loss hands the loop its weighted terms; term_gradient_norms measures each one's
    gradient on the per-view logits and on the first layer, and the step's loss is unchanged."""
    from vicokd.train import term_gradient_norms
    teacher, student = make_models(backbone)
    batch = make_batch()
    batch["masks"] = torch.ones(B, N, T)
    loss_fn = make_loss("vicokd", "frame", LossConfig(weights={"fd": 1.0, "ld": 1.0, "vc": 2.0}),
                        teacher)
    torch.manual_seed(3)
    plain, _ = loss_fn(student, batch)
    keep = {}
    torch.manual_seed(3)
    loss, parts = loss_fn(student, batch, keep=keep)
    assert float(loss) == float(plain)
    assert list(keep["terms"]) == ["supervision", "auxiliary", "fd", "ld", "vc"]
    assert float(keep["terms"]["vc"]) == pytest.approx(2.0 * parts["vc"])      # weighted
    norms = term_gradient_norms(student, keep)
    assert norms["grad_logits_vc"] > 0                 # VC acts on the per-view logits ...
    assert norms["grad_logits_fd"] == 0.0              # ... FD on the features before them
    assert all(norms[f"grad_first_{t}"] > 0 for t in ("supervision", "fd", "ld", "vc"))
    loss.backward()                                    # the graph is still there for the step
    assert student.first_layer().grad is not None


def test_learned_visibility_trains_from_the_teacher_and_needs_no_masks():
    """vicokd-learnedvis: VC weighs view pairs by the student's own visibility (no masks.h5);
    only the `vis` term trains that head, towards the teacher's per-view evidence."""
    from vicokd.distill import visibility_targets
    torch.manual_seed(0)
    teacher = build_model(model_config(SECTION, "multiasl", C, M, L, audio=True))
    torch.manual_seed(1)
    student = build_model(model_config(SECTION, "multiasl", C, M, L, audio=False,
                                       visibility_head=True))
    batch = {k: v for k, v in make_batch().items() if k != "masks"}       # no detector
    loss, parts = make_loss("vicokd-learnedvis", "frame", LossConfig(), teacher)(student, batch)
    assert math.isfinite(float(loss)) and parts["vis"] > 0 and "vc" in parts
    # VC alone leaves the head alone (the visibility enters it without gradient) ...
    only_vc = LossConfig(lambda_seq=0.0, weights={"fd": 0.0, "ld": 0.0, "vc": 1.0, "vis": 0.0})
    student.zero_grad()
    keep = {}
    make_loss("vicokd-learnedvis", "sequence", only_vc, teacher)(student, batch, keep=keep)
    keep["terms"]["vc"].backward()
    assert student.visibility.weight.grad is None
    # ... and the targets are the teacher's best score among the labelled classes, per view
    with torch.no_grad():
        out = teacher(batch["frames"], batch["fbank"])
    t = visibility_targets(out, batch["sequence_labels"])
    assert t.shape == (B, N, T) and float(t.min()) >= 0 and float(t.max()) <= 1
    none = visibility_targets(out, torch.zeros_like(batch["sequence_labels"]))
    assert float(none.abs().max()) == 0.0
