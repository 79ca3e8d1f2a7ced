"""The `split` stage: the train/test split of one home.

With `split.files` naming the home's official split files (MultiSensor-Home ships
train.json / test.json or train_data.json / test_data.json, entries in the annotations' format;
MM-Office's split_train.txt / split_test.txt, as the MultiASL authors publish them, list one
clip id a line: a file whose name ends in `.txt` is read so), their sequence ids make the
halves: an id that is not in the home's annotations, or that appears twice (in one file or in
both), is a one-line error; a sequence in neither file is left out with a warning.
Otherwise a 7:3 split by iterative-stratification's MultilabelStratifiedShuffleSplit on the
sequence labels, so every class keeps about the same share in both halves (Sechidis et al., as
the paper does).
"""

from __future__ import annotations

import logging

import numpy as np

from ..config import fill
from ..errors import VicokdError
from ..storage import open_h5, read_json, write_json
from .annotations import is_id_list, read_annotations, read_id_list
from .labels import has_frame_labels

log = logging.getLogger(__name__)


def stratified_split(ids: list[str], labels: np.ndarray, test_size: float, seed: int) -> tuple[list[str], list[str]]:
    """Split sequence ids by their label rows `[S, C]`; returns (train ids, test ids), each in input order."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    if len(ids) < 2:
        raise VicokdError(f"need at least 2 sequences to split, found {len(ids)}")
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train_idx, test_idx = next(splitter.split(np.zeros((len(ids), 1)), labels))
    return [ids[i] for i in sorted(train_idx)], [ids[i] for i in sorted(test_idx)]


def official_split(ids: list[str], files: dict, fmt: str, classes: list[str],
                   view_pattern: str | None = None) -> tuple[list[str], list[str]]:
    """(train ids, test ids), each in the order of `ids`, from the official split files
    {"train": path, "test": path} of a home whose sequences are `ids`."""
    known = set(ids)
    halves: dict[str, set] = {}
    where: dict[str, str] = {}
    for half in ("train", "test"):
        path = files[half]
        members = set()
        # a repeated id is a one-line error of either reader
        listed = read_id_list(path) if is_id_list(path) else \
            [seq.id for seq in read_annotations(path, fmt, classes, view_pattern)]
        for seq_id in listed:
            if seq_id not in known:
                raise VicokdError(f"{path}: sequence '{seq_id}' is not in this home's annotations")
            if seq_id in where:
                raise VicokdError(f"{path}: sequence '{seq_id}' is also in the {where[seq_id]} "
                                  "file")
            where[seq_id] = half
            members.add(seq_id)
        halves[half] = members
    left = [i for i in ids if i not in where]
    if left:
        log.warning("split: %d sequence(s) of the annotations are in neither split file and are "
                    "left out: %s", len(left), ", ".join(left[:10]) + (" ..." if len(left) > 10 else ""))
    return [i for i in ids if i in halves["train"]], [i for i in ids if i in halves["test"]]


def split_home(labels_path, out_path, split: dict, files: dict | None = None,
               fmt: str = "multisensor_home", view_pattern: str | None = None) -> dict:
    """split.json of one home: by the official `files` ({"train", "test"} paths) when given,
    else by iterative stratification."""
    split = fill("split", split)
    with open_h5(labels_path, "labels") as f:
        classes = [str(c) for c in f.attrs["classes"]]
        ids = sorted(f.keys())
        y = np.stack([f[i]["sequence_labels"][()] for i in ids]) if ids else np.zeros((0, len(classes)))
        framed = {i for i in ids if has_frame_labels(f[i])}
    if files:
        train, test = official_split(ids, files, fmt, classes, view_pattern)
        for half, members in (("train", train), ("test", test)):
            if not members:
                raise VicokdError(f"{files[half]}: the official {half} split names no sequence")
    else:
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
              "classes": classes, "class_counts": counts,
              # sequences with frame labels (the others have sequence labels only)
              "frame_labelled": {"train": sum(i in framed for i in train),
                                 "test": sum(i in framed for i in test)},
              "source": "official files" if files else "iterative stratification",
              "files": {k: str(v) for k, v in files.items()} if files else None}
    write_json(out_path, result)
    log.info("split: %d train, %d test sequences", len(train), len(test))
    return result


def main(snakemake) -> None:
    inp = snakemake.input
    files = snakemake.params.files     # the official split files (a missing one: one line)
    fmt = read_json(inp.manifest).get("format", "multisensor_home")
    split_home(inp.labels, snakemake.output[0], snakemake.params.split, files, fmt,
               snakemake.params.dataset.get("view_pattern"))
