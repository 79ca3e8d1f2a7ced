"""The runs each table and figure shows, as run ids "{env}/{backbone}/{run}" (the folder of
the run under results/). Plain Python with no heavy imports: the Snakemake rules read these
lists when the workflow is parsed, and the table code reads the same lists."""

from __future__ import annotations

# Table 4 and Figure 3 use MultiASL, as in the paper.
ABLATION_BACKBONE = "multiasl"
FIGURE3_METHODS = ["student", "logitkd", "cokd", "vicokd"]


def run_id(env: str, backbone: str, run: str) -> str:
    return f"{env}/{backbone}/{run}"


def student_run(method: str, supervision: str, seed: int) -> str:
    return f"{method}-{supervision}-seed{seed}"


def table1_runs(homes, backbones, methods, supervisions, seed) -> list[str]:
    runs = []
    for env in homes:
        for bb in backbones:
            runs.append(run_id(env, bb, "teacher"))
            runs += [run_id(env, bb, student_run(m, s, seed)) for m in methods for s in supervisions]
    return runs


def table2_runs(homes, backbones, supervisions, seeds) -> list[str]:
    return [run_id(env, bb, student_run(m, s, k)) for env in homes for bb in backbones
            for m in ("student", "vicokd") for s in supervisions for k in seeds]


def table3_runs(homes, backbones) -> list[str]:
    return [run_id(env, bb, r) for env in homes for bb in backbones for r in ("teacher", "teacher-vc")]


def table4_runs(homes, ablations, supervisions, seed) -> list[str]:
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, seed)) for env in homes
            for m in ["vicokd", *ablations] for s in supervisions]


def figure3_runs(homes, supervisions, seed) -> list[str]:
    return [run_id(env, ABLATION_BACKBONE, student_run(m, s, seed))
            for env in homes for s in supervisions for m in FIGURE3_METHODS]
