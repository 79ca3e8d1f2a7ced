"""The `spectrogram` stage: one log-mel fbank segment per decoded frame, into audio.h5.

Segment i covers [i / fps, (i + 1) / fps) s of the view's audio track (mono, resampled), padded
with zeros where the track ends early; `torchaudio.compliance.kaldi.fbank` with the AST
conventions (Hanning window, HTK mel, no energy term). The stored values are raw log-mel; the
home's mean and std are file attributes (`fbank_mean`, `fbank_std`) that readers normalise with.

A view's audio is its own file's track, or, when the manifest gives the sequence `audio_files`
(separate microphones, as MM-Office records them: 8 microphones for 4 cameras, with no pairing
between them), the mean of those files, cut to the shortest, the same for every view.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import fill
from ..storage import atomic_h5, write_dataset
from .manifest import load_manifest
from .media import frame_count, read_audio

log = logging.getLogger(__name__)


def segment_audio(wave: np.ndarray, count: int, fps: float, sample_rate: int) -> np.ndarray:
    """Cut `wave` into `count` segments [i/fps, (i+1)/fps): float32 `[count, samples_per_segment]`."""
    seg = int(round(sample_rate / fps))
    starts = np.floor(np.arange(count) * sample_rate / fps + 1e-9).astype(np.int64)
    padded = np.zeros(int(starts[-1]) + seg if count else 0, dtype=np.float32)
    n = min(len(wave), len(padded))
    padded[:n] = wave[:n]
    return np.stack([padded[s:s + seg] for s in starts]) if count else np.zeros((0, seg), np.float32)


def _fbank(wave: np.ndarray, audio: dict):
    import torch
    from torchaudio.compliance import kaldi

    w = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
    return kaldi.fbank(w - w.mean(), htk_compat=True, sample_frequency=audio["sample_rate"],
                       use_energy=False, window_type="hanning", num_mel_bins=audio["mel_bins"],
                       dither=0.0, frame_length=audio["frame_length_ms"],
                       frame_shift=audio["frame_shift_ms"]).numpy()


def fbank_segments(segments: np.ndarray, audio: dict) -> np.ndarray:
    """Log-mel fbank of each segment: float32 `[count, L, mel_bins]`."""
    audio = fill("audio", audio)
    return np.stack([_fbank(seg, audio) for seg in segments]).astype(np.float32)


def fbank_of_segments(wave: np.ndarray, count: int, fps: float, audio: dict) -> np.ndarray:
    """`fbank_segments(segment_audio(wave, ...))` in one pass over the track when every segment
    starts on the fbank's frame grid (0.4 s segments, 10 ms shift): segment i is then the full
    track's fbank frames [i s, i s + L) with s = segment / shift. Each fbank frame loses its own
    mean before windowing, so the per-segment mean removal changes nothing but rounding."""
    audio = fill("audio", audio)
    sr = int(audio["sample_rate"])
    seg = int(round(sr / fps))
    shift = sr * float(audio["frame_shift_ms"]) / 1000.0
    win = int(sr * float(audio["frame_length_ms"]) / 1000.0)
    starts_exact = np.arange(count) * sr / fps
    step = seg / shift
    aligned = (count > 0 and seg >= win and abs(step - round(step)) < 1e-9
               and np.allclose(starts_exact, np.arange(count) * seg) and shift == int(shift))
    if not aligned:
        return fbank_segments(segment_audio(wave, count, fps, sr), audio)
    padded = np.zeros(count * seg, dtype=np.float32)
    n = min(len(wave), len(padded))
    padded[:n] = wave[:n]
    full = _fbank(padded, audio)                                    # [frames, mel]
    length = 1 + (seg - win) // int(shift)
    step = int(round(step))
    return np.stack([full[i * step:i * step + length] for i in range(count)]).astype(np.float32)


def separate_audio(root: Path, files: list[str], sample_rate: int) -> np.ndarray:
    """The mean of the audio files (mono, resampled), cut to the shortest: float32 `[samples]`."""
    waves = [read_audio(root / f, sample_rate) for f in files]
    n = min(len(w) for w in waves)
    return np.mean([w[:n] for w in waves], axis=0).astype(np.float32)


def spectrogram_manifest(manifest_path, out_path, audio: dict, decode: dict) -> None:
    manifest = load_manifest(manifest_path)
    root = Path(manifest["root"])
    fps, sr = float(decode["fps"]), int(audio["sample_rate"])
    total, total_sq, n = 0.0, 0.0, 0
    with atomic_h5(out_path, kind="audio", config={"audio": audio, "decode": decode},
                   fps=fps, sample_rate=sr) as f:
        for seq in tqdm(manifest["sequences"], desc=f"fbank {manifest['env']}", unit="seq"):
            count = frame_count(seq["duration"], fps)
            if seq.get("audio_files"):
                shared = fbank_of_segments(separate_audio(root, seq["audio_files"], sr), count,
                                           fps, audio)
                views = [shared] * len(seq["views"])
            else:
                views = [fbank_of_segments(read_audio(root / v, sr), count, fps, audio)
                         for v in seq["views"]]
            fbank = np.stack(views)                                  # [V, T, L, mel]
            total += float(fbank.sum(dtype=np.float64))
            total_sq += float(np.square(fbank, dtype=np.float64).sum())
            n += fbank.size
            write_dataset(f.create_group(seq["id"]), "fbank", fbank.astype(np.float16),
                          ("V", "T", "L", "mel"), chunks=(1,) + fbank.shape[1:])
        mean = total / max(n, 1)
        std = float(np.sqrt(max(total_sq / max(n, 1) - mean * mean, 1e-12)))
        f.attrs["fbank_mean"], f.attrs["fbank_std"] = mean, std
        log.info("fbank of %d sequences: mean %.3f, std %.3f", len(manifest["sequences"]), mean, std)


def main(snakemake) -> None:
    spectrogram_manifest(snakemake.input.manifest, snakemake.output[0], snakemake.params.audio,
                         snakemake.params.decode)
