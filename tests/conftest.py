"""Shared fixtures: the network guard (Python's sockets in every process, and a network namespace
for the programs the tests start), and the tiny end-to-end workflow run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NETGUARD_DIR = REPO / "tests" / "netguard"
TINY_CONFIG = REPO / "tests" / "config" / "tiny.yaml"

sys.path.insert(0, str(NETGUARD_DIR))
import netns  # noqa: E402  (the namespace wrapper, beside the guard)
import sitecustomize as netguard  # noqa: E402  (the guard module, imported by path)

# The code must stay offline by itself, as a user runs it: the libraries' offline switches are
# unset for the whole suite, so a path that would reach a model hub or sync settings without
# them shows up in the guard.
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE")
for _var in OFFLINE_VARS:
    os.environ.pop(_var, None)

# Set by .ci/run: what may be skipped on a developer's machine (no chromium, no namespace) is
# required there.
IN_CI = os.environ.get("VICOKD_CI") == "1"


def require(missing: str | None) -> None:
    """Skip the test with the reason `missing` when something it needs is absent here; in CI,
    where everything .ci/run installs must be present, fail instead."""
    if missing:
        if IN_CI:
            pytest.fail(f"required in CI (VICOKD_CI=1): {missing}")
        pytest.skip(missing)


def pytest_report_header(config):
    if netns.available():
        return "network guard: Python sockets, and a network namespace for the programs run"
    return f"network guard: Python sockets only ({netns.reason()})"


@pytest.fixture(scope="session")
def netguard_log(tmp_path_factory) -> Path:
    """A file collecting every blocked network attempt, of this process and its children."""
    log = tmp_path_factory.mktemp("netguard") / "attempts.log"
    log.touch()
    os.environ["VICOKD_NETGUARD"] = "1"
    os.environ["VICOKD_NETGUARD_LOG"] = str(log)
    netguard._LOG = str(log)
    netguard.install()
    return log


@pytest.fixture(autouse=True)
def _no_network(netguard_log):
    yield
    attempts = netguard_log.read_text()
    assert not attempts, f"a network connection was attempted:\n{attempts}"


def workflow_env(extra: dict | None = None) -> dict:
    """Environment for a snakemake subprocess: the guard on PYTHONPATH, the repo's src first."""
    env = dict(os.environ)
    # In-process code may have set a switch (prepare_ultralytics sets YOLO_OFFLINE for itself);
    # the programs the tests start must do without them, as a user's shell does.
    for var in OFFLINE_VARS:
        env.pop(var, None)
    paths = [str(NETGUARD_DIR), str(REPO / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def run_snakemake(workdir: Path, *targets: str, config: Path = TINY_CONFIG, extra_args=(),
                  check: bool = True, cores: int = 2, isolate: bool = True) -> subprocess.CompletedProcess:
    """Run the repo's Snakefile on `config` with `workdir` as working directory, in a network
    namespace of its own unless `isolate` is false (a SLURM run talks to slurmctld)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(config), "--cores", str(cores),
           "--nolock", *extra_args, *targets]
    if isolate:
        cmd = netns.isolated(cmd)
    proc = subprocess.run(cmd, cwd=workdir, env=workflow_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-8000:]}")
    return proc


def prepare_workdir(tmp: Path) -> Path:
    """A working directory with the files the Snakefile reads relative to its --directory."""
    shutil.copy(REPO / "config.yaml", tmp / "config.yaml")
    (tmp / "workflow").mkdir(exist_ok=True)
    shutil.copytree(REPO / "workflow" / "schemas", tmp / "workflow" / "schemas", dirs_exist_ok=True)
    return tmp


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, netguard_log) -> Path:
    """One shared run of the tiny config through the whole workflow (`all`: the report, so every
    table and figure and each run they need); the end-to-end tests read its results. Tests that
    would change its state work in a copy."""
    work = prepare_workdir(tmp_path_factory.mktemp("tiny"))
    run_snakemake(work, "all")
    return work
