"""The paper's published figures (workflow/reference/, reference data, never our results) and
its claims, checked on any set of long tables (tables.py): the paper's own and this run's.
"""

from __future__ import annotations

import os
from typing import Iterable

import pandas as pd

from ..errors import VicokdError
from ..experiments import PAPER_ABLATIONS, TEACHER, TEACHER_VC, run_id, student_run


def read_reference(path: str | os.PathLike) -> pd.DataFrame:
    """The paper's Tables 1-4 as transcribed in workflow/reference/ (long form)."""
    try:
        df = pd.read_csv(path, comment="#", dtype={"supervision": str}, keep_default_na=False,
                         na_values={"map": [""], "std": [""], "printed_diff": [""]})
    except (OSError, pd.errors.ParserError) as exc:
        raise VicokdError(f"{path}: cannot read the paper's reference tables ({exc})") from None
    need = {"table", "home", "backbone", "method", "supervision", "map", "std", "printed_diff"}
    if not need <= set(df.columns):
        raise VicokdError(f"{path}: reference table lacks columns {sorted(need - set(df.columns))}")
    return df


def reference_metrics(ref: pd.DataFrame, seed: int = 0) -> dict[str, dict]:
    """The paper's Table 1, 3 and 4 values as a metrics dict (seed `seed`), so that the same
    table functions lay them out. They are the paper's 3-run means, labelled as such."""
    out: dict[str, dict] = {}
    for r in ref[ref["table"].isin(["table1", "table3", "table4"])].itertuples():
        run = r.method if r.method in (TEACHER, TEACHER_VC) else student_run(r.method, r.supervision, seed)
        out[run_id(r.home, r.backbone, run)] = {"map": float(r.map)}
    return out


def reference_table2_long(ref: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 (ViCoKD only: the paper gives no spread for the student)."""
    t = ref[ref["table"] == "table2"]
    return pd.DataFrame(dict(home=t["home"], backbone=t["backbone"], supervision=t["supervision"],
                             method=t["method"], n=3, mean=t["map"].astype(float),
                             std=t["std"].astype(float))).reset_index(drop=True)


# --- the claims --------------------------------------------------------------------------------

def _count(flags: Iterable[bool]) -> tuple[int, int]:
    flags = list(flags)
    return int(sum(flags)), len(flags)


def claims(t1: pd.DataFrame, t2: pd.DataFrame, t3: pd.DataFrame, t4: pd.DataFrame) -> pd.DataFrame:
    """The paper's claims, each as (holds, tested) over the cells where the data exist.
    Cells with a missing value are left out of `tested` (never counted as a failure)."""
    rows = []

    def add(claim, flags):
        holds, tested = _count(flags)
        rows.append(dict(claim=claim, holds=holds, tested=tested))

    students = t1[(t1["method"] != "teacher") & ~t1["reference"]]      # no probe rows
    by_col = students.groupby(["home", "backbone", "supervision"])
    piv = students.pivot_table(index=["home", "backbone", "supervision"], columns="method",
                               values="value", dropna=False)

    def pair(a, b):  # a > b where both exist
        if a not in piv or b not in piv:
            return []
        ok = piv[a].notna() & piv[b].notna()
        return list((piv[a] > piv[b])[ok])

    add("ViCoKD has the best mAP of the student methods in each Table 1 column",
        [g.loc[g["method"] == "vicokd", "best"].any() for _, g in by_col
         if (g["method"] == "vicokd").any() and g.loc[g["method"] == "vicokd", "value"].notna().any()])
    add("ViCoKD beats the non-distilled student (Table 1 columns)", pair("vicokd", "student"))
    add("ViCoKD beats CoKD: the view-aware consistency loss helps (Table 1 columns)", pair("vicokd", "cokd"))
    add("CoKD beats LogitKD (Table 1 columns)", pair("cokd", "logitkd"))
    vd = students[students["method"] == "vicokd"].pivot_table(
        index=["home", "backbone"], columns="supervision", values="diff", dropna=False)
    if {"frame", "sequence"} <= set(vd.columns):
        ok = vd["frame"].notna() & vd["sequence"].notna()
        add("ViCoKD's gain over the student is larger with sequence than with frame supervision",
            list((vd["sequence"] > vd["frame"])[ok]))
    else:
        add("ViCoKD's gain over the student is larger with sequence than with frame supervision", [])
    ok3 = t3["teacher"].notna() & t3["teacher_vc"].notna()
    add("VC improves the teacher (Table 3)", list((t3["diff"] > 0)[ok3]))
    means = t2.pivot_table(index=["home", "backbone", "supervision"], columns="method",
                           values=["mean", "std"], dropna=False)
    if ("mean", "cokd") in means and ("mean", "vicokd") in means:
        gain = means["mean"]["vicokd"] - means["mean"]["cokd"]
        spread = means["std"]["vicokd"] + means["std"]["cokd"]
        add("ViCoKD beats CoKD beyond the spread over seeds (Table 2)",
            list((gain > spread)[gain.notna() & spread.notna()]))
    else:
        add("ViCoKD beats CoKD beyond the spread over seeds (Table 2)", [])
    v2 = t2[(t2["method"] == "vicokd") & t2["std"].notna()]
    add("ViCoKD's std over the seeds is at most 0.85 mAP (Table 2)", list(v2["std"] <= 0.85))
    ab = t4[t4["method"].isin(PAPER_ABLATIONS) & t4["diff"].notna()]
    add("Every ablation lowers mAP below ViCoKD (Table 4)", list(ab["diff"] < 0))
    return pd.DataFrame(rows)


def fmt_claim(holds: int, tested: int) -> str:
    return "no data" if tested == 0 else f"{holds}/{tested}"
