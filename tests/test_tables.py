"""Table assembly (vicokd.report.tables) on fabricated metrics files: layout, differences, best
marks, missing runs, writers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from report_fixtures import (ABLATIONS, BACKBONES, EXPERIMENTS, HOMES, METHODS, PROBE_VALUES,
                             SEEDS, SUPERVISIONS, all_runs, fabricate, write_probe, write_run)
from vicokd.errors import VicokdError
from vicokd.experiments import table1_runs
from vicokd.report import tables as tb
from vicokd.report import layout as lay
from vicokd.report import notes as nt
from vicokd.report import yardsticks as ys

T1 = (HOMES, BACKBONES, METHODS, SUPERVISIONS)
COLS = (HOMES, BACKBONES, SUPERVISIONS)


def metrics_paths(root: Path, runs=None) -> list[Path]:
    runs = runs or [f"{e}/{b}/{r}" for e, b, r in all_runs()]
    return [root / "results" / r / "metrics.json" for r in runs]


def probes_of(root: Path) -> dict:
    return tb.load_probes(root / "results" / env / "probe.json" for env in HOMES)


def number(cell: str) -> float:
    """The value of a Markdown cell: bold and the in-band mark stripped."""
    return float(cell.split(" ")[0].strip("*").rstrip(lay.IN_BAND).strip("*"))


@pytest.fixture
def fabricated(tmp_path):
    values = fabricate(tmp_path)
    return tmp_path, values, tb.load_metrics(metrics_paths(tmp_path))


def col(bb, sup):
    return lay.column_label(bb, sup)


def test_run_id_of_path():
    assert tb.run_id_of_path("x/results/home1/multiasl/vicokd-nomask-frame-seed2/metrics.json") \
        == "home1/multiasl/vicokd-nomask-frame-seed2"


def test_table1_layout(fabricated):
    _, values, metrics = fabricated
    wide = lay.table1_wide(tb.table1_long(metrics, *T1, seed=0), *COLS)
    assert list(wide.columns) == ["Home", "Method"] + [col(b, s) for b in BACKBONES for s in SUPERVISIONS]
    assert list(wide["Method"]) == ["Teacher", "Student", "LogitKD", "ModalKD", "DualKD", "CoKD", "ViCoKD"] * 2
    assert list(wide["Home"]) == ["Home-1"] * 7 + ["Home-2"] * 7
    # The teacher (one run per home and backbone) fills both supervision columns, unranked.
    for i, env in ((0, "home1"), (7, "home2")):
        for bb in BACKBONES:
            t = values[(env, bb, 'teacher')]
            assert wide.loc[i, col(bb, "frame")] == wide.loc[i, col(bb, "sequence")]
            assert number(wide.loc[i, col(bb, "frame")]) == pytest.approx(t, abs=0.005)


def test_table1_differences_from_the_student(fabricated):
    _, values, metrics = fabricated
    long = tb.table1_long(metrics, *T1, seed=0)
    wide = lay.table1_wide(long, *COLS)
    for r in long[~long["method"].isin(["teacher", "student"])].itertuples():
        base = values[(r.home, r.backbone, f"student-{r.supervision}-seed0")]
        v = values[(r.home, r.backbone, f"{r.method}-{r.supervision}-seed0")]
        assert r.value == pytest.approx(v) and r.diff == pytest.approx(v - base)
        row = wide[(wide["Home"] == lay.HOME_LABELS[r.home]) & (wide["Method"] == lay.METHOD_LABELS[r.method])]
        cell = row[col(r.backbone, r.supervision)].item().replace("**", "").replace(lay.IN_BAND, "")
        assert cell == f"{v:.2f} ({v - base:+.2f})"
    # The student row carries no difference.
    assert "(" not in wide.loc[1, col("multiasl", "frame")]


def test_best_marks_one_per_column_the_highest_student_method(tmp_path):
    vals = {("home1", "multiasl", "teacher"): 99.0}                       # teacher is not ranked
    for m, f, s in zip(METHODS, [50, 55, 60, 65, 70, 80], [85, 10, 20, 30, 40, 50]):
        vals[("home1", "multiasl", f"{m}-frame-seed0")] = float(f)           # ViCoKD wins
        vals[("home1", "multiasl", f"{m}-sequence-seed0")] = float(s)        # the student wins
    fabricate(tmp_path, vals)
    metrics = tb.load_metrics(metrics_paths(tmp_path))
    long = tb.table1_long(metrics, *T1, seed=0, probes=probes_of(tmp_path))
    students = long[long["method"].isin(METHODS)]
    for (env, bb, sup), g in students.groupby(["home", "backbone", "supervision"]):
        assert g["best"].sum() == 1
        assert g.loc[g["best"], "value"].item() == g["value"].max()
    assert not long.loc[~long["method"].isin(METHODS), "best"].any()   # teacher, probes unranked
    md = lay.table1_wide(long, *COLS)
    assert md.loc[0, col("multiasl", "frame")] == "99.00"
    assert md.loc[7, col("multiasl", "frame")] == "**80.00** (+30.00)"
    assert md.loc[6, col("multiasl", "frame")] == "70.00 (+20.00)"
    assert md.loc[2, col("multiasl", "sequence")] == "**85.00**"
    assert md.loc[6, col("multiasl", "sequence")] == f"40.00{lay.IN_BAND} (-45.00)"  # band [35, 45]
    assert sum(c.count("**") for c in md.iloc[:, 2:].to_numpy().ravel()) == 24
    tidy = tb.table1_tidy(long)
    assert tidy["best"].sum() == 12 and not tidy.loc[tidy["reference"], "best"].any()


def test_missing_runs_are_missing_never_zero(tmp_path):
    skip = {("home1", "multitrans", "logitkd-frame-seed0"),   # no file at all
            ("home2", "multitsf", "student-sequence-seed0"),  # no baseline for its column
            ("home2", "multiasl", "teacher")}
    fabricate(tmp_path, {("home1", "multiasl", "cokd-sequence-seed0"): None}, skip=skip)  # map: null
    metrics = tb.load_metrics(metrics_paths(tmp_path))         # absent files do not raise
    long = tb.table1_long(metrics, *T1, seed=0)
    wide = lay.table1_wide(long, *COLS)
    assert wide.loc[2, col("multitrans", "frame")] == "missing"
    assert wide.loc[5, col("multiasl", "sequence")] == "missing"
    assert wide.loc[7, col("multiasl", "frame")] == wide.loc[7, col("multiasl", "sequence")] == "missing"
    assert wide.loc[8, col("multitsf", "sequence")] == "missing"
    # Without a student the others keep their value, with no difference.
    assert wide.loc[13, col("multitsf", "sequence")].endswith("(n/a)")
    assert not any(c.startswith("0.00") for c in wide.iloc[:, 2:].to_numpy().ravel())
    # A missing cell is never best; its column still has one.
    assert not long.loc[long["value"].isna(), "best"].any()
    missing = tb.missing_runs(metrics, table1_runs(*T1, 0))
    assert set(missing) == {"home1/multitrans/logitkd-frame-seed0", "home2/multitsf/student-sequence-seed0",
                            "home2/multiasl/teacher", "home1/multiasl/cokd-sequence-seed0"}
    notes = nt.table_notes("table1", EXPERIMENTS, "synthetic", 0, missing)
    assert any("Missing runs (4)" in n and "home2/multiasl/teacher" in n for n in notes)
    out = tmp_path / "t1.csv"
    tb.write_table(tb.table1_tidy(long), out)
    back = pd.read_csv(out)                                   # plain CSV, default arguments
    assert len(back) == len(long) and back["value"].isna().sum() == long["value"].isna().sum()
    assert back.loc[back["value"].isna(), "in_random_band"].eq(False).all()
    # Every other table survives the missing runs too.
    assert "missing" in lay.table3_wide(tb.table3_long(metrics, HOMES, BACKBONES), HOMES, BACKBONES).iloc[1, 2]
    lay.table2_wide(tb.table2_long(metrics, HOMES, BACKBONES, SUPERVISIONS, SEEDS), HOMES, BACKBONES, SUPERVISIONS)
    lay.table4_wide(tb.table4_long(metrics, HOMES, ABLATIONS, SUPERVISIONS), HOMES, ABLATIONS, SUPERVISIONS)


def test_malformed_metrics_file_is_a_one_line_error(tmp_path):
    d = write_run(tmp_path, "home1", "multiasl", "vicokd-frame-seed0", 50.0)
    (d / "metrics.json").write_text("{not json")
    with pytest.raises(VicokdError, match="vicokd-frame-seed0/metrics.json: not valid JSON"):
        tb.load_metrics([d / "metrics.json"])
    (d / "metrics.json").write_text(json.dumps({"frame_map": 3.0}))
    with pytest.raises(VicokdError, match="no 'map' entry"):
        tb.load_metrics([d / "metrics.json"])
    (d / "metrics.json").write_text(json.dumps({"map": "high"}))
    with pytest.raises(VicokdError, match="'map' is 'high'"):
        tb.load_metrics([d / "metrics.json"])


def test_table2_mean_std_and_whether_the_gain_exceeds_the_spread(tmp_path):
    vals = {}
    for k, (s, v) in enumerate(zip([50.0, 52.0, 54.0], [60.0, 61.0, 62.0])):
        vals[("home1", "multiasl", f"student-frame-seed{k}")] = s
        vals[("home1", "multiasl", f"vicokd-frame-seed{k}")] = v
        vals[("home1", "multiasl", f"cokd-frame-seed{k}")] = 60.5 + k / 2
        vals[("home1", "multiasl", f"student-sequence-seed{k}")] = 50.0 + 3 * k
        vals[("home1", "multiasl", f"vicokd-sequence-seed{k}")] = 52.0 + 3 * k
    fabricate(tmp_path, vals, skip={("home2", "multitrans", "vicokd-frame-seed2")})
    metrics = tb.load_metrics(metrics_paths(tmp_path))
    long = tb.table2_long(metrics, HOMES, BACKBONES, SUPERVISIONS, SEEDS)
    wide = lay.table2_wide(long, HOMES, BACKBONES, SUPERVISIONS)
    assert list(wide["Method"][:5]) == ["Student", "CoKD", "ViCoKD", "ViCoKD − Student",
                                        "ViCoKD − CoKD"]
    asl = wide[wide["Backbone"] == "MultiASL"].reset_index(drop=True)
    assert asl.loc[0, "Home-1 AV_F→V_F"] == "52.00 ± 2.00 (n=3)"
    assert asl.loc[1, "Home-1 AV_F→V_F"] == "61.00 ± 0.50 (n=3)"
    assert asl.loc[2, "Home-1 AV_F→V_F"] == "61.00 ± 1.00 (n=3)"
    assert asl.loc[3, "Home-1 AV_F→V_F"] == "+9.00 (exceeds spread 3.00)"
    assert asl.loc[3, "Home-1 AV_F→V_S"] == "+2.00 (within spread 6.00)"
    assert asl.loc[4, "Home-1 AV_F→V_F"] == "+0.00 (within spread 1.50)"
    trans = wide[wide["Backbone"] == "MultiTrans"].reset_index(drop=True)
    assert trans.loc[2, "Home-2 AV_F→V_F"].endswith("(n=2)")


def test_table3_and_table4_differences(fabricated):
    _, values, metrics = fabricated
    t3 = lay.table3_wide(tb.table3_long(metrics, HOMES, BACKBONES), HOMES, BACKBONES)
    a, b = values[("home2", "multitsf", "teacher")], values[("home2", "multitsf", "teacher-vc")]
    assert t3.loc[2, "Home-2"] == f"{a:.2f} → {b:.2f} ({b - a:+.2f})"
    t4 = lay.table4_wide(tb.table4_long(metrics, HOMES, ABLATIONS, SUPERVISIONS), HOMES, ABLATIONS, SUPERVISIONS)
    assert list(t4["Method"]) == ["ViCoKD", "w/o ConfW", "w/o Mask", "JS → KL", "w/o FD", "w/o LD",
                                  "Learned visibility"]
    assert list(t4["Group"][1:4]) == ["View-aware Consistency Module"] * 3
    assert t4["Group"].iloc[-1] == "Beyond the paper"
    ref = values[("home1", "multiasl", "vicokd-sequence-seed0")]
    v = values[("home1", "multiasl", "vicokd-nold-sequence-seed0")]
    assert t4.loc[5, "Home-1 AV_F→V_S"] == f"{v:.2f} ({v - ref:+.2f})"
    assert t4.loc[0, "Home-1 AV_F→V_S"] == f"{ref:.2f}"


def test_notes_record_seed_homes_and_synthetic_data():
    notes = " ".join(nt.table_notes("table1", EXPERIMENTS, "synthetic", 0))
    assert "Seed 0 for every method" in notes and "means of 3 runs" in notes
    assert "Homes: home1, home2" in notes and "SYNTHETIC" in notes
    real = " ".join(nt.table_notes("table2", EXPERIMENTS, "multisensor_home", 0))
    assert "SYNTHETIC" not in real and "seeds 0, 1, 2" in real


def test_cells_inside_the_random_band_are_marked_and_keep_their_number(tmp_path):
    vals = {("home1", "multiasl", "teacher"): 44.0,                       # band [35, 45]
            ("home1", "multiasl", "student-frame-seed0"): 46.0,
            ("home1", "multiasl", "vicokd-frame-seed0"): 35.0,
            ("home1", "multiasl", "cokd-frame-seed0"): 34.99}
    fabricate(tmp_path, vals)
    metrics = tb.load_metrics(metrics_paths(tmp_path))
    long = tb.table1_long(metrics, *T1, seed=0, probes=probes_of(tmp_path)).set_index(
        ["home", "method", "backbone", "supervision"])
    flags = {m: long.loc[("home1", m, "multiasl", "frame"), "in_band"]
             for m in ("teacher", "student", "vicokd", "cokd", ys.PROBE_V)}
    assert flags == {"teacher": True, "student": False, "vicokd": True, "cokd": False,
                     ys.PROBE_V: False}
    md = lay.table1_wide(long.reset_index(), *COLS)
    assert md.loc[0, col("multiasl", "frame")] == f"44.00{lay.IN_BAND}"
    assert md.loc[7, col("multiasl", "frame")].startswith(f"35.00{lay.IN_BAND} (-11.00)")
    tidy = tb.table1_tidy(long.reset_index())
    row = tidy[(tidy["home"] == "home1") & (tidy["method"] == "vicokd") & (tidy["backbone"] == "multiasl")
               & (tidy["supervision"] == "frame")].iloc[0]
    assert row["value"] == 35.0 and row["in_random_band"] and row["random_low"] == 35.0
    # the frame-level table reads the frame band (values map / 2 + 40 are all above 9.5)
    frame = tb.table1_long(metrics, *T1, seed=0, key="frame_map")
    assert not frame["in_band"].any() and (frame["random_high"] == 9.5).all()


def test_probe_rows_and_headroom_shares(fabricated):
    root, values, metrics = fabricated
    long = tb.table1_long(metrics, *T1, seed=0, probes=probes_of(root))
    wide = lay.table1_wide(long, *COLS)
    methods = ["Teacher", "Linear probe, audio+video", "Student", "LogitKD", "ModalKD", "DualKD",
               "CoKD", "ViCoKD", "Linear probe, video"]
    assert list(wide["Method"]) == methods * 2
    assert set(wide.loc[1, wide.columns[2:]]) == {"85.00"}       # no difference, no bold
    assert set(wide.loc[8, wide.columns[2:]]) == {"70.00"}
    cell = long.set_index(["home", "method", "backbone", "supervision"])
    t = values[("home2", "multitsf", "teacher")]
    s = values[("home2", "multitsf", "dualkd-sequence-seed0")]
    # (model - random) / (probe - random), random 40: the teacher against the audio+video probe
    assert cell.loc[("home2", "teacher", "multitsf", "sequence"), "share"] == pytest.approx((t - 40) / 45)
    assert cell.loc[("home2", "dualkd", "multitsf", "sequence"), "share"] == pytest.approx((s - 40) / 30)
    frame = tb.table1_long(metrics, *T1, seed=0, key="frame_map", probes=probes_of(root))
    f = frame.set_index(["home", "method", "backbone", "supervision"])
    assert f.loc[("home2", "dualkd", "multitsf", "sequence"), "share"] == pytest.approx(
        (s / 2 + 40 - 8) / (60 - 8))
    assert long.loc[long["reference"], "share"].isna().all()
    # a home without audio: no audio+video probe value, so no teacher share either
    write_probe(root, "home1", {**PROBE_VALUES, "both": None, "sound": None})
    long = tb.table1_long(metrics, *T1, seed=0, probes=probes_of(root))
    c = long.set_index(["home", "method", "backbone", "supervision"])
    assert lay.table1_wide(long, *COLS).loc[1, col("multiasl", "frame")] == "missing"
    assert pd.isna(c.loc[("home1", "teacher", "multiasl", "frame"), "share"])
    with pytest.raises(VicokdError, match="not a probe file"):
        (root / "results" / "home1" / "probe.json").write_text("{}")
        probes_of(root)


def yardstick_notes(metrics, probes, homes, key="map"):
    """The notes as the table rules make them from the runs' metrics and the probes."""
    return nt.yardstick_notes(ys.home_bands(metrics, probes, homes, key),
                              ys.home_prevalence(metrics, probes, homes, key), key,
                              probe_rows=bool(probes and any(probes.values())))


