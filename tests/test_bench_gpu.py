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
    assert r["loader_alone"]["items_per_second"] > 0 and r["data_path"]["workers"] == 1
    for t in r["training"]:
        assert t["compute_seconds"] > 0 and t["eval_forward_seconds"] > 0
        assert abs(t["compute_seconds"] + t["data_wait_seconds"] - t["step_seconds"]) < 2e-3
    for shape in ("yolov10b", "bootstrap"):
        m = r["masks"][shape]
        assert m["predictor"]["frames_per_second"] > 0 and m["on_device"]["frames"] == 8
        assert m["predictor"]["precision"] == m["on_device"]["precision"] == "float32"
        assert 0 <= m["agreement"]["mask_agreement"] <= 1
    assert [g["train_sequences_per_home"] for g in r["projected_grid"]] == [150, 300, 600]
    assert all(g["runs"] == 180 and g["gpu_hours_fed"] > 0 for g in r["projected_grid"])


def test_the_projected_grid_counts_the_grids_180_runs_and_their_steps():
    from benchmarks.bench_gpu import grid_gpu_hours
    from benchmarks.paper_scale import paper_config
    runs = [{"backbone": b, "role": role, "compute_seconds": 1.0, "step_seconds": 2.0,
             "eval_forward_seconds": 0.0} for b in ("multitrans", "multiasl", "multitsf")
            for role in ("teacher", "student")]
    g = grid_gpu_hours(runs, paper_config(), train_sequences=24, epochs=100)
    # Tables 1-4: 6 teachers + 6 teacher-vc, 72 + 72 + 24 students (the paper's 152 and CoKD's
    # seeds 1-2 in Table 2, the learned-visibility row in Table 4); 2 steps of 12 per epoch
    assert g["runs"] == 180 and g["teacher_runs"] == 12 and g["steps_per_epoch"] == 2
    assert g["gpu_hours_fed"] == round(180 * 100 * 2 * 1.0 / 3600, 1)
    assert g["gpu_hours_as_measured"] == round(180 * 100 * 2 * 2.0 / 3600, 1)
    only_one = grid_gpu_hours(runs[:2], paper_config(), 24, 100)   # the rest take its times
    assert only_one["gpu_hours_fed"] == g["gpu_hours_fed"]
