"""A training run's four outputs in its folder results/{env}/{backbone}/{run}/: model.pt,
curve.csv (one row per epoch), metrics.json (test mAP, frame mAP, random-score chance...) and predictions.h5
(the test sequences' scores), written by one function for every run, and the checkpoint path
beside them (see docs/model.md and docs/distillation.md).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import SequenceDataset
from ..metrics import AUTHORS_SCORING, evaluation_summary
from ..models import save_model
from ..storage import atomic_h5, atomic_path, write_dataset, write_json
from ..train import CURVE_COLUMNS, FitResult


@dataclass
class RunOutputs:
    model: str
    curve: str
    metrics: str
    predictions: str

    @classmethod
    def of(cls, output) -> "RunOutputs":
        """The named outputs of a training rule (run_outputs in workflow/rules/common.smk)."""
        return cls(model=output.model, curve=output.curve, metrics=output.metrics,
                   predictions=output.predictions)


def checkpoint_path(model_out: str | Path) -> Path:
    """results/{env}/{backbone}/{run}/model.pt -> results/checkpoints/{env}/{backbone}/{run}/last.pt
    (outside the declared outputs, which Snakemake deletes before a job starts)."""
    p = Path(model_out)
    run, backbone, env, results = p.parent.name, p.parents[1].name, p.parents[2].name, p.parents[3]
    return results / "checkpoints" / env / backbone / run / "last.pt"


def write_curve(path, curve: list[dict]) -> None:
    """curve.csv: CURVE_COLUMNS, then the per-term columns the rows carry (sorted)."""
    extra = sorted({k for row in curve for k in row} - set(CURVE_COLUMNS))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=[*CURVE_COLUMNS, *extra], extrasaction="ignore")
            w.writeheader()
            for row in curve:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def write_predictions(path, test_set: SequenceDataset, pred: dict, config: dict) -> None:
    """predictions.h5: per test sequence the sigmoid scores of the sequence and of every decoded
    frame (frame_index = 0 .. L-1)."""
    with atomic_h5(path, kind="predictions", config=config,
                   classes=np.array(test_set.classes, dtype=object)) as f:
        for i, info in enumerate(test_set.sequences):
            g = f.create_group(info.seq_id)
            write_dataset(g, "sequence_scores", pred["sequence_scores"][i].astype(np.float32), ("C",))
            write_dataset(g, "frame_scores", pred["frame_scores"][i].astype(np.float32), ("L", "C"))
            write_dataset(g, "view_frame_scores", pred["view_frame_scores"][i].astype(np.float32),
                          ("N", "L", "C"))
            write_dataset(g, "frame_index", pred["frame_index"][i].astype(np.int64), ("L",))
            # weak labels: a sequence without frame labels is left out of frame_map
            g.attrs["has_frame_labels"] = bool(getattr(info, "has_frame_labels", True))


# The random-score chance, its band and the prevalence of the test split, sequence and frame level
# (vicokd.metrics.yardsticks).
YARDSTICK_KEYS = ("chance", "chance_band", "prevalence",
                  "frame_chance", "frame_chance_band", "frame_prevalence")


# The authors' model selection, reported beside ours (never in its place).
BEST_EPOCH_PROTOCOL = ("the authors' protocol: the epoch with the best test mAP, chosen on the "
                       "test split itself (they have no validation set), the mAP scored as their "
                       "code scores the backbone (best_epoch_scoring: MultiTSF a softmax over the "
                       "classes, MultiASL a sigmoid); optimistic, for comparing with published "
                       "figures only; `map` is the last epoch's, sigmoid-scored")


def best_epoch(curve: list[dict], backbone: str = "") -> dict:
    """The epoch of `curve` with the highest test mAP as the authors score it (the row's
    `authors_map`; `test_map` in curves that predate it), the first of equals, and its figures,
    as the flat metrics.json keys best_epoch_map, best_epoch_frame_map, best_epoch,
    best_epoch_scoring (None: no curve)."""
    key = "authors_map" if curve and all("authors_map" in r for r in curve) else "test_map"
    rows = [r for r in curve if r.get(key) is not None and np.isfinite(r[key])]
    scoring = AUTHORS_SCORING.get(backbone, "sigmoid") if key == "authors_map" else "sigmoid"
    if not rows:
        return {"best_epoch_map": None, "best_epoch_frame_map": None, "best_epoch": None,
                "best_epoch_scoring": scoring}
    best = max(rows, key=lambda r: r[key])
    frame = best.get("test_frame_map")
    return {"best_epoch_map": best[key],
            "best_epoch_frame_map": frame if frame is not None and np.isfinite(frame) else None,
            "best_epoch": int(best["epoch"]), "best_epoch_scoring": scoring}


def metrics_of(result: FitResult, test_set: SequenceDataset, epochs: int,
               backbone: str = "") -> dict:
    pred = result.predictions
    summary = evaluation_summary(pred["sequence_labels"], pred["sequence_scores"],
                                 pred["frame_labels"], pred["frame_scores"], test_set.classes,
                                 labelled=pred.get("has_frame_labels"))
    yardsticks = {k: summary.get(k) for k in YARDSTICK_KEYS}
    return {"map": summary["map"], "frame_map": summary.get("frame_map"),
            "per_class_ap": summary["per_class_ap"], **yardsticks,
            # test sequences with frame labels: frame_map is over their frames only
            "n_frame_labelled": summary.get("n_frame_labelled"),
            **best_epoch(result.curve, backbone), "best_epoch_protocol": BEST_EPOCH_PROTOCOL,
            "epochs": epochs,
            "seconds": round(result.seconds, 3), "n_test": len(test_set),
            "resumed_from_epoch": result.resumed_from}


def write_outputs(outputs: RunOutputs, model, result: FitResult, test_set: SequenceDataset,
                  config: dict, epochs: int, extra_metrics: dict | None = None) -> dict:
    """Write a trained run's four outputs (each atomically), then delete its checkpoint: the
    outputs are complete, so a later rerun (changed inputs) trains afresh. `config` is the run's
    config (its sections, backbone, method...); returns the metrics written."""
    metrics = {**(extra_metrics or {}),
               **metrics_of(result, test_set, epochs, config.get("backbone", ""))}
    write_predictions(outputs.predictions, test_set, result.predictions, config)
    write_curve(outputs.curve, result.curve)
    save_model(outputs.model, model.cpu(), {"classes": test_set.classes,
                                            "backbone": config["backbone"],
                                            "metrics": metrics, "run_config": config,
                                            "data": {"views": test_set.views, **test_set.decode}})
    write_json(outputs.metrics, metrics)
    checkpoint_path(outputs.model).unlink(missing_ok=True)
    return metrics
