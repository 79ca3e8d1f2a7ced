"""The `decode` stage: every sequence's views at `decode.fps`, square, uint8, into frames.h5.

Decoded frame i is the source frame nearest to time i / decode.fps, for every i with
i / decode.fps inside the sequence's usable duration; only those frames are decoded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..storage import atomic_h5, write_dataset
from .manifest import load_manifest
from .media import decode_frames, frame_count, source_indices

log = logging.getLogger(__name__)


def decode_sequence(root: Path, seq: dict, fps: float, size: int, threads: int = 1) -> np.ndarray:
    """uint8 `[V, T, size, size, 3]` RGB for one manifest sequence."""
    count = frame_count(seq["duration"], fps)
    views = []
    for view, src_fps, src_frames in zip(seq["views"], seq["fps"], seq["frames"]):
        idx = source_indices(count, fps, src_fps, src_frames)
        views.append(decode_frames(root / view, idx, size, threads))
    return np.stack(views)


def write_frames(group, frames: np.ndarray):
    """`frames` uint8 [V, T, H, W, 3] as the dataset `frames` of `group`, one chunk per frame
    of one view, uncompressed: training reads T of a sequence's L frames per item, each chunk
    straight into its batch (vicokd.data.dataset.read_frames); whole-block readers (masks,
    features) read it as fast as one chunk per view (benchmarks/bench_loader.py)."""
    return write_dataset(group, "frames", frames, ("V", "T", "H", "W", "3"),
                         chunks=(1, 1) + frames.shape[2:])


def decode_manifest(manifest_path, out_path, decode: dict, threads: int = 1) -> None:
    manifest = load_manifest(manifest_path)
    root = Path(manifest["root"])
    fps, size = float(decode["fps"]), int(decode["size"])
    with atomic_h5(out_path, kind="frames", config=decode, fps=fps, size=size) as f:
        for seq in tqdm(manifest["sequences"], desc=f"decode {manifest['env']}", unit="seq"):
            frames = decode_sequence(root, seq, fps, size, threads)
            write_frames(f.create_group(seq["id"]), frames)
        log.info("decoded %d sequences of %s at %.2f fps, %d px", len(manifest["sequences"]),
                 manifest["env"], fps, size)


def main(snakemake) -> None:
    decode_manifest(snakemake.input.manifest, snakemake.output[0], snakemake.params.decode, snakemake.threads)
