"""The camera (and microphone) files of a clip (`dataset.clip_files`, MM-Office as its authors
publish it): an annotation entry without a `path` takes as its views every file under the home's
folder that a `video` pattern matches with `{clip}` set to its id, sorted by path, and as its
audio every file an `audio` pattern matches (`resolve_clip_files`)."""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VicokdError

if TYPE_CHECKING:                  # annotations.py imports this module: no import back at run time
    from .annotations import SequenceAnnotation

CLIP = "{clip}"


def _check_pattern(pattern: str) -> None:
    if pattern.count(CLIP) != 1:
        raise VicokdError(f"config dataset.clip_files: pattern '{pattern}' must hold '{CLIP}' "
                          "exactly once")
    if os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise VicokdError(f"config dataset.clip_files: pattern '{pattern}' must be relative to "
                          "the home's folder")


def _candidates(root: str, pattern: str) -> tuple[str, ...]:
    """Every file under `root` that `pattern` matches with {clip} as a wildcard (one listing
    per pattern, not per clip), relative to root, sorted."""
    wild = glob.escape(root) + "/" + pattern.replace(CLIP, "*")
    return tuple(sorted(os.path.relpath(p, root) for p in glob.glob(wild) if os.path.isfile(p)))


def clip_matches(root: str | Path, patterns: list[str], clip_ids: list[str]
                 ) -> dict[str, list[tuple[str, str]]]:
    """{clip id: [(pattern, file relative to root), ...]}: the files each pattern matches with
    {clip} set to the id (glob rules: `*` stays within a folder), sorted by path."""
    root = str(root)
    found: dict[str, list[tuple[str, str]]] = {c: [] for c in clip_ids}
    for pattern in patterns:
        _check_pattern(pattern)
        files = _candidates(root, pattern)
        if not files:
            continue
        compiled: dict[str, re.Pattern] = {}
        for clip in clip_ids:
            hits = [f for f in files if clip in f]          # a cheap filter before the match
            if not hits:
                continue
            rx = compiled.setdefault(
                clip, re.compile(_translate(pattern.replace(CLIP, glob.escape(clip)))))
            found[clip] += [(pattern, f) for f in hits if rx.fullmatch(f)]
    return found


def _translate(pattern: str) -> str:
    """A glob pattern as a regular expression in which `*` and `?` never cross a '/'."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _one_place(clip: str, hits: list[tuple[str, str]], kind: str) -> list[str]:
    """The files of one clip from a single pattern: a clip found by two patterns (e.g. in both
    train/ and test/) is ambiguous."""
    patterns = sorted({p for p, _ in hits})
    if len(patterns) > 1:
        raise VicokdError(f"clip '{clip}': {kind} files under more than one of "
                          f"dataset.clip_files.{kind} ({', '.join(patterns)}): "
                          f"{', '.join(f for _, f in hits[:4])}; keep one copy")
    return sorted(f for _, f in hits)


def resolve_clip_files(sequences: list[SequenceAnnotation], root: str | Path,
                       video_patterns: list[str], audio_patterns: list[str]
                       ) -> list[SequenceAnnotation]:
    """Each sequence whose entry named no file takes as its views the camera files that
    `video_patterns` match for its id (sorted by path: MM-Office's
    split{k}_id{sensor}_s{scene}_recid{r}_{half}.mp4 then sort by sensor index), and as its
    audio the files that `audio_patterns` match (its microphones; none: no separate audio)."""
    ids = [s.id for s in sequences]
    videos = clip_matches(root, list(video_patterns), ids)
    audio = clip_matches(root, list(audio_patterns), ids) if audio_patterns else {}
    out = []
    for seq in sequences:
        if seq.named_files:
            out.append(seq)
            continue
        files = _one_place(seq.id, videos[seq.id], "video")
        if not files:
            raise VicokdError(f"{root}: no camera file of clip '{seq.id}' (dataset.clip_files."
                              f"video: {', '.join(video_patterns)})")
        mics = _one_place(seq.id, audio.get(seq.id, []), "audio")
        names = [Path(f).stem for f in files]
        out.append(dataclasses.replace(seq, views=files, view_names=names, audio=mics,
                                       named_files=True))
    return out
