"""Reading recordings: probing (PyAV, the container's headers and packets, no decoding), the
frames' presentation times, decoding the kept frames (decord) and the audio track (decord).

Every failure of the underlying decoder becomes a one-line VicokdError naming the file.
`torchaudio.load` is not used: on this platform it needs TorchCodec, which is not available.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import VicokdError


@dataclass(frozen=True)
class MediaInfo:
    """What the manifest records of one view's file."""

    frames: int                    # video frames in the file
    fps: float                     # average frame rate of the video stream
    video_duration: float          # seconds from the first frame's timestamp to the stream's end
    audio_duration: float | None   # seconds of audio (header), None when there is no audio track
    times: FrameTimes | None = None  # every frame's presentation time


@dataclass(frozen=True)
class FrameTimes:
    """When each frame of a video stream is shown: its exact presentation timestamp in ticks of
    `time_base`, ascending (decord numbers frames in this order), the first frame at 0."""

    ticks: tuple[int, ...]
    time_base: Fraction

    def __len__(self) -> int:
        return len(self.ticks)

    def seconds(self) -> np.ndarray:
        return np.asarray(self.ticks, dtype=np.float64) * float(self.time_base)

    def to_json(self) -> dict:
        """For the manifest: a constant-rate stream as its step, any other as every tick."""
        tb = [self.time_base.numerator, self.time_base.denominator]
        step = self.ticks[1] if len(self.ticks) > 1 else 0
        if step > 0 and self.ticks == tuple(range(0, step * len(self.ticks), step)):
            return {"time_base": tb, "frames": len(self.ticks), "step": step}
        return {"time_base": tb, "ticks": list(self.ticks)}

    @classmethod
    def from_json(cls, value: dict) -> "FrameTimes":
        time_base = Fraction(*value["time_base"])
        if "step" in value:
            return cls(tuple(range(0, value["step"] * value["frames"], value["step"])), time_base)
        return cls(tuple(int(t) for t in value["ticks"]), time_base)


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


@dataclass(frozen=True)
class _Scan:
    """What the container says of a file, read without decoding anything."""

    times: FrameTimes
    video_duration: float | None      # the video stream's duration by its header, seconds
    average_rate: float | None        # the header's average frame rate
    has_audio: bool
    audio_duration: float | None      # the audio stream's duration by its header, seconds


