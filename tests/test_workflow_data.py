"""The data stages end to end through snakemake, on a small dataset in the MultiSensor-Home format."""

import json
import os
import re
import shutil

import h5py
import numpy as np
import pytest
import yaml

from conftest import prepare_workdir, run_snakemake
from mediafiles import write_mp4

CLASSES = ["Walk", "Sit", "Cough"]
pytestmark = pytest.mark.e2e


def make_dataset(root, homes=("home1", "home2"), sequences=8, views=2):
    rng = np.random.default_rng(0)
    annotations = {}
    for home in homes:
        entries = []
        for s in range(sequences):
            entry = {"id": f"{home}_s{s}"}
            for v in range(views):
                # the second view is a little shorter: the manifest trims to the shortest
                write_mp4(root / home / f"s{s}_{v + 1}.mp4", 60 + 5 * s - 3 * v, 25, size=64)
                entry[f"video_url_{v + 1}"] = f"{home}/s{s}_{v + 1}.mp4"
            entry["tricks"] = [{"labels": [c], "start": float(rng.uniform(0, 1)), "end": float(rng.uniform(1.5, 3))}
                               for c in CLASSES if rng.random() < 0.6] or [{"labels": ["Walk"], "start": 0, "end": 1}]
            entries.append(entry)
        (root / home / "ann.json").write_text(json.dumps(entries))
        annotations[home] = f"{home}/ann.json"
    return annotations


def write_config(work, annotations):
    cfg = {"dataset": {"format": "multisensor_home", "root": "data", "annotations": annotations,
                       "classes": CLASSES},
           "decode": {"size": 64}, "split": {"allow_empty_class": True},
           "experiments": {"homes": list(annotations)}}
    path = work / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_data_stages_write_the_documented_layout(tmp_path):
    work = prepare_workdir(tmp_path)
    annotations = make_dataset(work / "data")
    config = write_config(work, annotations)
    run_snakemake(work, *[f"results/{h}/{f}" for h in annotations
                           for f in ("split.json", "frames.h5", "audio.h5")], config=config)
    for home in annotations:
        manifest = json.loads((work / "results" / home / "manifest.json").read_text())
        split = json.loads((work / "results" / home / "split.json").read_text())
        assert sorted(split["train"] + split["test"]) == sorted(s["id"] for s in manifest["sequences"])
        with h5py.File(work / "results" / home / "frames.h5") as fr, \
                h5py.File(work / "results" / home / "audio.h5") as au, \
                h5py.File(work / "results" / home / "labels.h5") as lb:
            assert fr.attrs["kind"] == "frames" and "vicokd_version" in fr.attrs
            assert json.loads(fr.attrs["config"])["fps"] == 2.5
            assert "fbank_mean" in au.attrs and "fbank_std" in au.attrs
            for seq in manifest["sequences"]:
                frames = fr[seq["id"]]["frames"]
                fbank = au[seq["id"]]["fbank"]
                y = lb[seq["id"]]["frame_labels"]
                V, T = len(seq["views"]), frames.shape[1]
                assert frames.shape == (V, T, 64, 64, 3) and frames.dtype == np.uint8
                assert fbank.shape[:2] == (V, T) and fbank.shape[3] == 128 and fbank.dtype == np.float16
                assert y.shape == (T, 3) and lb[seq["id"]]["sequence_labels"].shape == (3,)
                # T counts the frames i with i/2.5 s inside the usable (shortest) duration
                assert T == int(np.floor(seq["duration"] * 2.5 - 1e-9)) + 1


def test_a_truncated_video_stops_the_run_with_one_line_and_no_manifest(tmp_path):
    work = prepare_workdir(tmp_path)
    annotations = make_dataset(work / "data", homes=("home1",), sequences=3)
    broken = work / "data" / "home1" / "s1_2.mp4"
    broken.write_bytes(broken.read_bytes()[:500])
    config = write_config(work, annotations)
    proc = run_snakemake(work, "results/home1/manifest.json", config=config, check=False)
    assert proc.returncode != 0
    assert "vicokd: error: data/home1/s1_2.mp4: unreadable or truncated video" in proc.stderr
    assert not (work / "results" / "home1" / "manifest.json").exists()
    assert not list((work / "results" / "home1").glob(".manifest.json.tmp*"))


def test_a_changed_recording_reruns_the_manifest_and_what_reads_it(tmp_path):
    """Real data: the recordings decide a rerun, also one restored with an older modification
    time (a trimmed view stayed trimmed: 'Nothing to be done')."""
    work = prepare_workdir(tmp_path)
    annotations = make_dataset(work / "data", homes=("home1",), sequences=3)
    config = write_config(work, annotations)
    targets = ("results/home1/labels.h5", "results/home1/frames.h5")

    def planned():
        proc = run_snakemake(work, *targets, config=config, extra_args=["-n"])
        return set(re.findall(r"^\s*(?:local)?rule (\w+):", proc.stdout, flags=re.M))

    run_snakemake(work, *targets, config=config)
    assert planned() == set()
    video = work / "data" / "home1" / "s1_1.mp4"
    old = video.stat()
    write_mp4(tmp_path / "trimmed.mp4", 30, 25, size=64)
    shutil.copy(tmp_path / "trimmed.mp4", video)
    os.utime(video, ns=(old.st_atime_ns, old.st_mtime_ns))      # as `cp -p` of a backup
    assert planned() == {"manifest", "decode", "labels"}
    run_snakemake(work, *targets, config=config)
    manifest = json.loads((work / "results" / "home1" / "manifest.json").read_text())
    seq = next(s for s in manifest["sequences"] if s["id"] == "home1_s1")
    assert seq["duration"] == pytest.approx(30 / 25)
    assert planned() == set()
    video.touch()                                                 # a newer file, same bytes
    assert planned() == {"manifest", "decode", "labels"}
