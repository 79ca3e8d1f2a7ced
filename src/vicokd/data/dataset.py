"""Training data from the HDF5 artifacts only (never an mp4): T sampled frames of every view.

Per sequence the dataset reads `frames.h5` `/{id}/frames` uint8 [V, L, H, W, 3],
`audio.h5` `/{id}/fbank` float16 [V, L, Lf, M], `labels.h5` `/{id}/frame_labels` [L, C] and
`sequence_labels` [C], `masks.h5` `/{id}/mask` bool [V, L], and the ids of one half of
`split.json`. An item is a dict of tensors (batches add a leading B):

    frames          float32 [N, T, 3, S, S]  resized to S = image_size, normalised
    fbank           float32 [N, T, Lf, M]    normalised as AST does ((x - mean) / (2 std)), with
                                             the mean/std that audio.h5 records
    frame_labels    float32 [T, C]           labels of the sampled frames
    sequence_labels float32 [C]
    masks           float32 [N, T]           a person is seen (1) or not (0)
    frame_index     int64   [T]              which decoded frames were sampled
    has_frame_labels float32 []              1: the sequence has frame labels; 0: sequence
                                             labels only (weak), its frame_labels are all 0 and
                                             say nothing (labels.h5's `has_frame_labels`)
    index           int64   []               position in the dataset

With `raw = True` (set by the training loop when teacher/student `normalize_on_device` is on)
frames stay uint8, channels last as stored (`[N, T, S, S, 3]`), and fbank float16 in the item,
a quarter and half of the bytes through the DataLoader's workers and pinned memory;
`on_device(batch)` then moves the channels and normalises the batch on the GPU.

With frozen encoders (`model.encoders: frozen`) the `features` stage's `features.h5`
(`/{id}/video`, `/{id}/audio` float16 [V, L, K]) stands for frames.h5 and audio.h5: `frames`
and `fbank` then hold the cached features, float32 [N, T, K], as the models take them.

Evaluation scores every decoded frame: `EvaluationPasses` shifts the T evaluation positions
by 0, 1, ... within their intervals until every frame was sampled once; the sequence score is
that of pass 0 (the positions training samples around).

Frames are read one chunk per sampled frame and view (vicokd.data.frames.read_frames, which
also resizes, normalises and collates; vicokd.data.sampling picks the frames): the decode stage stores
one frame of one view per chunk, so an item reads its N x T frames and nothing else, straight
into the memory the batch travels in (h5py's own selection along the frame axis, `ds[:, [i,
j]]`, is ~1000x slower at the paper's shapes; files decoded before that layout, one chunk per
view, are read a view block at a time). With `raw` a batch's frames are read into one uint8
buffer [B, N, T, S, S, 3] (channels last, as stored), in shared memory inside a DataLoader
worker, which `collate_items` hands on without the copy that stacking makes; `on_device` moves
the channels to where the model wants them. Files open once per process (so once per
DataLoader worker), never per item. With `cache=True` each sequence's block is read
once per process and kept in memory (frames already resized, uint8; fbank float16): later
epochs only index it. The embedded default needs ~0.3 GB per home for that; real homes with
long sequences may not fit, so it is a switch (teacher/student `cache:`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import VicokdError
from ..storage import artifact_identity, check_dataset, open_h5, read_json
from .frames import (batch_buffer, fbank_statistics, normalise_fbank, normalise_frames,
                     read_frames, resize_frames_hwc)
from .labels import has_frame_labels
from .sampling import evaluation_passes, sample_indices



def artifact_kind(path: str) -> str | None:
    """The `kind` attribute of an HDF5 artifact (None if unreadable: open_h5 then says why)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("kind"))
    except OSError:
        return None


@dataclass
class DataFiles:
    """The artifacts of one home."""
    frames: str
    labels: str
    split: str
    audio: str | None = None            # None: visual-only (student) data
    masks: str | None = None


