"""The `teacher` rule: train the audio-visual teacher of one home and backbone, then write
model.pt, curve.csv, metrics.json and predictions.h5 (see docs/model.md)."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.dataset import DataFiles, SequenceDataset, split_datasets
from .metrics import evaluation_summary
from .models import build_model, model_config, save_model
from .runner import optional_input
from .storage import atomic_h5, atomic_path, write_dataset, write_json
from .distill import supervised_loss_fn
from .train import CURVE_COLUMNS, FitResult, fit, train_config, without_speed_options

log = logging.getLogger("vicokd.teacher")


@dataclass
class RunOutputs:
    model: str
    curve: str
    metrics: str
    predictions: str


def checkpoint_path(model_out: str | Path) -> Path:
    """results/{env}/{backbone}/{run}/model.pt -> results/checkpoints/{env}/{backbone}/{run}/last.pt
    (outside the declared outputs, which Snakemake deletes before a job starts)."""
    p = Path(model_out)
    run, backbone, env, results = p.parent.name, p.parents[1].name, p.parents[2].name, p.parents[3]
    return results / "checkpoints" / env / backbone / run / "last.pt"


datasets = split_datasets             # kept under this name too


def write_curve(path, curve: list[dict]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=CURVE_COLUMNS, extrasaction="ignore")
            w.writeheader()
            for row in curve:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def write_predictions(path, test_set: SequenceDataset, pred: dict, config: dict) -> None:
    """predictions.h5: per test sequence the sigmoid scores and the sampled frame indices."""
    with atomic_h5(path, kind="predictions", config=config,
                   classes=np.array(test_set.classes, dtype=object)) as f:
        for i, info in enumerate(test_set.sequences):
            g = f.create_group(info.seq_id)
            write_dataset(g, "sequence_scores", pred["sequence_scores"][i].astype(np.float32), ("C",))
            write_dataset(g, "frame_scores", pred["frame_scores"][i].astype(np.float32), ("T", "C"))
            write_dataset(g, "view_frame_scores", pred["view_frame_scores"][i].astype(np.float32),
                          ("N", "T", "C"))
            write_dataset(g, "frame_index", pred["frame_index"][i].astype(np.int64), ("T",))


def metrics_of(result: FitResult, test_set: SequenceDataset, epochs: int) -> dict:
    pred = result.predictions
    summary = evaluation_summary(pred["sequence_labels"], pred["sequence_scores"],
                                 pred["frame_labels"], pred["frame_scores"], test_set.classes)
    return {"map": summary["map"], "frame_map": summary.get("frame_map"),
            "per_class_ap": summary["per_class_ap"], "chance": summary["chance"],
            "frame_chance": summary.get("frame_chance"), "epochs": epochs,
            "seconds": round(result.seconds, 3), "n_test": len(test_set),
            "resumed_from_epoch": result.resumed_from}


def train_teacher(files: DataFiles, outputs: RunOutputs, model_section: dict,
                  teacher_section: dict, backbone: str, threads: int = 1,
                  on_epoch_end=None) -> dict:
    """Train one teacher and write its four outputs; returns the metrics."""
    torch.set_num_threads(max(1, int(threads)))
    tcfg = train_config(teacher_section, model_section)
    train_set, test_set = datasets(files, model_section, tcfg.seed,
                                   bool(teacher_section.get("cache", False)))
    mel_bins, audio_length = train_set.audio_shape[1], train_set.audio_shape[0]
    mcfg = model_config(model_section, backbone, train_set.num_classes, audio_length=audio_length,
                        mel_bins=mel_bins, audio=True)
    torch.manual_seed(tcfg.seed)                       # the weights' initialisation
    model = build_model(mcfg)
    loss_fn = supervised_loss_fn(float(teacher_section.get("lambda_seq", 1.0)),
                                 str(teacher_section.get("supervision", "frame")))
    fingerprint = {"model": model_section, "backbone": backbone,
                   "teacher": without_speed_options(teacher_section),
                   "classes": train_set.classes, "audio_shape": list(train_set.audio_shape),
                   "train": train_set.ids, "test": test_set.ids}
    ckpt = checkpoint_path(outputs.model)
    log.info("teacher %s: %d train / %d test sequences, %d views, %d classes, checkpoint %s",
             backbone, len(train_set), len(test_set), train_set.views, train_set.num_classes, ckpt)
    result = fit(model, loss_fn, train_set, test_set, tcfg, ckpt, fingerprint, on_epoch_end)
    metrics = metrics_of(result, test_set, tcfg.epochs)
    config = {"model": model_section, "teacher": teacher_section, "backbone": backbone}
    write_predictions(outputs.predictions, test_set, result.predictions, config)
    write_curve(outputs.curve, result.curve)
    save_model(outputs.model, model.cpu(), {"classes": train_set.classes, "backbone": backbone,
                                            "metrics": metrics, "run_config": config})
    write_json(outputs.metrics, metrics)
    # the outputs are complete: a later rerun (changed inputs) must train afresh
    ckpt.unlink(missing_ok=True)
    log.info("teacher %s: test mAP %.2f (chance %.2f), frame mAP %.2f, %.1fs", backbone,
             metrics["map"] or float("nan"), metrics["chance"] or float("nan"),
             metrics["frame_map"] or float("nan"), metrics["seconds"])
    return metrics


def main(snakemake) -> None:
    inp = snakemake.input
    files = DataFiles(frames=inp.frames, audio=inp.audio, labels=inp.labels, split=inp.split,
                      masks=optional_input(inp, "masks"))
    out = snakemake.output
    outputs = RunOutputs(model=out.model, curve=out.curve, metrics=out.metrics,
                         predictions=out.predictions)
    train_teacher(files, outputs, dict(snakemake.params.model), dict(snakemake.params.teacher),
                  snakemake.wildcards.backbone, snakemake.threads)
