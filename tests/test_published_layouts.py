"""The datasets as their authors publish them, read without rewriting anything: MM-Office as the
MultiASL repository ships it (gt.json, split_train.txt / split_test.txt, a clip's cameras as
separate files, its microphones as wav files), ActivityNet-style ids as clips, weak labels, and
MultiSensor-Home's two homes. Every annotation file here is written by the test, in the
published schema (no file of theirs is copied)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO
from mediafiles import write_mp4, write_wav
from vicokd.config import fill
from vicokd.data.annotations import read_annotations, read_home, read_id_list
from vicokd.data.labels import labels_manifest
from vicokd.data.manifest import build_manifest, check_annotation_files
from vicokd.data.spectrogram import spectrogram_manifest
from vicokd.data.split import split_home
from vicokd.errors import VicokdError
from vicokd.storage import write_json

MM = yaml.safe_load((REPO / "config" / "mm-office.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
MM_CLASSES = MM["dataset"]["classes"]


def gt_json(root: Path, clips: dict) -> Path:
    """gt.json in the MultiASL schema: {"database": {clip: {"subset", "annotations": [...]}}};
    a label given as a string has no times ("segment": null), a (label, s, e) has."""
    db = {}
    for clip, labels in clips.items():
        anns = [{"segment": None, "label": x} if isinstance(x, str) else
                {"segment": [x[1], x[2]], "label": x[0]} for x in labels]
        db[clip] = {"subset": "train", "annotations": anns}
    path = root / "gt.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"database": db}))
    return path


def camera_files(root: Path, half: str, clip: str, recid_scene: str = "s5", cameras: int = 4,
                 make=None) -> list[str]:
    """The camera files of one clip in MM-Office's naming, split{k}_id{sensor}_s{scene}_{clip}.mp4."""
    names = []
    for cam in reversed(range(cameras)):             # created out of order on purpose
        rel = f"{half}/split0_id{cam:02d}_{recid_scene}_{clip}.mp4"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if make is None:
            (root / rel).write_bytes(b"")            # the reader does not open them
        else:
            make(root / rel, cam)
        names.append(rel)
    return sorted(names)


def mm_dataset(root: Path, **over) -> dict:
    return fill("dataset", {**MM["dataset"], "root": str(root), **over})


def test_mm_office_clip_ids_are_sequences_and_their_cameras_the_views(tmp_path):
    root = tmp_path / "MM-Office"
    gt = gt_json(root, {"recid000_0": ["chat", "sit down"], "recid000_1": ["exit", "chat"],
                        "recid020_0": ["enter"], "recid008_front": [("enter", 6.0, 14.0)]})
    (root / "split_train.txt").write_text("recid000_0\nrecid000_1\n\n")
    (root / "split_test.txt").write_text("recid020_0\n")
    views = camera_files(root, "train", "recid000_0")
    camera_files(root, "train", "recid000_1")
    camera_files(root, "test", "recid020_0")
    # files of other clips whose names contain the id must not be taken
    (root / "train" / "split0_id00_s5_recid000_01.mp4").write_bytes(b"")
    (root / "train" / "split0_id00_s5_xrecid000_0.mp4").write_bytes(b"")
    seqs = read_home([gt], mm_dataset(root), root,
                     [root / "split_train.txt", root / "split_test.txt"])
    assert [s.id for s in seqs] == ["recid000_0", "recid000_1", "recid020_0"]  # not recid008_front
    first = seqs[0]
    assert first.views == views == [f"train/split0_id{c:02d}_s5_recid000_0.mp4" for c in range(4)]
    assert first.view_names == [Path(v).stem for v in views]
    assert first.segments == [] and first.clip_labels == ["chat", "sit down"]
    assert not first.has_frame_labels
    assert seqs[2].views[0].startswith("test/")
    assert all(s.audio == [] for s in seqs)          # no microphone files here


def test_mm_office_clip_faults_are_one_line(tmp_path):
    root = tmp_path / "MM-Office"
    gt = gt_json(root, {"recid000_0": ["chat"], "recid000_1": ["exit"]})
    camera_files(root, "train", "recid000_0")
    with pytest.raises(VicokdError, match=r"no camera file of clip 'recid000_1' \(dataset.clip_files"):
        read_home([gt], mm_dataset(root), root)
    camera_files(root, "train", "recid000_1")
    camera_files(root, "test", "recid000_1")         # the same clip in both halves' folders
    with pytest.raises(VicokdError, match="clip 'recid000_1': video files under more than one"):
        read_home([gt], mm_dataset(root), root)
    (root / "split_train.txt").write_text("recid000_0\nrecid999_0\n")
    with pytest.raises(VicokdError, match=r"split_train.txt: clip 'recid999_0' is not in the annotations"):
        read_home([gt], mm_dataset(root), root, [root / "split_train.txt"])


