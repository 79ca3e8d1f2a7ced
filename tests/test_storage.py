"""Writes of artifacts: stale temporary files of killed writers are removed, and a full disk or
a read-only folder stops a job with one line naming the file (no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import prepare_workdir, run_snakemake, workflow_env
from vicokd.errors import VicokdError
from vicokd.runner import run_script
from vicokd.storage import (atomic_h5, atomic_path, open_h5, read_json, unwritable, write_dataset,
                            write_json)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    """A kill during torch.save left 0-byte .last.pt.tmp<pid> files behind for good."""
    stale = tmp_path / f".last.pt.tmp{dead_pid()}"
    stale.write_bytes(b"")
    running = tmp_path / f".last.pt.tmp{os.getppid()}"        # a writer still at work
    running.write_bytes(b"")
    other = tmp_path / f".other.pt.tmp{dead_pid()}"           # another file's: not ours to judge
    other.write_bytes(b"")
    with atomic_path(tmp_path / "last.pt") as tmp:
        torch.save({"epoch": 1}, tmp)
    assert (tmp_path / "last.pt").is_file()
    assert not stale.exists() and running.exists() and other.exists()


@pytest.fixture()
def mounted(tmp_path):
    """Mount a tiny tmpfs (root only): mounted("full") or mounted("ro") is its folder."""
    points = []

    def mount(kind, size="64k", at=None):
        point = at or tmp_path / kind
        point.mkdir(parents=True)
        opts = f"size={size}" + (",ro" if kind == "ro" else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", "-l", str(point)], check=False)   # lazy: h5py may hold a file


WRITERS = {
    "hdf5": lambda d: _h5(d / "frames.h5"),
    "json": lambda d: write_json(d / "metrics.json", {"x": "y" * 200_000}),
    "torch": lambda d: _torch(d / "model.pt"),
}


def _h5(path):
    with atomic_h5(path, "frames") as f:
        write_dataset(f, "x", np.ones((200, 200, 3)), ("a", "b", "c"))


def _torch(path):
    with atomic_path(path) as tmp:
        torch.save({"w": torch.ones(100_000)}, tmp)


@pytest.mark.parametrize("kind, fault", [("full", "no space left on device"),
                                         ("ro", "read-only file system")])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_full_disk_or_read_only_folder_is_one_line(mounted, capfd, kind, fault, writer):
    folder = mounted(kind)
    with pytest.raises(VicokdError) as err:
        WRITERS[writer](folder)
    assert fault in str(err.value) and str(folder) in str(err.value)
    assert not os.listdir(folder)                          # nothing half-written
    # and through a rule's script: exit status 2 and the one line on stderr
    job = SimpleNamespace(log=[], threads=1)
    with pytest.raises(SystemExit) as code:
        run_script(job, lambda _: WRITERS[writer](folder))
    assert code.value.code == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if "vicokd: error:" in line]
    assert len(lines) == 1 and fault in lines[0], lines


def test_a_read_only_results_folder_is_one_line_also_for_a_plain_write(mounted, capfd):
    folder = mounted("ro")

    def main(_):
        (folder / "log.txt").write_text("x")             # a write outside atomic_path

    with pytest.raises(SystemExit):
        run_script(SimpleNamespace(log=[], threads=1), main)
    err = capfd.readouterr().err
    assert f"vicokd: error: {folder / 'log.txt'}: cannot be written: read-only file system" in err
    assert "Traceback" not in err


DECODE_ON = """
import sys
from types import SimpleNamespace
from vicokd.data.decode import main
from vicokd.runner import run_script
job = SimpleNamespace(log=[], threads=1, input=SimpleNamespace(manifest=sys.argv[1]),
                      output=[sys.argv[2]], params=SimpleNamespace(decode={"fps": 2.5, "size": 128}))
run_script(job, main)
"""


def test_a_disk_that_fills_during_decode_is_one_line_and_a_clean_exit(mounted, tmp_path):
    """On a 3 MB tmpfs as results/, decode printed h5py's "Exception ignored" tracebacks (the
    failed write surfaced in destructors), then the one line, then died of SIGSEGV."""
    from mediafiles import write_mp4
    from vicokd.data.manifest import build_manifest

    data = tmp_path / "data"
    entries = []
    for s in range(2):                          # 2 x 3 views x 25 frames of 128 px: ~7 MB
        entry = {"id": f"seq{s}", "tricks": [{"labels": ["Walk"], "start": 1.0, "end": 3.0}]}
        for v in range(3):
            write_mp4(data / f"seq{s}_cam{v}.mp4", 50, 5, size=64)
            entry[f"video_url_{v + 1}"] = f"seq{s}_cam{v}.mp4"
        entries.append(entry)
    (data / "annotations.json").write_text(json.dumps(entries))
    manifest = build_manifest("home1", data / "annotations.json",
                              {"format": "multisensor_home", "root": str(data), "classes": ["Walk"]})
    write_json(tmp_path / "manifest.json", manifest)
    results = mounted("full", size="3m")
    out = results / "home1" / "frames.h5"
    proc = subprocess.run([sys.executable, "-c", DECODE_ON, str(tmp_path / "manifest.json"), str(out)],
                          capture_output=True, text=True, env=workflow_env())
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = [line for line in proc.stderr.splitlines() if "vicokd: error:" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"vicokd: error: {out}: cannot be written: no space left on device")
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert os.listdir(results / "home1") == []                # nothing half-written


def test_a_read_only_results_folder_stops_the_workflow_before_any_job(mounted, tmp_path):
    """Snakemake failed with a ~45-line traceback (remove_existing_output) on the first job."""
    (tmp_path / "work").mkdir()
    work = prepare_workdir(tmp_path / "work")
    mounted("ro", at=work / "results")
    proc = run_snakemake(work, "results/home1/manifest.json", check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["vicokd: error: results/: cannot be written: read-only file system"], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (work / "resources").exists()                  # no job ran (synthesize first)
    dry = run_snakemake(work, "results/home1/manifest.json", extra_args=("-n",))  # writes nothing
    assert "synthesize" in dry.stdout


def test_unwritable_names_the_fault_or_none(mounted, tmp_path):
    assert unwritable(tmp_path / "not" / "yet") is None         # it would be made in tmp_path
    folder = mounted("ro")
    assert unwritable(folder) == "read-only file system"
    assert unwritable(folder / "results" / "home1") == "read-only file system"


@pytest.mark.parametrize("text, reason", [('{"a": "x\ty"}', "Invalid control character at line 1, column 9"),
                                          ('{"a": "x', "Unterminated string starting at line 1, column 7"),
                                          ('{"a": 1,\n}', "Expecting property name enclosed in double quotes at line 2, column 1")])
def test_a_malformed_json_file_is_one_line_without_at_at(tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(VicokdError) as err:
        read_json(path)
    assert str(err.value).startswith(f"{path}: not valid JSON ({reason}")
    assert "at at" not in str(err.value)


def test_a_file_of_another_kind_is_named_with_the_right_article(tmp_path):
    with atomic_h5(tmp_path / "features.h5", "features"):
        pass
    with pytest.raises(VicokdError, match=r"features\.h5: expected an 'audio' file, found kind='features'"):
        open_h5(tmp_path / "features.h5", "audio")
    with pytest.raises(VicokdError, match=r"expected a 'frames' file, found kind='features'"):
        open_h5(tmp_path / "features.h5", "frames")