def test_yardstick_notes(fabricated):
    root, _, metrics = fabricated
    notes = yardstick_notes(metrics, probes_of(root), HOMES)
    assert notes[0].startswith(f"{lay.IN_BAND} = inside the random-score band")
    assert "Home-1 40.00 (35.00–45.00), Home-2 40.00 (35.00–45.00)" in notes[0]
    assert "Mean class prevalence" in notes[1] and "Home-1 30.00" in notes[1] and "not chance" in notes[1]
    assert "ridge regression" in notes[2]
    frame = " ".join(yardstick_notes(metrics, None, HOMES, "frame_map"))
    assert "frame-level mAP" in frame and "8.00 (7.00–9.50)" in frame and "ridge" not in frame
    # a home whose runs are all missing takes its probe's band
    only_probe = yardstick_notes({}, probes_of(root), ["home2"])
    assert "Home-2 40.00 (35.00–45.00)" in only_probe[0]
    assert yardstick_notes({}, None, HOMES) == []


def test_markdown_writer(tmp_path, fabricated):
    _, _, metrics = fabricated
    wide = lay.table1_wide(tb.table1_long(metrics, *T1, seed=0), *COLS)
    lay.write_markdown(wide, tmp_path / "t.md", "Table 1. x", ["note one"])
    text = (tmp_path / "t.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "## Table 1. x" and lines[-1] == "- note one"
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + 14 and all(ln.count("|") == 9 for ln in table)


def test_runs_without_test_frame_labels_are_not_missing_in_the_frame_table():
    """Weak labels only: a run's frame_map is None with n_frame_labelled 0; the frame table then
    says why, not that the run is missing."""
    metrics = {"h/multiasl/teacher": {"map": 50.0, "frame_map": None, "n_frame_labelled": 0},
               "h/multiasl/student-sequence-seed0": {"map": 40.0, "frame_map": None},
               "h/multiasl/cokd-sequence-seed0": None}
    runs = list(metrics)
    assert tb.without_frame_labels(metrics, runs) == ["h/multiasl/teacher"]
    assert tb.missing_runs(metrics, runs, "frame_map") == runs
