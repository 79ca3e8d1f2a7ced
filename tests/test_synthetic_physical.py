"""The generator's physical settings (synthetic.homes): defaults that leave the default homes as
they were, shared random streams, and what each setting does to the geometry and the pixels."""

from __future__ import annotations

import dataclasses
import math

import h5py
import numpy as np
import pytest
import yaml

from vicokd.config import check_config
from vicokd.errors import VicokdError
from vicokd.synthetic.layout import Camera, Occluder, Physical, build_home
from vicokd.synthetic.render import (Outfit, lighting, noise_bank, occluder_rects,
                                     paint_occluders, render_view, view_geometry)
from vicokd.synthetic.stats import co_visibility
from vicokd.synthetic.synthesize import SyntheticConfig, generate_home, sequence_visibility

from conftest import REPO

CLASSES = yaml.safe_load((REPO / "config.yaml").read_text())["dataset"]["classes"]
TINY = {"seed": 3, "sequences": 2, "duration": [3, 4], "fps": 25, "size": 64,
        "views": {"home1": 3, "home2": 2}, "workers": 1}
# every key of a synthetic.homes block at its default, written out
DEFAULT_BLOCK = {"streams": None, "doorway": 0.9, "aim": 0.0, "corner": "drawn", "offset": 0.0,
                 "occluders": 0, "fov": [58.0, 68.0], "light": [0.65, 1.15], "noise": 3.0}


def _generate(root, env, section):
    home = root / env
    generate_home(env, section, CLASSES, home / "annotations.json", home / "boxes.h5",
                  home / "synthetic_stats.json", home / "videos", workers=1)
    return home


def _contents(home):
    with h5py.File(home / "boxes.h5", "r") as f:
        boxes = {k: f[k]["boxes"][()] for k in f}
    videos = {p.name: p.read_bytes() for p in sorted((home / "videos").glob("*.mp4"))}
    return ((home / "annotations.json").read_text(), (home / "synthetic_stats.json").read_text(),
            boxes, videos)


def test_a_block_at_its_defaults_makes_the_same_files_as_no_block(tmp_path):
    plain = _contents(_generate(tmp_path / "a", "home1", TINY))
    block = _contents(_generate(tmp_path / "b", "home1", {**TINY, "homes": {"home1": DEFAULT_BLOCK}}))
    assert plain[0] == block[0] and plain[1] == block[1]
    assert all(np.array_equal(plain[2][k], block[2][k], equal_nan=True) for k in plain[2])
    assert plain[3] == block[3]                       # the mp4 files, byte for byte


def test_the_schema_fills_a_block_with_exactly_those_defaults():
    config = {"dataset": {"format": "synthetic", "root": "r", "annotations": {"home1": "a"},
                          "classes": ["Walk"]},
              "synthetic": {"homes": {"x": {"views": 3, "layout": "open"}}}}
    check_config(config)
    filled = config["synthetic"]["homes"]["x"]
    assert {k: filled[k] for k in DEFAULT_BLOCK} == DEFAULT_BLOCK
    assert filled["views"] == 3 and filled["layout"] == "open"


def test_homes_sharing_streams_share_their_scripts():
    section = {**TINY, "homes": {"s1": {"views": 3, "layout": "rooms", "streams": "shared"},
                                 "s2": {"views": 3, "layout": "rooms", "streams": "shared"},
                                 "s3": {"views": 3, "layout": "rooms"}}}
    cfg = SyntheticConfig.from_section(section)
    vis = {env: sequence_visibility(cfg, env, 0, CLASSES) for env in ("s1", "s2", "s3")}
    assert np.array_equal(vis["s1"], vis["s2"])
    assert vis["s1"].shape != vis["s3"].shape or not np.array_equal(vis["s1"], vis["s3"])


def test_block_values_override_the_section_and_bad_values_are_one_line_errors():
    cfg = SyntheticConfig.from_section({**TINY, "homes": {"x": {"views": 4, "layout": "rooms",
                                                                "sequences": 5,
                                                                "duration": [2, 3]}}})
    home = cfg.home("x")
    assert (home.views, home.layout, home.sequences, home.duration) == (4, "rooms", 5, (2.0, 3.0))
    assert cfg.home("home1").sequences == TINY["sequences"]
    with pytest.raises(VicokdError, match=r"synthetic.homes.x.fov: a field of view must be below 180"):
        SyntheticConfig.from_section({**TINY, "homes": {"x": {"views": 2, "layout": "open",
                                                              "fov": [60, 190]}}})
    with pytest.raises(VicokdError, match=r"synthetic.homes.x.light: expected 0 < min <= max"):
        SyntheticConfig.from_section({**TINY, "homes": {"x": {"views": 2, "layout": "open",
                                                              "light": [1.0, 0.5]}}})
    with pytest.raises(VicokdError, match=r"synthetic.views: no camera count for home 'y'"):
        SyntheticConfig.from_section({**TINY, "homes": {"y": {"layout": "open"}}})


