"""The `probe` rule: what a linear model reads from the artifacts the models read (frames.h5,
audio.h5, labels.h5, split.json), the reference rows of Table 1 (see docs/report.md).

Per view and decoded frame, the features are:
- picture: the frame resized to 32x32 (antialiased, as the models' data path resizes) in grey,
  plus its absolute difference to the next decoded frame (the last frame's difference is 0);
- sound: the mean and the standard deviation of each mel bin over the frame's fbank segment;
- both: the two concatenated.
Each feature is standardised on the train split; a ridge regression (lambda = 100) maps them to
the frame's labels (every view-frame row gets its frame's labels; a weakly labelled sequence,
with sequence labels only, gives every frame its sequence labels, the only target it has). A
frame's score is the max over its views of the ridge output, a sequence's score the max over
its frames. probe.json holds the
sequence and frame mAP of every decoded frame of the test split for each kind (frame mAP over the
sequences with frame labels only), with the random-score chance of that split
(vicokd.metrics.yardsticks).

The fit streams: each sequence is read a block of frames at a time and only X^T X and X^T Y are
kept (float64, features x features), so memory does not grow with the data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import DataFiles, SequenceDataset
from ..data.frames import resize_frames
from ..data.labels import has_frame_labels
from ..errors import VicokdError
from ..metrics import mean_average_precision, per_class_average_precision, yardsticks
from ..runner import optional_input
from ..storage import open_h5, write_json

log = logging.getLogger(__name__)

PROBE_SIZE = 32           # px of the grey picture features
RIDGE_LAMBDA = 100.0
FRAME_BLOCK = 64          # decoded frames read at a time (224 px x 5 views: ~50 MB of uint8)
KINDS = ("picture", "sound", "both")


# --- features -----------------------------------------------------------------------------------

def picture_features(frames: np.ndarray, has_next: bool) -> np.ndarray:
    """uint8 frames `[V, B, H, W, 3]` -> float32 `[V, B', 2 * S * S]`: the grey S x S frame and
    its absolute difference to the next frame. With `has_next` the last given frame is only the
    next frame of the one before it (B' = B - 1); else it is the sequence's last frame, whose
    difference is 0 (B' = B)."""
    small = resize_frames(frames, PROBE_SIZE).float().mean(dim=2) / 255.0   # [V, B, S, S]
    grey = small.flatten(2).numpy()
    following = np.concatenate([grey[:, 1:], grey[:, -1:]], axis=1)
    diff = np.abs(following - grey)
    if has_next:
        grey, diff = grey[:, :-1], diff[:, :-1]
    return np.concatenate([grey, diff], axis=2)


def sound_features(fbank: np.ndarray) -> np.ndarray:
    """fbank `[V, B, L, mel]` -> float32 `[V, B, 2 * mel]`: each mel bin's mean and standard
    deviation over the frame's segment."""
    fb = fbank.astype(np.float32)
    return np.concatenate([fb.mean(axis=2), fb.std(axis=2)], axis=2)


@dataclass
class ProbeData:
    """Open artifacts of one home and the split's sequence ids."""
    frames: object
    labels: object
    audio: object | None
    train: list[str]
    test: list[str]
    classes: list[str]

    def close(self) -> None:
        for f in (self.frames, self.labels, self.audio):
            if f is not None:
                f.close()


def open_probe_data(files: DataFiles) -> ProbeData:
    """Check the artifacts as training does (same one-line errors), then open them."""
    halves = {s: SequenceDataset(files, s, frames=1, image_size=PROBE_SIZE, train=False)
              for s in ("train", "test")}
    return ProbeData(frames=open_h5(files.frames, "frames"), labels=open_h5(files.labels, "labels"),
                     audio=open_h5(files.audio, "audio") if files.audio else None,
                     train=halves["train"].ids, test=halves["test"].ids,
                     classes=halves["train"].classes)


def sequence_blocks(data: ProbeData, sid: str, block: int = FRAME_BLOCK):
    """Yield (features `[V, B, P]` float32, frame labels `[B, C]`) of one sequence, a block of
    decoded frames at a time; P holds the picture features, then the sound ones when there is
    audio. A sequence without frame labels gives each frame its sequence labels."""
    frames = data.frames[sid]["frames"]
    length = frames.shape[1]
    group = data.labels[sid]
    labels = group["frame_labels"][()] if has_frame_labels(group) else \
        np.tile(group["sequence_labels"][()], (length, 1))
    for a in range(0, length, block):
        b = min(a + block, length)
        has_next = b < length
        parts = [picture_features(frames[:, a:b + 1] if has_next else frames[:, a:b], has_next)]
        if data.audio is not None:
            parts.append(sound_features(data.audio[sid]["fbank"][:, a:b]))
        yield np.concatenate(parts, axis=2), labels[a:b]


def feature_columns(mel_bins: int | None) -> dict[str, np.ndarray | None]:
    """Which columns of the concatenated features each kind reads (None: no audio)."""
    pic = 2 * PROBE_SIZE * PROBE_SIZE
    if mel_bins is None:
        return {"picture": np.arange(pic), "sound": None, "both": None}
    return {"picture": np.arange(pic), "sound": np.arange(pic, pic + 2 * mel_bins),
            "both": np.arange(pic + 2 * mel_bins)}


# --- ridge regression from running sums -----------------------------------------------------------

class RidgeSums:
    """Running X^T X, X^T Y, sum X, sum Y and n over rows, shifted by the first batch's mean so
    that the variance is not lost to cancellation (fbank values are far from zero)."""

    def __init__(self):
        self.n = 0
        self.shift = None

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """x `[R, P]`, y `[R, C]`."""
        x = x.astype(np.float64)
        y = y.astype(np.float64)
        if self.shift is None:
            self.shift = x.mean(axis=0)
            p, c = x.shape[1], y.shape[1]
            self.xx, self.xy = np.zeros((p, p)), np.zeros((p, c))
            self.sx, self.sy = np.zeros(p), np.zeros(c)
        z = x - self.shift
        zt = torch.from_numpy(z)          # torch's matmul uses the threads the job was given
        self.xx += (zt.T @ zt).numpy()
        self.xy += (zt.T @ torch.from_numpy(y)).numpy()
        self.sx += z.sum(axis=0)
        self.sy += y.sum(axis=0)
        self.n += x.shape[0]

    def fit(self, columns: np.ndarray, lam: float = RIDGE_LAMBDA) -> "Ridge":
        """Ridge on the standardised `columns`, with an intercept: W = (Xs^T Xs + lam I)^-1
        Xs^T (Y - mean Y), where Xs^T Xs and Xs^T Y follow from the sums."""
        if self.n < 2:
            raise VicokdError("the probe needs at least two training frames")
        n, c = self.n, np.asarray(columns)
        mz, my = self.sx[c] / n, self.sy / n
        cov = self.xx[np.ix_(c, c)] / n - np.outer(mz, mz)
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        sd[sd < 1e-6] = 1.0          # a constant feature: left unscaled (its weight ends up 0)
        gram = n * cov / np.outer(sd, sd)
        cross = (self.xy[c] - n * np.outer(mz, my)) / sd[:, None]
        w = np.linalg.solve(gram + lam * np.eye(len(c)), cross)
        return Ridge(columns=c, mean=self.shift[c] + mz, std=sd, weights=w, intercept=my)


@dataclass
class Ridge:
    columns: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray      # [P, C]
    intercept: np.ndarray    # [C]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x `[..., all features]` -> `[..., C]`."""
        return ((x[..., self.columns] - self.mean) / self.std) @ self.weights + self.intercept


# --- the probe ----------------------------------------------------------------------------------

def fit_probes(data: ProbeData, columns: dict, lam: float, block: int) -> tuple[dict, int]:
    """One pass over the train split, then a ridge per kind: ({kind: Ridge}, training rows)."""
    sums = RidgeSums()
    for sid in tqdm(data.train, desc="probe: fit", unit="seq"):
        for x, y in sequence_blocks(data, sid, block):
            sums.add(x.reshape(-1, x.shape[2]), np.tile(y, (x.shape[0], 1)))  # view-major rows
    return {k: sums.fit(c, lam) for k, c in columns.items() if c is not None}, sums.n


def score_test(data: ProbeData, models: dict, block: int):
    """Every decoded frame of the test split: (sequence labels `[S, C]`, frame labels `[F, C]`,
    {kind: sequence scores}, {kind: frame scores}); a frame's score is the max over its views,
    a sequence's the max over its frames."""
    frame_y, frame_s = [], {k: [] for k in models}
    seq_y, seq_s = [], {k: [] for k in models}
    for sid in tqdm(data.test, desc="probe: test", unit="seq"):
        framed = has_frame_labels(data.labels[sid])     # else: its frames are not scored
        per_kind = {k: [] for k in models}
        for x, y in sequence_blocks(data, sid, block):
            if framed:
                frame_y.append(y)
            for k, model in models.items():
                per_kind[k].append(model.predict(x).max(axis=0))
        seq_y.append(data.labels[sid]["sequence_labels"][()])
        for k, parts in per_kind.items():
            scores = np.concatenate(parts)
            if framed:
                frame_s[k].append(scores)
            seq_s[k].append(scores.max(axis=0))
    c = len(data.classes)
    return (np.stack(seq_y), np.concatenate(frame_y) if frame_y else np.zeros((0, c)),
            {k: np.stack(v) for k, v in seq_s.items()},
            {k: np.concatenate(v) if v else np.zeros((0, c)) for k, v in frame_s.items()})


def run_probe(files: DataFiles, lam: float = RIDGE_LAMBDA, block: int = FRAME_BLOCK) -> dict:
    """Fit the three probes on the train split and score the test split: the probe.json dict
    (`block`: decoded frames read at a time; it changes memory, not results)."""
    start = time.perf_counter()
    data = open_probe_data(files)
    try:
        mel_bins = None if data.audio is None else int(data.audio[data.test[0]]["fbank"].shape[3])
        columns = feature_columns(mel_bins)
        models, n_rows = fit_probes(data, columns, lam, block)
        seq_y, frame_y, seq_s, frame_s = score_test(data, models, block)
    finally:
        data.close()
    out = {"lambda": float(lam), "image_size": PROBE_SIZE,
           "features": {k: None if c is None else int(len(c)) for k, c in columns.items()},
           "n_train": len(data.train), "n_train_rows": int(n_rows),
           "n_test": len(data.test), "n_test_frames": int(frame_y.shape[0]),
           "classes": data.classes}
    for kind in KINDS:
        out[kind] = None if kind not in models else {
            "map": _number(mean_average_precision(seq_y, seq_s[kind])),
            "frame_map": _number(mean_average_precision(frame_y, frame_s[kind])),
            "per_class_ap": _per_class(seq_y, seq_s[kind], data.classes),
            "frame_per_class_ap": _per_class(frame_y, frame_s[kind], data.classes)}
    out.update(yardsticks(seq_y))
    out.update(yardsticks(frame_y, "frame_"))
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def _number(x: float):
    return None if np.isnan(x) else float(x)


def _per_class(y: np.ndarray, scores: np.ndarray, classes: list[str]) -> dict:
    ap = per_class_average_precision(y, scores)
    return {n: _number(100.0 * a) for n, a in zip(classes, ap)}


def _fmt(result: dict | None, key: str) -> str:
    return "n/a" if not result or result[key] is None else f"{result[key]:.2f}"


def main(snakemake) -> None:
    """Entry of the `probe` rule."""
    inp = snakemake.input
    files = DataFiles(frames=inp.frames, labels=inp.labels, split=inp.split,
                      audio=optional_input(inp, "audio"))
    out = run_probe(files)
    write_json(snakemake.output[0], out)
    band, fband = out["chance_band"] or [np.nan] * 2, out["frame_chance_band"] or [np.nan] * 2
    log.info("probe, %d test sequences (%d frames): sequence / frame mAP: picture %s / %s, "
             "sound %s / %s, both %s / %s; random scores %.2f (%.2f-%.2f) / %.2f (%.2f-%.2f); "
             "%.1f s", out["n_test"], out["n_test_frames"],
             *(_fmt(out[k], m) for k in KINDS for m in ("map", "frame_map")),
             out["chance"] or np.nan, *band, out["frame_chance"] or np.nan, *fband, out["seconds"])
