"""The 2.5 FPS frame-time rule and the audio segmentation, on real mp4 files."""

from fractions import Fraction

import numpy as np
import pytest

from mediafiles import read_index, write_mp4
from vicokd.data.media import decode_frames, frame_count, probe, read_audio, source_indices
from vicokd.data.spectrogram import fbank_of_segments, fbank_segments, segment_audio
from vicokd.errors import VicokdError


def test_frame_count_counts_times_strictly_inside_the_video():
    assert frame_count(10.0, 2.5) == 25          # i/2.5 < 10  ->  i = 0..24
    assert frame_count(10.1, 2.5) == 26
    assert frame_count(0.3, 2.5) == 1
    assert frame_count(0.0, 2.5) == 0


def test_source_indices_pick_the_nearest_frame_and_clip():
    # 29.97 fps: t = 0.4 s -> 11.988 -> 12; t = 0.8 -> 23.976 -> 24
    idx = source_indices(4, 2.5, 30000 / 1001, 1000)
    assert idx.tolist() == [0, 12, 24, 36]
    assert source_indices(3, 2.5, 25, 15).tolist() == [0, 10, 14]


@pytest.mark.parametrize("fps", [25, 30, Fraction(30000, 1001), 24])
def test_decoded_frames_are_the_nearest_source_frames(tmp_path, fps):
    path = write_mp4(tmp_path / "v.mp4", 120, fps, size=64)
    info = probe(path, 16000, need_audio=True)
    assert info.frames == 120 and info.fps == pytest.approx(float(fps), rel=1e-3)
    count = frame_count(info.video_duration, 2.5)
    expected = [min(int(np.floor(i / 2.5 * float(fps) + 0.5)), 119) for i in range(count)]
    frames = decode_frames(path, source_indices(count, 2.5, info.fps, info.frames), size=32)
    assert frames.shape == (count, 32, 32, 3) and frames.dtype == np.uint8
    assert [read_index(f) for f in frames] == expected


def test_probe_rejects_a_truncated_file(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", 60, 25)
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(VicokdError, match="cut.mp4"):
        probe(tmp_path / "cut.mp4", 16000, need_audio=True)


def test_probe_reports_a_missing_audio_track(tmp_path):
    path = write_mp4(tmp_path / "silent.mp4", 30, 25, audio_seconds=0)
    with pytest.raises(VicokdError, match="silent.mp4: no audio track"):
        probe(path, 16000, need_audio=True)
    assert probe(path, 16000, need_audio=False).audio_duration is None


def test_probe_reports_a_missing_file(tmp_path):
    with pytest.raises(VicokdError, match="nothere.mp4: video file not found"):
        probe(tmp_path / "nothere.mp4", 16000, need_audio=True)


def test_segments_cover_consecutive_intervals_and_pad_the_end():
    sr, fps = 16000, 2.5
    wave = np.arange(int(1.0 * sr), dtype=np.float32)        # 1 s: segments at 0, 0.4, 0.8 s
    segs = segment_audio(wave, 3, fps, sr)
    assert segs.shape == (3, 6400)
    assert segs[1, 0] == 6400 and segs[2, 0] == 12800
    assert segs[2, 3199] == 15999 and np.all(segs[2, 3200:] == 0)  # the track ends at 1.0 s


def test_fbank_segments_shape_and_tone(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", 50, 25, tone_hz=1000.0)
    wave = read_audio(path, 16000)
    segs = segment_audio(wave, 5, 2.5, 16000)
    fb = fbank_segments(segs, {"sample_rate": 16000, "mel_bins": 128})
    assert fb.shape == (5, 38, 128) and np.isfinite(fb).all()
    # A 1 kHz tone: the loudest mel bin sits in the same place in every segment.
    peaks = fb[1:4].mean(axis=1).argmax(axis=1)
    assert len(set(peaks.tolist())) == 1


@pytest.mark.parametrize("samples,count,fps", [(160000, 25, 2.5), (160123, 26, 2.5),
                                               (5000, 3, 2.5), (48000, 7, 3.0)])
def test_one_pass_fbank_equals_the_per_segment_fbank(samples, count, fps):
    """The one-pass path (segments on the fbank's frame grid) and the fallback (3 fps: not on
    the grid) give the per-segment fbank, padding of a short track included."""
    audio = {"sample_rate": 16000, "mel_bins": 64}
    wave = (np.random.default_rng(0).normal(0, 0.1, samples) + 0.05).astype(np.float32)
    slow = fbank_segments(segment_audio(wave, count, fps, 16000), audio)
    fast = fbank_of_segments(wave, count, fps, audio)
    assert fast.shape == slow.shape
    np.testing.assert_allclose(fast, slow, atol=2e-3)
