"""Figure 4 (vicokd.report.figure4), the timelines (report/timelines.py) and their section of the
report, on fabricated homes with untrained MultiASL runs (tests/figure4_fixtures.py)."""

from __future__ import annotations

import copy
import json

import h5py
import matplotlib.image as mpimg
import numpy as np
import pytest

import browser
from conftest import require
from figure4_fixtures import fabricate_figure4_home
from report_fixtures import EXPERIMENTS, HOMES, all_runs, fabricate, fabricate_benchmarks
from test_page import REPO, check_page, tables_from
from fake_artifacts import tiny_model_section
from vicokd.config import check_config
from vicokd.errors import VicokdError
from vicokd.experiments import FIGURE4_MEASURED, FIGURE4_SHOWN
from vicokd.report import claims as cl
from vicokd.report import evidence_share as es
from vicokd.report import figure4 as f4
from vicokd.report import page as pg
from vicokd.report import tables as tb
from vicokd.report.runtimes import collect_benchmarks
from vicokd.report.figure4_page import read_figure4
from vicokd.report.timelines import chosen_sequences, read_timelines, write_timelines
from vicokd.saliency import HomeInputs


# --- the written rule -------------------------------------------------------------------------------

def test_the_class_is_the_largest_teacher_student_gap_and_the_frame_follows_the_rule():
    labels = {"a": np.array([[1, 0], [1, 1], [0, 1]]), "b": np.array([[0, 1], [1, 0]])}
    teacher = {"a": np.array([[.9, .1], [.8, .2], [.1, .3]]), "b": np.array([[.2, .1], [.9, .9]])}
    student = {"a": np.array([[.1, .1], [.9, .2], [.2, .3]]), "b": np.array([[.9, .1], [.1, .9]])}
    cls, gap, level = f4.choose_class(labels, teacher, student, ["a", "b"])
    assert cls == 0 and gap[0] > 0 and gap[0] > gap[1] and level == "frame"
    # sequence labels only (no frame labelled): the sequence-level gap decides
    seq = ({"a": np.array([0, 1]), "b": np.array([1, 1])}, {"a": np.array([.2, .9]),
           "b": np.array([.9, .2])}, {"a": np.array([.9, .9]), "b": np.array([.1, .2])})
    none = {k: np.zeros_like(v) for k, v in labels.items()}
    cls, gap, level = f4.choose_class(none, teacher, student, ["a", "b"], seq)
    assert (cls, level) == (0, "sequence") and gap[1] == 0
    visible = {"a": np.array([[1, 1, 0], [0, 1, 1]], bool), "b": np.array([[1, 1], [1, 1]], bool)}
    # labelled frames of class 0: a/0 (1 view), a/1 (2 views), b/1 (2 views, larger margin)
    assert f4.choose_frame(0, ["a", "b"], labels, visible, teacher, student) == ("b", 1)
    teacher["b"][1, 0] = 0.0                     # margin -0.1, as a/1's: the first of equals
    assert f4.choose_frame(0, ["a", "b"], labels, visible, teacher, student) == ("a", 1)
    with pytest.raises(VicokdError, match="no class"):
        f4.choose_class({"a": np.zeros((3, 2))}, teacher, student, ["a"])


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    sums, counts = np.array([3.0, 1.0, 0.0, 2.0]), np.array([4.0, 2.0, 0.0, 4.0])
    lo, hi = es.bootstrap_interval(sums, counts)
    assert (lo, hi) == es.bootstrap_interval(sums, counts)          # deterministic
    assert lo <= 6 / 10 <= hi and lo > 0                            # the empty sequence adds nothing
    assert np.isnan(es.bootstrap_interval(np.zeros(2), np.zeros(2))[0])
    assert np.isnan(es.bootstrap_interval(np.array([3.0, 0.0]), np.array([4.0, 0.0]))[1])  # one


