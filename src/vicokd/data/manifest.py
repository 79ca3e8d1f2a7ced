"""The manifest of one home: sequences, view files, probed durations, segments, classes.

Every later stage reads the manifest instead of the annotation file, so format differences end
here. Views of one sequence with different lengths are trimmed to the shortest (a warning names
the sequence); segments reaching past the usable end are clipped (a warning too).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import fill
from ..errors import VicokdError
from ..storage import read_json, write_json
from .annotations import read_annotation_files
from .media import probe

log = logging.getLogger(__name__)

# Views whose usable lengths differ by less than this are not worth a warning (container rounding).
LENGTH_TOLERANCE_S = 0.15


def build_manifest(env: str, annotation_file: str | Path | list, dataset: dict,
                   sample_rate: int = 16000) -> dict:
    """Read the annotations of `env` (one file or a list of files), probe every view file, and
    return the manifest dict."""
    # the videos are relative to the home's folder: root, or root/home_dirs[env]
    root = Path(dataset["root"]) / (dataset.get("home_dirs") or {}).get(env, "")
    classes = list(dataset["classes"])
    dataset = fill("dataset", dataset)
    need_audio = bool(dataset["require_audio"])
    sequences = read_annotation_files(annotation_file, dataset["format"], classes,
                                      dataset["view_pattern"])
    check_view_counts(annotation_file, sequences, dataset)
    out = []
    for seq in sequences:
        infos = [probe(root / view, sample_rate, need_audio) for view in seq.views]
        lengths = [min(i.video_duration, i.audio_duration) if i.audio_duration is not None else i.video_duration
                   for i in infos]
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
        out.append({
            "id": seq.id,
            "views": list(seq.views),
            "view_names": list(seq.view_names),
            "fps": [i.fps for i in infos],
            "frames": [i.frames for i in infos],
            "video_durations": [i.video_duration for i in infos],
            "audio_durations": [i.audio_duration for i in infos],
            "frame_times": [i.times.to_json() for i in infos],   # what decode picks frames by
            "duration": duration,
            "segments": segments,
        })
        log.info("sequence %s: %d views, %.2f s, %d segments", seq.id, len(seq.views), duration, len(segments))
    return {"env": env, "format": dataset["format"], "root": str(root), "classes": classes,
            "has_audio": all(a is not None for s in out for a in s["audio_durations"]), "sequences": out}


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
                                                       dataset["view_pattern"])}
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
    annotations = snakemake.input.annotations
    annotations = annotations if isinstance(annotations, str) else list(annotations)
    manifest = build_manifest(snakemake.wildcards.env, annotations, snakemake.params.dataset)
    write_json(snakemake.output[0], manifest)
