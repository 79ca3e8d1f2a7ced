"""The 2.5 FPS frame-time rule and the audio segmentation, on real mp4 files."""

import json
from fractions import Fraction

import numpy as np
import pytest

from mediafiles import read_index, write_mp4, write_vfr_mp4
from vicokd.data.media import (FrameTimes, check_decoder_times, decode_frames, frame_count,
                               frame_times_of, nearest_frames, probe, read_audio, source_indices)
from vicokd.data.spectrogram import fbank_of_segments, fbank_segments, segment_audio
from vicokd.errors import VicokdError
from vicokd.storage import write_json


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


def test_every_size_the_schema_accepts_decodes(tmp_path):
    """decord's own resize failed at 8, 16, 24, 48 and 72 px ("from_size == to_size"); every
    size >= 8 (decode.size's minimum), smaller or larger than the source, decodes."""
    path = write_mp4(tmp_path / "v.mp4", 40, 25, size=64, audio_seconds=0)
    indices = np.arange(0, 40, 2)                     # more than one decode chunk
    for size in list(range(8, 80)) + [96, 129, 224]:
        frames = decode_frames(path, indices, size=size)
        assert frames.shape == (len(indices), size, size, 3) and frames.dtype == np.uint8, size
        if size >= 16:
            assert [read_index(f) for f in frames] == indices.tolist(), size


@pytest.mark.parametrize("source", [16, 48, 72])
def test_sources_of_a_width_decord_cannot_hand_over_probe_and_decode(tmp_path, source):
    """A 48 px wide recording failed as 'truncated' in the probe, and in decoding."""
    path = write_mp4(tmp_path / "v.mp4", 30, 25, size=source, audio_seconds=0)
    info = probe(path, 16000, need_audio=False)
    assert info.frames == 30
    frames = decode_frames(path, np.arange(0, 30, 3), size=source)
    assert frames.shape == (10, source, source, 3)
    if source >= 16:
        assert [read_index(f) for f in frames] == list(range(0, 30, 3))


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


def test_a_truncated_file_says_so_in_one_line_without_decoder_noise(tmp_path, capfd):
    """A file whose header is whole but whose data end early: FFmpeg's and decord's own lines
    ('partial file', '[hh:mm:ss] video_reader.cc:486: ...') came before the one-line error."""
    import av

    path = tmp_path / "front.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width = vs.height = 64
        vs.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(100):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                                               format="rgb24")
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode():
            c.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])
    capfd.readouterr()
    with pytest.raises(VicokdError) as err:
        probe(path, 16000, need_audio=False)
    assert str(err.value).startswith(f"{path}: unreadable or truncated video (")
    assert "video_reader.cc" not in str(err.value)
    out, errs = capfd.readouterr()
    assert out == "" and errs == "", errs


# --- variable frame rate: frames are picked by presentation time (issue 22, item 1)

# 0, 200, ..., 1800 ms (5 fps), then every 20 ms (50 fps) to 2980 ms: 60 frames, 20 fps on average
VFR_PTS_MS = list(range(0, 2000, 200)) + list(range(2000, 3000, 20))
# the frames nearest to 0, 0.4, ..., 2.8 s; the average rate would give [0, 8, 16, ..., 56]
VFR_EXPECTED = [0, 2, 4, 6, 8, 10, 30, 50]


@pytest.mark.parametrize("preset", ["ultrafast", "medium"])      # medium: B-frames
def test_a_variable_frame_rate_recording_is_decoded_at_its_timestamps(tmp_path, preset):
    import h5py

    from vicokd.data.decode import decode_manifest
    from vicokd.data.manifest import build_manifest

    entry = {"id": "seq0", "tricks": [{"labels": ["Walk"], "start": 0.0, "end": 1.0}]}
    for v in (1, 2):
        write_vfr_mp4(tmp_path / f"seq0_cam{v}.mp4", VFR_PTS_MS, audio_seconds=3.0, preset=preset)
        entry[f"video_url_{v}"] = f"seq0_cam{v}.mp4"
    (tmp_path / "annotations.json").write_text(json.dumps([entry]))
    manifest = build_manifest("home", tmp_path / "annotations.json",
                              {"format": "multisensor_home", "root": str(tmp_path), "classes": ["Walk"]})
    seq = manifest["sequences"][0]
    assert seq["frames"] == [60, 60]
    assert seq["video_durations"] == [pytest.approx(3.0, abs=1e-6)] * 2   # the timestamps' span
    assert seq["duration"] == pytest.approx(3.0, abs=0.01)
    write_json(tmp_path / "manifest.json", manifest)
    decode_manifest(tmp_path / "manifest.json", tmp_path / "frames.h5", {"fps": 2.5, "size": 32})
    with h5py.File(tmp_path / "frames.h5") as f:
        frames = f["seq0"]["frames"][()]
    assert frames.shape[:2] == (2, 8)
    for view in frames:
        assert [read_index(f) for f in view] == VFR_EXPECTED
    # a sequence without the manifest's frame times (vicokd predict's) reads them from the files
    from vicokd.data.decode import decode_sequence

    by_hand = {key: value for key, value in seq.items() if key != "frame_times"}
    np.testing.assert_array_equal(decode_sequence(tmp_path, by_hand, 2.5, 32), frames)


