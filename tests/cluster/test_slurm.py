"""The workflow through a real SLURM: the slurm profile (with the test profile layered on top)
submits the non-local jobs with sbatch, and the artifacts equal those of a local run.

Needs root on a Debian machine: the `slurm` fixture runs slurm-up.sh (installs and starts a
single-node SLURM) and slurm-down.sh after. Run with `make test-cluster`
(`pytest -q -m cluster tests/cluster`); the default test run deselects it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, TINY_CONFIG, prepare_workdir, run_snakemake
from vicokd.config import fill

pytestmark = pytest.mark.cluster

HERE = Path(__file__).resolve().parent
SLURM_PROFILE = REPO / "workflow" / "profiles" / "slurm"
TEST_PROFILE = HERE / "profile"
STATE = Path(os.environ.get("VICOKD_SLURM_STATE", "/run/vicokd-slurm"))

# Attributes and JSON keys that record when or where something ran, or how fast (masks.h5's
# frames_per_second): they may differ between runs.
VOLATILE = re.compile(r"(^|_)(time|timestamp|date|host|hostname|node|created|started|finished|"
                      r"elapsed|wall|pid|second|seconds|throughput|speed)(_|$)", re.IGNORECASE)
RTOL, ATOL = 1e-5, 1e-6


def _slurmctld_running() -> bool:
    pidfile = STATE / "slurmctld.pid"
    if not pidfile.is_file():
        return False
    pid = pidfile.read_text().strip()
    comm = Path(f"/proc/{pid}/comm")
    return comm.is_file() and comm.read_text().strip() == "slurmctld"


@pytest.fixture(scope="module")
def slurm():
    """A running single-node SLURM; stopped afterwards unless it was already up before."""
    if os.geteuid() != 0:
        pytest.fail("tests/cluster needs root: slurm-up.sh installs and starts SLURM")
    was_up = _slurmctld_running()
    up = subprocess.run(["bash", str(HERE / "slurm-up.sh")], capture_output=True, text=True,
                        timeout=1200)
    if up.returncode != 0:
        pytest.fail(f"slurm-up.sh failed ({up.returncode}):\n{up.stderr[-4000:]}")
    yield
    if not was_up:
        down = subprocess.run(["bash", str(HERE / "slurm-down.sh")], capture_output=True,
                              text=True, timeout=120)
        assert down.returncode == 0, down.stderr


def threads_of_test_profile() -> list[str]:
    """The test profile's set-threads as CLI values: the local run uses the same threads."""
    profile = yaml.safe_load((TEST_PROFILE / "config.yaml").read_text())
    return [f"{rule}={n}" for rule, n in profile["set-threads"].items()]


REMOTE_RULES = {"synthesize", "decode", "spectrogram", "labels"}  # per home; the rest are local
TEACHER = "results/home1/multiasl/teacher/metrics.json"
# A MultiASL teacher does not read the masks, so home1's masks are asked for beside it: the
# bootstrap detector and the masks (GPU rules) go through SLURM too.
MASKS = "results/home1/masks.h5"


def teacher_rules(config: Path) -> list[str]:
    """The SLURM jobs the teacher and the masks add: on frozen encoders the teacher reads the
    home's cached features, a job of its own."""
    model = fill("model", yaml.safe_load(config.read_text()).get("model"))
    features = ["features"] if model["encoders"] == "frozen" else []
    return ["detector", "masks", *features, "teacher"]


def has_teacher_rule() -> bool:
    """Whether the training rules are in this checkout (they land on main after the data stages)."""
    rules = REPO / "workflow" / "rules" / "train.smk"
    return rules.is_file() and "rule teacher:" in rules.read_text()


def homes_of(config: Path) -> list[str]:
    """The homes a config runs (its own list, else config.yaml's)."""
    cfg = yaml.safe_load(config.read_text())
    default = yaml.safe_load((REPO / "config.yaml").read_text())["experiments"]["homes"]
    return cfg.get("experiments", {}).get("homes") or default


def targets_for(homes) -> list[str]:
    return [f"results/{h}/{f}" for h in homes
            for f in ("split.json", "frames.h5", "audio.h5", "labels.h5")]


def artifacts(work: Path) -> list[Path]:
    """Every HDF5 and JSON artifact a run wrote, relative to its working directory."""
    found = []
    for top in ("results", "resources"):
        for path in sorted((work / top).rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(work).parts)
            if path.suffix in (".h5", ".json") and not hidden:  # not tool caches, temp files
                found.append(path.relative_to(work))
    return found


def _normalise(obj, work: Path):
    """JSON with the run's own working directory taken out of paths and volatile keys dropped."""
    if isinstance(obj, dict):
        return {k: _normalise(v, work) for k, v in obj.items() if not VOLATILE.search(k)}
    if isinstance(obj, list):
        return [_normalise(v, work) for v in obj]
    if isinstance(obj, str):
        return obj.replace(str(work), "<work>")
    return obj


def _attrs(node, work: Path) -> dict:
    out = {}
    for key, value in node.attrs.items():
        if VOLATILE.search(key):
            continue
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str):
            value = value.replace(str(work), "<work>")
        out[key] = value.tolist() if isinstance(value, np.ndarray) else value
    return out