# --- one home, end to end -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    root = tmp_path_factory.mktemp("figure4")
    return root, {env: fabricate_figure4_home(root, env, seed=i, views=3 - i, n_seq=6)
                  for i, env in enumerate(HOMES)}


def run_home(root, env, files, box_kind="true", boxes=None):
    inputs = HomeInputs(frames=files["frames"], features=files.get("features"),
                        encoders=files.get("encoders"), audio=files.get("audio"))
    out = root / "out" / env
    return f4.figure4_home(env, files["runs"], inputs, files["labels"], files["split"],
                           boxes or files["boxes"], box_kind, out / "figure4.png",
                           out / "figure4.json"), out


def true_box_area_shares(files) -> list[float]:
    """The uniform map's share computed another way: the true box's area over the frame's."""
    split = json.loads(open(files["split"]).read())
    shares = []
    with h5py.File(files["boxes"]) as f:
        for sid in split["test"]:
            b, vis = f[sid]["boxes"][()], f[sid]["visible"][()]
            shares += list(((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]))[vis])
    return shares


def test_figure4_home_draws_and_measures_every_model(homes):
    root, files = homes
    result, out = run_home(root, "home1", files["home1"])
    img = mpimg.imread(out / "figure4.png")
    assert img.shape[0] > 400 and img[..., :3].std() > 0.05
    saved = json.loads((out / "figure4.json").read_text())
    assert saved["choice"] == json.loads(json.dumps(result["choice"]))
    assert set(saved["measurement"]) == set(FIGURE4_MEASURED)
    assert set(saved["choice"]["score"]) == set(FIGURE4_SHOWN)
    expected = true_box_area_shares(files["home1"])
    n_test = len(json.loads(open(files["home1"]["split"]).read())["test"])
    for name, m in saved["measurement"].items():
        assert m["view_frames"] == len(expected) > 0
        assert m["sequences"] == n_test - 1                     # nobody is seen in seq000
        assert m["uniform_share"] == pytest.approx(np.mean(expected))
        assert 0 <= m["share_in_box"] <= 1
        lo, hi = m["share_in_box_ci95"]
        assert lo <= m["share_in_box"] <= hi
        assert 0 <= m["empty_maps"] <= m["view_frames"]
        assert m["uniform_share"] <= m["best_patch_share"] <= 1
        assert 0 <= m["peak_in_box_chance"] <= 1 and 0 <= m["peak_in_box"] <= 1
    d = {(x["metric"], *x["models"]): x for x in saved["differences"]}
    for key in ("share_in_box", "peak_in_box"):
        assert d[(key, "vicokd", "student")]["difference"] == pytest.approx(
            saved["measurement"]["vicokd"][key] - saved["measurement"]["student"][key])
    assert saved["choice"]["class"] == f"Act{saved['choice']['class_index']}"   # labels.h5's name
    again, _ = run_home(root, "home1", files["home1"])          # deterministic
    assert again["measurement"] == result["measurement"] and again["choice"] == result["choice"]


def test_figure4_home_reads_the_detectors_boxes_on_real_data(homes, tmp_path):
    root, files = homes
    home = files["home2"]
    masks = tmp_path / "masks.h5"
    with h5py.File(home["masks"]) as src, h5py.File(masks, "w") as dst:
        dst.attrs.update(src.attrs)
        for sid in src:
            g = dst.create_group(sid)
            mask = src[sid]["mask"][()]
            v, length = mask.shape
            boxes = np.full((v, length, 2, 4), np.nan, np.float32)
            boxes[mask, 0] = [0.0, 0.0, 16.0, 32.0]                   # the left half
            g.create_dataset("mask", data=mask)
            g.create_dataset("boxes", data=boxes)
            g.create_dataset("scores", data=np.where(mask, 0.9, np.nan)[..., None].repeat(2, -1))
    result, _ = run_home(root, "home2", home, box_kind="masks", boxes=str(masks))
    m = result["measurement"]["teacher"]
    assert m["uniform_share"] == pytest.approx(0.5) and m["view_frames"] > 0
    with pytest.raises(VicokdError, match="box source"):
        run_home(root, "home2", home, box_kind="yolo")


