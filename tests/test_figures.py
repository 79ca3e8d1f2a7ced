"""Figure 3 (vicokd.report.figures) from fabricated curve files."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from report_fixtures import HOMES, PROBE_VALUES, SUPERVISIONS, YARDSTICKS, fabricate
from vicokd.errors import VicokdError
from vicokd.experiments import figure3_runs
from vicokd.report import figures as fg
from vicokd.report import tables as tb


def curve_paths(root):
    return [root / "results" / r / "curve.csv" for r in figure3_runs(HOMES, SUPERVISIONS, 0)]


def test_figure3_draws_every_panel_and_reports_missing_curves(tmp_path):
    fabricate(tmp_path, skip={("home2", "multiasl", "cokd-sequence-seed0")})
    curves = fg.load_curves(curve_paths(tmp_path))
    assert curves["home2/multiasl/cokd-sequence-seed0"] is None
    assert len(curves) == 16
    for column in ("test_map", "test_frame_map"):
        out = tmp_path / f"{column}.png"
        missing = fg.plot_figure3(curves, out, HOMES, SUPERVISIONS, 0, column)
        assert missing == ["home2/multiasl/cokd-sequence-seed0"]
        img = mpimg.imread(out)                  # a real PNG that decodes
        assert img.shape[0] > 500 and img.shape[1] > 800
        assert img[..., :3].std() > 0.05         # not a blank canvas
    assert not list(tmp_path.glob(".*.tmp*"))    # written atomically


def test_figure3_shades_the_random_band_and_draws_the_video_probe(tmp_path):
    fabricate(tmp_path)
    curves = fg.load_curves(curve_paths(tmp_path))
    metrics = tb.load_metrics(p.with_name("metrics.json") for p in curve_paths(tmp_path))
    probes = tb.load_probes(tmp_path / "results" / env / "probe.json" for env in HOMES)
    plain, marked = tmp_path / "plain.png", tmp_path / "marked.png"
    fg.plot_figure3(curves, plain, HOMES, SUPERVISIONS, 0, "test_frame_map")
    fg.plot_figure3(curves, marked, HOMES, SUPERVISIONS, 0, "test_frame_map", "synthetic",
                    metrics, probes)
    assert not np.array_equal(mpimg.imread(plain), mpimg.imread(marked))
    # one panel's yardsticks: the band of its runs, the level of the video probe
    for key, band, level in (("map", YARDSTICKS["chance_band"], PROBE_VALUES["picture"][0]),
                             ("frame_map", YARDSTICKS["frame_chance_band"], PROBE_VALUES["picture"][1])):
        fig, ax = plt.subplots()
        rids = [r for r in metrics if r.startswith("home1/")]
        fg.draw_yardsticks(ax, {r: metrics[r] for r in rids}, probes, "home1", key)
        (span,) = ax.patches
        lo, hi = span.get_y(), span.get_y() + span.get_height()      # axhspan: a Rectangle
        assert (lo, hi) == pytest.approx(tuple(band))
        (line,) = ax.lines
        assert list(line.get_ydata()) == [level, level]
        assert "Linear probe, video" in ax.texts[0].get_text()
        plt.close(fig)


def test_figure3_with_no_curves_at_all_still_draws(tmp_path):
    curves = fg.load_curves(curve_paths(tmp_path))
    assert all(v is None for v in curves.values())
    assert len(fg.plot_figure3(curves, tmp_path / "f.png", HOMES, SUPERVISIONS)) == 16
    assert (tmp_path / "f.png").stat().st_size > 0


def test_malformed_curve_is_a_one_line_error(tmp_path):
    p = tmp_path / "results" / "home1" / "multiasl" / "vicokd-frame-seed0" / "curve.csv"
    p.parent.mkdir(parents=True)
    p.write_text("epoch,train_loss\n1,0.5\n")
    with pytest.raises(VicokdError, match=r"vicokd-frame-seed0/curve.csv: curve lacks columns \['test_map'"):
        fg.load_curves([p])


def test_loss_terms_table_figure_and_vc_share(tmp_path):
    """curve.csv's per-term columns become results/loss_terms.csv, the figure, and VC's pull
    over FD's and over the supervision's."""
    from vicokd.report import loss_terms as lt
    curves = {}
    for k, m in enumerate(("cokd", "vicokd")):
        terms = ["supervision", "auxiliary", "fd", "ld"] + (["vc"] if m == "vicokd" else [])
        df = pd.DataFrame({"epoch": [1, 2], "test_map": [50.0, 55.0], "test_frame_map": [9.0, 9.5],
                           "part_fd": [3.0, 1.0], "part_vc": [0.02, 0.04]})
        for t in terms:
            df[f"grad_first_{t}"] = {"supervision": 4.0, "auxiliary": 0.0, "fd": 2.0, "ld": 1.0,
                                     "vc": 0.01}[t]
            df[f"grad_logits_{t}"] = 0.5 if t == "vc" else 0.0
        curves[f"home1/multiasl/{m}-frame-seed0"] = df
    long = lt.loss_terms_long(curves, ["home1"], ["cokd", "vicokd"], ["frame"], 0)
    assert set(long["method"]) == {"cokd", "vicokd"} and len(long) == 4 + 5
    vc = long[(long["method"] == "vicokd") & (long["term"] == "vc")].iloc[0]
    assert vc["value"] == pytest.approx(0.03) and vc["grad_first"] == pytest.approx(0.01)
    share = lt.vc_share(long)
    assert list(share["method"]) == ["vicokd"]
    assert share["vc_over_fd"].iloc[0] == pytest.approx(0.005)
    assert share["vc_over_supervision"].iloc[0] == pytest.approx(0.0025)
    lt.plot_loss_terms(curves, tmp_path / "terms.png", ["home1"], ["frame"], 0, ["vicokd"])
    assert (tmp_path / "terms.png").stat().st_size > 1000
