"""The Snakemake profiles: the slurm one asks for GPUs on the GPU rules, the cluster test's
profile overrides every one of them for a CPU-only node, every entry carries a comment, and
Snakemake accepts both profiles (dry runs; no SLURM needed)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import REPO, prepare_workdir, run_snakemake

PROFILES = REPO / "workflow" / "profiles"
SLURM = PROFILES / "slurm" / "config.yaml"
DEFAULT = PROFILES / "default" / "config.yaml"
TEST = REPO / "tests" / "cluster" / "profile" / "config.yaml"
GPU_RULES = {"masks", "detector", "teacher", "teacher_vc", "student"}


def load(path):
    return yaml.safe_load(path.read_text())


def test_slurm_profile_gives_the_gpu_rules_one_gpu_and_the_rest_defaults():
    p = load(SLURM)
    assert p["executor"] == "slurm" and p["jobs"] >= 1
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(p["default-resources"])
    assert set(p["set-resources"]) == GPU_RULES
    for rule, res in p["set-resources"].items():
        assert res["gpu"] == 1, rule
        assert {"slurm_partition", "cpus_per_gpu", "mem_mb", "runtime"} <= set(res), rule
        # the job uses the CPUs it was given: threads equal CPUs per GPU
        assert p["set-threads"][rule] == res["cpus_per_gpu"], rule


def test_cluster_test_profile_overrides_every_gpu_request_for_a_2_cpu_node():
    slurm, test = load(SLURM), load(TEST)
    # a later profile replaces whole top-level keys: every rule must be restated
    assert set(test["set-resources"]) == set(slurm["set-resources"])
    for rule, res in test["set-resources"].items():
        assert res["gpu"] == 0 and "cpus_per_gpu" not in res, rule
        assert res["cpus_per_task"] <= 2 and res["slurm_partition"] == "debug", rule
    assert set(test["set-threads"]) == set(slurm["set-threads"])
    assert all(1 <= n <= 2 for n in test["set-threads"].values())
    assert test["slurm-status-command"] == "squeue"


@pytest.mark.parametrize("path", [SLURM, DEFAULT, TEST], ids=lambda p: p.parent.name)
def test_every_profile_entry_is_commented(path):
    """Each key has a comment on its line or the line above, or sits in a commented section."""
    lines = path.read_text().splitlines()
    indent = [len(line) - len(line.lstrip()) for line in lines]

    def commented(i):
        return "#" in lines[i] or (i > 0 and lines[i - 1].lstrip().startswith("#"))

    def parent(i):
        return next((j for j in range(i - 1, -1, -1)
                     if lines[j].strip() and not lines[j].lstrip().startswith("#")
                     and indent[j] < indent[i]), None)

    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert re.match(r"\s*[\w-]+:", line), f"{path.name}:{i + 1}: not a key line: {line!r}"
        j, ok = i, False
        while j is not None and not ok:
            ok = commented(j)
            j = parent(j)
        assert ok, f"{path.name}:{i + 1}: entry without a comment: {line.strip()!r}"


def dry_run_workdir(tmp_path):
    """A workdir with one MultiSensor-Home annotation file: enough for a dry run of the data stages."""
    work = prepare_workdir(tmp_path)
    (work / "data" / "home1").mkdir(parents=True)
    (work / "data" / "home1" / "ann.json").write_text(json.dumps(
        [{"id": "s0", "video_url_1": "home1/a.mp4", "tricks": [{"labels": ["Walk"], "start": 0, "end": 1}]}]))
    (work / "run.yaml").write_text(yaml.safe_dump({
        "dataset": {"format": "multisensor_home", "root": "data",
                    "annotations": {"home1": "home1/ann.json"}, "classes": ["Walk"]},
        "experiments": {"homes": ["home1"]}}))
    return work


@pytest.mark.parametrize("profiles,expect", [
    ([SLURM.parent], "slurm_partition=cpu, runtime=120"),
    ([SLURM.parent, TEST.parent], "slurm_partition=debug, runtime=30"),
    ([DEFAULT.parent], "Using profile"),
], ids=["slurm", "slurm+test", "default"])
def test_snakemake_accepts_the_profiles(tmp_path, profiles, expect):
    work = dry_run_workdir(tmp_path)
    args = [a for p in profiles for a in ("--profile", str(p))] + ["-n"]
    proc = run_snakemake(work, "results/home1/split.json", "results/home1/frames.h5",
                         config=work / "run.yaml", extra_args=args)
    out = proc.stdout + proc.stderr
    assert expect in out
    assert re.search(r"decode\s+1", out) and re.search(r"split\s+1", out)


def test_slurm_profile_puts_every_gpu_job_of_the_grid_on_a_gpu(tmp_path):
    """Dry run of the whole grid (config.yaml) with the slurm profile: each training and masks job
    asks for one GPU in the gpu partition, the CPU stages get the defaults."""
    work = prepare_workdir(tmp_path)
    proc = run_snakemake(work, "results/report.html", config=REPO / "config.yaml",
                         extra_args=["--profile", str(SLURM.parent), "-n"])
    out = proc.stdout + proc.stderr
    blocks = re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S|\Z)", out, re.M | re.S)
    seen = {}
    for rule, body in blocks:
        res = re.search(r"^\s+resources: (.*)$", body, re.M)
        if res:
            seen.setdefault(rule, set()).add(res.group(1))
    assert GPU_RULES <= set(seen), sorted(seen)
    for rule in GPU_RULES:
        for res in seen[rule]:
            assert "slurm_partition=gpu" in res and "gpu=1" in res and "cpus_per_gpu=" in res, (rule, res)
    for rule in ("decode", "spectrogram", "labels"):
        for res in seen[rule]:
            assert "slurm_partition=cpu" in res and "runtime=120" in res and "gpu=1" not in res, (rule, res)
    # 72 (Table 1) + 72 (Table 2: seeds 1-2 of student, CoKD, ViCoKD) + 24 (Table 4) students
    assert re.search(r"student\s+168\b", out) and re.search(r"teacher\s+6\b", out)