def test_figure4_home_with_finetuned_encoders(tmp_path):
    section = tiny_model_section(image_size=16, patch_size=4, audio_encoder="mlp", frames=6)
    files = fabricate_figure4_home(tmp_path, "home1", section, views=2, n_seq=4)
    assert "features" not in files
    result, out = run_home(tmp_path, "home1", files)
    assert (out / "figure4.png").stat().st_size > 0
    assert result["grid"] == 4 and result["measurement"]["teacher"]["view_frames"] > 0


@pytest.fixture(scope="module")
def report_with_figure4(homes, tmp_path_factory):
    """Both homes' figures combined, the first test sequence of each as a timeline, and the
    report page built with them (over fabricated metrics for the tables)."""
    root, files = homes
    tmp = tmp_path_factory.mktemp("report")
    pngs, jsons = [], []
    for env in HOMES:
        _, out = run_home(root, env, files[env])
        pngs.append(out / "figure4.png")
        jsons.append(out / "figure4.json")
    both = f4.combine(pngs, jsons, tmp / "figure4.png", tmp / "figure4.json")
    timelines = {env: {"split": files[env]["split"], "labels": files[env]["labels"],
                       "masks": files[env]["masks"],
                       "predictions": {n: files[env]["runs"][n]["predictions"] for n in FIGURE4_SHOWN}}
                 for env in HOMES}
    index = write_timelines(tmp / "timelines", 1, timelines, 2.5)
    fabricate(tmp)
    fabricate_benchmarks(tmp)
    metrics = tb.load_metrics(tmp / "results" / f"{e}/{b}/{r}" / "metrics.json"
                              for e, b, r in all_runs())
    probes = tb.load_probes(tmp / "results" / env / "probe.json" for env in HOMES)
    png = pngs[0].read_bytes()                                      # any PNG will do for Figure 3
    page = pg.build_report(tables_from(metrics, probes, tmp), {"figure3": png, "figure3_frame": png},
                           cl.read_reference(REPO / "workflow" / "reference" / "paper_multisensor_home.csv"),
                           EXPERIMENTS, "synthetic", 0, {"experiments": EXPERIMENTS},
                           collect_benchmarks(tmp / "benchmarks" / "results"),
                           read_figure4(tmp / "figure4.png", tmp / "figure4.json", tmp / "timelines"))
    (tmp / "report.html").write_text(page)
    return {"root": tmp, "combined": both, "pngs": pngs, "index": index, "page": page}


def test_figure4_combines_the_homes_and_the_report_shows_it(report_with_figure4):
    r = report_with_figure4
    assert list(r["combined"]["homes"]) == HOMES
    wide = mpimg.imread(r["root"] / "figure4.png")
    assert wide.shape[1] > sum(mpimg.imread(p).shape[1] for p in r["pngs"]) - 1
    assert [e["home"] for e in r["index"]] == HOMES
    page = r["page"]
    checker = check_page(page, images=2 + 1 + len(r["index"]))
    assert {"figure4-share", "figure4-differences"} <= checker.tables
    assert 'id="figure4"' in page and f'id="timeline-{r["index"][0]["sequence"]}"' in page
    assert "Uniform map" in page and "ViCoKD − Student" in page
    # without Figure 4 (an older caller) the page has no such section
    assert pg.build_report(tables_from({}, {}, r["root"] / "empty"), {}, cl.read_reference(
        REPO / "workflow" / "reference" / "paper_multisensor_home.csv"), EXPERIMENTS,
        "synthetic", 0, {}, collect_benchmarks(r["root"] / "nowhere")).count("Figure 4") == 0


