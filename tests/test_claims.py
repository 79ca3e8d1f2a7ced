"""The paper's reference figures and its claims (vicokd.report.claims): the transcribed tables
reproduce the paper's printed differences, and the claims count on them and on missing data."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from report_fixtures import ABLATIONS, BACKBONES, HOMES, METHODS, SEEDS, SUPERVISIONS
from vicokd.report import claims as cl
from vicokd.report import tables as tb

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "workflow" / "reference" / "paper_multisensor_home.csv"
T1 = (HOMES, BACKBONES, METHODS, SUPERVISIONS)


def test_paper_reference_reproduces_its_printed_differences():
    ref = cl.read_reference(REFERENCE)
    assert set(ref["table"]) == {"table1", "table2", "table3", "table4"}
    assert "PUBLISHED FIGURES OF THE PAPER" in REFERENCE.read_text().splitlines()[0]
    pm = cl.reference_metrics(ref)
    t1 = tb.table1_long(pm, *T1, seed=0)
    printed = ref[(ref["table"] == "table1") & ref["printed_diff"].notna()]
    assert len(printed) == 2 * 3 * 2 * 5
    for r in printed.itertuples():
        cell = t1[(t1["home"] == r.home) & (t1["backbone"] == r.backbone)
                  & (t1["method"] == r.method) & (t1["supervision"] == r.supervision)]
        assert cell["diff"].item() == pytest.approx(r.printed_diff, abs=0.011), r
    # The paper bolds ViCoKD in every column.
    assert t1.loc[t1["best"], "method"].eq("vicokd").all() and t1["best"].sum() == 12
    t3 = tb.table3_long(pm, HOMES, BACKBONES)
    for r in ref[(ref["table"] == "table3") & ref["printed_diff"].notna()].itertuples():
        assert t3.set_index(["backbone", "home"]).loc[(r.backbone, r.home), "diff"] == \
            pytest.approx(r.printed_diff, abs=0.011)
    t4 = tb.table4_long(pm, HOMES, ABLATIONS, SUPERVISIONS)
    for r in ref[(ref["table"] == "table4") & ref["printed_diff"].notna()].itertuples():
        got = t4.set_index(["method", "home", "supervision"]).loc[(r.method, r.home, r.supervision), "diff"]
        assert got == pytest.approx(r.printed_diff, abs=0.011)
    # Table 2's ViCoKD means are Table 1's ViCoKD cells.
    t2 = cl.reference_table2_long(ref)
    for r in t2.itertuples():
        assert r.mean == pytest.approx(pm[f"{r.home}/{r.backbone}/vicokd-{r.supervision}-seed0"]["map"])


def test_claims_on_the_paper_and_on_missing_data():
    ref = cl.read_reference(REFERENCE)
    pm = cl.reference_metrics(ref)
    c = cl.claims(tb.table1_long(pm, *T1, seed=0), cl.reference_table2_long(ref),
                  tb.table3_long(pm, HOMES, BACKBONES), tb.table4_long(pm, HOMES, ABLATIONS, SUPERVISIONS))
    got = {r.claim.split(" (")[0].split(":")[0]: (r.holds, r.tested) for r in c.itertuples()}
    assert got["ViCoKD has the best mAP of the student methods in each Table 1 column"] == (12, 12)
    assert got["ViCoKD beats CoKD"] == (12, 12)
    assert got["CoKD beats LogitKD"] == (11, 12)                     # Home-2 MultiTSF frame
    assert got["ViCoKD's gain over the student is larger with sequence than with frame supervision"] == (2, 6)
    assert got["VC improves the teacher"] == (6, 6)
    assert got["ViCoKD's std over the seeds is at most 0.85 mAP"] == (12, 12)
    assert got["Every ablation lowers mAP below ViCoKD"] == (19, 20)   # w/o LD, Home-2 frame: +0.22
    assert got["ViCoKD beats CoKD beyond the spread over seeds"] == (0, 0)   # no CoKD spread
    empty = cl.claims(tb.table1_long({}, *T1, seed=0), tb.table2_long({}, HOMES, BACKBONES, SUPERVISIONS, SEEDS),
                      tb.table3_long({}, HOMES, BACKBONES), tb.table4_long({}, HOMES, ABLATIONS, SUPERVISIONS))
    assert (empty["tested"] == 0).all()
    # ViCoKD over CoKD beyond their seed spread, from Table 2's means and standard deviations
    t2 = pd.DataFrame([dict(home="home1", backbone="multiasl", supervision=s, method=m, n=3,
                            mean=mean, std=1.0)
                       for s, means in (("frame", (60.0, 63.0)), ("sequence", (60.0, 61.0)))
                       for m, mean in zip(("cokd", "vicokd"), means)])
    spread = cl.claims(empty_t1 := tb.table1_long({}, *T1, seed=0), t2,
                       tb.table3_long({}, HOMES, BACKBONES),
                       tb.table4_long({}, HOMES, ABLATIONS, SUPERVISIONS)).set_index("claim")
    assert empty_t1["value"].isna().all()
    row = spread.loc["ViCoKD beats CoKD beyond the spread over seeds (Table 2)"]
    assert (row["holds"], row["tested"]) == (1, 2)                   # +3 > 2, +1 < 2
    assert cl.fmt_claim(0, 0) == "no data" and not math.isnan(empty["holds"].sum())
