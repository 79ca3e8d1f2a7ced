"""The frozen, label-free feature extractor of the embedded default (`model.encoders: frozen`).

The `features` stage (vicokd.runs.features) runs `FrozenEncoders` once per home over every
decoded frame and writes `results/{env}/features.h5`; the models then train on those cached
features [.., K]. Nothing in it sees an action label: the encoders (vicokd.encoders) are
random-init (or a user's local checkpoint) and the only fitted part is a PCA whitening of the
train split's features, saved with the encoders as local checkpoint directories
(`results/{env}/encoders/`).

Per view and decoded frame i the frozen features are (K = `model.features.components` each):

    video: whiten([tokens(frame_i), tokens(frame_i) - tokens(frame_i+1)])   every ViT token
           (CLS and patches) of the frame, and their change to the next frame (motion)
    audio: whiten([mean and std of each mel bin over the frame's fbank segment,
                   the AST's pooled output (audio_encoder: ast)])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import default
from .encoders import ASTEncoder, EncoderConfig, ViTEncoder, encoder_config
from .errors import VicokdError

# -- the frozen, label-free features --------------------------------------------------------------

@dataclass
class FeaturesConfig:
    """`model.features`: size of the cached features and the seed of the random-init encoders."""
    components: int = default("model.features.components")   # K: PCA directions per modality
    seed: int = default("model.features.seed")
    batch_size: int = default("model.features.batch_size")   # view-frames per encoder call


@dataclass
class FrozenEncodersConfig:
    image_size: int
    hidden_size: int
    mel_bins: int
    audio_length: int
    vit: EncoderConfig = field(default_factory=EncoderConfig)
    ast: EncoderConfig = field(default_factory=lambda: encoder_config(default("model.ast")))
    audio_encoder: str = default("model.audio_encoder")
    features: FeaturesConfig = field(default_factory=FeaturesConfig)


def raw_video_of_tokens(tokens: torch.Tensor, following: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """tokens [L, 1 + P, H] of consecutive decoded frames -> the raw video features
    [L, 2 (1 + P) H]: every token, and its change to the next frame's. `following` [L, 1 + P, H]
    holds each frame's next frame's tokens where they are not the next row (None: the next row,
    and a zero change for the last frame). Differentiable: vicokd.saliency runs it with gradients."""
    tok = tokens.flatten(1)
    if following is None:
        change = torch.zeros_like(tok)
        change[:-1] = tok[:-1] - tok[1:]
    else:
        change = tok - following.flatten(1)
    return torch.cat([tok, change], dim=1)


def audio_moments(fbank: torch.Tensor) -> torch.Tensor:
    """fbank segments [B, Lf, M] -> [B, 2M]: each mel bin's mean and standard deviation."""
    return torch.cat([fbank.mean(1), fbank.std(1, unbiased=False)], dim=1)


