"""`python -m benchmarks gpu`: without a GPU it says so, exits 0 and writes nothing; its code
path (fabricated paper-shaped home, the training loop's loader with workers, pinned memory and
on-device normalisation, teacher and ViCoKD student steps, YOLOv10 masks) runs end to end on the
CPU at a tiny scale, so that the script a GPU run uses is exercised here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import workflow_env

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))            # the benchmarks package


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run")
def test_without_a_gpu_it_says_so_and_writes_nothing(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "gpu", "--out", str(out)], cwd=REPO,
                          env=workflow_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU" in proc.stdout and not out.exists()


@pytest.mark.e2e
def test_its_code_path_runs_on_the_cpu_at_a_tiny_scale(tmp_path):
    from benchmarks import bench_gpu
    out = tmp_path / "gpu.json"
    bench_gpu.main(["--cpu-smoke", "--backbones", "multitsf", "--steps", "1", "--warmup", "1",
                    "--workers", "1", "--out", str(out), "--work", str(tmp_path / "home")])
    r = json.loads(out.read_text())
    assert r["smoke_test_on_cpu"] is True and r["data_path"]["pin_memory"] is True
    assert [(t["backbone"], t["role"]) for t in r["training"]] == [("multitsf", "teacher"),
                                                                   ("multitsf", "student")]
    for t in r["training"]:
        assert 0 <= t["data_wait_share"] <= 1 and t["step_seconds"] > 0
    assert r["masks"]["frames_per_second"] > 0 and r["masks"]["frames"] == 8
