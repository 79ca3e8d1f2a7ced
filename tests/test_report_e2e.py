"""The tiny config end to end, from synthetic videos to results/report.html."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest

import browser
from conftest import require, run_snakemake
from test_page import check_page, check_rendered, check_yardsticks

PROBE_KEYS = {"picture", "sound", "both", "chance", "chance_band", "prevalence", "frame_chance",
              "frame_chance_band", "frame_prevalence", "n_test", "n_test_frames", "features",
              "lambda", "seconds"}


@pytest.mark.e2e
def test_tiny_config_to_report_html(tiny_run):
    """The shared tiny run (tests/config/tiny.yaml: one backbone, every method, seeds 0-1)."""
    res = tiny_run / "results"
    t1 = pd.read_csv(res / "table1.csv")                  # plain CSV, default arguments
    rows = t1[(t1["home"] == "home1") & (t1["supervision"] == "frame")]
    assert list(rows["label"]) == ["Teacher", "Linear probe, audio+video", "Student", "LogitKD",
                                   "ModalKD", "DualKD", "CoKD", "ViCoKD", "Linear probe, video"]
    assert t1["value"].notna().all()                      # every run and probe produced a metric
    assert t1["best"].sum() >= 4 and not t1.loc[t1["reference"], "best"].any()
    assert t1["in_random_band"].dtype == bool and t1["random_low"].notna().all()
    for env in ("home1", "home2"):
        probe = json.loads((res / env / "probe.json").read_text())
        assert PROBE_KEYS <= set(probe), PROBE_KEYS - set(probe)
        for kind in ("picture", "sound", "both"):
            assert {"map", "frame_map", "per_class_ap"} <= set(probe[kind])
        lo, hi = probe["frame_chance_band"]
        assert lo <= probe["frame_chance"] <= hi
        metrics = json.loads((res / env / "multiasl" / "teacher" / "metrics.json").read_text())
        assert metrics["chance"] >= metrics["prevalence"] and len(metrics["chance_band"]) == 2
    md = (res / "table1.md").read_text()
    assert "SYNTHETIC" in md and "Random scores, mean (band) [%]: Home-1" in md
    assert "| Home-1 | Linear probe, video |" in md and "| Home-2 | Linear probe, audio+video |" in md
    assert "Linear probe, video" in (res / "table1_frame_map.md").read_text()
    for name in ("table2.csv", "table3.csv", "table4.csv", "figure3.png"):
        assert (res / name).stat().st_size > 0
    page = (res / "report.html").read_text()
    checker = check_page(page, images=report_images(res))
    assert {"figure4-share", "figure4-differences"} <= checker.tables
    check_yardsticks(page)
    figure4 = json.loads((res / "figure4.json").read_text())
    for env in ("home1", "home2"):
        assert (res / env / "figure4.png").stat().st_size > 0
        m = figure4["homes"][env]["measurement"]
        assert set(m) == {"teacher", "student", "cokd", "vicokd"}
        assert all(0 <= x["share_in_box"] <= 1 and x["view_frames"] > 0 for x in m.values())
    assert "train students" in page and "probe" in page   # run times from the benchmark files
    # how hard each loss term pulls: every MultiASL student's terms, VC's pull beside FD's
    terms = pd.read_csv(res / "loss_terms.csv")
    vicokd = terms[terms["method"] == "vicokd"]
    assert {"supervision", "fd", "ld", "vc"} <= set(vicokd["term"])
    assert (vicokd["grad_first"] >= 0).all() and 'id="vc-pull"' in page


@pytest.mark.e2e
def test_snakemake_report_shows_the_captioned_tables_and_figures(tiny_run, tmp_path):
    """`snakemake --report` (Snakemake's own report) holds every table and figure, captioned."""
    out = tmp_path / "report.zip"
    run_snakemake(tiny_run, "all", extra_args=["--report", str(out)])
    names = zipfile.ZipFile(out).namelist()
    for name in ("table1.csv", "table1_frame_map.csv", "table2.csv", "table3.csv", "table4.csv",
                 "figure3.png", "figure3_frame_map.png", "loss_terms.csv", "loss_terms.png"):
        assert any(n.endswith("/" + name) for n in names), name


@pytest.mark.e2e
def test_report_html_renders_in_headless_chromium(tiny_run, tmp_path):
    """The report the tiny run wrote, opened as a user would: every table and figure shown."""
    require(browser.missing())
    seen, console = browser.render(tiny_run / "results" / "report.html", tmp_path)
    assert not console, console
    check_rendered(seen, images=report_images(tiny_run / "results"))
    assert "ViCoKD" in seen["title"] and seen["height"] > 2000


def report_images(res) -> int:
    """Figure 3 twice, Figure 4, the loss terms' gradient norms, and one timeline per sequence
    of results/timelines."""
    return 4 + len(json.loads((res / "timelines" / "index.json").read_text()))
