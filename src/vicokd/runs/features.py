"""The `features` rule (model.encoders: frozen): the frozen encoders of one home, run once over
every decoded frame, written as `results/{env}/features.h5` and `results/{env}/encoders/`.

Label-free: it reads frames.h5, audio.h5 and the split's train ids only (never labels.h5);
the whitening (vicokd.frozen.Whitening) is fitted on train-split view-frames.

features.h5 (kind "features"): `/{id}/video` and `/{id}/audio` float16 [V, L, K], with the
`model:` keys that made them as its config attribute.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from tqdm import tqdm

from ..config import fill
from ..data.frames import fbank_statistics, normalise_fbank, normalise_frames, resize_frames
from ..errors import VicokdError
from ..experiments import ENCODER_KEYS
from ..frozen import FrozenEncoders, fit_whitening, folder_fingerprint, frozen_config_from_section
from ..runner import job_sections, optional_input
from ..storage import atomic_h5, atomic_path, open_h5, read_json, write_dataset

log = logging.getLogger(__name__)

FIT_ROWS = 20000                 # view-frames the whitening is fitted on (a seeded sample)


class HomeReader:
    """Normalised frames [V, L, 3, S, S] and fbank [V, L, Lf, M] of one home's sequences, as
    the training dataset normalises them (`model.normalize` of the complete `model:` section)."""

    def __init__(self, frames_path: str, audio_path: str | None, model_section: dict):
        self.frames = open_h5(frames_path, "frames")
        self.audio = open_h5(audio_path, "audio") if audio_path else None
        norm = model_section["normalize"]
        self.size = int(model_section["image_size"])
        self.image_mean, self.image_std = float(norm["image_mean"]), float(norm["image_std"])
        self.fbank_mean, self.fbank_std = norm["fbank_mean"], norm["fbank_std"]
        if self.audio is not None:
            self.fbank_mean, self.fbank_std = fbank_statistics(self.audio, self.fbank_mean,
                                                               self.fbank_std)

    def ids(self) -> list[str]:
        return list(self.frames.keys())

    def audio_shape(self) -> tuple[int, int]:
        first = self.audio[next(iter(self.audio.keys()))]["fbank"]
        return int(first.shape[2]), int(first.shape[3])

    def picture(self, sid: str) -> torch.Tensor:
        if sid not in self.frames:
            raise VicokdError(f"{self.frames.filename}: no sequence '{sid}'")
        frames = resize_frames(self.frames[sid]["frames"][()], self.size)
        return normalise_frames(frames, self.image_mean, self.image_std)

    def sound(self, sid: str) -> torch.Tensor:
        if sid not in self.audio:
            raise VicokdError(f"{self.audio.filename}: no sequence '{sid}'")
        return normalise_fbank(torch.from_numpy(self.audio[sid]["fbank"][()]), self.fbank_mean,
                               self.fbank_std)

    def close(self) -> None:
        self.frames.close()
        if self.audio is not None:
            self.audio.close()


def _sample_rows(x: torch.Tensor, keep: int, rng: np.random.Generator) -> torch.Tensor:
    if x.shape[0] <= keep:
        return x
    return x[torch.from_numpy(np.sort(rng.choice(x.shape[0], keep, replace=False)))]


def fit_encoders(reader: HomeReader, encoders: FrozenEncoders, train_ids: list[str]) -> None:
    """Fit both whitenings on a seeded sample of the train split's view-frames."""
    rng = np.random.default_rng(encoders.cfg.features.seed)
    per_seq = max(1, 2 * FIT_ROWS // max(len(train_ids), 1))
    video, audio = [], []
    for sid in tqdm(train_ids, desc="features: fit", unit="seq"):
        video.append(_sample_rows(torch.cat([encoders.raw_video(v) for v in reader.picture(sid)]),
                                  per_seq, rng))
        if reader.audio is not None:
            audio.append(_sample_rows(torch.cat([encoders.raw_audio(a) for a in reader.sound(sid)]),
                                      per_seq, rng))
    fit_whitening(encoders.video_whitening, video, FIT_ROWS, encoders.cfg.features.seed)
    if audio:
        fit_whitening(encoders.audio_whitening, audio, FIT_ROWS, encoders.cfg.features.seed)


def write_features(frames_path: str, audio_path: str | None, split_path: str, out_path: str,
                   encoders_dir: str, model_section: dict) -> dict:
    """Build, fit and save the frozen encoders of a home, then write its features.h5."""
    model_section = fill("model", model_section)
    section = {k: model_section[k] for k in ENCODER_KEYS}
    split = read_json(split_path)
    if not isinstance(split, dict) or not split.get("train"):
        raise VicokdError(f"{split_path}: no 'train' list of sequence ids")
    reader = HomeReader(frames_path, audio_path, section)
    t0 = time.perf_counter()
    count = len(reader.ids())
    try:
        audio_length, mel_bins = reader.audio_shape() if reader.audio is not None else (1, 1)
        cfg = frozen_config_from_section(section, mel_bins=mel_bins, audio_length=audio_length)
        encoders = FrozenEncoders(cfg)
        fit_encoders(reader, encoders, [str(s) for s in split["train"]])
        with atomic_path(encoders_dir) as tmp:
            encoders.save(tmp)
        k = cfg.features.components
        decoded = {key: reader.frames.attrs[key] for key in ("fps", "size")
                   if key in reader.frames.attrs}
        # every model trained on these features records it (vicokd predict checks it)
        decoded["encoders_fingerprint"] = folder_fingerprint(encoders_dir)
        with atomic_h5(out_path, kind="features", config={"model": section},
                       components=k, audio=reader.audio is not None, **decoded) as f:
            for sid in tqdm(reader.ids(), desc="features", unit="seq"):
                g = f.create_group(sid)
                write_dataset(g, "video", encoders.video(reader.picture(sid)).half().numpy(),
                              ("V", "L", "K"))
                if reader.audio is not None:
                    write_dataset(g, "audio", encoders.audio(reader.sound(sid)).half().numpy(),
                                  ("V", "L", "K"))
    finally:
        reader.close()
    seconds = time.perf_counter() - t0
    log.info("features: %d sequences, K = %d per modality (video from %d, audio from %d raw "
             "features), %.1fs", count, k, encoders.video_in, encoders.audio_in, seconds)
    return {"components": k, "seconds": seconds}


def main(snakemake) -> None:
    """Entry of the `features` rule."""
    inp = snakemake.input
    model_section, = job_sections(snakemake, "model")
    write_features(inp.frames, optional_input(inp, "audio"), inp.split, snakemake.output.features,
                   snakemake.output.encoders, model_section)
