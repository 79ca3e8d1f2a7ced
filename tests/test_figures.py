"""Figure 3 (vicokd.report.figures) from fabricated curve files."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from report_fixtures import HOMES, SUPERVISIONS, fabricate
from vicokd.errors import VicokdError
from vicokd.experiments import figure3_runs
from vicokd.report import figures as fg


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
