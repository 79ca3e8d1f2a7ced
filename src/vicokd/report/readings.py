"""Table 1 read against its yardsticks, for the report: each model's share of the linear
probe's headroom over random scores, and whether each difference from the non-distilled student
exceeds the spread over seeds that Table 2 measures."""

from __future__ import annotations

import math

import pandas as pd

from . import layout as lay


def table1_cells(long: pd.DataFrame, homes, backbones, supervisions, text) -> pd.DataFrame:
    """Table 1's layout over the model rows of `long` (no probe rows), each cell `text(row)`."""
    models = long[~long["reference"]]
    index = models.set_index(["home", "method", "backbone", "supervision"])
    rows = []
    for env in homes:
        for m in dict.fromkeys(models.loc[models["home"] == env, "method"]):
            row = {"Home": lay.label(env, lay.HOME_LABELS), "Method": lay.label(m, lay.METHOD_LABELS)}
            for bb in backbones:
                for sup in supervisions:
                    row[lay.column_label(bb, sup)] = text(index.loc[(env, m, bb, sup)])
            rows.append(row)
    return pd.DataFrame(rows)


def fmt_share(cell) -> str:
    return "n/a" if math.isnan(cell["share"]) else f"{cell['share']:.2f}"


def seed_spread(t2: pd.DataFrame, env: str, backbone: str, supervision: str, method: str) -> float:
    """The spread a Table 1 difference from the student is judged against: the student's
    standard deviation over Table 2's seeds in that column plus the method's own (Table 2 has
    it for ViCoKD; for the other methods ViCoKD's stands in), as Table 2 judges its gains."""
    def std(m):
        hit = t2[(t2["home"] == env) & (t2["backbone"] == backbone)
                 & (t2["supervision"] == supervision) & (t2["method"] == m)]
        return float(hit["std"].iloc[0]) if len(hit) else math.nan
    own = method if method in set(t2["method"]) else "vicokd"
    return std("student") + std(own)


def spread_verdicts(long: pd.DataFrame, t2: pd.DataFrame) -> pd.DataFrame:
    """Per distilled-student cell of Table 1: its difference from the student, the seed spread,
    and whether |difference| exceeds it (None when either is unknown)."""
    rows = []
    for r in long[long["diff"].notna() & ~long["reference"]].itertuples():
        spread = seed_spread(t2, r.home, r.backbone, r.supervision, r.method)
        rows.append(dict(home=r.home, method=r.method, backbone=r.backbone,
                         supervision=r.supervision, diff=r.diff, spread=spread,
                         exceeds=None if math.isnan(spread) else bool(abs(r.diff) > spread)))
    return pd.DataFrame(rows, columns=["home", "method", "backbone", "supervision", "diff",
                                       "spread", "exceeds"])


def spread_table(long: pd.DataFrame, verdicts: pd.DataFrame, homes, backbones, supervisions
                 ) -> pd.DataFrame:
    index = verdicts.set_index(["home", "method", "backbone", "supervision"])

    def text(cell) -> str:
        key = cell.name
        if key not in index.index:
            return ""                                   # teacher, student: no difference
        v = index.loc[key]
        if v["exceeds"] is None:
            return f"{lay.fmt_diff(v['diff'])} (spread n/a)"
        return f"{lay.fmt_diff(v['diff'])} ({'exceeds' if v['exceeds'] else 'within'} {v['spread']:.2f})"
    students = long[~long["method"].isin(["teacher", "student"])]
    return table1_cells(students, homes, backbones, supervisions, text)


SHARE_NOTES = [
    "Each model's share of the matching linear probe's headroom over random scores: "
    "(model − random) / (probe − random), the teacher against the audio+video probe, the students "
    "against the video probe, each over the random-score mean of its own test frames. 0 is "
    "chance, 1 is what the linear probe reads from the same inputs; n/a when the probe is not "
    "above random or a value is missing."]
SPREAD_NOTES = [
    "Each difference from the non-distilled student (Table 1, seed 0) against the spread over "
    "seeds that Table 2 measures in the same column: the student's standard deviation over the "
    "seeds plus the method's own, where Table 2 has it (CoKD, ViCoKD); for the other methods "
    "ViCoKD's stands in for their own. 'exceeds' when the size of the difference is larger than that "
    "sum, as Table 2 judges ViCoKD's gain; 'spread n/a' with fewer than 2 seeds."]


