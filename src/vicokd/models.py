"""The audio-visual teacher and the visual-only student (paper §3), on three fusion backbones.

Shapes: B sequences, N views, T frames, C classes, D features, L fbank frames, M mel bins.

    frames [B, N, T, 3, S, S] --ViT (shared over views)--> F_v [B, N, T, D]
    fbank  [B, N, T, L, M]    --AST (shared over views)--> F_a [B, N, T, D]
        (student: no fbank; F_a = adapter(F_v), a Linear-ReLU-Linear, eq. 6)
    F_attn = CrossAttn(q = F_v + PE, k = v = F_a + PE) per view over time   (eq. 2-3)
    F_av = F_v + F_attn
    F_fusion = TemporalEncoder(F_av + PE) per view                          (eq. 4)
    view_frame_logits = h(F_fusion)                              [B, N, T, C]
    the backbone fuses the views -> frame_logits [B, T, C], sequence_logits [B, C]

Backbones (implementations in the style of the cited papers, not their code):
- multitrans: one fusion Transformer over all N*T view-time tokens (+ a learned view embedding);
  fused frame = per-time mean of the fused tokens, sequence = their temporal mean.
- multiasl: fused frame features = max over views; an actionness head picks the top-k frames
  (k = T // 8) whose class activations make the sequence logits; an action-selection loss trains
  actionness towards frames whose top class is in the sequence labels.
- multitsf: at each time step a "device" Transformer over the N views, mean over views; a
  per-view, per-frame human-presence head trained with BCE on the detection masks.

`model(frames, fbank)` returns a dict with the keys in OUTPUT_KEYS (plus backbone extras:
`actionness` [B, T] and its `actionness_logits` for multiasl, `presence_logits` [B, N, T] for multitsf,
`visibility_logits` [B, N, T] when built with the learned visibility's head);
`model.auxiliary_loss(outputs, batch)` returns the backbone's own loss and its parts.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from .encoders import ASTEncoder, AudioMLP, ViTEncoder
from .errors import VicokdError
from .model_configs import (AVModelConfig, MultiASLConfig, MultiTransConfig, MultiTSFConfig,
                            config_from_dict, config_to_dict)

OUTPUT_KEYS = ("sequence_logits", "frame_logits", "view_frame_logits",
               "F_v", "F_a", "F_attn", "F_av", "F_fusion")


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine positional encodings [length, dim] (any T, no table to outgrow)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


def _transformer(d: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=dropout,
                                       batch_first=True, norm_first=True)
    # nested tensors only pay off with padding masks; they warn with norm_first
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class AVModel(nn.Module):
    """Encoders + cross-modal attention + temporal encoder + classifier; backbones subclass it."""

    def __init__(self, cfg: AVModelConfig, encoder_configs: dict | None = None):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        saved = encoder_configs or {}
        if cfg.encoders == "frozen":
            # cached features [.., K] in (vicokd.frozen.FrozenEncoders): only projections learn
            self.v_proj = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.feature_size, d))
            if cfg.audio:
                self.a_proj = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.feature_size, d))
        else:
            self.vit = ViTEncoder(cfg.vit, cfg.image_size, d, cfg.dropout, saved.get("vit"))
            self.v_proj = nn.Linear(self.vit.hidden_size, d) \
                if self.vit.hidden_size != d else nn.Identity()
            if cfg.audio:
                if cfg.audio_encoder == "mlp":
                    self.audio_net = AudioMLP(cfg.mel_bins, cfg.mlp_hidden_sizes, d, cfg.dropout)
                else:
                    self.audio_net = ASTEncoder(cfg.ast, cfg.mel_bins, cfg.audio_length, d,
                                                cfg.dropout, saved.get("ast"))
                self.a_proj = nn.Linear(self.audio_net.hidden_size, d) \
                    if self.audio_net.hidden_size != d else nn.Identity()
        if not cfg.audio:
            # eq. 6: pseudo-audio features from the visual ones
            self.adapter = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.cross_attn = nn.MultiheadAttention(d, cfg.attention_heads, dropout=cfg.dropout,
                                                batch_first=True)
        self.temporal = _transformer(d, cfg.temporal_heads, cfg.temporal_layers, cfg.dropout)
        self.classifier = nn.Linear(d, cfg.num_classes)        # h
        if cfg.visibility_head:
            # the learned visibility of each view and frame, from its own visual features
            self.visibility = nn.Linear(d, 1)
        self.register_buffer("pe", sinusoidal_encoding(max(cfg.frames, 512), d), persistent=False)
        if cfg.gradient_checkpointing and cfg.encoders == "finetune":
            self.vit.set_grad_checkpointing()
            if cfg.audio:
                self.audio_net.set_grad_checkpointing()

    def first_layer(self) -> torch.Tensor:
        """The weight of the first trained layer the pictures pass through: the projection of
        the cached features (frozen encoders) or the ViT's patch embedding (fine-tuned); where
        the training loop measures how hard each loss term pulls on the network's input end."""
        module = self.v_proj if self.cfg.encoders == "frozen" else self.vit
        return next(p for p in module.parameters() if p.requires_grad)

    # -- encoders -----------------------------------------------------------------------------
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [B, N, T, 3, S, S] float, or cached features [B, N, T, K] (frozen) ->
        F_v [B, N, T, D]."""
        if self.cfg.encoders == "frozen":
            return self.v_proj(frames)
        b, n, t = frames.shape[:3]
        out = self.vit(frames.reshape(b * n * t, *frames.shape[3:]))[:, 0]      # CLS token
        return self.v_proj(out).reshape(b, n, t, -1)

    def encode_audio(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank [B, N, T, L, M] float, or cached features [B, N, T, K] (frozen) -> F_a [B, N, T, D]."""
        if self.cfg.encoders == "frozen":
            return self.a_proj(fbank)
        b, n, t = fbank.shape[:3]
        out = self.audio_net(fbank.reshape(b * n * t, *fbank.shape[3:]))
        return self.a_proj(out).reshape(b, n, t, -1)

    # -- shared trunk ---------------------------------------------------------------------------
    def trunk(self, frames: torch.Tensor, fbank: torch.Tensor | None) -> dict:
        b, n, t = frames.shape[:3]
        f_v = self.encode_frames(frames)
        if self.cfg.audio:
            if fbank is None:
                raise VicokdError("the audio-visual model needs fbank input (is this a student "
                                  "checkpoint loaded as a teacher?)")
            f_a = self.encode_audio(fbank)
        else:
            f_a = self.adapter(f_v)
        pe = self.pe[:t]
        q = (f_v + pe).reshape(b * n, t, -1)
        kv = (f_a + pe).reshape(b * n, t, -1)
        f_attn = self.cross_attn(q, kv, kv, need_weights=False)[0].reshape(b, n, t, -1)
        f_av = f_v + f_attn
        x = (f_av + pe).reshape(b * n, t, -1)
        if self.cfg.gradient_checkpointing and self.training:
            f_fusion = torch_checkpoint(self.temporal, x, use_reentrant=False)
        else:
            f_fusion = self.temporal(x)
        f_fusion = f_fusion.reshape(b, n, t, -1)
        out = {"F_v": f_v, "F_a": f_a, "F_attn": f_attn, "F_av": f_av, "F_fusion": f_fusion,
               "view_frame_logits": self.classifier(f_fusion)}
        if self.cfg.visibility_head:
            out["visibility_logits"] = self.visibility(f_v).squeeze(-1)            # [B, N, T]
        return out

    def fuse(self, out: dict) -> dict:
        raise NotImplementedError

    def forward(self, frames: torch.Tensor, fbank: torch.Tensor | None = None) -> dict:
        out = self.trunk(frames, fbank)
        out.update(self.fuse(out))
        return out

    def auxiliary_loss(self, out: dict, batch: dict) -> tuple[torch.Tensor, dict]:
        """The backbone's own training loss (zero for multitrans)."""
        return out["sequence_logits"].new_zeros(()), {}