def test_the_report_with_figure4_renders_in_headless_chromium(report_with_figure4, tmp_path):
    require(browser.missing())
    r = report_with_figure4
    seen, console = browser.render(r["root"] / "report.html", tmp_path)
    assert not console, console
    tables = {t["id"]: t for t in seen["tables"]}
    for tid in ("figure4-share", "figure4-differences"):
        assert tables[tid]["rows"] > 2 and tables[tid]["shown"] > 0
    assert len(seen["images"]) == 2 + 1 + len(r["index"])
    assert all(img["loaded"] and img["shown"] > 0 and img["width"] > 100 for img in seen["images"])


# --- the timelines ---------------------------------------------------------------------------------------

def test_timelines_take_a_count_per_home_or_ids_of_test_sequences():
    tests = {"home1": ["h1a", "h1b", "h1c"], "home2": ["h2a"]}
    assert chosen_sequences(2, tests) == [("home1", "h1a"), ("home1", "h1b"), ("home2", "h2a")]
    assert chosen_sequences(0, tests) == []
    assert chosen_sequences(["h2a", "h1c", "h2a"], tests) == [("home2", "h2a"), ("home1", "h1c")]
    with pytest.raises(VicokdError, match="'nope' is not a test sequence of any home"):
        chosen_sequences(["h1a", "nope"], tests)
    with pytest.raises(VicokdError, match="report.timelines"):
        chosen_sequences("h1a", tests)


def test_timelines_draw_each_sequence_and_list_them(homes, tmp_path):
    root, files = homes
    env = "home1"
    sid = json.loads(open(files[env]["split"]).read())["test"][-1]
    home = {env: {"split": files[env]["split"], "labels": files[env]["labels"],
                  "masks": files[env]["masks"],
                  "predictions": {n: files[env]["runs"][n]["predictions"] for n in FIGURE4_SHOWN}}}
    index = write_timelines(tmp_path / "tl", [sid], home, 2.5)
    assert [e["sequence"] for e in index] == [sid] and index[0]["classes"]
    (entry, png), = read_timelines(tmp_path / "tl")
    assert entry["png"] == f"{sid}.png" and png[:4] == b"\x89PNG"
    assert mpimg.imread(tmp_path / "tl" / f"{sid}.png").shape[0] > 300
    # written whole: a second call replaces the folder, a failing one leaves the old in place
    write_timelines(tmp_path / "tl", 0, home, 2.5)
    assert json.loads((tmp_path / "tl" / "index.json").read_text()) == []
    with pytest.raises(VicokdError):
        write_timelines(tmp_path / "tl", ["nope"], home, 2.5)
    assert (tmp_path / "tl" / "index.json").exists() and not list(tmp_path.glob(".tl.tmp*"))


def test_report_timelines_config_key():
    base = {"dataset": {"format": "synthetic", "root": "r", "annotations": {"home1": "a.json"},
                        "classes": ["A"]}}
    assert check_config(copy.deepcopy(base))["report"]["timelines"] == 2
    for value in (0, ["home1_s004", "home2_s001"]):
        assert check_config({**copy.deepcopy(base), "report": {"timelines": value}})["report"]["timelines"] == value
    for value in (-1, "home1_s004", []):
        with pytest.raises(VicokdError, match="report.timelines"):
            check_config({**copy.deepcopy(base), "report": {"timelines": value}})


def test_figure4_runs_are_multiasl_teacher_and_the_students_at_the_table_seed():
    from vicokd.experiments import figure4_runs, figure4_supervision

    assert figure4_runs("home2", ["frame", "sequence"], 0) == {
        "teacher": "home2/multiasl/teacher", "student": "home2/multiasl/student-frame-seed0",
        "cokd": "home2/multiasl/cokd-frame-seed0", "vicokd": "home2/multiasl/vicokd-frame-seed0"}
    assert figure4_supervision(["sequence"]) == "sequence"
