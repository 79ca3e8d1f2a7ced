"""Both annotation readers, the manifest's checks and the labels rule."""

import json

import numpy as np
import pytest

from mediafiles import write_mp4
from vicokd.data.annotations import read_annotations
from vicokd.data.labels import frame_labels, sequence_labels
from vicokd.data.manifest import build_manifest
from vicokd.errors import VicokdError

CLASSES = ["Walk", "Sit", "Cough"]


def write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def test_multisensor_home_reader(tmp_path):
    p = write(tmp_path, "a.json", [
        {"video_url_2": "h/s0_2.mp4", "video_url_1": "h/s0_1.mp4",
         "tricks": [{"labels": ["Walk"], "start": 0, "end": 2.5}, {"labels": ["Cough"], "start": 1, "end": 1.5}]},
        {"id": "named", "video_url_1": "h/s1_1.mp4", "tricks": []},
    ])
    seqs = read_annotations(p, "multisensor_home", CLASSES)
    assert seqs[0].id == "s0_1"                      # no id: the stem of the first view
    assert seqs[0].views == ["h/s0_1.mp4", "h/s0_2.mp4"]  # ordered by view number
    assert [(s.label, s.start, s.end) for s in seqs[0].segments] == [("Walk", 0, 2.5), ("Cough", 1, 1.5)]
    assert seqs[1].id == "named"


def test_activitynet_reader_groups_views_by_pattern(tmp_path):
    db = {"database": {
        "recid000_front": {"subset": "training", "annotations": [{"segment": [0.5, 3.0], "label": "Sit"}]},
        "recid000_back": {"subset": "training", "annotations": [{"segment": [0.5, 3.0], "label": "Sit"}]},
        "recid001_front": {"subset": "validation", "annotations": [{"segment": [1, 2], "label": "Walk"}]},
    }}
    seqs = read_annotations(write(tmp_path, "b.json", db), "activitynet", CLASSES,
                            r"^(?P<seq>.+)_(?P<view>[^_]+)$")
    assert [s.id for s in seqs] == ["recid000", "recid001"]
    assert seqs[0].view_names == ["back", "front"] and seqs[0].views == ["recid000_back.mp4", "recid000_front.mp4"]
    assert len(seqs[0].segments) == 1                 # the views share one labelled segment


@pytest.mark.parametrize("item, fault", [
    ({"path": 5}, "'recid000_front' path is not a file name (5)"),
    ({"video": ""}, "'recid000_front' video is not a file name ('')"),
    ({"path": ["a.mp4"]}, "path is not a file name (['a.mp4'])"),
])
def test_activitynet_view_file_must_be_a_file_name(tmp_path, item, fault):
    """`"path": 5` passed the reader and failed later, far from the file that was wrong."""
    db = {"database": {"recid000_front": {"annotations": [], **item}}}
    with pytest.raises(VicokdError) as err:
        read_annotations(write(tmp_path, "b.json", db), "activitynet", CLASSES)
    assert str(err.value).startswith(f"{tmp_path / 'b.json'}: ") and fault in str(err.value)


@pytest.mark.parametrize("content, fault", [
    ("{not json", "not valid JSON"),
    (json.dumps({"a": 1}), "expected a JSON list"),
    (json.dumps([{"tricks": []}]), "no video_url_N"),
    (json.dumps([{"video_url_1": "x.mp4", "tricks": [{"start": 0, "end": 1}]}]), "has no 'labels'"),
    (json.dumps([{"video_url_1": "x.mp4", "tricks": [{"labels": ["Walk"], "start": 2, "end": 1}]}]), "start 2.0 and end 1.0"),
    (json.dumps([{"video_url_1": "x.mp4", "tricks": [{"labels": ["Dance"], "start": 0, "end": 1}]}]), "'Dance', which is not in dataset.classes"),
])
def test_bad_annotations_give_one_line_naming_the_file(tmp_path, content, fault):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(VicokdError) as err:
        read_annotations(p, "multisensor_home", CLASSES)
    assert "bad.json" in str(err.value) and fault in str(err.value) and "\n" not in str(err.value)