def compare_h5(a: Path, b: Path, work_a: Path, work_b: Path) -> list[str]:
    """Differences between two HDF5 files: names, attributes, shapes, dtypes, contents."""
    faults = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            return [f"{a.name}: different members {sorted(set(names_a) ^ set(names_b))[:5]}"]
        for name in ["/"] + sorted(names_a):
            na, nb = fa[name], fb[name]
            if _attrs(na, work_a) != _attrs(nb, work_b):
                faults.append(f"{a.name}:{name}: attributes differ")
            if not isinstance(na, h5py.Dataset):
                continue
            if na.shape != nb.shape or na.dtype != nb.dtype:
                faults.append(f"{a.name}:{name}: {na.shape} {na.dtype} vs {nb.shape} {nb.dtype}")
                continue
            xa, xb = na[()], nb[()]
            if np.issubdtype(na.dtype, np.floating):
                if not np.allclose(xa, xb, rtol=RTOL, atol=ATOL, equal_nan=True):
                    diff = np.nanmax(np.abs(xa.astype(np.float64) - xb.astype(np.float64)))
                    faults.append(f"{a.name}:{name}: values differ (max abs diff {diff:g})")
            elif not np.array_equal(xa, xb):
                faults.append(f"{a.name}:{name}: values differ")
    return faults


SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def submitted_jobs(stderr: str) -> dict[str, str]:
    """SLURM job id -> rule, from the plugin's submission lines (its log path names the rule)."""
    jobs = {}
    for jobid, log in SUBMITTED.findall(stderr):
        rule = re.search(r"/rule_([^/]+)/", log)
        assert rule, f"cannot tell the rule of SLURM job {jobid} from its log path {log}"
        jobs[jobid] = rule.group(1)
    return jobs


def test_workflow_through_slurm_equals_a_local_run(slurm, tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "slurm").mkdir()
    local = prepare_workdir(tmp_path / "local")
    cluster = prepare_workdir(tmp_path / "slurm")
    homes = homes_of(TINY_CONFIG)
    targets = targets_for(homes)
    with_teacher = has_teacher_rule()
    if with_teacher:
        targets += [TEACHER, MASKS]

    t0 = time.monotonic()
    run_snakemake(local, *targets, config=TINY_CONFIG,
                  extra_args=["--set-threads", *threads_of_test_profile(),
                              "--nocolor"])  # a flag ends --set-threads' list
    t_local = time.monotonic() - t0

    t0 = time.monotonic()
    proc = run_snakemake(cluster, *targets, config=TINY_CONFIG,
                         extra_args=["--profile", str(SLURM_PROFILE),
                                     "--profile", str(TEST_PROFILE)],
                         isolate=False)  # sbatch and squeue talk to slurmctld on loopback
    t_slurm = time.monotonic() - t0
    print(f"\nlocal run {t_local:.1f} s, SLURM run {t_slurm:.1f} s "
          f"({len(homes)} homes, through split{', and one teacher' if with_teacher else ''})")

    # Every non-local job went through sbatch and finished as a SLURM job; local rules did not.
    jobs = submitted_jobs(proc.stderr)
    expected = sorted([r for r in REMOTE_RULES for _ in homes]
                      + (teacher_rules(TINY_CONFIG) if with_teacher else []))
    assert sorted(jobs.values()) == expected, proc.stderr[-4000:]
    assert not {"manifest", "split", "masks_quality"} & set(jobs.values())
    q = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%P",
                        "--jobs", ",".join(jobs)], capture_output=True, text=True, check=True)
    states = dict(line.split("|", 1) for line in q.stdout.split())
    assert set(states) == set(jobs), f"squeue does not know jobs {set(jobs) - set(states)}"
    assert all(s == "COMPLETED|debug" for s in states.values()), states
    for jobid, rule in jobs.items():
        log = cluster / ".snakemake" / "slurm_logs" / f"rule_{rule}"
        assert list(log.rglob(f"{jobid}.log")), f"no SLURM log for job {jobid} ({rule})"

    # The same artifacts with the same contents.
    names_local, names_cluster = artifacts(local), artifacts(cluster)
    assert names_local == names_cluster
    assert any(p.suffix == ".h5" for p in names_local)
    faults = []
    for rel in names_local:
        if rel.suffix == ".h5":
            faults += compare_h5(local / rel, cluster / rel, local, cluster)
        else:
            a = _normalise(json.loads((local / rel).read_text()), local)
            b = _normalise(json.loads((cluster / rel).read_text()), cluster)
            if a != b:
                faults.append(f"{rel}: JSON differs")
    assert not faults, "\n".join(faults)
    print(f"{len(jobs)} SLURM jobs; {len(names_local)} artifacts equal: "
          + ", ".join(str(p) for p in names_local))


def test_the_comparison_sees_changed_values_and_ignores_times(tmp_path):
    """The equality check above can fail: a changed value or member is reported, a time is not."""
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, value, when in ((a, 0.5, "2026-01-01"), (b, 0.5, "2026-02-02")):
        with h5py.File(path, "w") as f:
            f.attrs["created"] = when
            f.attrs["kind"] = "labels"
            f.create_dataset("s0/x", data=np.array([1.0, value], dtype=np.float32))
            f.create_dataset("s0/y", data=np.array([1, 0], dtype=np.uint8))
    assert compare_h5(a, b, tmp_path, tmp_path) == []
    with h5py.File(b, "a") as f:
        f["s0/x"][1] = 0.5001
        f["s0/y"][0] = 0
    faults = compare_h5(a, b, tmp_path, tmp_path)
    assert len(faults) == 2 and "s0/x" in faults[0] and "s0/y" in faults[1]
    with h5py.File(b, "a") as f:
        f.attrs["kind"] = "frames"
        f.create_dataset("s1/x", data=np.zeros(2))
    assert "different members" in compare_h5(a, b, tmp_path, tmp_path)[0]
    assert _normalise({"path": f"{tmp_path}/v.mp4", "finished_at": 3}, tmp_path) == {"path": "<work>/v.mp4"}
    assert VOLATILE.search("frames_per_second") and not VOLATILE.search("fps")
    assert not VOLATILE.search("duration") and not VOLATILE.search("sequence_labels")
