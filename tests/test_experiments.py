"""The experiment grid (vicokd.experiments): the paper's methods, the run lists behind each table,
the config check, and that the module stays free of heavy imports (the workflow parses it)."""

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, prepare_workdir, run_snakemake, workflow_env
from report_fixtures import ABLATIONS, BACKBONES, HOMES, METHODS as T1_METHODS, SEEDS, SUPERVISIONS
from vicokd.errors import VicokdError
from vicokd.experiments import (METHODS, check_grid, get_method, method_of_run, student_run,
                                table1_runs, table2_runs, table3_runs, table4_runs)

T1 = (HOMES, BACKBONES, T1_METHODS, SUPERVISIONS)
EXPECTED_TERMS = {
    "student": set(), "logitkd": {"ld"}, "modalkd": {"modal"}, "dualkd": {"dual", "ld"},
    "cokd": {"fd", "ld"}, "vicokd": {"fd", "ld", "vc"}, "vicokd-noconfw": {"fd", "ld", "vc"},
    "vicokd-nomask": {"fd", "ld", "vc"}, "vicokd-kl": {"fd", "ld", "vc"},
    "vicokd-nofd": {"ld", "vc"}, "vicokd-nold": {"fd", "vc"},
    "vicokd-learnedvis": {"fd", "ld", "vc", "vis"}, "cokd-vis": {"fd", "ld", "vis"},
}


def test_method_table_is_the_papers():
    assert {name: set(m.terms) for name, m in METHODS.items()} == EXPECTED_TERMS
    assert not METHODS["vicokd-noconfw"].vc_confidence_weighting
    assert not METHODS["vicokd-nomask"].vc_use_mask
    learned = METHODS["vicokd-learnedvis"]
    assert learned.vc_use_mask and not learned.needs_masks and learned.needs_teacher
    assert not METHODS["cokd-vis"].needs_masks          # the head without VC: the study's control
    assert METHODS["vicokd-kl"].vc_divergence == "kl"
    assert METHODS["vicokd"].vc_divergence == "js"
    assert not METHODS["student"].needs_teacher
    with pytest.raises(VicokdError):
        get_method("nokd")


def test_run_lists_match_the_paper_job_counts():
    assert len(table1_runs(*T1, 0)) == 78          # 6 teachers + 72 students
    assert len(table2_runs(HOMES, BACKBONES, SUPERVISIONS, SEEDS)) == 108   # with CoKD
    assert len(table3_runs(HOMES, BACKBONES)) == 12
    assert len(table4_runs(HOMES, ABLATIONS, SUPERVISIONS, 0)) == 28          # with ours
    assert all("/multiasl/" in r for r in table4_runs(HOMES, ABLATIONS, SUPERVISIONS, 0))


def test_a_student_run_name_gives_back_its_method():
    for method in METHODS:
        assert method_of_run(student_run(method, "frame", 2)) == method
    assert method_of_run("teacher") is None and method_of_run("teacher-vc") is None


def test_unknown_grid_names_are_one_line_errors_naming_the_key():
    check_grid({"backbones": BACKBONES, "methods": T1_METHODS, "ablations": ABLATIONS,
                "supervision": SUPERVISIONS})
    for key, bad in (("methods", "vicokd-nomask"), ("ablations", "vicokd"),
                     ("backbones", "resnet"), ("supervision", "clip")):
        with pytest.raises(VicokdError, match=f"experiments.{key}: unknown '{bad}'") as err:
            check_grid({key: [bad]})
        assert "\n" not in str(err.value) and "valid: " in str(err.value)


def test_the_grid_imports_no_torch():
    code = "import sys, vicokd.experiments; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=workflow_env())
    assert out.stdout.strip() == "False"


def test_a_dry_run_parses_the_workflow_without_torch(tmp_path):
    work = prepare_workdir(tmp_path)
    cmd = [sys.executable, "-X", "importtime", "-m", "snakemake", "--snakefile",
           str(REPO / "Snakefile"), "--directory", str(work), "-n", "results/table1.csv"]
    proc = subprocess.run(cmd, cwd=work, env=workflow_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "vicokd.experiments" in imported
    assert not [m for m in imported if m.split(".")[0] == "torch"]


def test_an_unknown_method_in_the_config_stops_the_dry_run_naming_it(tmp_path):
    work = prepare_workdir(tmp_path)
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"experiments": {"methods": ["student", "logitdk"]}}))
    proc = run_snakemake(work, "results/table1.csv", config=config, extra_args=["-n"],
                         check=False)
    assert proc.returncode != 0
    assert "experiments.methods: unknown 'logitdk' (valid: student, logitkd," in proc.stdout + proc.stderr
