"""Reading recordings: probing, decoding the kept frames (decord) and the audio track (decord).

Every failure of the underlying decoder becomes a one-line VicokdError naming the file.
`torchaudio.load` is not used: on this platform it needs TorchCodec, which is not available.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VicokdError


@dataclass(frozen=True)
class MediaInfo:
    """What the manifest records of one view's file."""

    frames: int                    # video frames in the file
    fps: float                     # average frame rate of the video stream
    video_duration: float          # frames / fps, seconds
    audio_duration: float | None   # seconds of decoded audio, None when there is no audio track


def _decord():
    import decord  # imported late: it costs time and is only needed by the media stages

    decord.logging.set_level(decord.logging.QUIET)    # FFmpeg's own messages
    return decord


@contextlib.contextmanager
def _native_stderr_to_nowhere():
    """What the decoder's C++ code prints while the block runs (decord's "[12:00:00] ...cc:486:
    Error: ..." lines) goes to a discarded file, not the terminal: a fault is reported by the
    one-line error alone, which carries the decoder's reason."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VicokdError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VicokdError(f"{path}: empty file, not a readable mp4")


# Frame widths whose copy out of decord 0.6.0 fails ("from_size == to_size ... The size must
# exactly match"), whatever the source or height: measured for every width from 2 to 2100 px.
DECORD_BAD_WIDTHS = frozenset({2, 3, 4, 6, 8, 12, 16, 24, 48, 72})


def decodable_width(width: int) -> int:
    """`width`, or for a width decord cannot hand over, its smallest multiple that it can."""
    k = 1
    while width * k in DECORD_BAD_WIDTHS:
        k += 1
    return width * k


def _video_size(path: Path) -> tuple[int, int]:
    """(width, height) of the video stream, from the container header (PyAV)."""
    import av

    try:
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            return int(ctx.width), int(ctx.height)
    except IndexError:
        raise VicokdError(f"{path}: no video stream") from None
    except Exception as exc:
        raise VicokdError(f"{path}: unreadable or truncated video ({_short(exc)})") from None


def open_video(path: str | Path, threads: int = 1):
    """A decord VideoReader of the file at its own frame size (wider only where decord cannot
    hand over frames of that width: DECORD_BAD_WIDTHS)."""
    path = Path(path)
    _check_file(path)
    decord = _decord()
    width, height = _video_size(path)
    size = {}
    if decodable_width(width) != width:
        size = {"width": decodable_width(width), "height": height}
    try:
        with _native_stderr_to_nowhere():
            vr = decord.VideoReader(str(path), num_threads=threads, **size)
    except Exception as exc:  # decord raises its own DECORDError or RuntimeError
        raise VicokdError(f"{path}: unreadable or truncated video ({_short(exc)})") from None
    if len(vr) == 0:
        raise VicokdError(f"{path}: video stream has no frames")
    return vr


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """The whole audio track, mono, resampled to `sample_rate`, float32 `[samples]`."""
    path = Path(path)
    _check_file(path)
    decord = _decord()
    try:
        with _native_stderr_to_nowhere():
            ar = decord.AudioReader(str(path), sample_rate=sample_rate, mono=True)
            samples = ar[:].asnumpy()
    except Exception as exc:
        msg = _short(exc)
        if "audio" in msg.lower() and ("stream" in msg.lower() or "find" in msg.lower()):
            raise VicokdError(f"{path}: no audio track") from None
        raise VicokdError(f"{path}: unreadable audio track ({msg})") from None
    if samples.size == 0:
        raise VicokdError(f"{path}: no audio track")
    return np.asarray(samples, dtype=np.float32).reshape(-1)


def has_audio_stream(path: str | Path) -> bool:
    """Whether the container declares an audio stream (PyAV reads only the header)."""
    import av

    try:
        with av.open(str(path)) as container:
            return len(container.streams.audio) > 0
    except Exception as exc:
        raise VicokdError(f"{path}: unreadable container ({_short(exc)})") from None


def probe(path: str | Path, sample_rate: int, need_audio: bool) -> MediaInfo:
    """Frame count, rate and durations of one view's file; checks the last frame decodes."""
    path = Path(path)
    vr = open_video(path)
    frames, fps = len(vr), float(vr.get_avg_fps())
    if not fps > 0:
        raise VicokdError(f"{path}: video stream reports no frame rate")
    try:  # a truncated file often opens but fails on its last frames
        with _native_stderr_to_nowhere():
            vr.get_batch([frames - 1])
    except Exception as exc:
        raise VicokdError(f"{path}: truncated video, frame {frames - 1} does not decode ({_short(exc)})") from None
    audio_duration = None
    if has_audio_stream(path):
        audio_duration = len(read_audio(path, sample_rate)) / sample_rate
    elif need_audio:
        raise VicokdError(f"{path}: no audio track (the teacher needs audio; set dataset.require_audio: false "
                          f"for a student-only run)")
    return MediaInfo(frames=frames, fps=fps, video_duration=frames / fps, audio_duration=audio_duration)


def frame_count(duration: float, fps: float) -> int:
    """Number of decoded frames: every i >= 0 with i / fps strictly inside [0, duration)."""
    if duration <= 0:
        return 0
    return int(math.floor(duration * fps - 1e-9)) + 1


def source_indices(count: int, decode_fps: float, source_fps: float, source_frames: int) -> np.ndarray:
    """For decoded frames i < count, the index of the source frame nearest to time i / decode_fps."""
    times = np.arange(count, dtype=np.float64) / decode_fps
    idx = np.floor(times * source_fps + 0.5).astype(np.int64)  # round half up, not to even
    return np.clip(idx, 0, source_frames - 1)


# Source frames decoded per decord call: bounds the memory of full-resolution frames.
DECODE_CHUNK = 16


def resize_square(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 `[n, H, W, 3]` frames stretched to `size` x `size` (unchanged when already so):
    area averaging when shrinking, bilinear when enlarging."""
    n, h, w = frames.shape[:3]
    if (h, w) == (size, size):
        return frames
    import cv2  # a dependency of ultralytics; imported late like decord

    interpolation = cv2.INTER_AREA if h >= size and w >= size else cv2.INTER_LINEAR
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = cv2.resize(frames[i], (size, size), interpolation=interpolation)
    return out


def decode_frames(path: str | Path, indices: np.ndarray, size: int, threads: int = 1) -> np.ndarray:
    """Decode only the listed source frames, resized to `size` square: uint8 `[len, size, size, 3]` RGB.

    Frames are decoded at the file's own size and resized here: decord's resize on decode
    fails at some sizes (8, 16, 24, 48, 72 px: "from_size == to_size", DECORD_BAD_WIDTHS)."""
    vr = open_video(path, threads=threads)
    indices = [int(i) for i in indices]
    out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
    for start in range(0, len(indices), DECODE_CHUNK):
        part = indices[start:start + DECODE_CHUNK]
        try:
            with _native_stderr_to_nowhere():
                frames = vr.get_batch(part).asnumpy()
        except Exception as exc:
            raise VicokdError(f"{path}: frames do not decode ({_short(exc)})") from None
        out[start:start + len(part)] = resize_square(frames, size)
    return out


def _short(exc: Exception) -> str:
    """The decoder's reason in one line, without decord's "[hh:mm:ss] file.cc:123: " prefix."""
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", " ".join(str(exc).split()))
    return text[:200] if text else type(exc).__name__