def test_manifest_trims_views_to_the_shortest_and_clips_segments(tmp_path, caplog):
    write_mp4(tmp_path / "h" / "s_1.mp4", 100, 25)      # 4.0 s
    write_mp4(tmp_path / "h" / "s_2.mp4", 75, 25)       # 3.0 s
    ann = write(tmp_path, "a.json", [{"id": "s", "video_url_1": "h/s_1.mp4", "video_url_2": "h/s_2.mp4",
                                      "tricks": [{"labels": ["Walk"], "start": 1.0, "end": 3.8},
                                                 {"labels": ["Sit"], "start": 3.5, "end": 3.9}]}])
    dataset = {"root": str(tmp_path), "format": "multisensor_home", "classes": CLASSES}
    m = build_manifest("h", ann, dataset)
    seq = m["sequences"][0]
    assert seq["duration"] == pytest.approx(3.0)
    assert seq["segments"] == [{"label": "Walk", "start": 1.0, "end": pytest.approx(3.0)}]
    assert "trimmed to the shortest" in caplog.text and "clipped" in caplog.text and "dropped" in caplog.text


def test_manifest_names_a_missing_video(tmp_path):
    ann = write(tmp_path, "a.json", [{"video_url_1": "gone.mp4", "tricks": []}])
    with pytest.raises(VicokdError, match="gone.mp4: video file not found"):
        build_manifest("h", ann, {"root": str(tmp_path), "format": "multisensor_home", "classes": CLASSES})


def test_frame_labels_follow_the_inclusive_time_rule():
    segs = [{"label": "Walk", "start": 0.4, "end": 1.2}, {"label": "Cough", "start": 0.5, "end": 0.7}]
    y = frame_labels(segs, CLASSES, 5, 2.5)               # frames at 0, 0.4, 0.8, 1.2, 1.6 s
    assert y[:, 0].tolist() == [0, 1, 1, 1, 0]
    assert y[:, 2].tolist() == [0, 0, 0, 0, 0]            # falls between two frames
    assert sequence_labels(segs, CLASSES).tolist() == [1, 0, 1]
    assert y.dtype == np.uint8


def test_frame_labels_rounded_rule_is_the_authors_index_range():
    segs = [{"label": "Walk", "start": 0.4, "end": 1.2}, {"label": "Cough", "start": 0.5, "end": 0.7}]
    y = frame_labels(segs, CLASSES, 5, 2.5, rule="rounded")
    assert y[:, 0].tolist() == [0, 1, 1, 1, 0]             # round(1.0)=1 .. round(3.0)=3
    # round(1.25)=1 .. round(1.75)=2: frames the time rule leaves empty
    assert y[:, 2].tolist() == [0, 1, 1, 0, 0]
    # Python's round takes halves to even: 0.2 s -> 0.5 -> frame 0, 0.6 s -> 1.5 -> frame 2
    half = frame_labels([{"label": "Walk", "start": 0.2, "end": 0.6}], CLASSES, 5, 2.5, rule="rounded")
    assert half[:, 0].tolist() == [1, 1, 1, 0, 0]
    assert frame_labels([{"label": "Walk", "start": 0.2, "end": 0.6}], CLASSES, 5, 2.5)[:, 0].tolist() \
        == [0, 1, 0, 0, 0]
    with pytest.raises(VicokdError, match="labels.rule"):
        frame_labels(segs, CLASSES, 5, 2.5, rule="nearest")


def test_a_home_may_list_several_annotation_files(tmp_path):
    from vicokd.data.annotations import read_annotation_files
    a = write(tmp_path, "train_data.json", [{"video_url_1": "r1/r1-View1-Part1.mp4", "tricks": []}])
    b = write(tmp_path, "test_data.json", [{"video_url_1": "r2/r2-View1-Part1.mp4", "tricks": []}])
    assert [s.id for s in read_annotation_files([a, b], "multisensor_home", CLASSES)] == \
        ["r1-View1-Part1", "r2-View1-Part1"]
    with pytest.raises(VicokdError, match="test_data.json: sequence id 'r1-View1-Part1' is also in"):
        read_annotation_files([a, write(tmp_path, "test_data.json", [
            {"video_url_1": "r1/r1-View1-Part1.mp4", "tricks": []}])], "multisensor_home", CLASSES)


def test_a_home_folder_of_its_own_holds_its_videos(tmp_path):
    """dataset.home_dirs: the published homes are one folder each, their video paths relative to it."""
    write_mp4(tmp_path / "MultiSensor-Home1" / "01" / "00-View1-Part1.mp4", 50, 25)
    ann = write(tmp_path / "MultiSensor-Home1", "train.json",
                [{"video_url_1": "01/00-View1-Part1.mp4", "tricks": []}])
    dataset = {"root": str(tmp_path), "format": "multisensor_home", "classes": CLASSES,
               "home_dirs": {"home1": "MultiSensor-Home1"}}
    m = build_manifest("home1", [ann], dataset)
    assert m["root"] == str(tmp_path / "MultiSensor-Home1")
    assert m["sequences"][0]["id"] == "00-View1-Part1"
    assert m["sequences"][0]["duration"] == pytest.approx(2.0)