class MultiTrans(AVModel):
    """View attention: a fusion Transformer attends across all views and times."""

    def __init__(self, cfg: MultiTransConfig, encoder_configs: dict | None = None):
        super().__init__(cfg, encoder_configs)
        self.view_embedding = nn.Embedding(cfg.max_views, cfg.hidden_size)
        self.fusion = _transformer(cfg.hidden_size, cfg.fusion_heads, cfg.fusion_layers, cfg.dropout)

    def fuse(self, out):
        f = out["F_fusion"]
        b, n, t, d = f.shape
        tokens = f + self.view_embedding.weight[:n][None, :, None, :]
        fused = self.fusion(tokens.reshape(b, n * t, d)).reshape(b, n, t, d)
        frame_feats = fused.mean(1)                                     # [B, T, D]
        return {"fused_tokens": fused,
                "frame_logits": self.classifier(frame_feats),
                "sequence_logits": self.classifier(frame_feats.mean(1))}


class MultiASL(AVModel):
    """Action selection: actionness picks the top-k frames that make the sequence logits."""

    def __init__(self, cfg: MultiASLConfig, encoder_configs: dict | None = None):
        super().__init__(cfg, encoder_configs)
        self.actionness_head = nn.Linear(cfg.hidden_size, 1)

    def topk(self, t: int) -> int:
        return max(1, t // self.cfg.topk_divisor)

    def fuse(self, out):
        feats = out["F_fusion"].max(dim=1).values                       # [B, T, D]
        cas = self.classifier(feats)                                    # [B, T, C]
        actionness_logits = self.actionness_head(feats).squeeze(-1)            # [B, T]
        actionness = torch.sigmoid(actionness_logits)
        idx = actionness.topk(self.topk(feats.shape[1]), dim=1).indices       # [B, k]
        picked = cas.gather(1, idx[..., None].expand(-1, -1, cas.shape[-1]))
        return {"frame_logits": cas, "actionness": actionness,
                "actionness_logits": actionness_logits, "selected_frames": idx,
                "sequence_logits": picked.mean(1)}

    def auxiliary_loss(self, out, batch):
        """BCE of actionness against 'the frame's top class is one of the sequence's labels'."""
        seq = batch["sequence_labels"].to(out["frame_logits"].device)   # [B, C]
        top = out["frame_logits"].detach().argmax(-1)                   # [B, T]
        target = seq.gather(1, top).float()                              # [B, T]
        # from the logits: stable, and a NaN gives a NaN loss (the training loop's one-line
        # "non-finite loss") where F.binary_cross_entropy on probabilities would raise
        loss = F.binary_cross_entropy_with_logits(out["actionness_logits"].float(), target)
        return self.cfg.action_selection_weight * loss, {"action_selection": float(loss.detach())}


class MultiTSF(AVModel):
    """Device attention per time step, and a human-presence head trained on the masks."""

    def __init__(self, cfg: MultiTSFConfig, encoder_configs: dict | None = None):
        super().__init__(cfg, encoder_configs)
        self.view_embedding = nn.Embedding(cfg.max_views, cfg.hidden_size)
        self.device_encoder = _transformer(cfg.hidden_size, cfg.device_heads, cfg.device_layers,
                                           cfg.dropout)
        self.presence_head = nn.Linear(cfg.hidden_size, 1)

    def fuse(self, out):
        f = out["F_fusion"]
        b, n, t, d = f.shape
        tokens = (f + self.view_embedding.weight[:n][None, :, None, :]).transpose(1, 2)
        per_time = self.device_encoder(tokens.reshape(b * t, n, d)).reshape(b, t, n, d)
        frame_feats = per_time.mean(2)                                   # [B, T, D]
        presence = self.presence_head(per_time).squeeze(-1).transpose(1, 2)   # [B, N, T]
        return {"frame_logits": self.classifier(frame_feats),
                "sequence_logits": self.classifier(frame_feats.mean(1)),
                "presence_logits": presence}

    def auxiliary_loss(self, out, batch):
        if "masks" not in batch:
            raise VicokdError("multitsf: the human-presence head needs the masks (masks.h5)")
        masks = batch["masks"].to(out["presence_logits"].device).float()  # [B, N, T]
        loss = F.binary_cross_entropy_with_logits(out["presence_logits"].float(), masks)
        return self.cfg.presence_weight * loss, {"presence": float(loss.detach())}


MODEL_CLASSES = {"multitrans": MultiTrans, "multiasl": MultiASL, "multitsf": MultiTSF}


def build_model(cfg: AVModelConfig, encoder_configs: dict | None = None) -> AVModel:
    """The network of `cfg` (teacher when cfg.audio, else the student)."""
    return MODEL_CLASSES[cfg.backbone](cfg, encoder_configs)


def model_inputs(model: AVModel, batch: dict):
    """(frames, fbank or None) of a batch for `model(...)`: a student never receives audio."""
    return batch["frames"], (batch.get("fbank") if model.cfg.audio else None)


def resolve_device(name: str) -> torch.device:
    """`auto` = cuda when present; asking for cuda without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VicokdError("config model.device: 'cuda' requested but no GPU is available")
    return torch.device(name)


def encoder_configs(model: AVModel) -> dict:
    """The encoders' shapes (vicokd.encoders `spec()`), so model.pt rebuilds without reading
    the checkpoints they came from; empty for a model on frozen features."""
    if model.cfg.encoders == "frozen":
        return {}
    out = {"vit": model.vit.spec()}
    if model.cfg.audio and model.cfg.audio_encoder == "ast":
        out["ast"] = model.audio_net.spec()
    return out


def save_model(path, model: AVModel, extra: dict | None = None) -> None:
    """model.pt: the config, the encoders' shapes and the weights (self-contained)."""
    from .storage import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"config": config_to_dict(model.cfg), "encoders": encoder_configs(model),
                    "state_dict": model.state_dict(), **(extra or {})}, tmp)


def load_model(path, map_location="cpu") -> AVModel:
    """Rebuild a model saved by save_model (no pretrained checkpoint directory is read)."""
    return load_model_file(path, map_location)[0]


def load_model_file(path, map_location="cpu") -> tuple[AVModel, dict]:
    """The model of a model.pt and the file's other entries (classes, metrics, run_config...)."""
    p = Path(path)
    if not p.is_file():
        raise VicokdError(f"{p}: file not found")
    try:
        blob = torch.load(p, map_location=map_location, weights_only=False)
        cfg = config_from_dict(blob["config"])
        model = build_model(cfg, blob["encoders"])
        model.load_state_dict(blob.pop("state_dict"))
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise VicokdError(f"{p}: not a vicokd model file ({type(exc).__name__}: {exc})") from None
    return model, blob