def test_an_unknown_key_in_a_block_is_rejected_by_the_schema():
    config = {"dataset": {"format": "synthetic", "root": "r", "annotations": {"home1": "a"},
                          "classes": ["Walk"]},
              "synthetic": {"homes": {"x": {"doorways": 2.0}}}}
    with pytest.raises(VicokdError, match=r"unknown config key 'synthetic.homes.x.doorways'"):
        check_config(config)


# ------------------------------------------------------------------------------- the layout

def _physical(**over):
    return Physical(**{**vars(Physical.from_block({})), **over})


def _home(style="rooms", views=4, seed=5, **over):
    return build_home("h", style, views, np.random.default_rng(seed), _physical(**over),
                      np.random.default_rng(seed + 1))


def test_wider_doorways_leave_less_wall_and_a_wall_long_opening_removes_it():
    narrow, wide, gone = _home(doorway=0.9), _home(doorway=2.0), _home(doorway=10.0)
    length = lambda h: float(np.hypot(h.walls[:, 2] - h.walls[:, 0], h.walls[:, 3] - h.walls[:, 1]).sum())
    assert length(wide) == pytest.approx(length(narrow) - 3 * 1.1)   # three openings, 1.1 m wider
    assert len(gone.walls) == len(narrow.walls) - 6                     # both parts of 3 inner walls
    # the openings stay where walking goes through them
    assert [o[1:] for o in gone.openings] == [o[1:] for o in narrow.openings]


def test_outer_corners_and_aim():
    home = _home(corner="outer")
    xs = [r[0] for r in home.rooms] + [r[2] for r in home.rooms]
    ys = [r[1] for r in home.rooms] + [r[3] for r in home.rooms]
    for cam in home.cameras:                     # each camera 0.1 m inside a corner of the home
        assert min(abs(cam.pos[0] - min(xs)), abs(cam.pos[0] - max(xs))) == pytest.approx(0.1)
        assert min(abs(cam.pos[1] - min(ys)), abs(cam.pos[1] - max(ys))) == pytest.approx(0.1)
    own, middle = _home(aim=0.0), _home(aim=1.0)
    hx, hy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    for a, b in zip(own.cameras, middle.cameras):
        assert a.pos == b.pos
        to_middle = math.atan2(hy - b.pos[1], hx - b.pos[0])
        # the same random jitter (sd 0.12 rad) on either aim: aim 1 looks at the home's middle
        assert abs(math.remainder(b.yaw - to_middle, 2 * math.pi)) < 0.5


def test_offset_turns_every_camera_by_exactly_that_angle_and_fov_is_drawn_in_range():
    base, turned = _home(style="open"), _home(style="open", offset=20.0)
    for a, b in zip(base.cameras, turned.cameras):
        assert abs(math.remainder(b.yaw - a.yaw, 2 * math.pi)) == pytest.approx(math.radians(20))
    wide = _home(style="open", fov=(90.0, 100.0))
    assert all(90.0 <= c.fov_deg <= 100.0 for c in wide.cameras)


def test_the_settings_never_change_the_draws_of_the_floor_plan():
    base = _home()
    other = _home(occluders=2, offset=10.0)
    assert np.array_equal(base.walls, other.walls)
    assert [s.pos for s in base.spots] == [s.pos for s in other.spots]
    assert all(len(c.occluders) == 2 for c in other.cameras)
    assert all(c.occluders == () for c in base.cameras)


# ------------------------------------------------------------------------------ occlusion

def _actor_at(depth, cam):
    """Joints [1, 16, 3] of a standing body `depth` m along the camera's axis."""
    x = cam.pos[0] + depth * math.cos(cam.yaw)
    y = cam.pos[1] + depth * math.sin(cam.yaw)
    z = np.linspace(0.05, 1.75, 16)
    return np.stack([np.full(16, x), np.full(16, y), z], axis=1)[None]


