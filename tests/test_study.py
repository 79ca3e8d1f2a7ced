"""The view-consistency study: the view statistics (vicokd.study.views), the effect table and
figure (vicokd.study.view_consistency), the run list and the workflow's study jobs."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from vicokd import experiments as grid
from vicokd.errors import VicokdError
from vicokd.study.view_consistency import plot, spread, study_rows, to_csv, to_markdown
from vicokd.study.views import co_visibility, pair_share, readout_disagreement, view_probes

from conftest import REPO, prepare_workdir, workflow_env
from fake_artifacts import make_home


def test_pair_share_and_co_visibility_by_hand():
    a = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0]], bool)   # 3 views, 4 frames
    # pairs both seeing: frame 0 all 3 pairs; frames 1-3 none -> 3 of 3 * 4 = 12
    assert pair_share([a]) == pytest.approx(3 / 12)
    # frames with the actor: 0, 1, 2; seen by >= 2 views: 0
    assert co_visibility([a]) == pytest.approx(1 / 3)
    assert pair_share([a[:1]]) is None
    assert co_visibility([np.zeros((2, 3), bool)]) is None


def test_readout_disagreement():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3))
    assert readout_disagreement(a, 2 * a + 1) == pytest.approx(0.0, abs=1e-9)
    assert readout_disagreement(a, -a) == pytest.approx(2.0)
    assert readout_disagreement(a, rng.normal(size=(400, 3))) == pytest.approx(1.0, abs=0.15)
    b = a.copy()
    b[:, 2] = 5.0                                  # a constant class is left out
    assert readout_disagreement(a, b) == pytest.approx(0.0, abs=1e-9)
    assert readout_disagreement(np.ones((5, 2)), np.ones((5, 2))) is None


def _home_with_views(tmp_path, spoil_view=None):
    files = make_home(tmp_path, n_seq=16, views=3, lengths=(30, 40), classes=3, size=16, seed=1)
    visible = {}
    with h5py.File(files.frames, "r+") as f:
        rng = np.random.default_rng(5)
        for sid in f:
            ds = f[sid]["frames"]
            visible[sid] = np.ones(ds.shape[:2], bool)
            visible[sid][2, ::2] = False           # view 2 sees the actor every other frame
            if spoil_view is not None:             # this view shows noise only
                ds[spoil_view] = rng.integers(0, 255, ds.shape[1:], dtype=np.uint8)
    return files, visible


def test_view_probes_read_alike_views_alike_and_a_spoilt_view_apart(tmp_path):
    files, visible = _home_with_views(tmp_path / "alike")
    alike = view_probes(files, visible)
    assert [r["test_frames_seen"] for r in alike["per_view"]][:2] == \
        [alike["per_view"][0]["test_frames_seen"]] * 2
    assert alike["per_view"][2]["test_frames_seen"] < alike["per_view"][0]["test_frames_seen"]
    assert all(r["frame_map"] > r["frame_chance"] + 20 for r in alike["per_view"])
    pair01 = next(p for p in alike["pairs"] if p["views"] == [0, 1])
    # the same squares over each view's own faint noise: the readouts nearly agree
    assert pair01["disagreement"] < 0.05
    files, visible = _home_with_views(tmp_path / "spoilt", spoil_view=1)
    spoilt = view_probes(files, visible)
    assert spoilt["view_disparity"] > alike["view_disparity"] + 0.3
    assert spoilt["per_view"][1]["frame_map"] < spoilt["per_view"][0]["frame_map"] - 20
    assert spoilt["pair_map_gap"] > alike["pair_map_gap"] + 20


# ----------------------------------------------------------------------- the effect table

STUDY = {"covisibility": ["h1", "h2"], "disparity": ["h2"], "seeds": [0, 1, 2]}


def _views(env, cov, dis):
    return {"env": env, "co_visibility": cov, "view_disparity": dis, "pair_share": cov / 2,
            "pair_share_masks": cov / 3, "visible_any_view": 0.9, "mask_precision": 0.95,
            "mask_recall": 0.9,
            "probe": {"per_view": [{"frame_map": 30.0}, {"frame_map": 40.0}],
                      "pair_map_gap": 5.0}}


def _metrics(skip=None):
    out = {}
    base = {"student": 60.0, "cokd": 64.0, "vicokd": 65.0, "vicokd-learnedvis": 63.0,
            "cokd-vis": 62.5}
    for env in ("h1", "h2"):
        for m, value in base.items():
            for sup in ("frame", "sequence"):
                for k in range(3):
                    rid = grid.run_id(env, grid.ABLATION_BACKBONE, grid.student_run(m, sup, k))
                    if rid != skip:
                        bump = k if m == "vicokd" else 0.0     # ViCoKD - CoKD: 1, 2, 3 points
                        out[rid] = {"map": value + bump, "frame_map": value / 2, "chance": 40.0}
    return out


def test_study_rows_pair_the_seeds_and_keep_the_sweeps():
    views = {"h1": _views("h1", 0.2, 0.3), "h2": _views("h2", 0.9, 0.5)}
    rows = study_rows(STUDY, ["frame", "sequence"], views, _metrics(),
                      {"h1": {"map": 80.0}, "h2": None})
    assert [(r["sweep"], r["home"], r["supervision"]) for r in rows] == [
        ("covisibility", "h1", "frame"), ("covisibility", "h1", "sequence"),
        ("covisibility", "h2", "frame"), ("covisibility", "h2", "sequence"),
        ("disparity", "h2", "frame"), ("disparity", "h2", "sequence")]
    r = rows[0]
    assert r["vicokd_minus_cokd"] == pytest.approx(2.0)        # 65 + (0, 1, 2) - 64
    assert r["vicokd_minus_cokd_sd"] == pytest.approx(1.0)
    assert (r["vicokd_minus_cokd_min"], r["vicokd_minus_cokd_max"]) == (1.0, 3.0)
    assert r["cokd_minus_student"] == pytest.approx(4.0) and r["cokd_minus_student_sd"] == 0.0
    assert r["vicokd_minus_cokd_frame"] == pytest.approx(0.5)
    assert r["learnedvis_minus_cokd"] == pytest.approx(-1.0) and r["vicokd_learnedvis_map"] == 63.0
    assert r["learnedvis_minus_cokdvis"] == pytest.approx(0.5)
    assert r["cokdvis_minus_cokd"] == pytest.approx(-1.5)
    assert r["teacher_map"] == 80.0 and rows[2]["teacher_map"] is None
    assert r["probe_view_frame_map"] == pytest.approx(35.0) and r["co_visibility"] == 0.2
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(parsed) == 6 and float(parsed[0]["vicokd_minus_cokd"]) == pytest.approx(2.0)
    md = to_markdown(rows)
    assert md.count("\n") == 8 and "+2.00 ± 1.00" in md and "-1.00 ± 0.00" in md


def test_study_rows_name_a_missing_run_and_a_missing_home():
    views = {"h1": _views("h1", 0.2, 0.3), "h2": _views("h2", 0.9, 0.5)}
    missing = grid.run_id("h2", grid.ABLATION_BACKBONE, grid.student_run("cokd", "sequence", 1))
    with pytest.raises(VicokdError, match=re.escape(missing)):
        study_rows(STUDY, ["frame", "sequence"], views, _metrics(skip=missing), {})
    with pytest.raises(VicokdError, match="no views.json for home 'h2'"):
        study_rows(STUDY, ["frame"], {"h1": views["h1"]}, _metrics(), {})


def test_spread_and_the_figure(tmp_path):
    assert spread([1.0, None, 3.0]) == {"mean": 2.0, "sd": pytest.approx(2 ** 0.5), "min": 1.0,
                                        "max": 3.0, "n": 2}
    assert spread([None])["mean"] is None and spread([2.0])["sd"] is None
    views = {"h1": _views("h1", 0.2, 0.3), "h2": _views("h2", 0.9, 0.5)}
    rows = study_rows(STUDY, ["frame", "sequence"], views, _metrics(), {})
    plot(rows, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------ runs and workflow

def test_study_runs():
    runs = grid.study_runs(["a", "b"], ["frame", "sequence"], [0, 1, 2])
    assert len(runs) == 2 * len(grid.STUDY_METHODS) * 2 * 3 == 60
    assert "a/multiasl/vicokd-sequence-seed2" in runs and "b/multiasl/cokd-frame-seed0" in runs
    assert grid.study_views_file("a") == "results/study/a/views.json"


def test_the_study_dry_run_adds_the_study_homes_only(tmp_path):
    work = prepare_workdir(tmp_path)
    (work / "config").mkdir()
    (work / "config" / "study.yaml").write_text((REPO / "config" / "study.yaml").read_text())
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--configfile", "config/study.yaml", "-n",
           "results/study/view_consistency.csv"]
    proc = subprocess.run(cmd, cwd=work, env=workflow_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))
    # 7 study homes (home1 and home2 only for the detector's frames), 30 students each
    assert counts["synthesize"] == "9" and counts["decode"] == "9"
    assert counts["spectrogram"] == "7" and counts["masks"] == "7" and counts["teacher"] == "7"
    assert counts["student"] == "210" and counts["study_views"] == "7"
    assert counts["view_consistency"] == "1" and counts["detector"] == "1"
    assert "table1" not in counts and "report" not in counts


def test_the_reports_study_section(tmp_path):
    """The report shows the study's figure and table when the config has study homes."""
    from vicokd.report.study_page import read_study, study_section
    views = {"h1": _views("h1", 0.2, 0.3), "h2": _views("h2", 0.9, 0.5)}
    rows = study_rows(STUDY, ["frame", "sequence"], views, _metrics(), {})
    (tmp_path / "s.csv").write_text(to_csv(rows))
    plot(rows, tmp_path / "s.png")
    html = study_section(read_study(tmp_path / "s.csv", tmp_path / "s.png"))
    assert 'id="study"' in html and 'id="study-table"' in html
    assert "+2.00 ± 1.00" in html and "-1.00 ± 0.00" in html
    assert study_section(None) == ""
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(VicokdError, match=r"bad\.csv: not the study's table"):
        read_study(tmp_path / "bad.csv", tmp_path / "s.png")
