"""Annotation readers: MultiSensor-Home JSON and ActivityNet-style JSON, to one form.

Both give a list of `SequenceAnnotation`: the sequence id, its view files (relative to the
dataset root) and its labelled segments. The synthetic generator writes the MultiSensor-Home
format, so real and embedded data take the same path from here on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VicokdError
from ..storage import read_json


@dataclass(frozen=True)
class Segment:
    label: str
    start: float
    end: float


@dataclass
class SequenceAnnotation:
    id: str
    views: list[str]                      # file paths relative to the dataset root, in view order
    segments: list[Segment] = field(default_factory=list)
    view_names: list[str] = field(default_factory=list)


def read_annotations(path: str | Path, fmt: str, classes: list[str],
                     view_pattern: str | None = None) -> list[SequenceAnnotation]:
    """Read one home's annotation file in format `fmt` and check its labels against `classes`."""
    path = Path(path)
    data = read_json(path)
    if fmt in ("multisensor_home", "synthetic"):
        sequences = _read_multisensor_home(path, data)
    elif fmt == "activitynet":
        sequences = _read_activitynet(path, data, view_pattern or r"^(?P<seq>.+)_(?P<view>[^_]+)$")
    else:
        raise VicokdError(f"{path}: unknown annotation format '{fmt}'")
    known = set(classes)
    ids = set()
    for seq in sequences:
        if seq.id in ids:
            raise VicokdError(f"{path}: sequence id '{seq.id}' appears twice")
        ids.add(seq.id)
        for seg in seq.segments:
            if seg.label not in known:
                raise VicokdError(f"{path}: sequence '{seq.id}' has label '{seg.label}', "
                                  f"which is not in dataset.classes")
    if not sequences:
        raise VicokdError(f"{path}: no sequences in the annotation file")
    return sequences


def read_annotation_files(paths, fmt: str, classes: list[str],
                          view_pattern: str | None = None) -> list[SequenceAnnotation]:
    """One home's annotations from one file or a list of files (e.g. the published
    train_data.json and test_data.json), in order; an id in two files is an error."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out, seen = [], {}
    for path in paths:
        for seq in read_annotations(path, fmt, classes, view_pattern):
            if seq.id in seen:
                raise VicokdError(f"{path}: sequence id '{seq.id}' is also in {seen[seq.id]}")
            seen[seq.id] = path
            out.append(seq)
    return out


def _number(path: Path, where: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise VicokdError(f"{path}: {where} is not a number ({value!r})") from None
    if x != x:
        raise VicokdError(f"{path}: {where} is NaN")
    return x


def _segment(path: Path, where: str, label, start, end) -> Segment:
    if not isinstance(label, str):
        raise VicokdError(f"{path}: {where} label is not a string ({label!r})")
    s, e = _number(path, f"{where} start", start), _number(path, f"{where} end", end)
    if s < 0 or e < s:
        raise VicokdError(f"{path}: {where} has start {s} and end {e} (need 0 <= start <= end)")
    return Segment(label, s, e)


def _view_key(key: str) -> int | None:
    m = re.fullmatch(r"video_url_(\d+)", key)
    return int(m.group(1)) if m else None


def _read_multisensor_home(path: Path, data) -> list[SequenceAnnotation]:
    """A JSON list; each entry has video_url_1..N and `tricks` [{labels: [name], start, end}]."""
    if not isinstance(data, list):
        raise VicokdError(f"{path}: malformed MultiSensor-Home annotations (expected a JSON list of sequences)")
    out = []
    for k, entry in enumerate(data):
        where = f"entry {k}"
        if not isinstance(entry, dict):
            raise VicokdError(f"{path}: malformed annotations, {where} is not an object")
        views = sorted((n, v) for key, v in entry.items() if (n := _view_key(key)) is not None)
        if not views:
            raise VicokdError(f"{path}: malformed annotations, {where} has no video_url_N field")
        if any(not isinstance(v, str) or not v for _, v in views):
            raise VicokdError(f"{path}: malformed annotations, {where} has an empty or non-string video_url")
        seq_id = str(entry.get("id") or Path(views[0][1]).stem)
        tricks = entry.get("tricks", [])
        if not isinstance(tricks, list):
            raise VicokdError(f"{path}: malformed annotations, {where} 'tricks' is not a list")
        segments = []
        for j, trick in enumerate(tricks):
            if not isinstance(trick, dict) or "labels" not in trick:
                raise VicokdError(f"{path}: malformed annotations, {where} trick {j} has no 'labels'")
            labels = trick["labels"] if isinstance(trick["labels"], list) else [trick["labels"]]
            for label in labels:
                segments.append(_segment(path, f"sequence '{seq_id}' trick {j}", label,
                                         trick.get("start"), trick.get("end")))
        out.append(SequenceAnnotation(seq_id, [v for _, v in views], segments, [str(n) for n, _ in views]))
    return out


def _view_file(path: Path, item_id: str, item: dict) -> str:
    """The file of one ActivityNet-style item: its `path` or `video`, else `{id}.mp4`."""
    for key in ("path", "video"):
        if key in item and item[key] is not None:
            if not isinstance(item[key], str) or not item[key].strip():
                raise VicokdError(f"{path}: malformed annotations, '{item_id}' {key} is not a file "
                                  f"name ({item[key]!r})")
            return item[key]
    return f"{item_id}.mp4"


def _read_activitynet(path: Path, data, view_pattern: str) -> list[SequenceAnnotation]:
    """`{"database": {id: {"subset", "annotations": [{"segment": [s, e], "label"}]}}}`, views grouped by id."""
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise VicokdError(f"{path}: malformed ActivityNet-style annotations (expected a 'database' object)")
    pattern = re.compile(view_pattern)
    grouped: dict[str, dict[str, tuple[str, dict]]] = {}
    for item_id, item in data["database"].items():
        m = pattern.match(item_id)
        if not m or "seq" not in m.groupdict() or "view" not in m.groupdict():
            raise VicokdError(f"{path}: id '{item_id}' does not match dataset.view_pattern '{view_pattern}'")
        if not isinstance(item, dict):
            raise VicokdError(f"{path}: malformed annotations, '{item_id}' is not an object")
        grouped.setdefault(m.group("seq"), {})[m.group("view")] = (item_id, item)
    out = []
    for seq_id in sorted(grouped):
        views = grouped[seq_id]
        names = sorted(views)
        segments: dict[tuple, Segment] = {}
        files = []
        for name in names:
            item_id, item = views[name]
            files.append(_view_file(path, item_id, item))
            anns = item.get("annotations", [])
            if not isinstance(anns, list):
                raise VicokdError(f"{path}: malformed annotations, '{item_id}' annotations is not a list")
            for j, ann in enumerate(anns):
                seg = ann.get("segment") if isinstance(ann, dict) else None
                if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                    raise VicokdError(f"{path}: malformed annotations, '{item_id}' annotation {j} has no "
                                      f"[start, end] segment")
                s = _segment(path, f"'{item_id}' annotation {j}", ann.get("label"), seg[0], seg[1])
                segments[(s.label, s.start, s.end)] = s  # the views of one sequence share its labels
        out.append(SequenceAnnotation(seq_id, files, list(segments.values()), names))
    return out