def test_id_lists_are_plain_text(tmp_path):
    p = tmp_path / "split_test.txt"
    p.write_text("recid010_0\n  recid010_1  \n\nrecid030_0")       # no final line break
    assert read_id_list(p) == ["recid010_0", "recid010_1", "recid030_0"]
    p.write_text("recid010_0\nrecid010_0\n")
    with pytest.raises(VicokdError, match=r"split_test.txt: sequence id 'recid010_0' appears twice \(line 2\)"):
        read_id_list(p)
    p.write_text("a/b\n")
    with pytest.raises(VicokdError, match="contains '/'"):
        read_id_list(p)


def test_activitynet_entries_are_clips_and_a_pattern_may_not_pool_different_ones(tmp_path):
    db = {"database": {
        "recid008_front": {"subset": "test", "annotations": [{"segment": [6.0, 14.0], "label": "enter"}]},
        "recid008_back": {"subset": "test", "annotations": [{"segment": [2.0, 9.0], "label": "exit"}]},
    }}
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(db))
    seqs = read_annotations(p, "activitynet", MM_CLASSES)          # default: no view pattern
    assert [(s.id, s.views, s.has_frame_labels) for s in seqs] == [
        ("recid008_back", ["recid008_back.mp4"], True), ("recid008_front", ["recid008_front.mp4"], True)]
    # the pattern that read front/back as views pooled two clips: refused, in one line
    with pytest.raises(VicokdError) as err:
        read_annotations(p, "activitynet", MM_CLASSES, r"^(?P<seq>.+)_(?P<view>[^_]+)$")
    assert "annotations differ" in str(err.value) and "view_pattern: null" in str(err.value)


def test_a_view_pattern_with_quantifiers_groups_views_of_one_clip(tmp_path):
    ann = [{"segment": [1.0, 2.0], "label": "eat"}, {"segment": None, "label": "phone"}]
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"database": {f"rec{r:03d}_cam{c}": {"annotations": ann}
                                          for r in range(2) for c in range(3)}}))
    seqs = read_annotations(p, "activitynet", MM_CLASSES, r"(?P<seq>rec\d{3})_(?P<view>cam\d{1})")
    assert [s.id for s in seqs] == ["rec000", "rec001"]
    assert seqs[0].view_names == ["cam0", "cam1", "cam2"]
    assert seqs[0].clip_labels == ["phone"] and not seqs[0].has_frame_labels


@pytest.mark.parametrize("fmt, content", [
    ("activitynet", {"database": {"rec/1": {"annotations": []}}}),
    ("multisensor_home", [{"id": "a/b", "video_url_1": "x.mp4", "tricks": []}]),
])
def test_a_sequence_id_with_a_slash_is_refused(tmp_path, fmt, content):
    """issue 22 item 7: such an id nested HDF5 groups and failed in split with a KeyError."""
    p = tmp_path / "a.json"
    p.write_text(json.dumps(content))
    with pytest.raises(VicokdError) as err:
        read_annotations(p, fmt, MM_CLASSES)
    assert str(err.value).startswith(f"{p}: sequence id ") and "contains '/'" in str(err.value)


def test_weak_labels_in_both_formats(tmp_path):
    p = tmp_path / "msh.json"
    p.write_text(json.dumps([{"video_url_1": "a-View1-Part1.mp4", "tricks": [
        {"labels": ["eat"], "start": 1, "end": 2}, {"labels": ["phone"]}]}]))
    seq, = read_annotations(p, "multisensor_home", MM_CLASSES)
    assert seq.clip_labels == ["phone"] and [s.label for s in seq.segments] == ["eat"]
    assert not seq.has_frame_labels
    p.write_text(json.dumps({"database": {"x": {"annotations": [{"segment": None, "label": "dance"}]}}}))
    with pytest.raises(VicokdError, match="'dance', which is not in dataset.classes"):
        read_annotations(p, "activitynet", MM_CLASSES)
    p.write_text(json.dumps({"database": {"x": {"annotations": [{"segment": [1], "label": "eat"}]}}}))
    with pytest.raises(VicokdError, match=r"segment is neither \[start, end\] nor null"):
        read_annotations(p, "activitynet", MM_CLASSES)


