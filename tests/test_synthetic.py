"""The synthetic homes: files decode, generation is deterministic, labels/boxes/stats are right."""

from __future__ import annotations

import json
from pathlib import Path

import decord
import h5py
import numpy as np
import pytest
import yaml

from vicokd.errors import VicokdError
from vicokd.synthetic.plan import CLEAR, KNOWN_CLASSES, SUBTLE, plan_sequence
from vicokd.synthetic.stats import co_visibility, compute_stats
from vicokd.synthetic.synthesize import (SyntheticConfig, generate_home, home_assets,
                                         sequence_visibility)

from conftest import REPO, TINY_CONFIG, prepare_workdir, run_snakemake

CLASSES = yaml.safe_load((REPO / "config.yaml").read_text())["dataset"]["classes"]
TINY = {"seed": 3, "sequences": 3, "duration": [3, 4], "fps": 25, "size": 64,
        "views": {"home1": 3, "home2": 2}, "workers": 2}


def _generate(root: Path, env: str, section: dict, workers=None):
    home = root / env
    stats = generate_home(env, section, CLASSES, home / "annotations.json", home / "boxes.h5",
                          home / "synthetic_stats.json", home / "videos", workers=workers)
    return home, stats


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    home, _ = _generate(root, "home1", TINY)
    return root, home


def _read(home: Path):
    annotations = json.loads((home / "annotations.json").read_text())
    with h5py.File(home / "boxes.h5", "r") as f:
        boxes = {k: {n: f[k][n][()] for n in ("boxes", "visible", "object_boxes")}
                 | {"fps": f[k].attrs["fps"]} for k in f}
        kind = f.attrs["kind"]
    stats = json.loads((home / "synthetic_stats.json").read_text())
    return annotations, boxes, stats, kind


def test_videos_decode_with_the_expected_frames_size_and_audio(tiny_home):
    root, home = tiny_home
    annotations, boxes, _, _ = _read(home)
    assert len(annotations) == TINY["sequences"]
    for entry in annotations:
        urls = [entry[f"video_url_{k}"] for k in range(1, 4)]
        assert f"video_url_4" not in entry
        frames = boxes[entry["id"]]["boxes"].shape[1]
        for url in urls:
            assert url.startswith("home1/videos/") and url.endswith(".mp4")
            path = root / url
            vr = decord.VideoReader(str(path))
            assert len(vr) == frames
            assert vr[0].shape == (64, 64, 3)
            assert vr.get_avg_fps() == pytest.approx(25)
            ar = decord.AudioReader(str(path), sample_rate=16000, mono=True)
            expected = frames / 25 * 16000
            # AAC works in 1024-sample frames: the track may end up to one frame long
            assert expected <= ar.shape[1] <= expected + 1024, (ar.shape, expected)
            assert np.abs(ar[:].asnumpy()).max() > 0.001       # not silent


def test_generation_is_deterministic_for_a_seed(tiny_home, tmp_path):
    _, home = tiny_home
    again, _ = _generate(tmp_path, "home1", TINY, workers=1)   # other worker count, same data
    a1, b1, s1, _ = _read(home)
    a2, b2, s2, _ = _read(again)
    assert a1 == a2
    assert s1 == s2
    for key in b1:
        for name in ("boxes", "visible", "object_boxes"):
            np.testing.assert_array_equal(b1[key][name], b2[key][name])
    seq = a1[0]["id"]
    for k in range(1, 4):
        v1 = decord.VideoReader(str(home / "videos" / f"{seq}_cam{k}.mp4"))
        v2 = decord.VideoReader(str(again / "videos" / f"{seq}_cam{k}.mp4"))
        idx = list(range(len(v1)))
        np.testing.assert_array_equal(v1.get_batch(idx).asnumpy(), v2.get_batch(idx).asnumpy())
    other, _ = _generate(tmp_path / "other", "home1", {**TINY, "seed": 4, "sequences": 1})
    a3, _, _, _ = _read(other)
    assert a3[0]["tricks"] != a1[0]["tricks"]


def test_annotations_are_valid_multisensor_home_entries(tiny_home):
    _, home = tiny_home
    annotations, boxes, _, _ = _read(home)
    for entry in annotations:
        duration = boxes[entry["id"]]["boxes"].shape[1] / 25
        assert len(entry["tricks"]) >= 2
        for trick in entry["tricks"]:
            assert set(trick) == {"labels", "start", "end"}
            assert len(trick["labels"]) == 1 and trick["labels"][0] in CLASSES
            assert 0 <= trick["start"] < trick["end"] <= duration + 1e-9


