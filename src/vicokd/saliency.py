"""Evidence maps: per view and decoded frame, where on the frame a trained model finds its
evidence for a class, and how much of it lies inside the person's box.

The method is Grad-CAM (Selvaraju et al., ICCV 2017) on the ViT's patch tokens: for the logit
of class c of view n at frame t (`view_frame_logits[n, t, c]`, which reads view n only), with A
the patch tokens [P, H] of that view's frame and G = dlogit/dA,

    map = ReLU(A @ mean_P(G)) / sum(...)        one value per patch, summing to one

Which tokens A are: with frozen encoders (`model.encoders: frozen`) the models read the cached,
whitened features of every output token of the frozen ViT (vicokd.encoders), so A are those
output tokens; the features are recomputed from the decoded frames through the frozen ViT and
its whitening, with gradients on (the cached values enter the model, the gradient is that of the
recomputed ones, so the scores are exactly those of predictions.h5). With finetuned encoders
the model reads only the CLS output, whose gradient never reaches the output patch tokens, so A
are the tokens entering the ViT's last block (the usual layer for Grad-CAM on a ViT).

Why not attention rollout: it is class-agnostic and, with frozen encoders, identical for every
model of a home (they share the frozen ViT), so it could not tell a teacher from a student.

A map with no positive evidence (ReLU zero everywhere) is returned uniform and flagged `empty`.
Frames are those of predict() (vicokd.train): each decoded frame at the position and pass whose
score predictions.h5 keeps. Everything is deterministic: no sampling, eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.frames import fbank_statistics, normalise_fbank, normalise_frames, resize_frames
from .data.sampling import evaluation_passes
from .frozen import FrozenEncoders, raw_video_of_tokens
from .errors import VicokdError
from .storage import open_h5

# Recomputed features may differ from the cached float16 ones by rounding only; more means the
# encoders folder and features.h5 are not from the same features job.
FEATURE_TOLERANCE = (0.05, 0.02)         # absolute, relative


# --- the map of one view-frame -------------------------------------------------------------------

def grad_cam(activations: torch.Tensor, gradients: torch.Tensor
             ) -> tuple[np.ndarray, np.ndarray]:
    """activations, gradients [..., P, H] -> (maps [..., P] float64 summing to one, empty [...]).

    Each patch's evidence is the positive part of sum_H(A * G), its tokens' first-order share of
    the logit (Grad-CAM's element-wise form, HiResCAM); empty: no patch has positive evidence,
    and the map is then uniform (1 / P)."""
    cam = torch.relu((activations.double() * gradients.double()).sum(-1))   # [..., P]
    total = cam.sum(-1, keepdim=True)
    empty = (total <= 0).squeeze(-1)
    maps = torch.where(total > 0, cam / total.clamp_min(1e-300),
                       torch.full_like(cam, 1.0 / cam.shape[-1]))
    return maps.cpu().numpy(), empty.cpu().numpy()


def patch_edges(grid: int, patch: int, image_size: int, frame_size: int) -> np.ndarray:
    """Edges [grid + 1] of the patch rows (or columns) in pixels of the decoded frame: the model
    sees the whole square frame resized to `image_size`, cut into patches of `patch` pixels."""
    return np.arange(grid + 1) * patch * frame_size / image_size


def _overlap(edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """[..., grid]: length of each interval [edges[i], edges[i+1]) inside [lo, hi]."""
    a, b = edges[:-1], edges[1:]
    return np.clip(np.minimum(b, hi[..., None]) - np.maximum(a, lo[..., None]), 0, None)


def box_coverage(boxes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of each patch covered by the union of some boxes.

    boxes [..., K, 4] xyxy in decoded pixels (NaN rows: none) -> [..., grid, grid] in [0, 1]
    (rows = y). Boxes of one frame that overlap count their common area once (pixel-exact for one
    box; for several, the larger cover of each patch row and column pair is kept)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    valid = np.isfinite(boxes).all(-1)                                    # [..., K]
    b = np.where(valid[..., None], boxes, 0.0)
    width = np.diff(edges)
    cx = _overlap(edges, b[..., 0], b[..., 2]) / width                    # [..., K, grid]
    cy = _overlap(edges, b[..., 1], b[..., 3]) / width
    cover = cy[..., :, None] * cx[..., None, :]                           # [..., K, g, g]
    cover = np.where(valid[..., None, None], cover, 0.0)
    return cover.max(-3) if cover.shape[-3] else np.zeros(cover.shape[:-3] + cover.shape[-2:])


def share_inside(maps: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """The mass of each map [..., g, g] (or [..., P]) inside the box whose patch coverage is
    `coverage` [..., g, g]: each patch's mass spread evenly over its pixels."""
    maps = np.asarray(maps, dtype=np.float64)
    return (maps.reshape(coverage.shape) * coverage).sum((-2, -1))


def peak_in_box(maps: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Whether the patch holding the most of each map [..., g, g] overlaps the box (the
    pointing game; ties: the first patch in row order)."""
    flat_maps = np.asarray(maps).reshape(*coverage.shape[:-2], -1)
    flat_cover = coverage.reshape(*coverage.shape[:-2], -1)
    peak = flat_maps.argmax(-1)
    return np.take_along_axis(flat_cover, peak[..., None], -1)[..., 0] > 0


def pixel_map(grid_map: np.ndarray, edges: np.ndarray, frame_size: int) -> np.ndarray:
    """A map [g, g] over patches as [frame_size, frame_size] pixel masses (summing to the
    map's sum over the pixels the patches cover): for drawing it on the decoded frame."""
    px = np.arange(frame_size, dtype=np.float64)
    o = _overlap(edges, px, px + 1).T                                     # [g, frame_size]
    area = np.diff(edges)[:, None] * np.diff(edges)[None, :]
    return o.T @ (np.asarray(grid_map, np.float64) / area) @ o


# --- the models' inputs ---------------------------------------------------------------------------

@dataclass
class HomeInputs:
    """A home's artifacts the maps are made from: frames.h5 always; features.h5 and the encoders
    folder for models on frozen encoders; audio.h5 for a finetuned teacher."""
    frames: str
    features: str | None = None
    encoders: str | None = None
    audio: str | None = None


def model_section_of(blob: dict, path) -> dict:
    """The `model:` section a run was trained with (model.pt's run_config)."""
    section = (blob.get("run_config") or {}).get("model")
    if not isinstance(section, dict):
        raise VicokdError(f"{path}: model.pt has no run_config.model (not written by a vicokd run)")
    return section


class ModelEvidence:
    """Evidence maps of one trained model on one home's sequences.

    `model`: a vicokd AVModel (teacher or student, frozen or finetuned encoders);
    `section`: the `model:` section it was trained with (normalisation, image size)."""

    def __init__(self, model, section: dict, inputs: HomeInputs, encoders=None,
                 device: str = "cpu"):
        from .models import resolve_device

        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.cfg = model.cfg
        self.inputs = inputs
        self.frozen = self.cfg.encoders == "frozen"
        norm = section.get("normalize") or {}
        self.image_mean = float(norm.get("image_mean", 0.5))
        self.image_std = float(norm.get("image_std", 0.5))
        self.frames_h5 = open_h5(inputs.frames, "frames")
        self.features_h5 = self.audio_h5 = None
        for p in self.model.parameters():
            p.requires_grad_(False)
        if self.frozen:
            if not inputs.features or not inputs.encoders:
                raise VicokdError(f"{inputs.frames}: a model on frozen encoders needs features.h5 "
                                  "and the encoders folder for its evidence maps")
            self.encoders = (encoders if encoders is not None
                             else FrozenEncoders.load(inputs.encoders)).to(self.device)
            self.features_h5 = open_h5(inputs.features, "features")
            self.vit = self.encoders.vit
            self.image_size = int(self.encoders.cfg.image_size)
            self.patch = int(self.encoders.cfg.vit.patch_size)
        else:
            self.vit = self.model.vit
            self.image_size = int(self.cfg.image_size)
            self.patch = int(self.cfg.vit.patch_size)
            if self.cfg.audio:
                if not inputs.audio:
                    raise VicokdError(f"{inputs.frames}: a finetuned teacher needs audio.h5 for "
                                      "its evidence maps")
                self.audio_h5 = open_h5(inputs.audio, "audio")
                self.fbank_mean, self.fbank_std = fbank_statistics(
                    self.audio_h5, norm.get("fbank_mean"), norm.get("fbank_std"))
        self.grid = self.image_size // self.patch

    @classmethod
    def load(cls, model_path, inputs: HomeInputs, encoders=None, device: str = "cpu"
             ) -> "ModelEvidence":
        from .models import load_model_file
        model, blob = load_model_file(model_path)
        return cls(model, model_section_of(blob, model_path), inputs, encoders, device)

    def close(self) -> None:
        for f in (self.frames_h5, self.features_h5, self.audio_h5):
            if f is not None:
                f.close()

    # -- inputs of one sequence ----------------------------------------------------------------
    def _pictures(self, sid: str) -> torch.Tensor:
        """Normalised frames [V, L, 3, S, S] of one sequence, as the dataset serves them."""
        if sid not in self.frames_h5:
            raise VicokdError(f"{self.frames_h5.filename}: no sequence '{sid}'")
        frames = resize_frames(self.frames_h5[sid]["frames"][()], self.image_size)
        return normalise_frames(frames, self.image_mean, self.image_std)

    def _cached(self, sid: str, name: str) -> torch.Tensor:
        if sid not in self.features_h5:
            raise VicokdError(f"{self.features_h5.filename}: no sequence '{sid}'")
        return torch.from_numpy(self.features_h5[sid][name][()]).float()

    def _fbank(self, sid: str) -> torch.Tensor:
        if sid not in self.audio_h5:
            raise VicokdError(f"{self.audio_h5.filename}: no sequence '{sid}'")
        return normalise_fbank(torch.from_numpy(self.audio_h5[sid]["fbank"][()]),
                               self.fbank_mean, self.fbank_std)

    # -- the maps -------------------------------------------------------------------------------
    def sequence(self, sid: str, frames, classes=None) -> "SequenceEvidence":
        """Maps of every view at the decoded frames `frames` (indices) of sequence `sid`, for
        class `classes[i]` at frame `frames[i]` (None: the class the model scores highest at
        that frame, fused over views)."""
        pictures = self._pictures(sid).to(self.device)                    # [V, L, 3, S, S]
        views, length = pictures.shape[:2]
        frames = [int(j) for j in frames]
        if any(j < 0 or j >= length for j in frames):
            raise VicokdError(f"{self.inputs.frames}:/{sid}: frames {frames} outside 0..{length - 1}")
        wanted = {j: i for i, j in enumerate(frames)}
        # predict() keeps, for each decoded frame, the last pass and position that sampled it
        passes = evaluation_passes(length, self.cfg.frames)
        where = {}
        for p, idx in enumerate(passes):
            for k, j in enumerate(idx.tolist()):
                where[j] = (p, k)
        n = len(frames)
        out = SequenceEvidence(
            seq_id=sid, frame_index=np.asarray(frames, np.int64),
            classes=np.full(n, -1, np.int64), maps=np.zeros((views, n, self.grid, self.grid)),
            empty=np.zeros((views, n), bool), frame_scores=np.zeros((n, self.cfg.num_classes)),
            view_scores=np.zeros((views, n, self.cfg.num_classes)))
        if self.frozen:
            with torch.no_grad():
                tokens = torch.stack([self.encoders.tokens(v) for v in pictures])  # [V, L, Q, H]
            cached = self._cached(sid, "video").to(self.device)
            audio = self._cached(sid, "audio").to(self.device) if self.cfg.audio else None
            self._check_features(sid, tokens, cached)
            tokens.requires_grad_(True)
        else:
            fbank = self._fbank(sid).to(self.device) if self.cfg.audio else None
        for p, idx in enumerate(passes):
            targets = [(k, j) for j, (pp, k) in where.items() if pp == p and j in wanted]
            if not targets:
                continue
            with torch.enable_grad():
                if self.frozen:
                    video = self._features(tokens, idx, cached)
                    out_p = self.model(video[None], audio[:, idx][None] if audio is not None else None)
                    activations = tokens
                else:
                    activations, out_p = self._finetuned_forward(pictures, fbank, idx)
                frame_logits = out_p["frame_logits"][0].detach()                 # [T, C]
                view_logits = out_p["view_frame_logits"][0]                      # [V, T, C]
                for k, j in sorted(targets):
                    i = wanted[j]
                    c = int(frame_logits[k].argmax()) if classes is None else int(classes[i])
                    grad = torch.autograd.grad(view_logits[:, k, c].sum(), activations,
                                               retain_graph=True)[0]
                    act, g = self._patch_rows(activations, grad, idx, k, j)
                    maps, empty = grad_cam(act, g)
                    out.maps[:, i] = maps.reshape(views, self.grid, self.grid)
                    out.empty[:, i] = empty
                    out.classes[i] = c
                    out.frame_scores[i] = torch.sigmoid(frame_logits[k]).cpu().numpy()
                    out.view_scores[:, i] = torch.sigmoid(view_logits[:, k].detach()).cpu().numpy()
        return out

    def _prefix(self, tokens: int) -> int:
        prefix = tokens - self.grid * self.grid
        if prefix < 1:
            raise VicokdError(f"ViT with {tokens} tokens: not 1 + {self.grid}x{self.grid} patches "
                              f"(image {self.image_size}, patch {self.patch})")
        return prefix

    def _patch_rows(self, activations, grad, idx, k, j):
        """The patch tokens of frame j in every view and their gradient [V, P, H]."""
        if self.frozen:                                   # [V, L, Q, H]: one row per frame
            q = self._prefix(activations.shape[2])
            return activations[:, j, q:].detach(), grad[:, j, q:]
        q = self._prefix(activations.shape[1])            # [V * T, Q, H]: one row per position
        views, t = activations.shape[0] // len(idx), len(idx)
        act = activations.reshape(views, t, *activations.shape[1:])
        g = grad.reshape(views, t, *grad.shape[1:])
        same = torch.from_numpy(np.asarray(idx) == j).to(g.device)   # a frame sampled twice
        return act[:, k, q:].detach(), g[:, same, q:].sum(1)

    def _features(self, tokens, idx, cached):
        """The whitened video features [V, T, K] at positions idx: the cached values, with the
        gradient of the ones recomputed from the tokens."""
        views, length = tokens.shape[:2]
        idx_t = torch.as_tensor(np.asarray(idx), device=tokens.device)
        now = tokens[:, idx_t]                                            # [V, T, Q, H]
        after = tokens[:, torch.clamp(idx_t + 1, max=length - 1)]
        # the last decoded frame has no next frame: its change is zero, as in the cache
        after = torch.where((idx_t == length - 1)[None, :, None, None], now, after)
        raw = raw_video_of_tokens(now.flatten(0, 1), after.flatten(0, 1))
        video = self.encoders.video_whitening(raw).reshape(views, len(idx_t), -1)
        return cached[:, idx_t] + (video - video.detach())

    def _check_features(self, sid: str, tokens, cached) -> None:
        with torch.no_grad():
            again = torch.stack([self.encoders.video_whitening(raw_video_of_tokens(t))
                                 for t in tokens])
        if again.shape != cached.shape:
            raise VicokdError(f"{self.inputs.features}:/{sid}/video: shape {tuple(cached.shape)}, "
                              f"the encoders in {self.inputs.encoders} make {tuple(again.shape)}")
        atol, rtol = FEATURE_TOLERANCE
        if float(((again - cached).abs() - rtol * cached.abs()).max()) > atol:
            raise VicokdError(f"{self.inputs.features}:/{sid}/video: the encoders in "
                              f"{self.inputs.encoders} do not reproduce these features (max "
                              f"difference {float((again - cached).abs().max()):.3g}); rerun the "
                              "features job")

    def _finetuned_forward(self, pictures, fbank, idx):
        """One forward at positions idx, keeping the tokens that enter the ViT's last block."""
        captured = {}
        block = last_vit_block(self.vit)

        def keep(module, args, kwargs):
            captured["tokens"] = args[0] if args else kwargs["hidden_states"]

        handle = block.register_forward_pre_hook(keep, with_kwargs=True)
        try:
            fb = fbank[:, idx][None] if fbank is not None else None
            # the weights are frozen here: the graph hangs on the pictures
            out = self.model(pictures[:, idx][None].requires_grad_(True), fb)
        finally:
            handle.remove()
        return captured["tokens"], out


def last_vit_block(vit) -> torch.nn.Module:
    """The last Transformer block of a vicokd ViTEncoder (transformers or timm)."""
    if vit.source == "timm":
        vit.net.grad_checkpointing = False        # a recomputed block would capture twice
        return vit.net.blocks[-1]
    layers = getattr(vit.net, "layers", None)        # transformers 5; 4 had encoder.layer
    return (layers if layers is not None else vit.net.encoder.layer)[-1]


@dataclass
class SequenceEvidence:
    """Maps of one model on one sequence at some of its decoded frames (F of them)."""
    seq_id: str
    frame_index: np.ndarray       # [F] decoded frame indices
    classes: np.ndarray           # [F] the class each frame's maps explain
    maps: np.ndarray              # [V, F, g, g] float64, each map sums to one
    empty: np.ndarray             # [V, F] no positive evidence (map uniform)
    frame_scores: np.ndarray      # [F, C] the model's fused frame scores (sigmoid)
    view_scores: np.ndarray       # [V, F, C] its per-view frame scores (sigmoid)