def office(tmp_path, microphones: bool) -> tuple[Path, Path, list[Path]]:
    """A tiny MM-Office copy with real mp4 files (no audio track) of 3 s and, optionally, 3
    microphone wav files per clip (one 2.6 s long)."""
    root = tmp_path / "MM-Office"
    gt = gt_json(root, {"recid000_0": ["chat", "sit down"], "recid000_1": ["exit"],
                        "recid001_0": [("enter", 0.5, 1.5), ("chat", 1.0, 2.0)]})
    lists = [root / "split_train.txt", root / "split_test.txt"]
    lists[0].write_text("recid000_0\nrecid001_0\n")
    lists[1].write_text("recid000_1\n")
    for clip, half in (("recid000_0", "train"), ("recid001_0", "train"), ("recid000_1", "test")):
        camera_files(root, half, clip, cameras=2,
                     make=lambda path, cam: write_mp4(path, 75, 25, size=32, audio_seconds=0))
        if microphones:
            for mic in range(3):
                write_wav(root / "audio" / half / f"split0_id{mic:02d}_s5_{clip}.wav",
                          2.6 if mic == 1 else 3.2, 48000, 300.0 * (mic + 1))
    return root, gt, lists


def test_mm_office_manifest_labels_and_sound_from_the_microphones(tmp_path):
    root, gt, lists = office(tmp_path, microphones=True)
    m = build_manifest("office", gt, mm_dataset(root), id_lists=lists)
    seqs = {s["id"]: s for s in m["sequences"]}
    assert list(seqs) == ["recid000_0", "recid000_1", "recid001_0"] and m["has_audio"]
    weak = seqs["recid000_0"]
    assert weak["audio_files"] == [f"audio/train/split0_id{k:02d}_s5_recid000_0.wav" for k in range(3)]
    assert weak["audio_durations"] == [pytest.approx(2.6)] * 2       # the shortest microphone
    assert weak["duration"] == pytest.approx(2.6)
    assert not weak["has_frame_labels"] and weak["clip_labels"] == ["chat", "sit down"]
    assert seqs["recid001_0"]["has_frame_labels"]
    manifest = tmp_path / "manifest.json"
    write_json(manifest, m)
    labels_manifest(manifest, tmp_path / "labels.h5", {"fps": 2.5}, {"rule": "rounded"})
    with h5py.File(tmp_path / "labels.h5") as f:
        assert f.attrs["frame_labelled"] == 1
        g = f["recid000_0"]
        assert not g.attrs["has_frame_labels"] and g["frame_labels"].shape == (7, 12)
        assert not g["frame_labels"][()].any()
        assert [MM_CLASSES[c] for c in np.flatnonzero(g["sequence_labels"][()])] == ["chat", "sit down"]
        strong = f["recid001_0"]
        assert strong.attrs["has_frame_labels"]
        enter = strong["frame_labels"][:, MM_CLASSES.index("enter")]
        assert enter.tolist() == [0, 1, 1, 1, 1, 0, 0]      # round(0.5 * 2.5) .. round(1.5 * 2.5)
    spectrogram_manifest(manifest, tmp_path / "audio.h5", {"sample_rate": 16000, "mel_bins": 32},
                         {"fps": 2.5})
    with h5py.File(tmp_path / "audio.h5") as f:
        fb = f["recid000_0"]["fbank"][()]
        assert fb.shape[:2] == (2, 7)
        np.testing.assert_array_equal(fb[0], fb[1])                  # every view hears the mix
    split = split_home(tmp_path / "labels.h5", tmp_path / "split.json",
                       {"test_size": 0.3, "seed": 0, "allow_empty_class": True},
                       {"train": lists[0], "test": lists[1]}, "activitynet")
    assert (split["train"], split["test"]) == (["recid000_0", "recid001_0"], ["recid000_1"])
    assert split["frame_labelled"] == {"train": 1, "test": 0}


def test_mm_office_without_microphones_says_how_to_run_students_only(tmp_path):
    root, gt, lists = office(tmp_path, microphones=False)
    with pytest.raises(VicokdError, match="no audio track .*set dataset.require_audio: false"):
        build_manifest("office", gt, mm_dataset(root), id_lists=lists)
    m = build_manifest("office", gt, mm_dataset(root, require_audio=False), id_lists=lists)
    assert not m["has_audio"] and "audio_files" not in m["sequences"][0]


