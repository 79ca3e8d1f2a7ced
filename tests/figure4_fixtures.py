"""A fabricated home with the runs Figure 4 reads: frames, audio, labels, masks, split
(fake_artifacts.make_home), the frozen encoders' features.h5 and encoders/ (the real features
stage), the generator's boxes.h5 layout, and model.pt + predictions.h5 of untrained (seeded)
MultiASL models: the teacher and each student of experiments.FIGURE4_MEASURED."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from fake_artifacts import make_home, tiny_model_section
from vicokd.data.dataset import DataFiles, model_input_sizes, split_datasets
from vicokd.experiments import FIGURE4_MEASURED, TEACHER, figure4_runs
from vicokd.model_configs import model_config
from vicokd.models import build_model, save_model
from vicokd.runs.features import write_features
from vicokd.runs.outputs import write_predictions
from vicokd.train import predict

FEATURES = {"components": 12, "seed": 0, "batch_size": 64}


def write_true_boxes(path: Path, frames_h5: str, seed: int = 0) -> None:
    """boxes.h5 as the generator writes it (boxes normalised xyxy, visible, attribute fps), here
    at the decode rate: a box in about two thirds of the view-frames, none in the first
    sequence (a test sequence where nobody is seen)."""
    rng = np.random.default_rng(seed)
    with h5py.File(frames_h5) as fr, h5py.File(path, "w") as f:
        for i, sid in enumerate(sorted(fr)):
            v, length = fr[sid]["frames"].shape[:2]
            visible = (rng.random((v, length)) < 0.7) & (i > 0)
            x0, y0 = rng.uniform(0, 0.6, (2, v, length))
            w, h = rng.uniform(0.15, 0.4, (2, v, length))
            boxes = np.stack([x0, y0, x0 + w, y0 + h], -1).astype(np.float32)
            boxes[~visible] = np.nan
            g = f.create_group(sid)
            g.create_dataset("boxes", data=boxes)
            g.create_dataset("visible", data=visible)
            g.attrs["fps"] = float(fr.attrs.get("fps", 2.5))


def frozen_section(**over) -> dict:
    return tiny_model_section(**{"encoders": "frozen", "features": dict(FEATURES), "frames": 6,
                                 "image_size": 16, "patch_size": 4, "audio_encoder": "mlp", **over})


def fabricate_figure4_home(root: Path, env: str, section: dict | None = None, seed: int = 0,
                           supervisions=("frame",), run_seed: int = 0, **home) -> dict:
    """Everything figure4_home reads for one home, under root/results/{env}/ and the true boxes
    under root/resources/synthetic/{env}/boxes.h5 (the embedded default's place). Returns the
    paths (and "runs": model name -> {"model", "predictions"})."""
    section = section or frozen_section()
    data = root / "results" / env
    files = make_home(data, seed=seed, **{"size": 32, "lengths": (7, 12), **home})
    with h5py.File(files.frames, "a") as f:
        f.attrs["fps"], f.attrs["size"] = 2.5, 32
    boxes = root / "resources" / "synthetic" / env / "boxes.h5"
    boxes.parent.mkdir(parents=True, exist_ok=True)
    write_true_boxes(boxes, files.frames, seed)
    out = {"frames": files.frames, "labels": files.labels, "masks": files.masks,
           "split": files.split, "audio": files.audio, "boxes": str(boxes)}
    if section["encoders"] == "frozen":
        out["features"] = str(data / "features.h5")
        out["encoders"] = str(data / "encoders")
        write_features(files.frames, files.audio, files.split, out["features"], out["encoders"],
                       section)
        model_files = DataFiles(frames=out["features"], audio=out["features"], labels=files.labels,
                                split=files.split, masks=files.masks)
    else:
        model_files = files
    _, test_set = split_datasets(model_files, section, 0)
    runs = {}
    for i, (name, rid) in enumerate(figure4_runs(env, supervisions, run_seed).items()):
        audio = name == TEACHER
        sizes = model_input_sizes(test_set, section, audio=True)
        torch.manual_seed(seed * 100 + i)                 # untrained, but each model its own
        model = build_model(model_config(section, "multiasl", test_set.num_classes, audio=audio,
                                         **sizes))
        run_dir = root / "results" / rid
        run = {"model": str(run_dir / "model.pt"), "predictions": str(run_dir / "predictions.h5")}
        pred = predict(model, test_set)
        write_predictions(run["predictions"], test_set, pred, {"backbone": "multiasl"})
        save_model(run["model"], model, {"classes": test_set.classes, "backbone": "multiasl",
                                         "run_config": {"model": section, "backbone": "multiasl"}})
        runs[name] = run
    test_set.close()
    out["runs"] = runs
    assert list(runs) == list(FIGURE4_MEASURED)
    return out
