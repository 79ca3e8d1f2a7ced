"""The view-consistency study through Snakemake on the tiny config: two tiny study homes (one per
sweep), their views measured, the effect table and figure; the default homes only give the
detector their frames."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from conftest import TINY_CONFIG, prepare_workdir, run_snakemake

STUDY = {
    "synthetic": {"homes": {
        "study-a": {"layout": "rooms", "views": 2, "streams": "study", "corner": "outer",
                    "doorway": 0.6},
        "study-b": {"layout": "rooms", "views": 2, "streams": "study", "corner": "outer",
                    "doorway": 3.0, "occluders": 1, "light": [0.3, 1.0], "noise": 6},
    }},
    "study": {"covisibility": ["study-a", "study-b"], "disparity": ["study-b"], "seeds": [0]},
}


@pytest.mark.e2e
def test_the_study_runs_on_the_tiny_config(tmp_path):
    work = prepare_workdir(tmp_path)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    for section, values in STUDY.items():
        config[section] = {**config.get(section, {}), **values}
    path = tmp_path / "tiny-study.yaml"
    path.write_text(yaml.safe_dump(config))
    run_snakemake(work, "results/study/view_consistency.csv", config=path)
    rows = list(csv.DictReader(open(work / "results" / "study" / "view_consistency.csv")))
    assert [(r["sweep"], r["home"], r["supervision"]) for r in rows] == [
        ("covisibility", "study-a", "frame"), ("covisibility", "study-a", "sequence"),
        ("covisibility", "study-b", "frame"), ("covisibility", "study-b", "sequence"),
        ("disparity", "study-b", "frame"), ("disparity", "study-b", "sequence")]
    for r in rows:
        assert float(r["vicokd_minus_cokd"]) == pytest.approx(
            float(r["vicokd_map"]) - float(r["cokd_map"]), abs=1e-3)
    views = {env: json.loads((work / "results" / "study" / env / "views.json").read_text())
             for env in ("study-a", "study-b")}
    assert views["study-a"]["co_visibility"] < views["study-b"]["co_visibility"]
    assert views["study-b"]["settings"]["physical"]["occluders"] == 1
    assert views["study-a"]["settings"]["streams"] == "study"
    assert (work / "results" / "study" / "view_consistency.png").stat().st_size > 10_000
    assert "study-a" in (work / "results" / "study" / "view_consistency.md").read_text()
    # the default homes were generated for the detector only: no teacher or student of theirs
    assert not (work / "results" / "home1" / "multiasl").exists()