def test_boxes_are_normalised_and_nan_exactly_where_not_visible(tiny_home):
    _, home = tiny_home
    _, boxes, _, kind = _read(home)
    assert kind == "synthetic_boxes"
    seen_any = seen_not = False
    for seq in boxes.values():
        b, vis, ob = seq["boxes"], seq["visible"], seq["object_boxes"]
        assert b.dtype == np.float32 and vis.dtype == bool and ob.dtype == np.float32
        assert b.shape == ob.shape == vis.shape + (4,)
        assert np.array_equal(np.isnan(b).any(-1), ~vis)
        assert np.array_equal(np.isnan(b).all(-1), ~vis)
        inside = b[vis]
        assert (inside >= 0).all() and (inside <= 1).all()
        assert (inside[:, 2] > inside[:, 0]).all() and (inside[:, 3] > inside[:, 1]).all()
        ovis = ~np.isnan(ob[..., 0])
        assert np.array_equal(np.isnan(ob).all(-1), ~ovis)
        assert (ob[ovis] >= 0).all() and (ob[ovis] <= 1).all()
        seen_any |= vis.any()
        seen_not |= (~vis).any()
        assert seq["fps"] == 25
    assert seen_any and seen_not


def test_stats_file_matches_the_data(tiny_home):
    _, home = tiny_home
    annotations, boxes, stats, _ = _read(home)
    visible = [boxes[e["id"]]["visible"] for e in annotations]
    assert stats["co_visibility"] == pytest.approx(co_visibility(visible), abs=1e-4)
    counts = np.concatenate([v.sum(0) for v in visible])
    assert stats["co_visibility"] == pytest.approx((counts >= 2).sum() / (counts >= 1).sum(), abs=1e-4)
    per_view = np.concatenate(visible, axis=1).mean(1)
    assert stats["visibility_per_view"] == pytest.approx(per_view.tolist(), abs=1e-4)
    assert stats["sequences"] == len(annotations) and stats["views"] == 3
    durations = [v.shape[1] / 25 for v in visible]
    assert stats["duration"]["min"] == pytest.approx(min(durations), abs=1e-3)
    assert stats["duration"]["max"] == pytest.approx(max(durations), abs=1e-3)
    assert stats["actions_per_sequence"] == pytest.approx(
        np.mean([len(e["tricks"]) for e in annotations]), abs=1e-3)
    for c in CLASSES:
        has = np.mean([any(c in t["labels"] for t in e["tricks"]) for e in annotations])
        assert stats["prevalence_sequence"][c] == pytest.approx(has, abs=1e-4)
        n = sum(c in t["labels"] for e in annotations for t in e["tricks"])
        assert stats["instances"][c] == n
    for c in SUBTLE:
        if stats["instances"][c]:
            assert stats["subtle_share"][c] == 1.0
    for c in ("Walk", "SitDown", "StandUp", "Vacuum"):
        if stats["instances"][c]:
            assert stats["subtle_share"][c] == 0.0


