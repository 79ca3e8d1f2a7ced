"""The manifest's probing of durations and its check that every sequence of a home has the same
cameras (test_annotations.py has the readers and the trimming)."""

import json

import pytest

from mediafiles import write_mp4
from vicokd.data.manifest import build_manifest
from vicokd.errors import VicokdError

DATASET = {"format": "multisensor_home", "classes": ["Walk"]}


def sequence(sid: str, views: int) -> dict:
    entry = {"id": sid, "tricks": []}
    entry.update({f"video_url_{v + 1}": f"{sid}_cam{v + 1}.mp4" for v in range(views)})
    return entry


def test_a_sequence_with_another_number_of_views_is_named_with_its_annotation_file(tmp_path):
    """It was caught only at the teacher, naming features.h5; no video is needed to see it."""
    ann = tmp_path / "home1.json"
    ann.write_text(json.dumps([sequence("a", 3), sequence("b", 2), sequence("c", 3)]))
    with pytest.raises(VicokdError) as err:
        build_manifest("home1", ann, {**DATASET, "root": str(tmp_path)})
    assert str(err.value) == (f"{ann}: sequence 'b' has 2 view(s), 2 of the home's 3 sequences "
                              f"have 3; every sequence of a home needs the same cameras")


def test_the_view_count_check_names_the_file_of_a_list_that_holds_the_odd_sequence(tmp_path):
    train, test = tmp_path / "train.json", tmp_path / "test.json"
    train.write_text(json.dumps([sequence("a", 4), sequence("b", 4)]))
    test.write_text(json.dumps([sequence("c", 4), sequence("d", 5)]))
    with pytest.raises(VicokdError, match=f"^{test}: sequence 'd' has 5 view"):
        build_manifest("home1", [train, test], {**DATASET, "root": str(tmp_path)})


def test_durations_come_from_the_container_and_the_usable_length_is_the_shortest_track(tmp_path):
    """The probe reads the headers (no decoding): 4 s of video at 25 fps with 3.5 s of audio,
    and 4 s of video at 30000/1001 fps (120 frames) with 4.2 s of audio."""
    from fractions import Fraction

    write_mp4(tmp_path / "s_cam1.mp4", 100, 25, audio_seconds=3.5)
    write_mp4(tmp_path / "s_cam2.mp4", 120, Fraction(30000, 1001), audio_seconds=4.2)
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps([sequence("s", 2)]))
    seq = build_manifest("home1", ann, {**DATASET, "root": str(tmp_path)})["sequences"][0]
    assert seq["frames"] == [100, 120]
    assert seq["fps"] == [pytest.approx(25.0), pytest.approx(30000 / 1001)]
    assert seq["video_durations"] == [pytest.approx(4.0, abs=1e-6), pytest.approx(120 * 1001 / 30000, abs=1e-6)]
    # the header's audio length: what was encoded, to within the AAC encoder's priming
    assert seq["audio_durations"] == [pytest.approx(3.5, abs=0.07), pytest.approx(4.2, abs=0.07)]
    assert seq["duration"] == pytest.approx(min(3.5, 4.2, 4.0, 120 * 1001 / 30000), abs=0.07)
