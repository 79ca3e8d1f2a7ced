"""Unit tests of vicokd.metrics: hand-computed APs and agreement with sklearn."""

import itertools
import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from vicokd.metrics import (average_precision, evaluation_summary,
                            frame_mean_average_precision, mean_average_precision, mean_prevalence,
                            per_class_average_precision, random_score_map)


def test_ap_hand_computed():
    # ranks: +, -, +, -  -> precision 1 at recall .5, 2/3 at recall 1
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)
    # perfect ranking
    assert average_precision([0, 1, 1], [0.1, 0.5, 0.9]) == pytest.approx(1.0)


def test_ap_ties_are_one_threshold():
    # the three tied top scores hold both positives: precision 2/3 at recall 1
    assert average_precision([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.1]) == pytest.approx(2 / 3)
    # order of tied items must not matter
    assert average_precision([0, 1, 1, 0], [0.5, 0.5, 0.5, 0.1]) == pytest.approx(2 / 3)


def test_ap_no_positive_is_nan():
    assert math.isnan(average_precision([0, 0, 0], [0.1, 0.2, 0.3]))


@pytest.mark.parametrize("seed", range(5))
def test_per_class_ap_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, c = 40, 6
    y = (rng.random((n, c)) < 0.3).astype(np.uint8)
    y[0] = 1
    # coarse scores make many ties
    s = np.round(rng.random((n, c)) * 5) / 5 if seed % 2 else rng.normal(size=(n, c))
    ap = per_class_average_precision(y, s)
    for k in range(c):
        assert ap[k] == pytest.approx(average_precision_score(y[:, k], s[:, k]), abs=1e-12)


def test_map_leaves_out_classes_without_positive():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    s = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0.8, 0.4, 0.2], [0.1, 0.6, 0.9]])
    ap0 = average_precision_score(y[:, 0], s[:, 0])
    ap1 = average_precision_score(y[:, 1], s[:, 1])
    assert mean_average_precision(y, s) == pytest.approx(100 * (ap0 + ap1) / 2)
    # equals sklearn's macro average restricted to present classes
    assert mean_average_precision(y, s) == pytest.approx(
        100 * average_precision_score(y[:, :2], s[:, :2], average="macro"))


def test_map_all_classes_absent_is_nan():
    assert math.isnan(mean_average_precision(np.zeros((3, 2)), np.random.rand(3, 2)))
    assert math.isnan(mean_prevalence(np.zeros((3, 2))))
    assert math.isnan(random_score_map(np.zeros((3, 2)))[0])


def test_map_shape_checks():
    with pytest.raises(ValueError):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        mean_average_precision(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError):
        mean_average_precision(np.ones((2, 1)), np.array([[np.nan], [0.1]]))


def test_mean_prevalence_of_present_classes():
    y = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]])
    assert mean_prevalence(y) == pytest.approx(100 * (3 / 4 + 1 / 4) / 2)


