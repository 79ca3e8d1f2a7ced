"""The `split` stage: a 7:3 train/test split of one home by iterative stratification.

Uses iterative-stratification's MultilabelStratifiedShuffleSplit on the sequence labels, so
every class keeps about the same share in both halves (Sechidis et al., as the paper does).
"""

from __future__ import annotations

import logging

import numpy as np

from ..config import fill
from ..errors import VicokdError
from ..storage import open_h5, write_json

log = logging.getLogger(__name__)


def stratified_split(ids: list[str], labels: np.ndarray, test_size: float, seed: int) -> tuple[list[str], list[str]]:
    """Split sequence ids by their label rows `[S, C]`; returns (train ids, test ids), each in input order."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    if len(ids) < 2:
        raise VicokdError(f"need at least 2 sequences to split, found {len(ids)}")
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train_idx, test_idx = next(splitter.split(np.zeros((len(ids), 1)), labels))
    return [ids[i] for i in sorted(train_idx)], [ids[i] for i in sorted(test_idx)]


def split_home(labels_path, out_path, split: dict) -> dict:
    split = fill("split", split)
    with open_h5(labels_path, "labels") as f:
        classes = [str(c) for c in f.attrs["classes"]]
        ids = sorted(f.keys())
        y = np.stack([f[i]["sequence_labels"][()] for i in ids]) if ids else np.zeros((0, len(classes)))
    train, test = stratified_split(ids, y, float(split["test_size"]), int(split["seed"]))
    rows = {i: r for i, r in zip(ids, y)}
    counts = {half: {c: int(sum(rows[i][k] for i in members)) for k, c in enumerate(classes)}
              for half, members in (("train", train), ("test", test))}
    for c in classes:
        log.info("class %-12s train %3d  test %3d", c, counts["train"][c], counts["test"][c])
    empty = [f"{c} ({half})" for half in ("train", "test") for c in classes
             if counts[half][c] == 0 and (counts["train"][c] + counts["test"][c]) > 0]
    if empty and not split["allow_empty_class"]:
        raise VicokdError(f"{labels_path}: the split leaves classes without a sequence: {', '.join(empty)} "
                          f"(set split.allow_empty_class: true to accept)")
    for e in empty:
        log.warning("class %s has no sequence in that half", e)
    result = {"train": train, "test": test, "test_size": split["test_size"], "seed": split["seed"],
              "classes": classes, "class_counts": counts}
    write_json(out_path, result)
    log.info("split: %d train, %d test sequences", len(train), len(test))
    return result


def main(snakemake) -> None:
    split_home(snakemake.input.labels, snakemake.output[0], snakemake.params.split)
