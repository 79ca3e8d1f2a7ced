"""The `synthesize` rule: one synthetic home, every sequence (in parallel), then the annotation
file, the true boxes and the measured statistics.

Randomness: one SeedSequence per home for its fixed parts (floor plan, backgrounds, noise,
ringtone) and one per sequence, both derived from `synthetic.seed` and the home's name, so a
sequence's content depends on the seed, the home and its index only, never on which worker
made it or in what order.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import default, fill, typed
from ..errors import VicokdError
from ..storage import atomic_h5, write_dataset, write_json
from .encode import write_mp4
from .layout import Home, Physical, build_home, walls_crossed
from .plan import KNOWN_CLASSES, plan_sequence
from .render import (BALL_RADIUS, camera_background, noise_bank, occluder_rects, paint_occluders,
                     random_outfit, render_view, skeleton, view_geometry)
from .sound import microphone, synthesize_tracks
from .stats import compute_stats

log = logging.getLogger("vicokd.synthetic")

@dataclass(frozen=True)
class SyntheticConfig:
    """The `synthetic:` config section (see workflow/schemas/config.schema.yaml)."""

    seed: int = default("synthetic.seed")
    sequences: int = default("synthetic.sequences")
    duration: tuple[float, float] = tuple(default("synthetic.duration"))
    fps: float = default("synthetic.fps")
    size: int = default("synthetic.size")
    views: dict = field(default_factory=lambda: default("synthetic.views"))
    workers: int = default("synthetic.workers")
    layout: dict = field(default_factory=lambda: default("synthetic.layout"))
    crf: int = default("synthetic.crf")
    preset: str = default("synthetic.preset")
    homes: dict = field(default_factory=lambda: default("synthetic.homes"))

    @classmethod
    def from_section(cls, section: dict) -> "SyntheticConfig":
        cfg = typed(cls, section)
        lo, hi = _range(cfg.duration, "synthetic.duration")
        if cfg.size % 2 or cfg.size < 32:
            raise VicokdError(f"config synthetic.size: {cfg.size} must be even and >= 32 (H.264 yuv420p)")
        cfg = dataclasses.replace(cfg, duration=(lo, hi))
        for env in cfg.homes:
            cfg.home(env)                  # a bad block fails here, before any work
        return cfg

    def home(self, env: str) -> "HomeSettings":
        """The settings home `env` is generated with: its `synthetic.homes` block over the
        section's values (views, layout, sequences, duration) and the blocks' defaults."""
        block = fill("synthetic", {"homes": {env: dict(self.homes.get(env) or {})}})["homes"][env]
        where = f"synthetic.homes.{env}"
        views = block.get("views", self.views.get(env))
        if views is None:
            raise VicokdError(f"config synthetic.views: no camera count for home '{env}'")
        style = block.get("layout", self.layout.get(env, default("synthetic.layout").get(env)))
        if style is None:
            raise VicokdError(f"config synthetic.layout: no layout (rooms | open) for home '{env}'")
        duration = _range(block["duration"], f"{where}.duration") if "duration" in block \
            else self.duration
        fov = _range(block["fov"], f"{where}.fov")
        if fov[1] >= 180:
            raise VicokdError(f"config {where}.fov: a field of view must be below 180 degrees, got {fov[1]}")
        return HomeSettings(
            views=int(views), layout=str(style),
            sequences=int(block.get("sequences", self.sequences)), duration=duration,
            streams=str(block["streams"] or env), physical=Physical.from_block(block),
            light=_range(block["light"], f"{where}.light"), noise=float(block["noise"]))


@dataclass(frozen=True)
class HomeSettings:
    """What one home is generated with (SyntheticConfig.home)."""

    views: int
    layout: str
    sequences: int
    duration: tuple[float, float]
    streams: str                   # the name its random streams derive from
    physical: Physical             # doorways, camera aim, turn, field of view, furniture
    light: tuple[float, float]     # range of a camera's light level in a sequence
    noise: float                   # sensor noise, grey levels


def _range(values, key: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in values)
    if not 0 < lo <= hi:
        raise VicokdError(f"config {key}: expected 0 < min <= max, got {list(values)}")
    return lo, hi


def home_seed(seed: int, env: str) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(env.encode()), 0))


def sequence_seed(seed: int, env: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(env.encode()), 1, index))


@dataclass
class HomeAssets:
    """The fixed parts of a home: plan, per-camera backgrounds and noise, microphone noise."""

    home: Home
    backgrounds: list[np.ndarray]
    noises: list[np.ndarray]
    mic_noise: list[float]
    ring: tuple[float, float]


def home_assets(cfg: SyntheticConfig, env: str) -> HomeAssets:
    settings = cfg.home(env)
    ss = home_seed(cfg.seed, settings.streams)
    # a fifth stream for what the physical settings add, so the first four draw the same
    plan_ss, bg_ss, noise_ss, mic_ss, extra_ss = ss.spawn(5)
    home = build_home(env, settings.layout, settings.views, np.random.default_rng(plan_ss),
                      settings.physical, np.random.default_rng(extra_ss))
    bg_rng, noise_rng, mic_rng = (np.random.default_rng(s) for s in (bg_ss, noise_ss, mic_ss))
    backgrounds = [paint_occluders(camera_background(cam, cfg.size, bg_rng), cam)
                   for cam in home.cameras]
    noises = [noise_bank(noise_rng, cfg.size, settings.noise) for _ in home.cameras]
    mic_noise = [float(mic_rng.uniform(0.004, 0.012)) for _ in home.cameras]
    ring = (float(mic_rng.uniform(850, 1150)), float(mic_rng.uniform(1300, 1700)))
    return HomeAssets(home, backgrounds, noises, mic_noise, ring)


def ball_path(home: Home, rng: np.random.Generator, frames: int, fps: float):
    """The rolling ball: floor positions [F, 2] and its roll angle [F]."""
    duration = frames / fps
    times, points = [0.0], [np.array(home.random_floor_point(rng))]
    t = 0.0
    while t < duration:
        pts = home.path(tuple(points[-1]), home.random_floor_point(rng))
        speed = rng.uniform(0.3, 0.9)
        for a, b in zip(pts[:-1], pts[1:]):
            t += float(np.hypot(*(b - a))) / speed
            times.append(t)
            points.append(b)
        t += float(rng.uniform(0.0, 2.5))                   # a pause
        times.append(t)
        points.append(points[-1])
    times, points = np.array(times), np.array(points)
    ft = np.arange(frames) / fps
    xy = np.stack([np.interp(ft, times, points[:, 0]), np.interp(ft, times, points[:, 1])], axis=1)
    step = np.concatenate([[0.0], np.hypot(*np.diff(xy, axis=0).T)])
    return xy, np.cumsum(step) / BALL_RADIUS


# Worker state: the home's assets are made once per process (deterministically from the seed).
_ASSETS: dict = {}


def _assets(cfg: SyntheticConfig, env: str) -> HomeAssets:
    key = (repr(cfg), env)
    if key not in _ASSETS:
        _ASSETS.clear()
        _ASSETS[key] = home_assets(cfg, env)
    return _ASSETS[key]


def make_sequence(job: tuple) -> dict:
    """Generate sequence `index` of home `env`: write its mp4 files, return labels and boxes."""
    cfg, env, index, classes, video_dir = job
    assets = _assets(cfg, env)
    home = assets.home
    settings = cfg.home(env)
    seq_id = f"{env}_s{index:03d}"
    plan_ss, render_ss, sound_ss, ball_ss = sequence_seed(cfg.seed, settings.streams,
                                                          index).spawn(4)
    plan_rng = np.random.default_rng(plan_ss)
    duration = float(plan_rng.uniform(*settings.duration))
    plan = plan_sequence(home, plan_rng, duration, cfg.fps, classes, index)
    joints = skeleton(plan)
    render_rng = np.random.default_rng(render_ss)
    outfit = random_outfit(render_rng)
    ball_rng = np.random.default_rng(ball_ss)
    ball_xy, ball_roll = ball_path(home, ball_rng, plan.frames, cfg.fps)
    hue = ball_rng.random()
    ball_colours = np.array([_hsv(hue, 0.9, 0.95), _hsv(hue + 0.5, 0.6, 0.98)])
    sound_rng = np.random.default_rng(sound_ss)
    actor, phone = synthesize_tracks(plan, sound_rng, assets.ring)
    boxes, visible, object_boxes = [], [], []
    for k, cam in enumerate(home.cameras):
        geo = view_geometry(home, cam, joints, ball_xy, cfg.size)
        video = render_view(geo, outfit, ball_roll, ball_colours, assets.backgrounds[k],
                            assets.noises[k], render_rng, cfg.fps, cfg.size, settings.light,
                            occluder_rects(cam, cfg.size))
        phone_walls = int(walls_crossed(home.walls, np.array([home.phone]), cam.pos)[0])
        phone_dist = float(np.hypot(home.phone[0] - cam.pos[0], home.phone[1] - cam.pos[1]))
        audio = microphone(actor, phone, cfg.fps, geo.distance, geo.walls, phone_dist,
                           phone_walls, sound_rng, assets.mic_noise[k])
        write_mp4(Path(video_dir) / f"{seq_id}_cam{k + 1}.mp4", video, cfg.fps, audio,
                  crf=cfg.crf, preset=cfg.preset)
        boxes.append(geo.boxes)
        visible.append(geo.visible)
        object_boxes.append(geo.object_boxes)
    return {"id": seq_id, "views": len(home.cameras), "duration": plan.duration,
            "frames": plan.frames, "tricks": plan.tricks, "boxes": np.stack(boxes),
            "visible": np.stack(visible), "object_boxes": np.stack(object_boxes)}


def sequence_visibility(cfg: SyntheticConfig, env: str, index: int,
                        classes: list[str]) -> np.ndarray:
    """bool [V, F]: the actor's visibility in sequence `index`, from geometry alone (no pixels,
    no files); the same as the `visible` that generating the sequence writes."""
    assets = _assets(cfg, env)
    settings = cfg.home(env)
    plan_ss, _, _, ball_ss = sequence_seed(cfg.seed, settings.streams, index).spawn(4)
    plan_rng = np.random.default_rng(plan_ss)
    duration = float(plan_rng.uniform(*settings.duration))
    plan = plan_sequence(assets.home, plan_rng, duration, cfg.fps, classes, index)
    joints = skeleton(plan)
    ball_xy, _ = ball_path(assets.home, np.random.default_rng(ball_ss), plan.frames, cfg.fps)
    return np.stack([view_geometry(assets.home, cam, joints, ball_xy, cfg.size).visible
                     for cam in assets.home.cameras])


def _hsv(h, s, v):
    import colorsys
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255


def generate_home(env: str, section: dict, classes: list[str], annotations: str | Path,
                  boxes: str | Path, stats: str | Path, videos: str | Path,
                  workers: int | None = None) -> dict:
    """Generate home `env` into the four outputs of the `synthesize` rule; return the stats."""
    cfg = SyntheticConfig.from_section(section)
    unknown = [c for c in classes if c not in KNOWN_CLASSES]
    if unknown:
        raise VicokdError(f"config dataset.classes: the synthetic generator cannot make "
                          f"{', '.join(map(repr, unknown))} (it knows {', '.join(KNOWN_CLASSES)})")
    assets = _assets(cfg, env)        # config faults surface here, before any work
    videos = Path(videos)
    # Videos go to a temporary folder renamed into place at the end: no partial output.
    tmp = videos.with_name(f".{videos.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    workers = max(1, int(workers or cfg.workers))
    jobs = [(cfg, env, i, list(classes), str(tmp)) for i in range(cfg.home(env).sequences)]
    start = time.perf_counter()
    try:
        results = _run(jobs, workers)
        root_rel = videos.parent.name                 # video paths are relative to dataset.root
        entries = []
        for r in results:
            entry = {"id": r["id"]}
            for k in range(r["views"]):
                entry[f"video_url_{k + 1}"] = f"{root_rel}/{videos.name}/{r['id']}_cam{k + 1}.mp4"
            entry["tricks"] = [{"labels": t["labels"], "start": t["start"], "end": t["end"]}
                               for t in r["tricks"]]
            entries.append(entry)
        with atomic_h5(boxes, kind="synthetic_boxes", config=section) as f:
            f.attrs["home"] = env
            f.attrs["layout"] = assets.home.style
            for r in results:
                g = f.create_group(r["id"])
                g.attrs["fps"] = float(cfg.fps)
                g.attrs["duration"] = float(r["duration"])
                write_dataset(g, "boxes", r["boxes"], ("V", "F", "xyxy"))
                write_dataset(g, "visible", r["visible"], ("V", "F"))
                write_dataset(g, "object_boxes", r["object_boxes"], ("V", "F", "xyxy"))
        summary = compute_stats(entries, [r["visible"] for r in results], cfg.fps, classes,
                                subtle=[[t["subtle"] for t in r["tricks"]] for r in results],
                                object_visible=[~np.isnan(r["object_boxes"][..., 0]) for r in results])
        summary = {"home": env, "layout": assets.home.style, **summary}
        write_json(stats, summary)
        write_json(annotations, entries)
        if videos.exists():
            shutil.rmtree(videos)
        os.replace(tmp, videos)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: %d sequences, %d views, in %.1f s (co-visibility %.3f)", env, len(entries),
             summary["views"], time.perf_counter() - start, summary["co_visibility"])
    return summary


def _run(jobs: list, workers: int) -> list[dict]:
    if workers == 1 or len(jobs) == 1:
        return [make_sequence(j) for j in jobs]
    # fork: the workers inherit the imported modules; one encoder thread each.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(workers, len(jobs))) as pool:
        return list(pool.imap(make_sequence, jobs, chunksize=1))


def main(snakemake) -> None:
    """Entry of the `synthesize` rule."""
    out = snakemake.output
    generate_home(snakemake.wildcards.env, dict(snakemake.params.synthetic),
                  list(snakemake.params.classes), out.annotations, out.boxes, out.stats,
                  out.videos, workers=snakemake.threads)
