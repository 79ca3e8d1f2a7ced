"""Unit tests of vicokd.losses against hand-computed values and plain-loop references."""

import itertools
import math

import pytest
import torch

from vicokd.losses import (feature_distillation, logit_distillation, two_way_loss,
                           view_consistency)


def softplus(v):
    return math.log1p(math.exp(v)) if v < 30 else v


def lse(vals):
    m = max(vals)
    return m + math.log(sum(math.exp(v - m) for v in vals))


def two_way_reference(x, y, tp=4.0, tn=1.0):
    """The DESIGN paragraph, written with plain loops."""
    n, c = len(x), len(x[0])

    def term(pos, neg):
        if not neg:
            return 0.0
        return softplus(tp * lse([-v / tp for v in pos]) + tn * lse([v / tn for v in neg]))

    cols = []
    for k in range(c):
        pos = [x[i][k] for i in range(n) if y[i][k]]
        neg = [x[i][k] for i in range(n) if not y[i][k]]
        if pos:
            cols.append(term(pos, neg))
    rows = []
    for i in range(n):
        pos = [x[i][k] for k in range(c) if y[i][k]]
        neg = [x[i][k] for k in range(c) if not y[i][k]]
        if pos:
            rows.append(term(pos, neg))
    if not cols:
        return 0.0
    return sum(cols) / len(cols) + sum(rows) / len(rows)


# ---------------------------------------------------------------- two-way loss

def test_two_way_hand_computed_row_only():
    # one row, class 0 positive, class 1 negative: the class-0 column has no negative (0, and
    # it counts), class 1 has no positive (left out); the row gives softplus(0 + 0) = ln 2.
    x = torch.tensor([[0.0, 0.0]])
    y = torch.tensor([[1, 0]])
    assert two_way_loss(x, y).item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_two_way_hand_computed_column_only():
    # one class, rows (pos: 1, neg: -1): column = softplus(4 * (-1/4) + (-1)) = softplus(-2);
    # row 0 has no negative (0, counts), row 1 has no positive (left out).
    x = torch.tensor([[1.0], [-1.0]])
    y = torch.tensor([[1], [0]])
    assert two_way_loss(x, y).item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)


def test_two_way_no_negative_counts_in_mean():
    # classes 0 and 1 both have a positive; class 0 has no negative: it contributes 0 but the
    # class mean still divides by 2.
    x = torch.tensor([[0.5, 2.0], [1.5, -1.0]])
    y = torch.tensor([[1, 1], [1, 0]])
    col1 = softplus(4 * (-2.0 / 4) + (-1.0))
    row1 = softplus(4 * (-1.5 / 4) + (-1.0))
    expected = (0.0 + col1) / 2 + (0.0 + row1) / 2
    assert two_way_loss(x, y).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("tp,tn", [(4.0, 1.0), (1.0, 1.0), (2.0, 0.5)])
def test_two_way_matches_loop_reference(tp, tn):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=g) * 3
    y = (torch.rand(7, 5, generator=g) > 0.6).int()
    y[:, 4] = 0   # a class with no positive
    y[2] = 1      # a row with no negative
    y[3] = 0      # a row with no positive
    got = two_way_loss(x, y, tp=tp, tn=tn).item()
    assert got == pytest.approx(two_way_reference(x.tolist(), y.tolist(), tp, tn), rel=1e-5)


def test_two_way_temperatures_matter():
    x = torch.tensor([[2.0, -1.0, 0.5], [0.3, 1.0, -2.0]])
    y = torch.tensor([[1, 0, 1], [0, 1, 0]])
    assert two_way_loss(x, y, tp=4.0).item() != pytest.approx(two_way_loss(x, y, tp=1.0).item())


def test_two_way_no_positive_is_zero_with_graph():
    x = torch.randn(4, 3, requires_grad=True)
    loss = two_way_loss(x, torch.zeros(4, 3))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros(4, 3))


def test_two_way_all_positive_is_zero_with_finite_grad():
    x = torch.randn(3, 2, requires_grad=True)
    loss = two_way_loss(x, torch.ones(3, 2))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_two_way_gradient_finite_and_descends():
    x = torch.zeros(5, 4, requires_grad=True)
    y = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1]])
    loss = two_way_loss(x, y)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # positives are pushed up, negatives down
    assert (x.grad[y.bool()] <= 0).all() and (x.grad[~y.bool()] >= 0).all()
    assert x.grad.abs().sum() > 0


def test_two_way_shape_check():
    with pytest.raises(ValueError):
        two_way_loss(torch.zeros(2, 3), torch.zeros(3, 2))


# ---------------------------------------------------------------- feature distillation

def test_fd_hand_computed_sum_over_d_mean_over_positions():
    s = [torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 5, 4)]
    t = [torch.ones(2, 3, 5, 4), torch.full((2, 3, 5, 4), 2.0)]
    # first pair: sum_D 1 = 4; second: sum_D 4 = 16
    assert feature_distillation(s, t).item() == pytest.approx(20.0)


