"""Writes of artifacts: stale temporary files of killed writers are removed, and a full disk or
a read-only folder stops a job with one line naming the file (no traceback)."""

from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vicokd.errors import VicokdError
from vicokd.runner import run_script
from vicokd.storage import atomic_h5, atomic_path, write_dataset, write_json


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

    def mount(kind):
        point = tmp_path / kind
        point.mkdir()
        opts = "size=64k" + (",ro" if kind == "ro" else "")
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
