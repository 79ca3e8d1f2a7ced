"""Small fabricated homes for the masks tests: frames.h5, boxes.h5 and split.json in the
layouts of the data stages, drawn with numpy (a person-like figure and a moving square)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from vicokd.storage import atomic_h5, write_dataset


def draw_person(img: np.ndarray, x: int, y: int, w: int, h: int, color) -> None:
    """A head over a torso, filling the box (x, y, w, h)."""
    head = max(2, h // 4)
    cx = x + w // 2
    img[y + head:y + h, x:x + w] = color
    yy, xx = np.ogrid[:img.shape[0], :img.shape[1]]
    r = head / 2
    img[(yy - (y + r)) ** 2 + (xx - cx) ** 2 <= r * r] = color


def fabricate_home(root: Path, n_seq: int = 6, views: int = 2, frames: int = 10, size: int = 64,
                   source_fps: float = 25.0, decode_fps: float = 2.5, seed: int = 0) -> dict:
    """Write frames.h5, boxes.h5 and split.json under `root`; returns their paths."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = {"frames": root / "frames.h5", "boxes": root / "boxes.h5", "split": root / "split.json"}
    n_src = int(frames / decode_fps * source_fps) + 1
    ids = [f"seq{i:02d}" for i in range(n_seq)]
    with atomic_h5(paths["frames"], "frames", config={"fps": decode_fps, "size": size}) as ff, \
            h5py.File(paths["boxes"], "w") as bf:
        for sid in ids:
            video = np.empty((views, frames, size, size, 3), dtype=np.uint8)
            boxes = np.full((views, n_src, 4), np.nan, dtype=np.float32)
            visible = np.zeros((views, n_src), dtype=bool)
            for v in range(views):
                bg = rng.integers(60, 200, size=3)
                for t in range(frames):
                    img = np.empty((size, size, 3), dtype=np.uint8)
                    img[:] = bg
                    img[:] = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
                    # a moving square that is not a person
                    s = size // 6
                    ox = int(rng.integers(0, size - s))
                    img[2:2 + s, ox:ox + s] = (230, 40, 40)
                    src = min(int(round(t / decode_fps * source_fps)), n_src - 1)
                    if rng.random() < 0.6:
                        h = int(rng.integers(size // 3, size // 2))
                        w = max(3, h // 3)
                        x = int(rng.integers(0, size - w))
                        y = int(rng.integers(size // 4, size - h))
                        draw_person(img, x, y, w, h, (20, 20, 90))
                        boxes[v, src] = np.array([x, y, x + w, y + h], np.float32) / size
                        visible[v, src] = True
                    video[v, t] = img
            g = ff.create_group(sid)
            write_dataset(g, "frames", video, ("V", "T", "H", "W", "C"))
            bg_ = bf.create_group(sid)
            bg_.create_dataset("boxes", data=boxes)
            bg_.create_dataset("visible", data=visible)
            bg_.attrs["fps"] = source_fps
    n_test = max(1, n_seq // 3)
    paths["split"].write_text(json.dumps({"train": ids[n_test:], "test": ids[:n_test]}))
    return paths
