"""The manifest of one home: sequences, view files, probed durations, segments, classes.

Every later stage reads the manifest instead of the annotation file, so format differences end
here. Views of one sequence with different lengths are trimmed to the shortest (a warning names
the sequence); segments reaching past the usable end are clipped (a warning too).

Per sequence it also records its clip labels (labels without times) and `has_frame_labels`
(false when it has any: the labels stage then writes no frame labels for it), and, when the
recording keeps its sound in separate files (MM-Office's microphones, `dataset.clip_files.audio`),
`audio_files`: the files whose mean is the audio of every view.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import fill
from ..errors import VicokdError
from ..storage import read_json, write_json
from .annotations import read_annotation_files, read_home
from .media import probe, read_audio

log = logging.getLogger(__name__)

# Views whose usable lengths differ by less than this are not worth a warning (container rounding).
LENGTH_TOLERANCE_S = 0.15


def home_folder(dataset: dict, env: str) -> Path:
    """The folder one home's videos (and annotation and split files) are relative to: root, or
    root/home_dirs[env]."""
    return Path(dataset["root"]) / (dataset.get("home_dirs") or {}).get(env, "")


def check_annotation_files(paths: list, env: str) -> None:
    """Every annotation file exists; for one that does not, one line that names the files of
    that folder which could be meant and the key to set (the published homes name theirs
    differently: Home-1 train.json / test.json, Home-2 train_data.json / test_data.json)."""
    for path in paths:
        path = Path(path)
        if path.is_file():
            continue
        folder = path.parent
        there = sorted(p.name for p in folder.glob("*") if p.suffix.lower() in (".json", ".txt")) \
            if folder.is_dir() else []
        hint = (f"; that folder has {', '.join(there)}: set dataset.annotations.{env} (and "
                f"split.files.{env}) to the files of your copy" if there else
                f"; the folder {folder} does not exist or holds no annotation file: check "
                f"dataset.root and dataset.home_dirs.{env}")
        raise VicokdError(f"{path}: annotation file not found{hint}")


def _audio_files_duration(root: Path, files: list[str], sample_rate: int) -> float:
    """Seconds of the mix of separate audio files: the shortest of them."""
    return min(len(read_audio(root / f, sample_rate)) / sample_rate for f in files)


def build_manifest(env: str, annotation_file: str | Path | list, dataset: dict,
                   sample_rate: int = 16000, id_lists: list | None = None) -> dict:
    """Read the annotations of `env` (one file or a list of files), restricted to the ids of the
    plain-text `id_lists` when given, probe every view file, and return the manifest dict."""
    root = home_folder(dataset, env)
    classes = list(dataset["classes"])
    dataset = fill("dataset", dataset)
    need_audio = bool(dataset["require_audio"])
    paths = [annotation_file] if isinstance(annotation_file, (str, Path)) else list(annotation_file)
    check_annotation_files(paths, env)
    sequences = read_home(paths, dataset, root, id_lists)
    if id_lists:
        log.info("%d sequences named by %s", len(sequences), ", ".join(map(str, id_lists)))
    check_view_counts(paths, sequences, dataset)
    out = []
    for seq in sequences:
        separate = bool(seq.audio)
        infos = [probe(root / view, sample_rate, need_audio and not separate) for view in seq.views]
        if separate:
            mix = _audio_files_duration(root, seq.audio, sample_rate)
            audio_durations = [mix] * len(infos)
        else:
            audio_durations = [i.audio_duration for i in infos]
        lengths = [min(i.video_duration, a) if a is not None else i.video_duration
                   for i, a in zip(infos, audio_durations)]
        duration = min(lengths)
        if max(lengths) - duration > LENGTH_TOLERANCE_S:
            log.warning("sequence %s: views last %s s; trimmed to the shortest, %.2f s",
                        seq.id, ", ".join(f"{x:.2f}" for x in lengths), duration)
        segments = []
        for s in seq.segments:
            if s.start >= duration:
                log.warning("sequence %s: segment %s [%.2f, %.2f] starts after the video ends (%.2f s); dropped",
                            seq.id, s.label, s.start, s.end, duration)
                continue
            end = s.end
            if end > duration:
                log.warning("sequence %s: segment %s [%.2f, %.2f] reaches past the video end (%.2f s); clipped",
                            seq.id, s.label, s.start, s.end, duration)
                end = duration
            segments.append({"label": s.label, "start": s.start, "end": end})
        entry = {
            "id": seq.id,
            "views": list(seq.views),
            "view_names": list(seq.view_names),
            "fps": [i.fps for i in infos],
            "frames": [i.frames for i in infos],
            "video_durations": [i.video_duration for i in infos],
            "audio_durations": audio_durations,
            "frame_times": [i.times.to_json() for i in infos],   # what decode picks frames by
            "duration": duration,
            "segments": segments,
            "clip_labels": list(seq.clip_labels),
            "has_frame_labels": seq.has_frame_labels,
        }
        if separate:
            entry["audio_files"] = list(seq.audio)
        out.append(entry)
        clip_note = f", clip labels {', '.join(seq.clip_labels)}" if seq.clip_labels else ""
        log.info("sequence %s: %d views, %.2f s, %d segments%s", seq.id, len(seq.views), duration,
                 len(segments), clip_note)
    weak = sum(not s["has_frame_labels"] for s in out)
    if weak:
        log.info("%d of %d sequences have sequence labels only (labels without times): no frame "
                 "labels for them", weak, len(out))
    has_audio = all(a is not None for s in out for a in s["audio_durations"])
    return {"env": env, "format": dataset["format"], "root": str(root), "classes": classes,
            "has_audio": has_audio, "sequences": out}


def check_view_counts(annotation_file, sequences: list, dataset: dict) -> None:
    """Every sequence of a home must have the same number of views (the models take a fixed
    number of cameras): the first one that differs from the most common count is named, with
    the annotation file that holds it, before any video is probed."""
    counts = [len(seq.views) for seq in sequences]
    if not counts or len(set(counts)) == 1:
        return
    usual = max(sorted(set(counts)), key=counts.count)
    odd = next(seq for seq in sequences if len(seq.views) != usual)
    files = [annotation_file] if isinstance(annotation_file, (str, Path)) else list(annotation_file)
    where = files[0]
    if len(files) > 1:                     # the file that holds the odd sequence
        for path in files:
            ids = {s.id for s in read_annotation_files(path, dataset["format"], dataset["classes"],
                                                       dataset.get("view_pattern"))}
            if odd.id in ids:
                where = path
                break
    raise VicokdError(f"{where}: sequence '{odd.id}' has {len(odd.views)} view(s), "
                      f"{counts.count(usual)} of the home's {len(counts)} sequences have {usual}; "
                      f"every sequence of a home needs the same cameras")


def load_manifest(path: str | Path) -> dict:
    """Read a manifest, checking the fields every stage relies on."""
    m = read_json(path)
    for key in ("env", "classes", "sequences", "root"):
        if key not in m:
            raise VicokdError(f"{path}: not a vicokd manifest (no '{key}')")
    return m


def main(snakemake) -> None:
    files = snakemake.params.files
    manifest = build_manifest(snakemake.wildcards.env, list(files["annotations"]),
                              snakemake.params.dataset, id_lists=list(files["id_lists"]) or None)
    write_json(snakemake.output[0], manifest)