def test_the_published_homes_file_names(tmp_path):
    """Home-1 ships train.json / test.json (and all_labels.json), Home-2 train_data.json /
    test_data.json: config/paper.yaml names each home's own, and a copy that names them
    otherwise gets one line saying which key to set."""
    d = PAPER["dataset"]
    assert d["annotations"]["home1"] == ["train.json", "test.json"]
    assert d["annotations"]["home2"] == ["train_data.json", "test_data.json"]
    assert PAPER["split"]["files"]["home2"] == {"train": "train_data.json", "test": "test_data.json"}
    home2 = tmp_path / d["home_dirs"]["home2"]
    home2.mkdir()
    for name in ("train.json", "test.json"):
        (home2 / name).write_text("[]")
    with pytest.raises(VicokdError) as err:
        check_annotation_files([home2 / "train_data.json", home2 / "test_data.json"], "home2")
    msg = str(err.value)
    assert msg.startswith(f"{home2 / 'train_data.json'}: annotation file not found")
    assert "test.json, train.json" in msg and "dataset.annotations.home2" in msg
    with pytest.raises(VicokdError, match="check dataset.root and dataset.home_dirs.home1"):
        check_annotation_files([tmp_path / "nowhere" / "train.json"], "home1")


# --- the workflow's view of these settings (dry runs: seconds) ------------------------------------

def dry_run(work: Path, target: str, config: dict) -> str:
    from conftest import prepare_workdir, run_snakemake

    prepare_workdir(work)
    path = work / "over.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake(work, target, extra_args=["-n"], config=path)
    return proc.stdout + proc.stderr


def test_a_view_pattern_with_a_quantifier_reaches_the_split_job(tmp_path):
    """It crashed with Snakemake's WildcardError: the pattern was a plain-string param."""
    out = dry_run(tmp_path, "results/home1/split.json",
                  {"dataset": {"view_pattern": r"(?P<seq>s\d{3})_(?P<view>\w+)"}})
    assert "WildcardError" not in out and "rule split" in out


def test_without_audio_the_teacher_reads_no_audio_and_a_note_says_so(tmp_path):
    out = dry_run(tmp_path, "results/home1/multiasl/teacher/metrics.json",
                  {"dataset": {"require_audio": False}, "model": {"encoders": "finetune"}})
    teacher = out[out.index("rule teacher:"):]
    teacher = teacher[:teacher.index("\n\n")]
    assert "frames.h5" in teacher and "audio.h5" not in teacher
    assert "rule spectrogram" not in out
    assert "dataset.require_audio is false: the teachers and the distilling students need audio" in out


def test_paper_yaml_reads_both_homes_as_published(tmp_path):
    """Home-1 (train.json / test.json) and Home-2 (train_data.json / test_data.json), each in its
    folder of session subfolders of {id}-View{n}-Part{p}.mp4: config/paper.yaml's dataset and
    split settings read both without edits, to their official splits."""
    dataset = fill("dataset", {**PAPER["dataset"], "root": str(tmp_path)})
    classes = dataset["classes"]
    for env in ("home1", "home2"):
        home = tmp_path / dataset["home_dirs"][env]
        files = PAPER["split"]["files"][env]
        for k, half in enumerate(("train", "test")):
            entries = []
            for rec in range(2):
                rid = f"{k}{rec}"
                entry = {f"video_url_{v}": f"0{rec + 1}/{rid}-View{v}-Part1.mp4" for v in (1, 2)}
                for v in (1, 2):
                    write_mp4(home / entry[f"video_url_{v}"], 25, 25, size=32, height=24)
                entry["tricks"] = [{"labels": [classes[rec]], "start": 0.1, "end": 0.6}]
                entries.append(entry)
            (home / files[half]).write_text(json.dumps(entries))
        paths = [home / name for name in PAPER["dataset"]["annotations"][env]]
        m = build_manifest(env, paths, dataset)
        assert [s["id"] for s in m["sequences"]] == \
            ["00-View1-Part1", "01-View1-Part1", "10-View1-Part1", "11-View1-Part1"]
        assert all(s["has_frame_labels"] and len(s["views"]) == 2 for s in m["sequences"])
        write_json(tmp_path / f"{env}.json", m)
        labels_manifest(tmp_path / f"{env}.json", tmp_path / f"{env}.h5", {"fps": 2.5})
        split = split_home(tmp_path / f"{env}.h5", tmp_path / f"{env}-split.json",
                           {"allow_empty_class": True},
                           {half: home / files[half] for half in ("train", "test")})
        assert split["train"] == ["00-View1-Part1", "01-View1-Part1"]
        assert split["test"] == ["10-View1-Part1", "11-View1-Part1"]
