"""The lines written under each table: what its numbers are, the config that made them, what
chance is on each home's test split, and which runs are missing."""

from __future__ import annotations

from typing import Mapping, Sequence

from .layout import HOME_LABELS, IN_BAND, MISSING, fmt_band, label

def data_note(data_format: str) -> str:
    if data_format == "synthetic":
        return ("Data: SYNTHETIC embedded homes (dataset.format: synthetic), not the "
                "MultiSensor-Home recordings; values are not comparable with the paper's.")
    return f"Data: dataset.format {data_format}."


def yardstick_notes(bands: Mapping[str, tuple], prevalence: Mapping[str, float],
                    key: str = "map", probe_rows: bool = False) -> list[str]:
    """The lines under a table that say what chance is on each home's test split: the random
    scores' band (what † marks; `bands`: env -> (mean, low, high)) and, apart from it, the mean
    class prevalence (`prevalence`: env -> value); and, when the table has probe rows, what the
    probe is."""
    level = "frame-level " if key == "frame_map" else ""
    notes = []
    if bands:
        per_home = ", ".join(f"{label(env, HOME_LABELS)} {fmt_band(b)}" for env, b in bands.items())
        notes.append(f"{IN_BAND} = inside the random-score band, i.e. no better than chance: the "
                     f"2.5–97.5 percentiles of the {level}mAP that random scores get on the same "
                     f"test split (seeded simulation). Random scores, mean (band) [%]: {per_home}.")
    if prevalence:
        per_home = ", ".join(f"{label(env, HOME_LABELS)} {v:.2f}" for env, v in prevalence.items())
        notes.append(f"Mean class prevalence [%] (the {level}mAP of a constant score, lower than "
                     f"random scores get on a small test split, so not chance): {per_home}.")
    if probe_rows:
        notes.append("Linear probe rows (reference, not ranked): a ridge regression (lambda = "
                     "100) fitted on the train split to the frame labels; the video probe reads "
                     "each view's 32 px grey frame and its difference to the next frame, the "
                     "audio+video probe also each mel bin's mean and std over the frame's audio "
                     "segment; a frame's score is the max over its views, a sequence's the max "
                     "over its frames (results/{env}/probe.json).")
    return notes


def missing_note(missing: Sequence[str]) -> list[str]:
    if not missing:
        return []
    shown = ", ".join(missing[:12]) + (f", … ({len(missing) - 12} more)" if len(missing) > 12 else "")
    return [f"Missing runs ({len(missing)}), shown as '{MISSING}': {shown}."]


def table_notes(table: str, experiments: Mapping, data_format: str, seed: int,
                missing: Sequence[str] = (), key: str = "map") -> list[str]:
    """The footnote lines of one table: what the numbers are and the config that made them."""
    homes = ", ".join(experiments["homes"])
    metric = ("frame-level mAP [%] (fused frame scores against frame labels)" if key == "frame_map"
              else "mAP [%] (macro, sequence-level scores, test split)")
    notes = []
    if table == "table1":
        notes += [f"{metric}; in parentheses the difference from the non-distilled student "
                  "(same home, backbone, supervision); the best student method of each column is "
                  "in bold; the teacher (AV_F) is shown in both columns and not ranked.",
                  f"Seed {seed} for every method: one run per cell. The paper's Table 1 shows means "
                  "of 3 runs (see Table 2 for our spread over seeds)."]
    elif table == "table2":
        seeds = ", ".join(str(k) for k in experiments["seeds"])
        notes += [f"{metric}: mean ± sample standard deviation (ddof=1) over seeds {seeds}; "
                  "n = runs present.",
                  "ViCoKD − Student and ViCoKD − CoKD (what view consistency adds): difference "
                  "of the means; 'exceeds spread' when its size is larger than the sum of the "
                  "two standard deviations."]
    elif table == "table3":
        notes += [f"{metric}: teacher → teacher trained with the view-aware consistency loss "
                  "(difference in parentheses). One run each."]
    elif table == "table4":
        notes += [f"{metric} with the MultiASL backbone; in parentheses the difference from "
                  f"ViCoKD. Seed {seed} for every run."]
    notes.append(f"Homes: {homes}. Backbones: {', '.join(experiments['backbones'])}.")
    notes.append(data_note(data_format))
    return notes + missing_note(list(missing))