def test_nearest_frames_of_a_variable_rate_stream():
    times = FrameTimes(ticks=tuple(VFR_PTS_MS), time_base=Fraction(1, 1000))
    assert nearest_frames(times, 8, 2.5).tolist() == VFR_EXPECTED
    assert nearest_frames(times, 10, 2.5).tolist()[-2:] == [59, 59]      # after the last frame


@pytest.mark.parametrize("fps, tb, frames", [(25, Fraction(1, 12800), 300), (30, Fraction(1, 15360), 900),
                                             (Fraction(30000, 1001), Fraction(1, 30000), 5000),
                                             (Fraction(24000, 1001), Fraction(1, 24000), 5000),
                                             (Fraction(60000, 1001), Fraction(1, 60000), 3000),
                                             (12.5, Fraction(1, 12800), 200), (24, Fraction(1, 12288), 77)])
def test_constant_rate_timestamps_pick_the_frames_the_frame_rate_picks(fps, tb, frames):
    """A constant-rate file gives the frames it gave before timestamps were read."""
    step = 1 / (Fraction(fps) * tb)
    assert step.denominator == 1
    times = FrameTimes(ticks=tuple(int(k * step) for k in range(frames)), time_base=tb)
    count = frame_count(frames / float(fps) + 1.0, 2.5)               # past the end too
    np.testing.assert_array_equal(nearest_frames(times, count, 2.5),
                                  source_indices(count, 2.5, float(fps), frames))


def test_a_time_halfway_between_two_frames_takes_the_later_one():
    """6.25 fps puts every other decoded time halfway between two frames: exact arithmetic takes
    the later one every time (source_indices' floats round 9.2 s * 6.25 = 57.5 down)."""
    times = FrameTimes(ticks=tuple(4 * k for k in range(100)), time_base=Fraction(1, 25))
    idx = nearest_frames(times, 25, 2.5)
    assert idx[1] == 3 and idx[23] == 58
    assert all(k % 5 in (0, 3) for k in idx.tolist())           # 2.5 k exactly, or k + 0.5 up


@pytest.mark.parametrize("ticks", [(0, 512, 1024, 1536), (0, 200, 400, 420, 440), (0,), (0, 3, 5)])
def test_frame_times_go_into_the_manifest_and_back(ticks):
    times = FrameTimes(ticks=ticks, time_base=Fraction(1, 12800))
    stored = json.loads(json.dumps(times.to_json()))
    assert FrameTimes.from_json(stored) == times
    assert ("step" in stored) == (ticks == (0, 512, 1024, 1536))      # constant rate: 3 numbers


def test_frames_without_or_with_shared_timestamps_are_refused():
    with pytest.raises(VicokdError, match=r"v\.mp4: frames without presentation timestamps"):
        frame_times_of("v.mp4", [0, None, 80], Fraction(1, 1000))
    with pytest.raises(VicokdError, match=r"v\.mp4: two frames share the timestamp 0\.040 s"):
        frame_times_of("v.mp4", [0, 80, 40, 40], Fraction(1, 1000))
    # B-frames: packets come out of order; times are relative to the first frame
    assert frame_times_of("v.mp4", [500, 580, 540], Fraction(1, 1000)).ticks == (0, 40, 80)


class _Decoder:
    """What check_decoder_times reads of a decord VideoReader."""

    def __init__(self, starts):
        self.starts = np.asarray(starts, dtype=np.float32)

    def __len__(self):
        return len(self.starts)

    def get_frame_timestamp(self, idx):
        return np.stack([self.starts[idx], self.starts[idx] + 0.02], axis=1)


def test_the_decoder_must_number_the_frames_at_the_containers_times():
    times = FrameTimes(ticks=(0, 200, 400, 420), time_base=Fraction(1, 1000))
    check_decoder_times("v.mp4", _Decoder([0.5, 0.7, 0.9, 0.92]), times)  # offset: relative times
    with pytest.raises(VicokdError, match="the decoder sees 3 frames, the container lists 4"):
        check_decoder_times("v.mp4", _Decoder([0, 0.2, 0.4]), times)
    with pytest.raises(VicokdError, match=r"frame 3 is shown at 0\.420 s by the container, 0\.600 s"):
        check_decoder_times("v.mp4", _Decoder([0, 0.2, 0.4, 0.6]), times)