class Whitening(nn.Module):
    """PCA whitening x [B, F] -> [B, K]: (x - mean) @ components / sqrt(variance).

    Fitted once on unlabelled features; kept as buffers so it saves with the encoders."""

    def __init__(self, in_features: int, components: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("components", torch.zeros(in_features, components))
        self.register_buffer("scale", torch.ones(components))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "Whitening":
        """x [n, F] (n >= 2): keep the top-K principal directions of x."""
        x = x.double()
        mean = x.mean(0)
        cov = (x - mean).T @ (x - mean) / max(x.shape[0] - 1, 1)
        var, vec = torch.linalg.eigh(cov)                          # ascending
        k = self.components.shape[1]
        var, vec = var.flip(0)[:k].clamp_min(0), vec.flip(1)[:, :k]
        # a floor on the variance: directions of (almost) no variance are not blown up
        floor = 1e-3 * float(var[0]) if var.numel() and float(var[0]) > 0 else 1.0
        self.mean.copy_(mean.float())
        self.components.zero_()
        self.components[:, :vec.shape[1]] = vec.float()
        self.scale.copy_(torch.ones(k))
        self.scale[:var.shape[0]] = var.clamp_min(floor).sqrt().float()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.components / self.scale


class FrozenEncoders(nn.Module):
    """The embedded default's feature extractor (see the module docstring)."""

    def __init__(self, cfg: FrozenEncodersConfig, saved: dict | None = None):
        super().__init__()
        self.cfg = cfg
        saved = saved or {}
        torch.manual_seed(cfg.features.seed)                # the random-init encoders
        self.vit = ViTEncoder(cfg.vit, cfg.image_size, cfg.hidden_size, 0.0, saved.get("vit"))
        tokens = self.vit(torch.zeros(1, 3, cfg.image_size, cfg.image_size)).shape[1]
        self.video_in = 2 * tokens * self.vit.hidden_size
        self.ast = None
        self.audio_in = 2 * cfg.mel_bins
        if cfg.audio_encoder == "ast":
            self.ast = ASTEncoder(cfg.ast, cfg.mel_bins, cfg.audio_length, cfg.hidden_size, 0.0,
                                  saved.get("ast"))
            self.audio_in += self.ast.hidden_size
        k = cfg.features.components
        self.video_whitening = Whitening(self.video_in, k)
        self.audio_whitening = Whitening(self.audio_in, k)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [L, 3, S, S] float (normalised) -> the ViT's output tokens [L, 1 + P, H]."""
        bs = self.cfg.features.batch_size
        return torch.cat([self.vit(frames[i:i + bs]) for i in range(0, len(frames), bs)])

    @torch.no_grad()
    def raw_video(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [L, 3, S, S] float (normalised, one view, consecutive decoded frames) ->
        [L, 2 * tokens * H]; the last frame's change is zero."""
        return raw_video_of_tokens(self.tokens(frames))

    @torch.no_grad()
    def raw_audio(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank [L, Lf, M] float (normalised) -> [L, audio_in]."""
        parts = [audio_moments(fbank)]
        if self.ast is not None:
            bs = self.cfg.features.batch_size
            parts.append(torch.cat([self.ast(fbank[i:i + bs]) for i in range(0, len(fbank), bs)]))
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def video(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [V, L, 3, S, S] -> features [V, L, K]."""
        return torch.stack([self.video_whitening(self.raw_video(f)) for f in frames])

    @torch.no_grad()
    def audio(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank [V, L, Lf, M] -> features [V, L, K]."""
        return torch.stack([self.audio_whitening(self.raw_audio(f)) for f in fbank])

    def specs(self) -> dict:
        out = {"vit": self.vit.spec()}
        if self.ast is not None:
            out["ast"] = self.ast.spec()
        return out

    # -- as local checkpoint directories ---------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """folder/vit/ (transformers directory or timm weights), folder/ast/, folder/frozen.json,
        folder/whitening.safetensors."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.vit.source == "timm":
            (folder / "vit").mkdir(exist_ok=True)
            save_file({k: v.contiguous() for k, v in self.vit.net.state_dict().items()},
                      str(folder / "vit" / "model.safetensors"))
        else:
            self.vit.net.save_pretrained(folder / "vit")
        if self.ast is not None:
            self.ast.net.save_pretrained(folder / "ast")
        state = {f"video.{k}": v for k, v in self.video_whitening.state_dict().items()}
        state.update({f"audio.{k}": v for k, v in self.audio_whitening.state_dict().items()})
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "whitening.safetensors"))
        (folder / "frozen.json").write_text(json.dumps(
            {"config": frozen_config_to_dict(self.cfg), "specs": self.specs()}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "FrozenEncoders":
        from safetensors.torch import load_file

        folder = Path(folder)
        meta_path = folder / "frozen.json"
        if not meta_path.is_file():
            raise VicokdError(f"{folder}: not a folder of frozen encoders (no frozen.json)")
        meta = json.loads(meta_path.read_text())
        enc = cls(frozen_config_from_dict(meta["config"]), meta["specs"])
        if enc.vit.source == "timm":
            enc.vit.net.load_state_dict(load_file(str(folder / "vit" / "model.safetensors")))
        else:
            from transformers import ViTModel
            enc.vit.net.load_state_dict(ViTModel.from_pretrained(
                str(folder / "vit"), local_files_only=True, add_pooling_layer=False).state_dict())
        if enc.ast is not None:
            from transformers import ASTModel
            enc.ast.net.load_state_dict(ASTModel.from_pretrained(
                str(folder / "ast"), local_files_only=True).state_dict())
        state = load_file(str(folder / "whitening.safetensors"))
        enc.video_whitening.load_state_dict({k[6:]: v for k, v in state.items()
                                             if k.startswith("video.")})
        enc.audio_whitening.load_state_dict({k[6:]: v for k, v in state.items()
                                             if k.startswith("audio.")})
        return enc


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 over every file of a frozen-encoders folder (relative path and bytes, sorted):
    what features.h5 and every model trained on it record, so that a deployed student is
    checked against the encoders it was trained with. Hidden files are left out: Snakemake
    touches `.snakemake_timestamp` in a directory output after its job has fingerprinted it."""
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    files = (p for p in folder.rglob("*")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for path in sorted(files):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"sha256 {digest.hexdigest()}"


def frozen_config_to_dict(cfg: FrozenEncodersConfig) -> dict:
    return asdict(cfg)


def frozen_config_from_dict(d: dict) -> FrozenEncodersConfig:
    d = dict(d)
    return FrozenEncodersConfig(vit=EncoderConfig(**d.pop("vit")), ast=EncoderConfig(**d.pop("ast")),
                                features=FeaturesConfig(**d.pop("features")), **d)


def frozen_config_from_section(model_section: dict, mel_bins: int, audio_length: int
                               ) -> FrozenEncodersConfig:
    """The frozen encoders of the complete `model:` section (sizes as a finetuned model's
    encoders)."""
    section = model_section
    return FrozenEncodersConfig(image_size=int(section["image_size"]),
                                hidden_size=int(section["hidden_size"]), mel_bins=mel_bins,
                                audio_length=audio_length,
                                vit=encoder_config(section["vit"], patch_size=section["patch_size"]),
                                ast=encoder_config(section["ast"]),
                                audio_encoder=str(section["audio_encoder"]),
                                features=FeaturesConfig(**section["features"]))


def fit_whitening(whitening: Whitening, rows: list[torch.Tensor], max_rows: int = 20000,
                  seed: int = 0) -> None:
    """Fit on (a seeded sample of at most `max_rows` of) the stacked rows."""
    x = torch.cat(rows)
    if x.shape[0] > max_rows:
        pick = np.random.default_rng(seed).choice(x.shape[0], max_rows, replace=False)
        x = x[torch.from_numpy(np.sort(pick))]
    if x.shape[0] < 2:
        raise VicokdError("features: fewer than two train-split frames to fit the whitening on")
    whitening.fit(x)
