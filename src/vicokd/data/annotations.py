"""Annotation readers: MultiSensor-Home JSON and ActivityNet-style JSON, to one form.

Both give a list of `SequenceAnnotation`: the sequence id, its view files (relative to the
dataset root), its labelled segments and its clip labels (labels given without times). The
synthetic generator writes the MultiSensor-Home format, so real and embedded data take the same
path from here on.

- **Weak labels.** An ActivityNet-style annotation with `"segment": null` (or a MultiSensor-Home
  trick without `start` and `end`) says that the clip shows the class somewhere, not when. Such a
  label is a clip label; a sequence with any clip label has no frame labels (its other classes'
  frames cannot be told from its unlabelled ones), only sequence labels.
- **ActivityNet-style ids are clips.** Each entry of the `database` is one sequence by default
  (MM-Office's `recid000_0` / `recid000_1`, `recid008_front` / `recid008_back` are the two
  halves of a recording: two clips with their own labels). `dataset.view_pattern` may group
  entries as the views of one sequence; entries it would pool whose annotations differ are
  refused, as they cannot be views of one clip.
- **Views as the camera files of a clip** (`dataset.clip_files`, MM-Office as its authors publish
  it): an entry without a `path` takes as its views every file under the home's folder that a
  `video` pattern matches with `{clip}` set to its id, sorted by path, and as its audio every
  file an `audio` pattern matches (vicokd.data.clip_files).
- **Id lists.** A split file whose name ends in `.txt` lists sequence ids, one a line
  (`read_id_list`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VicokdError
from ..storage import read_json
from .clip_files import resolve_clip_files


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
    clip_labels: list[str] = field(default_factory=list)   # labels without times (weak)
    audio: list[str] = field(default_factory=list)   # separate audio files (microphones), if any
    named_files: bool = True              # False: the entry names no file ({id}.mp4 assumed)

    @property
    def has_frame_labels(self) -> bool:
        """Whether every label of the sequence has its times (so frame labels can be made)."""
        return not self.clip_labels


# Characters an id may not hold: "/" nests HDF5 groups (every artifact keeps one group per id).
FORBIDDEN_ID_CHARS = "/"


def check_sequence_id(path, seq_id: str) -> None:
    """A sequence id that can name an HDF5 group and a line of a split file, else one line."""
    if not seq_id or seq_id in (".", "..") or seq_id != seq_id.strip():
        raise VicokdError(f"{path}: sequence id {seq_id!r} is empty, '.' or '..', or has "
                          "leading or trailing spaces")
    bad = [c for c in FORBIDDEN_ID_CHARS if c in seq_id]
    if bad or "\n" in seq_id:
        raise VicokdError(f"{path}: sequence id {seq_id!r} contains '/' or a line break, which "
                          "the HDF5 artifacts cannot hold in a group name; rename the entry "
                          "(or give it an 'id' field without '/')")


def read_annotations(path: str | Path, fmt: str, classes: list[str],
                     view_pattern: str | None = None) -> list[SequenceAnnotation]:
    """Read one home's annotation file in format `fmt` and check its labels against `classes`."""
    path = Path(path)
    data = read_json(path)
    if fmt in ("multisensor_home", "synthetic"):
        sequences = _read_multisensor_home(path, data)
    elif fmt == "activitynet":
        sequences = _read_activitynet(path, data, view_pattern)
    else:
        raise VicokdError(f"{path}: unknown annotation format '{fmt}'")
    known = set(classes)
    ids = set()
    for seq in sequences:
        check_sequence_id(path, seq.id)
        if seq.id in ids:
            raise VicokdError(f"{path}: sequence id '{seq.id}' appears twice")
        ids.add(seq.id)
        for label in [s.label for s in seq.segments] + seq.clip_labels:
            if label not in known:
                raise VicokdError(f"{path}: sequence '{seq.id}' has label '{label}', "
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


def read_home(paths, dataset: dict, root: str | Path,
              id_lists: list | None = None) -> list[SequenceAnnotation]:
    """The sequences of one home as the manifest takes them: its annotation files read
    (`dataset`: format, classes, view_pattern), restricted to the ids of `id_lists` (plain-text
    split files) when given, with the views of each clip found on disk when `dataset.clip_files`
    names video patterns. Entries no list names are left out (the returned list says which
    through its length; the caller logs it)."""
    sequences = read_annotation_files(paths, dataset["format"], list(dataset["classes"]),
                                      dataset.get("view_pattern"))
    if id_lists:
        sequences = restrict_to_lists(sequences, id_lists, paths)
    clip_files = dataset.get("clip_files") or {}
    if clip_files.get("video"):
        sequences = resolve_clip_files(sequences, root, clip_files["video"],
                                       clip_files.get("audio") or [])
    return sequences


def restrict_to_lists(sequences: list[SequenceAnnotation], id_lists, annotations
                      ) -> list[SequenceAnnotation]:
    """The sequences named by the id lists (files), in the annotations' order; an id that the
    annotations lack is one line naming the list."""
    by_id = {s.id: s for s in sequences}
    named: set[str] = set()
    for path in id_lists:
        for seq_id in read_id_list(path):
            if seq_id not in by_id:
                shown = annotations if isinstance(annotations, (str, Path)) else \
                    ", ".join(str(a) for a in annotations)
                raise VicokdError(f"{path}: clip '{seq_id}' is not in the annotations ({shown})")
            named.add(seq_id)
    return [s for s in sequences if s.id in named]


def read_id_list(path: str | Path) -> list[str]:
    """The sequence ids of a plain-text list (MM-Office's split_train.txt): one a line,
    surrounding spaces and blank lines ignored; a repeated id is one line."""
    path = Path(path)
    if not path.is_file():
        raise VicokdError(f"{path}: file not found")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise VicokdError(f"{path}: not a text file of sequence ids") from None
    ids, seen = [], set()
    for number, line in enumerate(lines, 1):
        seq_id = line.strip()
        if not seq_id:
            continue
        if seq_id in seen:
            raise VicokdError(f"{path}: sequence id '{seq_id}' appears twice (line {number})")
        check_sequence_id(f"{path}:{number}", seq_id)
        seen.add(seq_id)
        ids.append(seq_id)
    if not ids:
        raise VicokdError(f"{path}: lists no sequence id")
    return ids


def is_id_list(path: str | Path) -> bool:
    """Whether a split file is a plain-text id list (by its name) rather than annotations."""
    return str(path).lower().endswith(".txt")


# --- the two formats ----------------------------------------------------------------------------

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


def _clip_label(path: Path, where: str, label) -> str:
    if not isinstance(label, str):
        raise VicokdError(f"{path}: {where} label is not a string ({label!r})")
    return label


def _view_key(key: str) -> int | None:
    m = re.fullmatch(r"video_url_(\d+)", key)
    return int(m.group(1)) if m else None


def _read_multisensor_home(path: Path, data) -> list[SequenceAnnotation]:
    """A JSON list; each entry has video_url_1..N and `tricks` [{labels: [name], start, end}]
    (a trick with neither start nor end labels the clip without times)."""
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
        segments, clip_labels = [], []
        for j, trick in enumerate(tricks):
            if not isinstance(trick, dict) or "labels" not in trick:
                raise VicokdError(f"{path}: malformed annotations, {where} trick {j} has no 'labels'")
            labels = trick["labels"] if isinstance(trick["labels"], list) else [trick["labels"]]
            at = f"sequence '{seq_id}' trick {j}"
            for label in labels:
                if trick.get("start") is None and trick.get("end") is None:
                    clip_labels.append(_clip_label(path, at, label))
                else:
                    segments.append(_segment(path, at, label, trick.get("start"), trick.get("end")))
        out.append(SequenceAnnotation(seq_id, [v for _, v in views], segments,
                                      [str(n) for n, _ in views], _unique(clip_labels)))
    return out


def _unique(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(labels))


def _view_file(path: Path, item_id: str, item: dict) -> str:
    """The file of one ActivityNet-style item: its `path` or `video`, else `{id}.mp4`."""
    for key in ("path", "video"):
        if key in item and item[key] is not None:
            if not isinstance(item[key], str) or not item[key].strip():
                raise VicokdError(f"{path}: malformed annotations, '{item_id}' {key} is not a file "
                                  f"name ({item[key]!r})")
            return item[key]
    return f"{item_id}.mp4"


def _item_labels(path: Path, item_id: str, item: dict) -> tuple[list[Segment], list[str]]:
    """The segments and the clip labels (`"segment": null`) of one ActivityNet-style entry."""
    anns = item.get("annotations", [])
    if not isinstance(anns, list):
        raise VicokdError(f"{path}: malformed annotations, '{item_id}' annotations is not a list")
    segments, clip_labels = [], []
    for j, ann in enumerate(anns):
        where = f"'{item_id}' annotation {j}"
        if not isinstance(ann, dict):
            raise VicokdError(f"{path}: malformed annotations, {where} is not an object")
        seg = ann.get("segment")
        if seg is None:
            clip_labels.append(_clip_label(path, where, ann.get("label")))
            continue
        if not isinstance(seg, (list, tuple)) or len(seg) != 2:
            raise VicokdError(f"{path}: malformed annotations, {where} segment is neither "
                              f"[start, end] nor null ({seg!r})")
        segments.append(_segment(path, where, ann.get("label"), seg[0], seg[1]))
    return segments, _unique(clip_labels)


def _read_activitynet(path: Path, data, view_pattern: str | None) -> list[SequenceAnnotation]:
    """`{"database": {id: {"subset", "annotations": [{"segment": [s, e] | null, "label"}]}}}`:
    one sequence per id, or per group of ids when `view_pattern` groups them as views."""
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise VicokdError(f"{path}: malformed ActivityNet-style annotations (expected a 'database' object)")
    pattern = re.compile(view_pattern) if view_pattern else None
    if pattern is not None and not {"seq", "view"} <= set(pattern.groupindex):
        raise VicokdError(f"config dataset.view_pattern: '{view_pattern}' needs the named groups "
                          "(?P<seq>...) and (?P<view>...)")
    grouped: dict[str, dict[str, tuple[str, dict]]] = {}
    for item_id, item in data["database"].items():
        if not isinstance(item, dict):
            raise VicokdError(f"{path}: malformed annotations, '{item_id}' is not an object")
        if pattern is None:
            grouped[item_id] = {"": (item_id, item)}
            continue
        m = pattern.fullmatch(item_id)
        if not m:
            raise VicokdError(f"{path}: id '{item_id}' does not match dataset.view_pattern "
                              f"'{view_pattern}'")
        grouped.setdefault(m.group("seq"), {})[m.group("view")] = (item_id, item)
    out = []
    for seq_id in sorted(grouped):
        views = grouped[seq_id]
        names = sorted(views)
        labelled = {name: _item_labels(path, views[name][0], views[name][1]) for name in names}
        first = names[0]
        for name in names[1:]:
            if _label_key(labelled[name]) != _label_key(labelled[first]):
                raise VicokdError(
                    f"{path}: dataset.view_pattern groups '{views[first][0]}' and "
                    f"'{views[name][0]}' as views of one sequence '{seq_id}', but their "
                    "annotations differ: they are different clips (e.g. the two halves of a "
                    "recording), not views; set dataset.view_pattern: null to read each id as "
                    "its own sequence")
        segments, clip_labels = labelled[first]
        files = [_view_file(path, views[name][0], views[name][1]) for name in names]
        # a sequence of one entry that names no file: its files may be found (clip_files)
        named = len(names) > 1 or any(views[first][1].get(k) is not None
                                      for k in ("path", "video"))
        view_names = names if pattern is not None else [seq_id]
        out.append(SequenceAnnotation(seq_id, files, segments, view_names, clip_labels,
                                      named_files=named))
    return out


def _label_key(labels: tuple[list[Segment], list[str]]) -> tuple:
    segments, clip_labels = labels
    return (sorted((s.label, s.start, s.end) for s in segments), sorted(clip_labels))
