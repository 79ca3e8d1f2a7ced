"""Writing one camera's mp4: H.264 video (libx264, yuv420p) and a mono AAC audio track, with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .sound import SAMPLE_RATE

AUDIO_BLOCK = 16 * 1024     # samples handed to the encoder at a time


def write_mp4(path: str | Path, video: np.ndarray, fps: float, audio: np.ndarray,
              crf: int = 23, preset: str = "ultrafast") -> None:
    """Encode `video` uint8 [F, H, W, 3] (RGB) at `fps` and `audio` float32 [samples] (16 kHz).

    One encoder thread: the generator runs one process per sequence, and single-threaded x264
    output is the same on every run (decoded frames are reproducible for a seed)."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height = video.shape[2], video.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.thread_count = 1
        vs.options = {"preset": preset, "crf": str(crf)}
        as_ = out.add_stream("aac", rate=SAMPLE_RATE)
        as_.layout = "mono"
        # the fast coder, without perceptual noise substitution (keeps noise bands as recorded)
        as_.options = {"aac_coder": "fast", "aac_pns": "0"}
        for frame in video:
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        for k in range(0, len(audio), AUDIO_BLOCK):
            block = np.ascontiguousarray(audio[None, k:k + AUDIO_BLOCK], dtype=np.float32)
            af = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            af.sample_rate = SAMPLE_RATE
            af.pts = k
            af.time_base = Fraction(1, SAMPLE_RATE)
            for packet in as_.encode(af):
                out.mux(packet)
        for packet in as_.encode():
            out.mux(packet)