def input_identity(files: DataFiles, **more: str | None) -> dict:
    """{name: storage.artifact_identity} of every artifact a run reads (and of `more` paths, e.g.
    the teacher's model.pt): what a checkpoint must match to resume (vicokd.train.DATA_KEYS)."""
    paths = {**{k: v for k, v in vars(files).items()}, **more}
    return {name: artifact_identity(path) for name, path in sorted(paths.items()) if path}


@dataclass
class SequenceInfo:
    seq_id: str
    views: int
    length: int
    has_frame_labels: bool = True


class SequenceDataset(Dataset):
    """One half ("train" or "test") of a home's split, checked against every artifact."""

    def __init__(self, files: DataFiles, subset: str, frames: int, image_size: int,
                 train: bool, seed: int = 0, image_mean: float = 0.5, image_std: float = 0.5,
                 fbank_mean: float | None = None, fbank_std: float | None = None,
                 cache: bool = False):
        self.files = files
        self.subset = subset
        self.t = int(frames)
        self.size = int(image_size)
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        self.image_mean, self.image_std = float(image_mean), float(image_std)
        self.fbank_mean, self.fbank_std = fbank_mean, fbank_std
        self.cache = bool(cache)
        self.raw = False                    # True: items as stored, normalised by on_device()
        self._cache: dict[str, dict] = {}
        self._handles: dict | None = None
        self._pid = None
        self.ids = self._split_ids()
        # frozen encoders: features.h5 stands for frames.h5 (and audio.h5)
        self.features = artifact_kind(files.frames) == "features"
        self.sequences, self.classes, self.num_classes, self.audio_shape = self._check()
        self.views = self.sequences[0].views
        # the decode rate and size frames.h5 was made at (recorded in model.pt for deployment)
        self.decode = self._decode_attrs()

    # -- checks made once, before any training step -------------------------------------------
    def _split_ids(self) -> list[str]:
        split = read_json(self.files.split)
        if not isinstance(split, dict) or self.subset not in split:
            raise VicokdError(f"{self.files.split}: no '{self.subset}' list of sequence ids")
        ids = [str(s) for s in split[self.subset]]
        if not ids:
            raise VicokdError(f"{self.files.split}: the '{self.subset}' split is empty")
        return ids

    def _decode_attrs(self) -> dict:
        # features.h5 carries frames.h5's decode rate and size (the features stage copies them)
        # and the fingerprint of the frozen encoders that made it
        with open_h5(self.files.frames, "features" if self.features else "frames") as f:
            return {k: f.attrs[k].item() if hasattr(f.attrs[k], "item") else f.attrs[k]
                    for k in ("fps", "size", "encoders_fingerprint") if k in f.attrs}

    def _check(self):
        picture = "features" if self.features else "frames"
        names = [("frames", self.files.frames, picture), ("labels", self.files.labels, "labels")]
        if self.files.audio:
            names.append(("audio", self.files.audio, "features" if self.features else "audio"))
        if self.files.masks:
            names.append(("masks", self.files.masks, "masks"))
        handles = {name: open_h5(path, kind) for name, path, kind in names}
        try:
            return self._check_open(handles)
        finally:
            for f in handles.values():
                f.close()

    def _check_open(self, h):
        classes = h["labels"].attrs.get("classes")
        classes = [str(c) for c in classes] if classes is not None else None
        seqs, num_classes, audio_shape, views = [], None, None, None
        self.feature_size = None
        for sid in self.ids:
            for kind, f in h.items():
                if sid not in f:
                    raise VicokdError(f"{self.files.split}: sequence '{sid}' of the "
                                      f"'{self.subset}' split is not in {f.filename}")
            if self.features:
                fr = h["frames"][sid]["video"]
                check_dataset(self.files.frames, fr, 3, np.float16,
                              {2: self.feature_size} if self.feature_size else {})
                self.feature_size = int(fr.shape[2])
            else:
                fr = h["frames"][sid]["frames"]
                check_dataset(self.files.frames, fr, 5, np.uint8, {4: 3})
            v, length = fr.shape[:2]
            if views is None:
                views = v
            elif v != views:
                raise VicokdError(f"{self.files.frames}:/{sid}/frames: {v} views, other sequences "
                                  f"of this home have {views}")
            lab = h["labels"][sid]
            check_dataset(self.files.labels, lab["frame_labels"], 2, np.uint8, {0: length})
            c = lab["frame_labels"].shape[1]
            check_dataset(self.files.labels, lab["sequence_labels"], 1, np.uint8, {0: c})
            if num_classes is None:
                num_classes = c
            elif c != num_classes:
                raise VicokdError(f"{self.files.labels}:/{sid}/frame_labels: {c} classes, other "
                                  f"sequences have {num_classes}")
            if "audio" in h:
                fb = h["audio"][sid]["audio" if self.features else "fbank"]
                check_dataset(self.files.audio, fb, 3 if self.features else 4, np.float16,
                              {0: v, 1: length})
                if audio_shape is None:
                    audio_shape = tuple(fb.shape[2:])
                elif tuple(fb.shape[2:]) != audio_shape:
                    raise VicokdError(f"{self.files.audio}:/{sid}/fbank: segment shape "
                                      f"{tuple(fb.shape[2:])}, other sequences have {audio_shape}")
            if "masks" in h:
                check_dataset(self.files.masks, h["masks"][sid]["mask"], 2, np.bool_,
                              {0: v, 1: length})
            if length < 1:
                raise VicokdError(f"{self.files.frames}:/{sid}/frames: no frames")
            seqs.append(SequenceInfo(sid, v, length, has_frame_labels(lab)))
        if classes is not None and len(classes) != num_classes:
            raise VicokdError(f"{self.files.labels}: attribute 'classes' names {len(classes)} "
                              f"classes, the label arrays have {num_classes}")
        if classes is None:
            classes = [f"class{i}" for i in range(num_classes)]
        if "audio" in h and not self.features:
            self.fbank_mean, self.fbank_std = fbank_statistics(h["audio"], self.fbank_mean,
                                                               self.fbank_std)
        return seqs, classes, num_classes, audio_shape

    # -- reading ------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Training samples depend on (seed, epoch, item) only: repeatable, resumable."""
        self.epoch = int(epoch)

    def _open(self) -> dict:
        # one set of handles per process: a forked DataLoader worker must not share them
        if self._handles is None or self._pid != os.getpid():
            picture, sound = ("features", "features") if self.features else ("frames", "audio")
            kinds = {"frames": (self.files.frames, picture), "labels": (self.files.labels, "labels"),
                     "audio": (self.files.audio, sound), "masks": (self.files.masks, "masks")}
            self._handles = {k: open_h5(p, kind) for k, (p, kind) in kinds.items() if p}
            self._pid = os.getpid()
        return self._handles

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = None
        state["_cache"] = {}
        return state

    def __len__(self) -> int:
        return len(self.sequences)

    def indices(self, i: int) -> np.ndarray:
        info = self.sequences[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        return sample_indices(info.length, self.t, self.train, rng)

    def _block(self, sid: str) -> dict:
        """The stored arrays of one sequence, as the item needs them: read once per item, or
        once per process when `cache` is on (the frames then kept resized, uint8, channels
        last). Without the cache, frames are left to `_frames` (only the sampled ones)."""
        if self.cache and sid in self._cache:
            return self._cache[sid]
        h = self._open()
        labels = h["labels"][sid]
        picture, sound = ("video", "audio") if self.features else ("frames", "fbank")
        block = {"frame_labels": labels["frame_labels"][()],
                 "sequence_labels": labels["sequence_labels"][()]}
        if self.features or self.cache:
            block["frames"] = h["frames"][sid][picture][()]   # [N, L, H, W, 3] u8 | [N, L, K] f16
        if "audio" in h:
            block["fbank"] = h["audio"][sid][sound][()]      # [N, L, Lf, M] | [N, L, K] float16
        if "masks" in h:
            block["mask"] = h["masks"][sid]["mask"][()]
        if self.cache and not self.features:
            block["frames"] = resize_frames_hwc(block["frames"], self.size)  # [N, L, S, S, 3]
            self._cache[sid] = block
        return block

    def _frames(self, sid: str, block: dict, idx: np.ndarray,
                out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 [N, T, S, S, 3]: the frames `idx`, resized, channels last; in `out` if given."""
        if self.cache:
            frames = block["frames"][:, torch.from_numpy(idx)]
        else:
            ds = self._open()["frames"][sid]["frames"]
            if tuple(ds.shape[2:4]) == (self.size, self.size) and out is not None:
                read_frames(ds, idx, out.numpy())           # straight into the batch
                return out
            frames = resize_frames_hwc(read_frames(ds, idx), self.size)
        if out is None:
            return frames
        out.copy_(frames)
        return out

    def __getitem__(self, i: int) -> dict:
        return self.item(i, self.indices(i))

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """The items of one batch (the DataLoader's batched fetch)."""
        return self.batch_items([(i, self.indices(i)) for i in indices])

    def batch_items(self, pairs: list[tuple[int, np.ndarray]]) -> list[dict]:
        """Items of (sequence i, frames idx); raw items' frames are the rows of one batch buffer
        (`batch_buffer`), which `collate_items` passes on whole."""
        if not self.raw or self.features:
            return [self.item(i, idx) for i, idx in pairs]
        buf = batch_buffer((len(pairs), self.views, self.t, self.size, self.size, 3))
        return [self.item(i, idx, buf[j]) for j, (i, idx) in enumerate(pairs)]

    def frame_labels(self, i: int) -> np.ndarray:
        """uint8 [L, C]: the labels of every decoded frame of sequence i."""
        sid = self.sequences[i].seq_id
        if self.cache and sid in self._cache:
            return self._cache[sid]["frame_labels"]
        return self._open()["labels"][sid]["frame_labels"][()]

    def item(self, i: int, idx: np.ndarray, frames_out: torch.Tensor | None = None) -> dict:
        """Sequence i at the decoded frames `idx` [T] (see the module docstring); raw frames
        go into `frames_out` [N, T, S, S, 3] when given."""
        sid = self.sequences[i].seq_id
        block = self._block(sid)
        if self.features:
            frames = torch.from_numpy(block["frames"][:, idx]).float()   # [N, T, K]
        else:
            frames = self._frames(sid, block, idx, frames_out if self.raw else None)
            if not self.raw:                # raw: uint8 channels last, on_device() finishes
                frames = normalise_frames(frames.movedim(-1, -3).contiguous(),
                                          self.image_mean, self.image_std)
        item = {
            "frames": frames,
            "frame_labels": torch.from_numpy(block["frame_labels"][idx].astype(np.float32)),
            "sequence_labels": torch.from_numpy(block["sequence_labels"].astype(np.float32)),
            "frame_index": torch.from_numpy(idx),
            "has_frame_labels": torch.tensor(float(self.sequences[i].has_frame_labels)),
            "index": torch.tensor(i),
        }
        if "fbank" in block:
            fb = torch.from_numpy(block["fbank"][:, idx])                # [N, T, Lf, M] f16
            # half -> float in torch: numpy's float16 conversion is several times slower
            item["fbank"] = fb.float() if self.features else \
                (fb if self.raw else normalise_fbank(fb, self.fbank_mean, self.fbank_std))
        if "mask" in block:
            item["masks"] = torch.from_numpy(block["mask"][:, idx].astype(np.float32))
        return item

    def on_device(self, batch: dict) -> dict:
        """Normalise a batch of raw items where it is (the GPU): the same values the items
        carry when `raw` is off; a batch already normalised passes unchanged."""
        if batch["frames"].dtype == torch.uint8:         # [B, N, T, S, S, 3], channels last
            frames = batch["frames"].movedim(-1, -3).contiguous()
            batch["frames"] = normalise_frames(frames, self.image_mean, self.image_std)
        if "fbank" in batch and batch["fbank"].dtype == torch.float16:
            batch["fbank"] = normalise_fbank(batch["fbank"], self.fbank_mean, self.fbank_std)
        return batch

    @property
    def frame_labelled(self) -> int:
        """How many of its sequences have frame labels (the others sequence labels only)."""
        return sum(info.has_frame_labels for info in self.sequences)

    def close(self) -> None:
        if self._handles:
            for f in self._handles.values():
                f.close()
        self._handles = None


class EvaluationPasses(Dataset):
    """Every (sequence, pass) of an evaluation dataset: together the passes sample each decoded
    frame once (`evaluation_passes`). Items are the dataset's plus `pass` int64 []."""

    def __init__(self, dataset: SequenceDataset):
        self.dataset = dataset
        self.items = [(i, p, idx) for i, info in enumerate(dataset.sequences)
                      for p, idx in enumerate(evaluation_passes(info.length, dataset.t))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, j: int) -> dict:
        i, p, idx = self.items[j]
        return {**self.dataset.item(i, idx), "pass": torch.tensor(p)}

    def __getitems__(self, js: list[int]) -> list[dict]:
        items = self.dataset.batch_items([self.items[j][::2] for j in js])
        return [{**item, "pass": torch.tensor(self.items[j][1])} for item, j in zip(items, js)]


def model_input_sizes(dataset: SequenceDataset, model_section: dict, audio: bool) -> dict:
    """mel_bins, audio_length and feature_size of a model for this data (model_config's
    keywords), after checking that `model.encoders` and the files agree."""
    frozen = model_section["encoders"] == "frozen"
    if frozen != dataset.features:
        wants = "features.h5 (the features stage)" if frozen else "frames.h5"
        raise VicokdError(f"{dataset.files.frames}: model.encoders is "
                          f"'{model_section['encoders']}', which reads {wants}")
    if dataset.features:
        return {"mel_bins": 1, "audio_length": 1, "feature_size": dataset.feature_size}
    if audio and dataset.audio_shape is not None:
        return {"audio_length": dataset.audio_shape[0], "mel_bins": dataset.audio_shape[1]}
    return {"audio_length": 1, "mel_bins": 1}


def require_frame_labels(dataset: SequenceDataset, setting: str) -> None:
    """Frame supervision needs frame labels: one line naming `setting` (the config key to
    change) when no sequence of the train half has any (weakly labelled data)."""
    if dataset.frame_labelled == 0:
        raise VicokdError(f"{dataset.files.labels}: frame supervision needs frame labels, and no "
                          f"sequence of the train split has any (labels without times only); "
                          f"set {setting}")


def require_audio(files: DataFiles, who: str) -> None:
    """The teacher (and whoever distills from it) hears: one line when the data has no audio."""
    if files.audio is None:
        raise VicokdError(f"{files.frames}: {who} needs audio, and dataset.require_audio is false "
                          "(recordings without audio); only the non-distilled students run without "
                          "it: set experiments.methods: [student] and ask for their runs, e.g. "
                          "results/{env}/{backbone}/student-sequence-seed0/metrics.json")


def split_datasets(files: DataFiles, model_section: dict, seed: int, cache: bool = False
                   ) -> tuple[SequenceDataset, SequenceDataset]:
    """The train half (random sampling) and the test half (deterministic sampling) of a home,
    sized from the complete `model:` section (frames, image_size, normalize)."""
    norm = model_section["normalize"]
    common = dict(frames=model_section["frames"], image_size=model_section["image_size"],
                  seed=seed, image_mean=norm["image_mean"], image_std=norm["image_std"],
                  fbank_mean=norm["fbank_mean"], fbank_std=norm["fbank_std"], cache=cache)
    return (SequenceDataset(files, "train", train=True, **common),
            SequenceDataset(files, "test", train=False, **common))
