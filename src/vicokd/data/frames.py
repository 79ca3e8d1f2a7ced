"""How frames and fbank travel from the HDF5 artifacts to a batch: reading a sequence's sampled
frames one chunk each, resizing, normalising, and collating batches without a copy (see
vicokd.data.dataset for the items they make)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate, get_worker_info

# AST's published fbank statistics (AudioSet); config may override them.
FBANK_MEAN = -4.2677393
FBANK_STD = 4.5689974


def resize_frames(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [N, T, H, W, 3] -> uint8 [N, T, 3, S, S].

    Resized while still uint8 and channels-last (NHWC memory behind an NCHW view): torch's
    antialiased bilinear has a fast path for exactly that, ~9x faster than on floats."""
    n, t, hgt, wid, _ = frames.shape
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(n * t, hgt, wid, 3).permute(0, 3, 1, 2)
    if (hgt, wid) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous().reshape(n, t, 3, size, size)


def resize_frames_hwc(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> uint8 [..., S, S, 3], channels last as stored: the same
    antialiased bilinear as `resize_frames` (same values), without moving the channels."""
    x = torch.as_tensor(np.ascontiguousarray(frames))
    lead, (hgt, wid) = x.shape[:-3], x.shape[-3:-1]
    if (hgt, wid) == (size, size):
        return x
    x = x.reshape(-1, hgt, wid, 3).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(*lead, size, size, 3)


def one_chunk_per_frame(ds) -> bool:
    """Whether a frames.h5 `frames` dataset [V, L, H, W, 3] stores each frame of each view as
    one unfiltered chunk (the decode stage's layout), so a chunk can be read as the frame."""
    return (ds.chunks == (1, 1) + tuple(ds.shape[2:]) and ds.dtype == np.uint8
            and ds.id.get_create_plist().get_nfilters() == 0)


def read_chunk(dsid, offsets: tuple, out: np.ndarray) -> None:
    """The raw bytes of the chunk at `offsets` into the 1-D uint8 view `out` (h5py >= 3.9 writes
    them there itself; older h5py returns bytes, copied in)."""
    try:
        dsid.read_direct_chunk(offsets, out=out)
    except TypeError:                                   # h5py without the `out` argument
        out[:] = np.frombuffer(dsid.read_direct_chunk(offsets)[1], np.uint8)


def read_frames(ds, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 [V, len(idx), H, W, 3]: the decoded frames `idx` of every view of a frames.h5
    `frames` dataset, written into `out` when given (a C-contiguous array of that shape).

    In the decode stage's layout each frame is one chunk, read from the file straight into
    `out`; other layouts (one chunk per view: files decoded before issue 20) read each view's
    block and take the frames from it."""
    views, frame_shape = ds.shape[0], tuple(ds.shape[2:])
    if out is None:
        out = np.empty((views, len(idx)) + frame_shape, np.uint8)
    if one_chunk_per_frame(ds):
        dsid, rest = ds.id, (0,) * len(frame_shape)
        for v in range(views):
            for k, i in enumerate(idx):
                read_chunk(dsid, (v, int(i)) + rest, out[v, k].reshape(-1))
    else:
        for v in range(views):
            np.take(ds[v], idx, axis=0, out=out[v])
    return out


def batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised uint8 tensor for a batch's frames: in shared memory inside a DataLoader
    worker (the batch then reaches the training process without a copy), ordinary otherwise."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    try:        # what default_collate allocates its batches with (no copy of the new memory)
        storage = torch.UntypedStorage._new_shared(math.prod(shape))
    except AttributeError:                              # a torch without it: moved, one copy
        return torch.empty(shape, dtype=torch.uint8).share_memory_()
    return torch.empty(0, dtype=torch.uint8).set_(storage, 0, shape)


def collate_items(items: list[dict]) -> dict:
    """The DataLoader's collate: `default_collate`, except that frames which are the rows of
    one batch buffer, in order (raw items from `SequenceDataset.__getitems__`), are handed on
    as that buffer instead of being stacked into a copy."""
    if not isinstance(items[0], dict) or not torch.is_tensor(items[0].get("frames")):
        return default_collate(items)
    frames = [item["frames"] for item in items]
    base = frames[0]._base
    if (base is None or base.shape[0] != len(frames)
            or any(f._base is not base or f.data_ptr() != base[j].data_ptr()
                   for j, f in enumerate(frames))):
        return default_collate(items)
    rest = default_collate([{k: v for k, v in item.items() if k != "frames"} for item in items])
    return {k: base if k == "frames" else rest[k] for k in items[0]}


def normalise_frames(frames: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [..., 3, S, S] -> float32, (x / 255 - mean) / std."""
    return (frames.float() / 255.0 - mean) / std


def normalise_fbank(fbank: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """fbank (any float dtype) -> float32, normalised as AST does: (x - mean) / (2 std)."""
    return (fbank.float() - mean) / (2 * std)


def fbank_statistics(audio_file, mean: float | None, std: float | None) -> tuple[float, float]:
    """The fbank mean and std to normalise with: the config's where given, else the ones the
    spectrogram stage recorded in audio.h5, else AST's AudioSet figures."""
    return (float(audio_file.attrs.get("fbank_mean", FBANK_MEAN)) if mean is None else mean,
            float(audio_file.attrs.get("fbank_std", FBANK_STD)) if std is None else std)