def test_fd_matches_loop_and_grads_only_student():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    t = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    loss = feature_distillation([s], [t])
    ref = sum(float(((s[b, k] - t[b, k]).detach() ** 2).sum()) for b in range(2) for k in range(3)) / 6
    assert loss.item() == pytest.approx(ref, rel=1e-6)
    loss.backward()
    assert t.grad is None and s.grad is not None
    assert torch.allclose(s.grad, 2 * (s - t).detach() / 6)


def test_fd_mean_reduction_divides_by_d_and_unknown_reductions_fail():
    g = torch.Generator().manual_seed(2)
    s = [torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g)]
    t = [torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g)]
    total = feature_distillation(s, t, "sum")
    assert feature_distillation(s, t).item() == total.item()          # sum: eq. 7, the default
    assert feature_distillation(s, t, "mean").item() == pytest.approx(total.item() / 8, rel=1e-6)
    ref = sum(float(((a - b) ** 2).mean(dim=-1).mean()) for a, b in zip(s, t))
    assert feature_distillation(s, t, "mean").item() == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="reduction 'max'"):
        feature_distillation(s, t, "max")


def test_fd_checks_shapes():
    with pytest.raises(ValueError):
        feature_distillation([torch.zeros(2, 3)], [torch.zeros(2, 4)])
    with pytest.raises(ValueError):
        feature_distillation([torch.zeros(2, 3)], [])


# ---------------------------------------------------------------- logit distillation

def test_ld_hand_computed():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert logit_distillation(s, t, tau=1.0).item() == pytest.approx(expected, rel=1e-6)
    # tau = 2: softmax(t / 2) = [sqrt3, 1] / (sqrt3 + 1), times tau^2 = 4
    a = math.sqrt(3.0) / (math.sqrt(3.0) + 1)
    expected2 = 4 * (a * math.log(a / 0.5) + (1 - a) * math.log((1 - a) / 0.5))
    assert logit_distillation(s, t, tau=2.0).item() == pytest.approx(expected2, rel=1e-6)


def test_ld_mean_over_all_leading_positions_and_teacher_frozen():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    t = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    tau = 1.5
    loss = logit_distillation(s, t, tau)
    ref = 0.0
    for b, k in itertools.product(range(2), range(3)):
        pt = torch.softmax(t[b, k] / tau, -1)
        ps = torch.softmax(s[b, k] / tau, -1)
        ref += float((pt * (pt / ps).log()).sum().detach())
    assert loss.item() == pytest.approx(tau ** 2 * ref / 6, rel=1e-5)
    loss.backward()
    assert t.grad is None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_ld_zero_when_equal():
    x = torch.randn(3, 5)
    assert logit_distillation(x, x.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- view consistency

def vc_reference(p, m, confw=True, use_mask=True, div="js"):
    """Eq. 9-10 with plain loops over batch, pairs and frames."""
    B, N, T, C = p.shape
    if N < 2:
        return 0.0

    def kl(a, b):
        return sum(x * math.log(x / y) for x, y in zip(a, b) if x > 0)

    total = 0.0
    pairs = list(itertools.combinations(range(N), 2))
    for b in range(B):
        acc = 0.0
        for i, j in pairs:
            for t in range(T):
                pi, pj = p[b, i, t].tolist(), p[b, j, t].tolist()
                if div == "js":
                    mid = [(x + y) / 2 for x, y in zip(pi, pj)]
                    d = 0.5 * kl(pi, mid) + 0.5 * kl(pj, mid)
                else:
                    d = kl(pi, pj)
                w = max(pi) * max(pj) if confw else 1.0
                mm = float(m[b, i, t]) * float(m[b, j, t]) if use_mask else 1.0
                acc += w * mm * d
        total += acc / (len(pairs) * T)
    return total / B


def test_vc_hand_computed_js_and_kl_with_zero_probability():
    p = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.5]]]])     # B=1, N=2, T=1, C=2
    m = torch.ones(1, 2, 1, dtype=torch.bool)
    js = 0.75 * math.log(4.0 / 3.0)                        # JS([1,0], [.5,.5])
    assert view_consistency(p, m).item() == pytest.approx(0.5 * js, rel=1e-6)   # w = 1 * 0.5
    assert view_consistency(p, m, confidence_weighting=False).item() == pytest.approx(js, rel=1e-6)
    kl = math.log(2.0)                                     # KL([1,0] || [.5,.5])
    assert view_consistency(p, m, divergence="kl").item() == pytest.approx(0.5 * kl, rel=1e-6)


def test_vc_kl_is_asymmetric_js_symmetric():
    p = torch.tensor([[[[0.7, 0.2, 0.1]], [[0.1, 0.3, 0.6]]]])
    m = torch.ones(1, 2, 1)
    swapped = p.flip(1)
    assert view_consistency(p, m).item() == pytest.approx(view_consistency(swapped, m).item())
    assert view_consistency(p, m, divergence="kl").item() != pytest.approx(
        view_consistency(swapped, m, divergence="kl").item())


@pytest.mark.parametrize("confw,use_mask,div", list(itertools.product(
    [True, False], [True, False], ["js", "kl"])))
