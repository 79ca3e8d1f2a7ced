"""On the shared tiny run (the whole workflow to the report): one student per method trained,
and the partial rerun: change a `student:` value and the dry run lists only student (and
table/report) jobs — no data stage, no detector, no teacher."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import TINY_CONFIG, run_snakemake
from vicokd.config import default
from vicokd.experiments import METHODS

pytestmark = pytest.mark.e2e

HOME, BACKBONE = "home1", "multiasl"
# tiny.yaml keeps the default grid: Table 1's methods and the default ablations
GRID = [*default("experiments.methods"), *default("experiments.ablations")]
RUNS = ([f"{m}-frame-seed0" for m in GRID]
        + ["student-sequence-seed0", "vicokd-sequence-seed0", "teacher-vc"])
# Jobs a student-only change may rerun: the students and whatever summarises them.
ALLOWED_AFTER_STUDENT_CHANGE = {"student", "table1", "table2", "table3", "table4", "figure3",
                                "figure4_home", "figure4", "timelines", "loss_terms", "report",
                                "all"}
NEVER_AFTER_STUDENT_CHANGE = {"synthesize", "manifest", "decode", "spectrogram", "labels",
                              "masks", "masks_quality", "detector", "split", "teacher",
                              "teacher_vc"}


def merged_config(work, name, **sections):
    """tiny.yaml with some sections updated (one level deep), written beside the run."""
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path = work / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def planned_rules(stdout: str) -> list[str]:
    """Rule names of the jobs a dry run lists."""
    return re.findall(r"^\s*(?:local)?rule (\w+):", stdout, flags=re.M)


def planned_outputs(stdout: str, rule: str) -> list[str]:
    """The `output:` lines of a dry run's jobs of one rule (inputs of the jobs that read
    them, such as Figure 4's, name other runs' models too)."""
    blocks = re.split(r"^\s*(?:local)?rule ", stdout, flags=re.M)
    return [line.split(":", 1)[1] for block in blocks if block.startswith(f"{rule}:")
            for line in block.splitlines() if line.strip().startswith("output:")]


def test_every_method_trains_on_the_tiny_config(tiny_run):
    """The shared tiny run trained one student per method and supervision, and teacher-vc."""
    base = tiny_run / "results" / HOME / BACKBONE
    epochs = yaml.safe_load(TINY_CONFIG.read_text())["student"]["epochs"]
    for run in RUNS:
        metrics = json.loads((base / run / "metrics.json").read_text())
        assert metrics["map"] is None or 0 <= metrics["map"] <= 100
        if run != "teacher-vc":
            assert metrics["epochs"] == epochs
            assert metrics["method"] == run.rsplit("-", 2)[0]


def test_after_a_complete_tiny_run_a_student_change_reruns_students_and_tables(tiny_run):
    """tiny_run is the whole workflow (`all`: the report, every table's runs) on tiny.yaml."""
    proc = run_snakemake(tiny_run, "all", extra_args=["-n"])
    assert planned_rules(proc.stdout) == [], proc.stdout[-3000:]
    changed = merged_config(tiny_run, "changed_student.yaml", student={"tau": 3.0})
    proc = run_snakemake(tiny_run, "all", config=changed, extra_args=["-n"])
    rules = planned_rules(proc.stdout)
    assert "student" in rules, proc.stdout[-3000:]
    assert set(rules) <= ALLOWED_AFTER_STUDENT_CHANGE, set(rules)
    assert not set(rules) & NEVER_AFTER_STUDENT_CHANGE


def _reordered(value):
    """The same mapping with every level's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    return value


def test_reordered_config_keys_rerun_nothing(tiny_run):
    """Params are compared by repr: the same settings in another key order must not rerun
    (they reran all jobs, from `synthesize` on)."""
    embedded = tiny_run / "config.yaml"
    original = embedded.read_text()
    reordered = tiny_run / "reordered_tiny.yaml"
    reordered.write_text(yaml.safe_dump(_reordered(yaml.safe_load(TINY_CONFIG.read_text())),
                                        sort_keys=False))
    try:
        embedded.write_text(yaml.safe_dump(_reordered(yaml.safe_load(original)), sort_keys=False))
        proc = run_snakemake(tiny_run, "all", config=reordered, extra_args=["-n"])
    finally:
        embedded.write_text(original)
    assert planned_rules(proc.stdout) == [], proc.stdout[-3000:]


# Every option the schema marks as speed-only (x-speed), with a value other than tiny.yaml's:
# none of them may rerun a job of the finished run.
SPEED_CHANGES = {
    "teacher": {"workers": 1, "threads": 2, "cache": False, "pin_memory": True,
                "normalize_on_device": True},
    "student": {"workers": 1, "threads": 2, "cache": False, "pin_memory": True,
                "normalize_on_device": True},
    "model": {"device": "cpu", "gradient_checkpointing": True, "features": {"components": 32,
                                                                             "batch_size": 7}},
    "masks": {"batch_size": 3, "device": "cpu"},
    "detector": {"device": "cpu"},
    "synthetic": {"workers": 1},
}


def test_the_schemas_speed_options_are_the_ones_changed_here():
    from vicokd.config import speed_keys
    for section in ("teacher", "student", "masks", "detector", "synthetic"):
        assert set(speed_keys(section)) == set(SPEED_CHANGES[section]), section
    assert speed_keys("model") == {"device": True, "gradient_checkpointing": True,
                                   "features": {"batch_size": True}}


def test_speed_options_rerun_nothing(tiny_run):
    """Threads, loader workers, caches, pinned memory, device placement: rule params never hold
    them (workflow/rules/common.smk params_of), so after changing every one of them at once
    (one dry run: any of them that reran a job would show) the dry run is empty."""
    changed = merged_config(tiny_run, "speed.yaml", **SPEED_CHANGES)
    proc = run_snakemake(tiny_run, "all", config=changed, extra_args=["-n"])
    assert planned_rules(proc.stdout) == [], proc.stdout[-3000:]


def test_a_terms_weight_reruns_only_the_methods_with_that_term(tiny_run):
    """A student's params hold the weights of its method's terms only (student_params)."""
    changed = merged_config(tiny_run, "changed_vc.yaml", student={"weights": {"vc": 0.5}})
    proc = run_snakemake(tiny_run, "all", config=changed, extra_args=["-n"])
    students = [m for line in planned_outputs(proc.stdout, "student")
                for m in re.findall(r"results/\w+/\w+/([\w-]+)-(?:frame|sequence)-seed\d+/model\.pt",
                                    line)]
    assert students, proc.stdout[-3000:]
    assert {m for m in students} <= {m for m, spec in METHODS.items() if "vc" in spec.terms}
    assert "teacher" not in planned_rules(proc.stdout)
