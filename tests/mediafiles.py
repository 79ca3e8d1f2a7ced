"""Small mp4 files for the tests, written with PyAV: frames whose content encodes their index."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np

BITS = 8


def index_frame(i: int, size: int, height: int | None = None) -> np.ndarray:
    """A frame (size wide, `height` or size high) whose vertical stripes spell `i` in binary
    (white = 1), robust to compression."""
    frame = np.zeros((height or size, size, 3), dtype=np.uint8)
    width = size // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            frame[:, b * width:(b + 1) * width] = 255
    return frame


def read_index(frame: np.ndarray) -> int:
    """Inverse of index_frame, on a decoded (possibly resized) frame."""
    size = frame.shape[1]
    width = size / BITS
    value = 0
    for b in range(BITS):
        centre = int((b + 0.5) * width)
        if frame[:, centre].mean() > 128:
            value |= 1 << b
    return value


def write_mp4(path: Path, n_frames: int, fps: float | fractions.Fraction, size: int = 64,
              audio_seconds: float | None = None, sample_rate: int = 16000, tone_hz: float = 440.0,
              height: int | None = None) -> Path:
    """An H.264 mp4 of `n_frames` index frames; an AAC track of `audio_seconds` (default: as long
    as the video) unless audio_seconds is 0, which writes no audio track."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fps if isinstance(fps, fractions.Fraction) else fractions.Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=rate)
        vs.width, vs.height = size, height or size
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "12"}
        seconds = float(n_frames / rate) if audio_seconds is None else audio_seconds
        astream = _audio_stream(c, sample_rate) if seconds > 0 else None
        for i in range(n_frames):
            for p in vs.encode(av.VideoFrame.from_ndarray(index_frame(i, size, height), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if astream is not None:
            _write_tone(c, astream, seconds, sample_rate, tone_hz)
    return path


def write_vfr_mp4(path: Path, pts_ms: list[int], size: int = 64, audio_seconds: float = 0.0,
                  preset: str = "ultrafast", sample_rate: int = 16000) -> Path:
    """A variable-frame-rate H.264 mp4: index frame i shown at pts_ms[i] milliseconds (stream
    time base 1/1000, as a phone or home camera records), and an AAC track of `audio_seconds`
    (none when 0). `preset` "medium" adds B-frames (packets out of presentation order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ms = fractions.Fraction(1, 1000)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=50)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.time_base = vs.codec_context.time_base = ms
        vs.options = {"preset": preset, "crf": "12"}
        astream = _audio_stream(c, sample_rate) if audio_seconds > 0 else None
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(index_frame(i, size), format="rgb24")
            frame.pts, frame.time_base = pts, ms
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if astream is not None:
            _write_tone(c, astream, audio_seconds, sample_rate, 440.0)
    return path


def _audio_stream(container, sample_rate: int):
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = "mono"
    return stream


def _write_tone(container, stream, seconds: float, sample_rate: int, tone_hz: float) -> None:
    total = int(seconds * sample_rate)
    t = np.arange(total) / sample_rate
    wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
    for s in range(0, total, 1024):
        fr = av.AudioFrame.from_ndarray(wave[None, s:s + 1024], format="fltp", layout="mono")
        fr.sample_rate = sample_rate
        fr.pts = s
        for p in stream.encode(fr):
            container.mux(p)
    for p in stream.encode():
        container.mux(p)


def write_wav(path: Path, seconds: float, sample_rate: int = 16000, tone_hz: float = 440.0) -> Path:
    """A mono 16-bit PCM wav of a tone (a separate microphone file, as MM-Office records them)."""
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pcm = (0.3 * np.sin(2 * np.pi * tone_hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path
