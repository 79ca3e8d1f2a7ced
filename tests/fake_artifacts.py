"""Small fabricated HDF5 artifacts (frames, audio, labels, masks, split) in the layouts of DESIGN.md.

Class c of a sequence is 'visible' as a bright square in the frames where it is active and
'audible' as energy in a band of mel bins, so a model can learn it quickly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vicokd.config import fill

from vicokd.data.dataset import DataFiles
from vicokd.storage import atomic_h5, write_dataset, write_json


def make_home(root: Path, n_seq: int = 8, views: int = 3, lengths=(5, 12), classes: int = 4,
              size: int = 16, seg: int = 8, mel: int = 16, seed: int = 0,
              test_size: float = 0.5, weak=()) -> DataFiles:
    """`weak`: indices of the sequences written with sequence labels only (as the labels stage
    writes a clip without times: frame_labels all 0, has_frame_labels False); their pictures
    and sound still show their classes where the hidden frame labels say."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"seq{i:03d}" for i in range(n_seq)]
    names = [f"Act{c}" for c in range(classes)]
    paths = {k: root / f"{k}.h5" for k in ("frames", "audio", "labels", "masks")}
    with atomic_h5(paths["frames"], "frames") as ff, atomic_h5(paths["audio"], "audio") as fa, \
            atomic_h5(paths["labels"], "labels", classes=names) as fl, \
            atomic_h5(paths["masks"], "masks") as fm:
        fa.attrs["fbank_mean"], fa.attrs["fbank_std"] = 0.0, 1.0
        for i, sid in enumerate(ids):
            length = int(rng.integers(lengths[0], lengths[1] + 1))
            frame_labels = np.zeros((length, classes), np.uint8)
            for c in range(classes):
                if rng.random() < 0.5 or c == i % classes:
                    a = int(rng.integers(0, length))
                    b = int(rng.integers(a, length)) + 1
                    frame_labels[a:b, c] = 1
            frames = rng.integers(0, 40, (views, length, size, size, 3), dtype=np.uint8)
            fbank = rng.normal(0, 0.3, (views, length, seg, mel)).astype(np.float32)
            mask = rng.random((views, length)) < 0.6
            for t in range(length):
                for c in np.flatnonzero(frame_labels[t]):
                    q = size // classes
                    frames[:, t, c * q:(c + 1) * q, :, c % 3] = 250
                    fbank[:, t, :, c * (mel // classes):(c + 1) * (mel // classes)] += 2.0
            g = ff.create_group(sid)
            write_dataset(g, "frames", frames, ("V", "T", "H", "W", "3"))
            write_dataset(fa.create_group(sid), "fbank", fbank.astype(np.float16),
                          ("V", "T", "L", "mel"))
            gl = fl.create_group(sid)
            known = i not in weak
            write_dataset(gl, "frame_labels", frame_labels if known else np.zeros_like(frame_labels),
                          ("T", "C"))
            write_dataset(gl, "sequence_labels", frame_labels.max(0).astype(np.uint8), ("C",))
            gl.attrs["has_frame_labels"] = known
            gm = fm.create_group(sid)
            write_dataset(gm, "mask", mask, ("V", "T"))
            write_dataset(gm, "boxes", np.full((views, length, 1, 4), np.nan, np.float32),
                          ("V", "T", "K", "4"))
            write_dataset(gm, "scores", np.full((views, length, 1), np.nan, np.float32),
                          ("V", "T", "K"))
    n_test = max(1, int(round(n_seq * test_size)))
    write_json(root / "split.json", {"train": ids[n_test:], "test": ids[:n_test]})
    return DataFiles(frames=str(paths["frames"]), audio=str(paths["audio"]),
                     labels=str(paths["labels"]), masks=str(paths["masks"]),
                     split=str(root / "split.json"))


def tiny_model_section(**over) -> dict:
    section = {"encoders": "finetune", "frames": 6, "image_size": 16, "patch_size": 8, "hidden_size": 16,
               "vit": {"layers": 1, "heads": 2, "intermediate_size": 32},
               "ast": {"layers": 1, "heads": 2, "intermediate_size": 32, "patch_size": 8},
               "temporal": {"layers": 1, "heads": 2}, "fusion": {"layers": 1, "heads": 2},
               "dropout": 0.1, "device": "cpu", "bf16": False, "gradient_checkpointing": False}
    section.update(over)
    return fill("model", section)           # complete, as the workflow's config check makes it


def random_person_yolo(folder: Path, name: str = "rand.pt") -> Path:
    """A random-init YOLOv10n checkpoint in `folder` whose class 0 is 'person' (no download,
    no training): what the masks code loads where real weights would be."""
    from vicokd.masks.yolo import prepare_ultralytics
    prepare_ultralytics(folder / ".ultralytics")
    from ultralytics import YOLO
    model = YOLO("yolov10n.yaml")
    model.model.names = {i: ("person" if i == 0 else f"c{i}") for i in range(80)}
    model.save(str(folder / name))
    return folder / name
