"""The tiny config end to end, from synthetic videos to results/report.html."""

from __future__ import annotations

import pandas as pd
import pytest

from test_page import check_page


@pytest.mark.e2e
def test_tiny_config_to_report_html(tiny_run):
    """The shared tiny run (tests/config/tiny.yaml: one backbone, every method, seeds 0-1)."""
    res = tiny_run / "results"
    t1 = pd.read_csv(res / "table1.csv", comment="#")
    assert list(t1["Method"]) == ["Teacher", "Student", "LogitKD", "ModalKD", "DualKD", "CoKD",
                                  "ViCoKD"] * 2
    cells = t1.iloc[:, 2:].to_numpy().ravel()
    assert not any("missing" in c for c in cells)        # every run of the grid produced a metric
    assert sum("[best]" in c for c in cells) >= 4
    assert "SYNTHETIC" in (res / "table1.csv").read_text()
    for name in ("table2.csv", "table3.csv", "table4.csv", "figure3.png"):
        assert (res / name).stat().st_size > 0
    page = (res / "report.html").read_text()
    check_page(page)
    assert "train students" in page                       # run times from the benchmark files