def test_furniture_hides_what_is_behind_it_from_the_mask_and_the_pixels():
    home = _home(style="open", views=1)
    home.walls = np.zeros((0, 4))
    cam = home.cameras[0]
    size = 64
    green = (10.0, 200.0, 10.0)
    # a piece 1.5 m ahead, wide and high enough to cover all but the top of the frame
    big = Camera(cam.pos, cam.yaw, cam.fov_deg, cam.room, (Occluder(1.5, 0.0, 4.0, 1.9, green),))
    far = Camera(cam.pos, cam.yaw, cam.fov_deg, cam.room, (Occluder(4.0, 0.0, 4.0, 1.9, green),))
    ball = np.array([[100.0, 100.0]])
    bare = view_geometry(home, cam, _actor_at(3.0, cam), ball, size)
    behind = view_geometry(home, big, _actor_at(3.0, big), ball, size)
    assert bare.visible[0]
    assert not behind.visible[0]                 # most of the body hidden: not visible
    assert view_geometry(home, far, _actor_at(3.0, far), ball, size).visible[0]   # in front
    # pixels: the piece is in the background; nothing behind it is drawn over it
    background = paint_occluders(np.full((size, size, 3), 128.0, np.float32), big)
    x0, y0, x1, y1, _ = occluder_rects(big, size)[0]
    top = y0 + max(1, (y1 - y0) // 10)          # below its lighter top edge
    assert (background[top:y1, x0:x1] == green).all() and y1 - top > size // 3
    outfit = Outfit(*(np.array(c, float) for c in ([250, 0, 0], [0, 0, 250], [250, 250, 0],
                                                   [0, 0, 0])))
    kwargs = dict(ball_roll=np.zeros(1), ball_colours=np.zeros((2, 3)), background=background,
                  noise=np.zeros((5, size, size, 3), np.int16), fps=25.0, size=size,
                  light=(1.0, 1.0))

    def draw(geo, occluders):
        return render_view(geo, outfit, rng=np.random.default_rng(0), occluders=occluders,
                           **kwargs)[0]

    empty = draw(dataclasses.replace(behind, actor_drawn=np.zeros(1, bool)), [])
    hidden = draw(behind, occluder_rects(big, size))
    drawn_over = draw(bare, [])
    region = (slice(y0, y1), slice(x0, x1))
    assert np.array_equal(hidden[region], empty[region])
    assert not np.array_equal(drawn_over[region], empty[region])


def test_light_range_and_noise_level():
    gains = [lighting(np.random.default_rng(k), 50, 25.0, (0.2, 0.3))[0] for k in range(20)]
    levels = np.array([g.mean() for g in gains])
    # a level drawn in [0.2, 0.3], a drift of 5 % and now and then a lamp (x 0.75 or 1.25)
    assert levels.min() > 0.2 * 0.75 * 0.95 and levels.max() < 0.3 * 1.25 * 1.05
    quiet = noise_bank(np.random.default_rng(0), 32, 3.0).std()
    loud = noise_bank(np.random.default_rng(0), 32, 9.0).std()
    assert loud == pytest.approx(3 * quiet, rel=0.05)


def test_doorway_width_sweeps_co_visibility_in_the_study_layout():
    """The study's co-visibility sweep: outer corners, openings from narrow to most of a wall
    (geometry only, a few sequences): co-visibility rises with the opening."""
    block = {"views": 4, "layout": "rooms", "corner": "outer", "streams": "study",
             "duration": [10, 20]}
    homes = {f"d{w}": {**block, "doorway": w} for w in (0.6, 1.9, 3.0)}
    cfg = SyntheticConfig.from_section({**TINY, "homes": homes})
    cov = [co_visibility([sequence_visibility(cfg, env, i, CLASSES) for i in range(24)])
           for env in homes]
    assert cov[0] < cov[1] < cov[2]
    assert cov[2] - cov[0] > 0.3


def test_study_config_is_a_valid_config_whose_homes_all_resolve():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    study = yaml.safe_load((REPO / "config" / "study.yaml").read_text())
    for key, value in study.items():
        config[key] = {**config.get(key, {}), **value}
    check_config(config)
    cfg = SyntheticConfig.from_section(config["synthetic"])
    homes = set(config["study"]["covisibility"]) | set(config["study"]["disparity"])
    assert homes <= set(config["synthetic"]["homes"])
    assert {cfg.home(h).streams for h in homes} == {"study"}
    assert all(cfg.home(h).views == 4 for h in homes)
    # it adds homes and the study's grid only: no setting of the default homes changes
    assert set(study) == {"synthetic", "study"} and set(study["synthetic"]) == {"homes"}
    assert not {"home1", "home2"} & set(study["synthetic"]["homes"])