def brute_force_random_maps(y: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """mAP of `draws` sets of random scores, each scored by mean_average_precision."""
    rng = np.random.default_rng(seed)
    return np.array([mean_average_precision(y, rng.random(y.shape)) for _ in range(draws)])


def exact_random_ap(k: int, n: int) -> float:
    """E[AP] of a random ranking of n items with k positives: summing P@r over the positive
    ranks, E = (1/n) [H_n + (k - 1)/(n - 1) (n - H_n)]."""
    h = sum(1.0 / r for r in range(1, n + 1))
    return (h + (k - 1) / (n - 1) * (n - h)) / n if n > 1 else 1.0


@pytest.mark.parametrize("seed", range(3))
def test_random_score_map_agrees_with_a_brute_force_simulation(seed):
    rng = np.random.default_rng(seed)
    n, c = 12 + 7 * seed, 5
    y = (rng.random((n, c)) < [0.05, 0.1, 0.3, 0.6, 1.0]).astype(np.uint8)
    y[seed, 0] = 1
    mean, (lo, hi) = random_score_map(y, draws=4000, seed=seed)
    brute = brute_force_random_maps(y, 4000, seed + 100)
    assert mean == pytest.approx(brute.mean(), abs=0.6)
    assert lo == pytest.approx(np.percentile(brute, 2.5), abs=1.5)
    assert hi == pytest.approx(np.percentile(brute, 97.5), abs=1.5)
    # ... and with the exact expectation of each class's AP
    exact = np.mean([exact_random_ap(int(k), n) for k in y.sum(0) if k > 0])
    assert mean == pytest.approx(100 * exact, abs=0.5)
    # random scores beat a constant one: chance is above the mean prevalence
    assert mean > mean_prevalence(y)


@pytest.mark.parametrize("k, n", [(2, 9), (3, 12), (4, 6), (6, 7), (5, 7)])
def test_random_score_map_of_one_class_has_the_exact_ap_distribution(k, n):
    # every k-subset of ranks equally likely: enumerate them (few positives, many, most)
    exact = np.array([np.mean([(j + 1) / r for j, r in enumerate(ranks)])
                      for ranks in itertools.combinations(range(1, n + 1), k)]) * 100
    y = np.zeros((n, 1), np.uint8)
    y[:k] = 1
    mean, (lo, hi) = random_score_map(y, draws=40000, seed=k)
    assert mean == pytest.approx(exact.mean(), abs=0.3)
    ranks = np.sort(exact)
    cdf = lambda v: np.searchsorted(ranks, v, side="right") / len(ranks)   # noqa: E731
    assert cdf(lo) >= 0.02 and cdf(hi) >= 0.97 and cdf(np.nextafter(hi, 0)) <= 0.98


def test_random_score_map_on_many_frames():
    # past 2^15 frames the ranks take another integer type; the mean stays exact
    n = 40000
    y = np.zeros((n, 2), np.uint8)
    y[:3, 0] = 1
    y[:30000, 1] = 1
    mean = random_score_map(y, draws=1000)[0]
    assert mean == pytest.approx(50 * (exact_random_ap(3, n) + exact_random_ap(30000, n)), abs=0.2)


@pytest.mark.parametrize("n", [2, 5, 30])
def test_random_score_map_one_positive_per_class(n):
    # one positive out of n: the AP is 1/rank, the rank uniform, so E[AP] = H_n / n
    y = np.zeros((n, 4), np.uint8)
    y[[0, n - 1, n // 2, 1], range(4)] = 1
    mean, (lo, hi) = random_score_map(y, draws=20000, seed=1)
    h = sum(1.0 / r for r in range(1, n + 1))
    assert mean == pytest.approx(100 * h / n, rel=0.02)
    assert lo < mean < hi
    assert mean_prevalence(y) == pytest.approx(100 / n)


def test_random_score_map_is_seeded_and_exact_for_all_positive_classes():
    rng = np.random.default_rng(3)
    y = (rng.random((40, 6)) < 0.2).astype(np.uint8)
    assert random_score_map(y) == random_score_map(y)
    assert random_score_map(y, seed=1) != random_score_map(y)
    assert random_score_map(np.ones((7, 3))) == (100.0, (100.0, 100.0))


def test_frame_map_flattens_sequences_of_different_length():
    rng = np.random.default_rng(1)
    ys = [(rng.random((t, 3)) < 0.4).astype(int) for t in (5, 8, 3)]
    ss = [rng.random((t, 3)) for t in (5, 8, 3)]
    ys[0][0] = 1
    flat_y, flat_s = np.concatenate(ys), np.concatenate(ss)
    assert frame_mean_average_precision(ys, ss) == pytest.approx(
        mean_average_precision(flat_y, flat_s))
    # a [B, T, C] array gives the same as its list of rows
    y3 = (rng.random((2, 4, 3)) < 0.5).astype(int)
    s3 = rng.random((2, 4, 3))
    y3[0, 0] = 1
    assert frame_mean_average_precision(y3, s3) == pytest.approx(
        frame_mean_average_precision(list(y3), list(s3)))


def test_evaluation_summary_is_json_ready():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    s = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0.8, 0.4, 0.2]])
    fy = [np.array([[1, 0, 0], [0, 0, 0]]), np.array([[0, 1, 0]])]
    fs = [np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.2]]), np.array([[0.2, 0.9, 0.1]])]
    out = evaluation_summary(y, s, fy, fs, classes=["a", "b", "c"])
    text = json.dumps(out, allow_nan=False)   # no NaN in the file
    back = json.loads(text)
    assert back["map"] == pytest.approx(mean_average_precision(y, s))
    assert back["per_class_ap"]["c"] is None
    assert back["per_class_ap"]["a"] == pytest.approx(100.0)
    assert back["chance"] == pytest.approx(random_score_map(y)[0])
    assert back["chance_band"] == pytest.approx(list(random_score_map(y)[1]))
    assert back["prevalence"] == pytest.approx(mean_prevalence(y))
    flat = np.concatenate(fy)
    assert back["frame_chance"] == pytest.approx(random_score_map(flat)[0])
    assert back["frame_chance_band"][0] <= back["frame_chance"] <= back["frame_chance_band"][1]
    assert back["frame_prevalence"] == pytest.approx(mean_prevalence(flat))
    assert back["frame_map"] == pytest.approx(100.0)
    assert back["n_frames"] == 3
