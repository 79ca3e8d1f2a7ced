"""The `figure3` rule: Figure 3 of the paper, test mAP per epoch with MultiASL, for the
non-distilled student, LogitKD, CoKD and ViCoKD, one panel per home and supervision. Each panel
shades the random-score band of its runs' test split (their metrics.json) and draws the video
probe's level (results/{env}/probe.json), so a curve inside the band reads as chance."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import VicokdError  # noqa: E402
from ..experiments import ABLATION_BACKBONE, FIGURE3_METHODS, run_id, student_run  # noqa: E402
from ..storage import atomic_path  # noqa: E402
from .layout import HOME_LABELS, METHOD_LABELS, SUPERVISION_LABELS, label  # noqa: E402
from .tables import load_metrics, load_probes, run_id_of_path  # noqa: E402
from .yardsticks import (PROBE_KINDS, PROBE_V, Metrics, Probes, home_bands,  # noqa: E402
                         probe_value)

# Fixed colours, markers and styles so that a method looks the same in every panel. Runs that
# tie draw the same line: the thick ViCoKD line goes underneath and thinner ones on top (zorder),
# so every method stays visible.
STYLE = {
    "student": dict(color="#555555", linestyle="--", linewidth=1.4, marker="s", zorder=5),
    "logitkd": dict(color="#1f77b4", linestyle="-", linewidth=1.6, marker="^", zorder=4),
    "cokd": dict(color="#ff7f0e", linestyle="-", linewidth=1.8, marker="D", zorder=3),
    "vicokd": dict(color="#d62728", linestyle="-", linewidth=4.0, marker="o", zorder=2),
}
BAND_STYLE = dict(color="#999999", alpha=0.25, zorder=0)
PROBE_STYLE = dict(color="#2ca02c", linestyle=":", linewidth=1.6, zorder=1)
# The curve column -> the metrics/probe key of the same metric.
METRIC_OF_COLUMN = {"test_map": "map", "test_frame_map": "frame_map"}


def load_curves(paths: Iterable[str | os.PathLike]) -> dict[str, pd.DataFrame | None]:
    """Run id -> its curve.csv (None when the file does not exist); a malformed file is an
    error naming it."""
    out: dict[str, pd.DataFrame | None] = {}
    for path in paths:
        rid = run_id_of_path(path)
        if not Path(path).exists():
            out[rid] = None
            continue
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise VicokdError(f"{path}: not a readable curve CSV ({exc})") from None
        lacking = [c for c in ("epoch", "test_map", "test_frame_map") if c not in df.columns]
        if lacking:
            raise VicokdError(f"{path}: curve lacks columns {lacking}")
        out[rid] = df
    return out


def plot_figure3(curves: Mapping[str, pd.DataFrame | None], path: str | os.PathLike,
                 homes: Sequence[str], supervisions: Sequence[str], seed: int = 0,
                 column: str = "test_map", data_format: str = "synthetic",
                 metrics: Metrics | None = None, probes: Probes | None = None) -> list[str]:
    """Draw the grid (rows homes, columns supervisions) and write a PNG atomically; with
    `metrics` (the drawn runs' metrics.json) each panel shades its random-score band, with
    `probes` it draws the video probe's level. Returns the run ids that had no curve (drawn as
    a note in their panel)."""
    ylabel = "test frame-level mAP [%]" if column == "test_frame_map" else "test mAP [%]"
    key = METRIC_OF_COLUMN[column]
    fig, axes = plt.subplots(len(homes), len(supervisions), squeeze=False, sharex=True,
                             figsize=(5.2 * len(supervisions), 3.6 * len(homes)))
    missing = []
    for i, env in enumerate(homes):
        for j, sup in enumerate(supervisions):
            ax = axes[i][j]
            absent = []
            rids = [run_id(env, ABLATION_BACKBONE, student_run(m, sup, seed)) for m in FIGURE3_METHODS]
            draw_yardsticks(ax, {r: (metrics or {}).get(r) for r in rids}, probes, env, key)
            for m, rid in zip(FIGURE3_METHODS, rids):
                df = curves.get(rid)
                y = None if df is None else pd.to_numeric(df[column], errors="coerce")
                if y is None or y.notna().sum() == 0:
                    absent.append(label(m, METHOD_LABELS))
                    missing.append(rid)
                    continue
                ax.plot(df["epoch"], y, markersize=4, label=label(m, METHOD_LABELS), **STYLE[m])
            title = f"{label(env, HOME_LABELS)}, {label(sup, SUPERVISION_LABELS)}"
            if absent:  # said in the title, where it cannot hide a curve
                title += "\nmissing: " + ", ".join(absent)
            ax.set_title(title, fontsize=11, color="#b00000" if absent else "black")
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if j == 0:
                ax.set_ylabel(ylabel)
            if i == len(homes) - 1:
                ax.set_xlabel("epoch")
    # One legend for the whole figure, always naming all four methods.
    handles = [Line2D([], [], markersize=4, label=label(m, METHOD_LABELS), **STYLE[m])
               for m in FIGURE3_METHODS]
    if metrics:
        handles.append(Patch(label="random scores (95 % band)", **BAND_STYLE))
    if probes:
        handles.append(Line2D([], [], label=label(PROBE_V, METHOD_LABELS), **PROBE_STYLE))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=10,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    what = "frame-level mAP" if column == "test_frame_map" else "mAP"
    fig.suptitle(f"Test {what} per epoch, MultiASL backbone, seed {seed}"
                 + (" (synthetic data)" if data_format == "synthetic" else ""), fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return missing


def draw_yardsticks(ax, panel_metrics: Metrics, probes: Probes | None, env: str, key: str) -> None:
    """Shade the random-score band of the panel's runs and draw the video probe's level."""
    band = home_bands(panel_metrics, None, [env], key).get(env)
    if band is not None:
        ax.axhspan(band[1], band[2], **BAND_STYLE)
    level = probe_value(probes, env, PROBE_KINDS[PROBE_V], key)
    if not math.isnan(level):
        ax.axhline(level, **PROBE_STYLE)
        ax.annotate(f"{label(PROBE_V, METHOD_LABELS)} {level:.1f}", (0.01, level),
                    xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                    fontsize=8, color=PROBE_STYLE["color"], va="bottom")


def main(snakemake) -> None:
    """Entry of the `figure3` rule: the figure in sequence-level and in frame-level mAP."""
    exp = dict(snakemake.params.experiments)
    seed = int(snakemake.params.seed)
    curves = load_curves(snakemake.input.curves)
    metrics = load_metrics(snakemake.input.metrics)
    probes = load_probes(snakemake.input.probes)
    for column, out in (("test_map", snakemake.output.png),
                        ("test_frame_map", snakemake.output.frame_png)):
        missing = plot_figure3(curves, out, exp["homes"], exp["supervision"], seed, column,
                               snakemake.params.data_format, metrics, probes)
        if missing:
            logging.getLogger("vicokd").warning("figure 3 (%s): no curve for %s", column,
                                                ", ".join(missing))