def _scan(path: Path) -> _Scan:
    """The headers of the video (and audio) stream and every video packet's timestamp, with
    PyAV: the packets are read, not decoded. A file whose packets end before the frames its
    header declares, or lie past its end, is truncated."""
    import av

    size = path.stat().st_size
    try:
        with _native_stderr_to_nowhere(), av.open(str(path)) as container:
            if not container.streams.video:
                raise VicokdError(f"{path}: no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            pts, audio_packets, end = [], 0, 0
            for packet in container.demux([video] + ([audio] if audio is not None else [])):
                if packet.size == 0:                 # the empty packet that ends a stream
                    continue
                if packet.stream_index == video.index:
                    pts.append(packet.pts)
                else:
                    audio_packets += 1
                if packet.pos is not None and packet.pos >= 0:
                    end = max(end, packet.pos + packet.size)
            declared = int(video.frames or 0)
            declared_audio = int(audio.frames or 0) if audio is not None else 0
            tb = video.time_base
            video_duration = float(video.duration * tb) if video.duration and tb else None
            rate = float(video.average_rate) if video.average_rate else None
            audio_duration = None
            if audio is not None and audio.duration and audio.time_base:
                audio_duration = float(audio.duration * audio.time_base)
    except VicokdError:
        raise
    except Exception as exc:
        raise VicokdError(f"{path}: unreadable or truncated video ({_short(exc)})") from None
    if not pts:
        raise VicokdError(f"{path}: video stream has no frames")
    if len(pts) < declared:
        raise VicokdError(f"{path}: unreadable or truncated video (the header declares {declared} "
                          f"frames, {len(pts)} are in the file)")
    if end > size:
        raise VicokdError(f"{path}: unreadable or truncated video (its packets reach byte {end}, "
                          f"the file has {size})")
    if audio_packets < declared_audio:
        raise VicokdError(f"{path}: truncated audio track (the header declares {declared_audio} "
                          f"packets, {audio_packets} are in the file)")
    return _Scan(times=frame_times_of(path, pts, tb), video_duration=video_duration,
                 average_rate=rate, has_audio=audio is not None, audio_duration=audio_duration)


def frame_times_of(path, pts: list, time_base) -> FrameTimes:
    """FrameTimes of a stream's packet timestamps (in any order: B-frames come out of order).
    Frames without a timestamp, or two frames at one time, cannot be placed in time: refused."""
    if time_base is None or any(p is None for p in pts):
        raise VicokdError(f"{path}: frames without presentation timestamps; their times cannot be "
                          f"trusted (re-encode the file with timestamps)")
    ticks = sorted(int(p) for p in pts)
    for a, b in zip(ticks, ticks[1:]):
        if a == b:
            raise VicokdError(f"{path}: two frames share the timestamp {float(a * time_base):.3f} s; frame "
                              f"times cannot be trusted (re-encode the file)")
    return FrameTimes(ticks=tuple(t - ticks[0] for t in ticks), time_base=Fraction(time_base))


def frame_times(path: str | Path) -> FrameTimes:
    """The presentation times of a file's video frames, in decord's order (PyAV, no decoding)."""
    path = Path(path)
    _check_file(path)
    return _scan(path).times


def probe(path: str | Path, sample_rate: int, need_audio: bool) -> MediaInfo:
    """Frame count, rate and durations of one view's file, from the container's headers and
    packets, without decoding; the audio is decoded only when its header has no duration.

    The video lasts from its first frame's timestamp to the stream's end (the last frame shown
    for as long as the header says; without a duration in the header, for the median frame
    interval): variable-frame-rate files included."""
    path = Path(path)
    _check_file(path)
    scan = _scan(path)
    times = scan.times
    last = times.ticks[-1] * float(times.time_base)          # when the last frame is shown
    if scan.video_duration is not None:
        if scan.video_duration < last:
            raise VicokdError(f"{path}: the video stream's header says it lasts "
                              f"{scan.video_duration:.3f} s, but its last frame is shown at "
                              f"{last:.3f} s; frame times cannot be trusted (re-encode the file)")
        video_duration = scan.video_duration
    elif len(times) > 1:
        video_duration = last + float(np.median(np.diff(times.seconds())))
    elif scan.average_rate:
        video_duration = 1.0 / scan.average_rate
    else:
        raise VicokdError(f"{path}: a single frame and no duration in the header; its length "
                          f"cannot be known")
    fps = scan.average_rate or len(times) / video_duration
    audio_duration = None
    if scan.has_audio:
        audio_duration = scan.audio_duration
        if audio_duration is None:              # no duration in the header: decode and count
            audio_duration = len(read_audio(path, sample_rate)) / sample_rate
    elif need_audio:
        raise VicokdError(f"{path}: no audio track (the teacher needs audio; set dataset.require_audio: false "
                          f"for a student-only run)")
    return MediaInfo(frames=len(times), fps=fps, video_duration=video_duration,
                     audio_duration=audio_duration, times=times)


def frame_count(duration: float, fps: float) -> int:
    """Number of decoded frames: every i >= 0 with i / fps strictly inside [0, duration)."""
    if duration <= 0:
        return 0
    return int(math.floor(duration * fps - 1e-9)) + 1


def source_indices(count: int, decode_fps: float, source_fps: float, source_frames: int) -> np.ndarray:
    """For decoded frames i < count, the index of the source frame nearest to time i / decode_fps
    in a stream of constant rate `source_fps` (the synthetic homes' true boxes; files are
    decoded by their timestamps: nearest_frames)."""
    times = np.arange(count, dtype=np.float64) / decode_fps
    idx = np.floor(times * source_fps + 0.5).astype(np.int64)  # round half up, not to even
    return np.clip(idx, 0, source_frames - 1)


def nearest_frames(times: FrameTimes, count: int, decode_fps: float) -> np.ndarray:
    """For decoded frames i < count, the index of the frame whose presentation time is nearest
    to i / decode_fps, after the last frame the last one. Exact rational arithmetic; a time
    halfway between two frames takes the later one (round half up, as source_indices does for a
    constant rate, except where its floats land just below an exact tie)."""
    ticks_per_second = 1 / Fraction(times.time_base)
    step = ticks_per_second / Fraction(decode_fps)           # decoded frame interval, in ticks
    ticks = times.ticks
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        target = i * step
        lo = bisect.bisect_right(ticks, target) - 1        # the last frame shown by then
        if lo + 1 < len(ticks) and 2 * target >= ticks[lo] + ticks[lo + 1]:
            lo += 1
        out[i] = max(lo, 0)
    return out


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


# How far decord's frame times (float32 seconds) may stray from the container's exact ones.
TIMESTAMP_TOLERANCE_S = 0.002


def decode_frames(path: str | Path, indices: np.ndarray, size: int, threads: int = 1,
                  times: FrameTimes | None = None) -> np.ndarray:
    """Decode only the listed source frames, resized to `size` square: uint8 `[len, size, size, 3]` RGB.

    With `times` (the indices were chosen by them), decord must number the same frames at the
    same times, else the choice cannot be trusted. Frames are decoded at the file's own size
    and resized here: decord's resize on decode fails at some sizes (8, 16, 24, 48, 72 px:
    "from_size == to_size", DECORD_BAD_WIDTHS)."""
    vr = open_video(path, threads=threads)
    if times is not None:
        check_decoder_times(path, vr, times)
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


def check_decoder_times(path, vr, times: FrameTimes) -> None:
    """Raise unless decord sees the frames of `times`, in the same order at the same times."""
    if len(vr) != len(times):
        raise VicokdError(f"{path}: the decoder sees {len(vr)} frames, the container lists "
                          f"{len(times)}; frame times cannot be trusted (re-encode the file, or "
                          f"rerun the manifest if the file changed)")
    try:
        with _native_stderr_to_nowhere():
            starts = np.asarray(vr.get_frame_timestamp(np.arange(len(vr))), dtype=np.float64)[:, 0]
    except Exception as exc:
        raise VicokdError(f"{path}: frame timestamps do not read ({_short(exc)})") from None
    stray = np.abs((starts - starts[0]) - times.seconds())
    if stray.max() > TIMESTAMP_TOLERANCE_S:
        k = int(stray.argmax())
        raise VicokdError(f"{path}: frame {k} is shown at {times.seconds()[k]:.3f} s by the "
                          f"container, {starts[k] - starts[0]:.3f} s by the decoder; frame times "
                          f"cannot be trusted (re-encode the file)")


def _short(exc: Exception) -> str:
    """The decoder's reason in one line, without decord's "[hh:mm:ss] file.cc:123: " prefix."""
    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", " ".join(str(exc).split()))
    return text[:200] if text else type(exc).__name__