def test_compute_stats_on_a_hand_made_home():
    entries = [{"id": "a", "tricks": [{"labels": ["Walk"], "start": 0.0, "end": 1.0},
                                      {"labels": ["Cough"], "start": 0.5, "end": 1.5}]}]
    visible = [np.array([[1, 1, 0, 0], [0, 1, 1, 0]], bool)]      # 4 frames at 2 fps
    s = compute_stats(entries, visible, 2.0, ["Walk", "Cough", "Clap"],
                      subtle=[[False, True]])
    assert s["co_visibility"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["visibility_per_view"] == [0.5, 0.5]
    # frame times 0, .5, 1, 1.5: Walk at 0, .5, 1; Cough at .5, 1, 1.5
    assert s["prevalence_frame"] == {"Walk": 0.75, "Cough": 0.75, "Clap": 0.0}
    assert s["labels_per_labelled_frame"] == pytest.approx(6 / 4)
    assert s["subtle_share"] == {"Walk": 0.0, "Cough": 1.0, "Clap": None}
    assert s["unseen_share"]["Cough"] == 0.0


def test_rooms_layout_has_less_co_visibility_than_open_layout():
    # Geometry only (no pixels): the default homes, 24 sequences each.
    cfg = SyntheticConfig.from_section({"seed": 0})
    covis = {}
    for env in ("home1", "home2"):
        vis = [sequence_visibility(cfg, env, i, CLASSES) for i in range(24)]
        covis[env] = co_visibility(vis)
        views_seen = np.concatenate([v.sum(0) for v in vis])
        assert (views_seen == 0).any() and (views_seen >= 2).any()
        # every camera misses the actor at times
        assert all((~v).any() for v in np.concatenate(vis, axis=1))
    assert 0 < covis["home1"] < covis["home2"] - 0.3, covis
    # the same with the tiny test config's camera counts
    small = SyntheticConfig.from_section({"seed": 1, "views": {"home1": 3, "home2": 2}})
    c1 = co_visibility([sequence_visibility(small, "home1", i, CLASSES) for i in range(24)])
    c2 = co_visibility([sequence_visibility(small, "home2", i, CLASSES) for i in range(24)])
    assert 0 < c1 < c2


def test_planner_uses_every_class_and_at_least_two_actions():
    cfg = SyntheticConfig.from_section({"seed": 0})
    home = home_assets(cfg, "home1").home
    used = set()
    for i in range(24):
        rng = np.random.default_rng(i)
        duration = 10 if i % 2 else 3.0      # also very short sequences
        plan = plan_sequence(home, rng, duration, 25, CLASSES, i)
        assert len(plan.tricks) >= 2
        assert plan.frames == round(duration * 25)
        used |= {t["labels"][0] for t in plan.tricks}
    assert used == set(CLASSES) == set(KNOWN_CLASSES)
    assert set(CLEAR) | set(SUBTLE) == set(KNOWN_CLASSES)


def test_30_fps_works(tmp_path):
    home, stats = _generate(tmp_path, "home2", {**TINY, "fps": 30, "sequences": 1,
                                                "duration": [2, 2.5]})
    entry = json.loads((home / "annotations.json").read_text())[0]
    with h5py.File(home / "boxes.h5") as f:
        frames = f[entry["id"]]["boxes"].shape[1]
        assert f[entry["id"]].attrs["fps"] == 30
    for k in (1, 2):
        vr = decord.VideoReader(str(tmp_path / entry[f"video_url_{k}"]))
        assert len(vr) == frames and vr.get_avg_fps() == pytest.approx(30)
        ar = decord.AudioReader(str(tmp_path / entry[f"video_url_{k}"]), sample_rate=16000, mono=True)
        assert abs(ar.shape[1] - frames / 30 * 16000) <= 1024
    assert stats["fps"] == 30


@pytest.mark.parametrize("section,classes,message", [
    ({}, CLASSES + ["Dance"], "cannot make 'Dance'"),
    ({"views": {"home9": 2}}, CLASSES, "no layout"),
    ({"views": {"home1": 2}}, CLASSES, "no camera count for home 'home2'"),
    ({"size": 49}, CLASSES, "must be even"),
    ({"duration": [5, 2]}, CLASSES, "duration"),
])
def test_bad_config_is_one_line_error_and_no_output(tmp_path, section, classes, message):
    env = "home9" if "home9" in section.get("views", {}) else "home2"
    home = tmp_path / env
    with pytest.raises(VicokdError, match=message) as err:
        generate_home(env, {**TINY, **section}, classes, home / "annotations.json",
                      home / "boxes.h5", home / "synthetic_stats.json", home / "videos")
    assert "\n" not in str(err.value)
    assert not home.exists() or not any(home.iterdir())


@pytest.mark.e2e
def test_synthesize_rule_and_the_manifest_on_the_tiny_config(tmp_path):
    # snakemake runs `synthesize` for both homes, then `manifest` reads what it wrote
    work = prepare_workdir(tmp_path)
    run_snakemake(work, "results/home1/manifest.json", "results/home2/manifest.json")
    tiny = yaml.safe_load(TINY_CONFIG.read_text())["synthetic"]
    for env in ("home1", "home2"):
        home = work / "resources" / "synthetic" / env
        annotations = json.loads((home / "annotations.json").read_text())
        assert len(annotations) == tiny["sequences"]
        views = tiny["views"][env]
        assert len(list((home / "videos").glob("*.mp4"))) == tiny["sequences"] * views
        stats = json.loads((home / "synthetic_stats.json").read_text())
        assert stats["views"] == views
        assert (work / "logs" / env / "synthesize.log").exists()
        manifest = json.loads((work / "results" / env / "manifest.json").read_text())
        assert [s["id"] for s in manifest["sequences"]] == [e["id"] for e in annotations]
        with h5py.File(home / "boxes.h5") as f:
            assert json.loads(f.attrs["config"])["seed"] == tiny["seed"]
            for seq in manifest["sequences"]:
                assert len(seq["views"]) == views
                assert seq["frames"] == [f[seq["id"]]["boxes"].shape[1]] * views
                # audio lasts as long as the video (AAC pads by at most one 1024-sample frame)
                for a, v in zip(seq["audio_durations"], seq["video_durations"]):
                    assert v <= a <= v + 1024 / 16000 + 1e-6