def test_vc_matches_loop_reference_for_every_switch(confw, use_mask, div):
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(2, 4, 3, 5, generator=g) * 2, dim=-1)
    m = torch.rand(2, 4, 3, generator=g) > 0.4
    got = view_consistency(p, m, confidence_weighting=confw, use_mask=use_mask, divergence=div)
    assert got.item() == pytest.approx(vc_reference(p, m, confw, use_mask, div), rel=1e-5)


def test_vc_zero_when_masks_never_overlap():
    p = torch.softmax(torch.randn(2, 3, 4, 5), dim=-1)
    m = torch.zeros(2, 3, 4, dtype=torch.bool)
    m[:, 0, :2] = True
    m[:, 1, 2:] = True     # view 2 never sees the person; 0 and 1 never at the same frame
    assert view_consistency(p, m).item() == 0.0
    assert view_consistency(p, m, use_mask=False).item() > 0.0


def test_vc_zero_when_views_agree():
    one = torch.softmax(torch.randn(2, 1, 4, 5), dim=-1)
    p = one.expand(2, 3, 4, 5).clone()
    m = torch.ones(2, 3, 4)
    for div in ("js", "kl"):
        assert view_consistency(p, m, divergence=div).item() == pytest.approx(0.0, abs=1e-7)


def test_vc_zero_for_single_view_with_graph():
    p = torch.softmax(torch.randn(2, 1, 4, 5, requires_grad=True), dim=-1)
    out = view_consistency(p, torch.ones(2, 1, 4))
    assert out.item() == 0.0 and out.requires_grad


def test_vc_normalised_by_pairs_and_frames():
    # N=3 views, all masks on, only pair (0,1) differs at one frame of T=2: the sum is that
    # one term; the divisor is 3 pairs * 2 frames.
    p = torch.full((1, 3, 2, 2), 0.5)
    p[0, 0, 0] = torch.tensor([1.0, 0.0])
    p[0, 2, 0] = torch.tensor([1.0, 0.0])
    m = torch.ones(1, 3, 2)
    js = 0.75 * math.log(4.0 / 3.0)
    # pairs differing at frame 0: (0,1) and (1,2), each w = 0.5; (0,2) agree
    expected = 2 * 0.5 * js / (3 * 2)
    got = view_consistency(p, m, confidence_weighting=True).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_vc_no_gradient_through_confidence_weight():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(1, 3, 2, 4, generator=g, requires_grad=True)
    m = torch.ones(1, 3, 2)
    view_consistency(torch.softmax(logits, -1), m).backward()
    got = logits.grad.clone()

    # Reference 1: the weight as a constant -> same gradient.
    logits2 = logits.detach().clone().requires_grad_(True)
    p2 = torch.softmax(logits2, -1)
    conf = p2.detach().amax(-1)
    acc = 0
    for i, j in itertools.combinations(range(3), 2):
        mid = (p2[:, i] + p2[:, j]) / 2
        js = 0.5 * (p2[:, i] * (p2[:, i] / mid).log()).sum(-1) + \
            0.5 * (p2[:, j] * (p2[:, j] / mid).log()).sum(-1)
        acc = acc + (conf[:, i] * conf[:, j] * js).sum()
    (acc / 6).backward()
    assert torch.allclose(got, logits2.grad, atol=1e-6)

    # Reference 2: the weight with gradient -> a different gradient (so the test can fail).
    logits3 = logits.detach().clone().requires_grad_(True)
    p3 = torch.softmax(logits3, -1)
    conf3 = p3.amax(-1)
    acc3 = 0
    for i, j in itertools.combinations(range(3), 2):
        mid = (p3[:, i] + p3[:, j]) / 2
        js = 0.5 * (p3[:, i] * (p3[:, i] / mid).log()).sum(-1) + \
            0.5 * (p3[:, j] * (p3[:, j] / mid).log()).sum(-1)
        acc3 = acc3 + (conf3[:, i] * conf3[:, j] * js).sum()
    (acc3 / 6).backward()
    assert not torch.allclose(got, logits3.grad, atol=1e-6)


def test_vc_safe_with_zero_probabilities():
    p = torch.tensor([[[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]],
                     requires_grad=True)
    m = torch.ones(1, 3, 1)
    for div in ("js", "kl"):
        out = view_consistency(p, m, divergence=div)
        assert torch.isfinite(out)
        (g,) = torch.autograd.grad(out, p)
        assert torch.isfinite(g).all()
    # JS of disjoint one-hots is ln 2 per pair, w = 1
    assert view_consistency(p, m).item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_vc_masks_as_floats_equal_bools_and_shape_checks():
    p = torch.softmax(torch.randn(2, 3, 4, 5), dim=-1)
    m = torch.rand(2, 3, 4) > 0.5
    assert view_consistency(p, m).item() == pytest.approx(view_consistency(p, m.float()).item())
    with pytest.raises(ValueError):
        view_consistency(p, torch.ones(2, 3, 5))
    with pytest.raises(ValueError):
        view_consistency(p, m, divergence="hellinger")
