"""The `decode` stage: every sequence's views at `decode.fps`, square, uint8, into frames.h5.

Decoded frame i is the source frame whose presentation timestamp is nearest to time
i / decode.fps (after the view's first frame), for every i with i / decode.fps inside the
sequence's usable duration; only those frames are decoded. Timestamps, not the average frame
rate: a variable-frame-rate recording is decoded at the right times.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import VicokdError
from ..storage import atomic_h5, write_dataset
from .manifest import load_manifest
from .media import FrameTimes, decode_frames, frame_count, frame_times, nearest_frames

log = logging.getLogger(__name__)


def decode_sequence(root: Path, seq: dict, fps: float, size: int, threads: int = 1) -> np.ndarray:
    """uint8 `[V, T, size, size, 3]` RGB for one manifest sequence."""
    count = frame_count(seq["duration"], fps)
    recorded = seq.get("frame_times")      # the manifest's; absent in a sequence made by hand
    views = []
    for v, (view, src_frames) in enumerate(zip(seq["views"], seq["frames"])):
        path = root / view
        times = FrameTimes.from_json(recorded[v]) if recorded else frame_times(path)
        if len(times) != src_frames:
            raise VicokdError(f"{path}: {len(times)} frames now, {src_frames} when the manifest "
                              f"probed it; rerun the manifest")
        idx = nearest_frames(times, count, fps)
        views.append(decode_frames(path, idx, size, threads, times=times))
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
