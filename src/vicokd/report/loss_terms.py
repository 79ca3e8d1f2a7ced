"""The `loss_terms` rule: how hard each loss term pulls, per method, from the runs' curve.csv
(vicokd.train.term_gradient_norms writes it each epoch): MultiASL students at the table seed.

- results/loss_terms.csv: one row per home, supervision, method and term: the term's mean value
  over the epochs (unweighted; `part_<term>` in curve.csv), and the mean norm of its weighted
  gradient on the per-view frame logits and on the first trained layer.
- results/loss_terms.png: per home and supervision, each term's pull on the first layer per
  epoch, for ViCoKD and the learned-visibility variant (log scale): whether view consistency
  acts at all beside FD, LD and the supervision.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..experiments import (ABLATION_BACKBONE, LOSS_TERMS_METHODS as PLOTTED_METHODS,  # noqa: E402
                           run_id, student_run)
from ..storage import atomic_path  # noqa: E402
from .figures import load_curves  # noqa: E402
from .layout import HOME_LABELS, METHOD_LABELS, SUPERVISION_LABELS, label  # noqa: E402
from .tables import write_table  # noqa: E402

# The terms in the order the loss adds them (vicokd.distill.make_loss's `keep`).
TERMS = ("supervision", "auxiliary", "fd", "ld", "modal", "dual", "vc", "vis")
# curve.csv's part_<name> of each term (the supervision's parts are L_F and L_S).
PART_OF_TERM = {"supervision": None, "auxiliary": None, "fd": "fd", "ld": "ld",
                "modal": "modal", "dual": "dual", "vc": "vc", "vis": "vis"}
TERM_COLORS = {"supervision": "#333333", "auxiliary": "#999999", "fd": "#1f77b4",
               "ld": "#ff7f0e", "modal": "#8c564b", "dual": "#9467bd", "vc": "#d62728",
               "vis": "#2ca02c"}


def _mean(df: pd.DataFrame, column: str | None) -> float:
    if column is None or column not in df.columns:
        return math.nan
    values = pd.to_numeric(df[column], errors="coerce")
    return float(values.mean()) if values.notna().any() else math.nan


def loss_terms_long(curves: Mapping[str, pd.DataFrame | None], homes, methods, supervisions,
                    seed: int) -> pd.DataFrame:
    """One row per home, supervision, method and term the run's curve measured (see the module
    docstring); a run without a curve has no rows."""
    rows = []
    for env in homes:
        for sup in supervisions:
            for m in methods:
                rid = run_id(env, ABLATION_BACKBONE, student_run(m, sup, seed))
                df = curves.get(rid)
                if df is None:
                    continue
                for term in TERMS:
                    if f"grad_first_{term}" not in df.columns:
                        continue
                    rows.append(dict(home=env, supervision=sup, method=m, term=term, run=rid,
                                     value=_mean(df, f"part_{PART_OF_TERM[term]}"
                                                 if PART_OF_TERM[term] else None),
                                     grad_logits=_mean(df, f"grad_logits_{term}"),
                                     grad_first=_mean(df, f"grad_first_{term}")))
    return pd.DataFrame(rows, columns=["home", "supervision", "method", "term", "run", "value",
                                       "grad_logits", "grad_first"])


def plot_loss_terms(curves: Mapping[str, pd.DataFrame | None], path: str | os.PathLike,
                    homes: Sequence[str], supervisions: Sequence[str], seed: int = 0,
                    methods: Sequence[str] = PLOTTED_METHODS) -> None:
    """Rows homes, columns supervision x `methods`; per term its pull on the first layer per
    epoch (log scale); a PNG written atomically."""
    cols = [(s, m) for s in supervisions for m in methods]
    fig, axes = plt.subplots(len(homes), len(cols), squeeze=False, sharex=True,
                             figsize=(4.2 * len(cols), 3.3 * len(homes)))
    drawn = set()
    for i, env in enumerate(homes):
        for j, (sup, m) in enumerate(cols):
            ax = axes[i][j]
            df = curves.get(run_id(env, ABLATION_BACKBONE, student_run(m, sup, seed)))
            title = f"{label(env, HOME_LABELS)}, {label(sup, SUPERVISION_LABELS)}\n" \
                    f"{label(m, METHOD_LABELS)}"
            if df is None:
                title += " (missing)"
            for term in TERMS if df is not None else ():
                column = f"grad_first_{term}"
                if column not in df.columns:
                    continue
                y = pd.to_numeric(df[column], errors="coerce").clip(lower=1e-12)
                ax.plot(df["epoch"], y, color=TERM_COLORS[term], marker="o", markersize=3,
                        linewidth=1.5, label=term)
                drawn.add(term)
            ax.set_yscale("log")
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3, which="both")
            if j == 0:
                ax.set_ylabel("|gradient| on the first layer")
            if i == len(homes) - 1:
                ax.set_xlabel("epoch")
    handles = [plt.Line2D([], [], color=TERM_COLORS[t], marker="o", markersize=3, label=t)
               for t in TERMS if t in drawn]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"How hard each weighted loss term pulls on the student's first layer, "
                 f"MultiASL, seed {seed} (first batch of each epoch)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def vc_share(long: pd.DataFrame) -> pd.DataFrame:
    """Per home, supervision and VC method: VC's pull on the first layer over FD's and over the
    supervision's (the ratios of their mean gradient norms)."""
    rows = []
    for (env, sup, m), g in long.groupby(["home", "supervision", "method"], sort=False):
        pull = dict(zip(g["term"], g["grad_first"]))
        if "vc" not in pull:
            continue
        rows.append(dict(home=env, supervision=sup, method=m,
                         vc_over_fd=pull["vc"] / pull["fd"] if pull.get("fd") else np.nan,
                         vc_over_supervision=pull["vc"] / pull["supervision"]
                         if pull.get("supervision") else np.nan))
    return pd.DataFrame(rows)


def main(snakemake) -> None:
    """Entry of the `loss_terms` rule."""
    p = snakemake.params
    exp, seed = dict(p.experiments), int(p.seed)
    methods = [*exp["methods"], *[a for a in exp["ablations"] if a in PLOTTED_METHODS]]
    curves = load_curves(snakemake.input.curves)
    write_table(loss_terms_long(curves, exp["homes"], methods, exp["supervision"], seed),
                snakemake.output.csv)
    plot_loss_terms(curves, snakemake.output.png, exp["homes"], exp["supervision"], seed,
                    [m for m in PLOTTED_METHODS if m in methods])
