"""The encoders: the visual ViT (transformers or timm), the audio AST or MLP, and the frozen,
label-free feature extractor of the embedded default.

Two ways to use them (`model.encoders` in config.yaml):

- `finetune`: the encoders are part of the model and train end to end with it (the paper's
  setting, config/paper.yaml). Inputs are frames [.., 3, S, S] and fbank segments [.., Lf, M].
- `frozen`: the `features` stage runs `FrozenEncoders` once per home over every decoded frame
  and writes `results/{env}/features.h5`; the models then train on those cached features
  [.., K]. Nothing in it sees an action label: the encoders are random-init (or a user's local
  checkpoint) and the only fitted part is a PCA whitening of the train split's features, saved
  with the encoders as local checkpoint directories (`results/{env}/encoders/`).

Per view and decoded frame i the frozen features are (K = `model.features.components` each):

    video: whiten([tokens(frame_i), tokens(frame_i) - tokens(frame_i+1)])   every ViT token
           (CLS and patches) of the frame, and their change to the next frame (motion)
    audio: whiten([mean and std of each mel bin over the frame's fbank segment,
                   the AST's pooled output (audio_encoder: ast)])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import default, fill
from .errors import VicokdError

VIT_SOURCES = ("transformers", "timm")
AUDIO_ENCODERS = ("ast", "mlp")
ENCODER_MODES = ("finetune", "frozen")


@dataclass
class EncoderConfig:
    """One Transformer encoder: sizes for random init, or a local checkpoint. Field defaults are
    the schema's `model.vit` (and `model.patch_size`, `model.ast.stride`).

    `source` (ViT only): `transformers` (ViTModel; checkpoint = a local directory with
    config.json) or `timm` (`timm_model` names the architecture; checkpoint = a local weights
    file, e.g. the authors' vit_small_patch32_224.augreg_in21k_ft_in1k). Never a hub id."""
    layers: int = default("model.vit.layers")
    heads: int = default("model.vit.heads")
    intermediate_size: int = default("model.vit.intermediate_size")
    hidden_size: int | None = default("model.vit.hidden_size")   # None = the model's hidden_size
    patch_size: int = default("model.patch_size")
    stride: int | None = default("model.ast.stride")  # AST only: patch stride (None = patch_size)
    checkpoint: str | None = default("model.vit.checkpoint")
    source: str = default("model.vit.source")
    timm_model: str = default("model.vit.timm_model")


def encoder_config(section: dict, **over) -> EncoderConfig:
    """EncoderConfig of a `model.vit`/`model.ast` section (keys of other encoders ignored)."""
    names = {f.name for f in fields(EncoderConfig)}
    return EncoderConfig(**{k: v for k, v in {**section, **over}.items() if k in names})


def _check_local_dir(path: str, what: str) -> Path:
    p = Path(path)
    if not (p / "config.json").is_file():
        raise VicokdError(f"{p}: {what} checkpoint must be a local directory with config.json "
                          "and weights (hub ids are not fetched)")
    return p


# -- the visual encoder ---------------------------------------------------------------------------

class ViTEncoder(nn.Module):
    """pixel_values [B, 3, S, S] -> tokens [B, 1 + P, H] (CLS first), from transformers or timm.

    `saved` (the dict `spec()` returned, stored in model.pt) rebuilds the same shape without
    reading any checkpoint."""

    def __init__(self, enc: EncoderConfig, image_size: int, hidden_size: int, dropout: float,
                 saved: dict | None = None):
        super().__init__()
        if enc.source not in VIT_SOURCES:
            raise VicokdError(f"config model.vit.source: '{enc.source}' is not one of "
                              f"{', '.join(VIT_SOURCES)}")
        self.source = saved["source"] if saved else enc.source
        if self.source == "timm":
            self.net, self._spec = self._build_timm(enc, image_size, hidden_size, dropout, saved)
            self.hidden_size = self.net.embed_dim
            self.image_size = image_size
        else:
            self.net, self._spec = self._build_transformers(enc, image_size, hidden_size, dropout,
                                                            saved)
            self.hidden_size = self.net.config.hidden_size
            self.image_size = self.net.config.image_size

    @staticmethod
    def _build_transformers(enc, image_size, hidden_size, dropout, saved):
        from transformers import ViTConfig, ViTModel

        if saved is not None:
            return ViTModel(ViTConfig.from_dict(saved["config"]), add_pooling_layer=False), saved
        if enc.checkpoint:
            path = _check_local_dir(enc.checkpoint, "ViT")
            net = ViTModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)
        else:
            vc = ViTConfig(hidden_size=enc.hidden_size or hidden_size, num_hidden_layers=enc.layers,
                           num_attention_heads=enc.heads, intermediate_size=enc.intermediate_size,
                           image_size=image_size, patch_size=enc.patch_size,
                           hidden_dropout_prob=dropout, attention_probs_dropout_prob=0.0)
            net = ViTModel(vc, add_pooling_layer=False)
        return net, {"source": "transformers", "config": net.config.to_dict()}

    @staticmethod
    def _build_timm(enc, image_size, hidden_size, dropout, saved):
        import timm

        if saved is not None:
            return timm.create_model(saved["name"], pretrained=False, **saved["kwargs"]), saved
        width = enc.hidden_size or hidden_size
        # the sizes of model.vit shape `timm_model` (the authors' ViT-S/32: patch 32, 384 wide,
        # 12 layers, 6 heads, MLP 1536); a checkpoint file must match them
        kwargs = {"num_classes": 0, "img_size": image_size, "drop_rate": dropout,
                  "dynamic_img_size": True, "patch_size": enc.patch_size, "embed_dim": width,
                  "depth": enc.layers, "num_heads": enc.heads,
                  "mlp_ratio": enc.intermediate_size / width}
        try:
            if enc.checkpoint:
                path = Path(enc.checkpoint)
                if not path.is_file():
                    raise VicokdError(f"{path}: timm ViT checkpoint must be a local weights file "
                                      "(.safetensors, .pth or .bin; hub names are not fetched)")
                from timm.models import load_state_dict
                from timm.models.vision_transformer import checkpoint_filter_fn

                net = timm.create_model(enc.timm_model, pretrained=False, **kwargs)
                # timm's filter resamples the position embeddings to img_size; strict: every
                # weight of the file must fit the sizes of model.vit, and none may be missing
                state = checkpoint_filter_fn(load_state_dict(str(path)), net)
                net.load_state_dict(state, strict=True)
            else:
                net = timm.create_model(enc.timm_model, pretrained=False, **kwargs)
        except VicokdError:
            raise
        except Exception as exc:  # noqa: BLE001 - a wrong file or name is one clear line
            what = enc.checkpoint or f"config model.vit.timm_model '{enc.timm_model}'"
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise VicokdError(f"{what}: cannot build timm's '{enc.timm_model}' with model.vit's "
                              f"sizes ({type(exc).__name__}: {first})") from None
        return net, {"source": "timm", "name": enc.timm_model, "kwargs": kwargs}

    def spec(self) -> dict:
        return self._spec

    def set_grad_checkpointing(self) -> None:
        if self.source == "timm":
            self.net.set_grad_checkpointing(True)
        else:   # transformers 5 renamed it; keep both spellings working
            (getattr(self.net, "activation_checkpointing_enable", None)
             or self.net.gradient_checkpointing_enable)()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.source == "timm":
            return self.net.forward_features(pixel_values)
        interp = pixel_values.shape[-1] != self.image_size
        return self.net(pixel_values=pixel_values, interpolate_pos_encoding=interp).last_hidden_state


# -- the audio encoders ---------------------------------------------------------------------------

class ASTEncoder(nn.Module):
    """fbank segments [B, Lf, M] -> pooled [B, H] (transformers' AST).

    A local checkpoint made for long clips (max_length 1024) gets its position embeddings
    interpolated, over the time axis of the patch grid, to the segment length."""

    def __init__(self, enc: EncoderConfig, mel_bins: int, audio_length: int, hidden_size: int,
                 dropout: float, saved: dict | None = None):
        super().__init__()
        from transformers import ASTConfig, ASTModel

        if saved is not None:
            self.net = ASTModel(ASTConfig.from_dict(saved["config"]))
        elif not enc.checkpoint:
            stride = enc.stride or enc.patch_size
            ac = ASTConfig(hidden_size=enc.hidden_size or hidden_size, num_hidden_layers=enc.layers,
                           num_attention_heads=enc.heads, intermediate_size=enc.intermediate_size,
                           patch_size=enc.patch_size, frequency_stride=stride, time_stride=stride,
                           max_length=audio_length, num_mel_bins=mel_bins,
                           hidden_dropout_prob=dropout, attention_probs_dropout_prob=0.0)
            self.net = ASTModel(ac)
        else:
            self.net = self._from_checkpoint(enc.checkpoint, mel_bins, audio_length)
        self.hidden_size = self.net.config.hidden_size

    @staticmethod
    def _from_checkpoint(checkpoint: str, mel_bins: int, audio_length: int):
        from transformers import ASTConfig, ASTModel

        path = _check_local_dir(checkpoint, "AST")
        source = ASTModel.from_pretrained(str(path), local_files_only=True)
        sc = source.config
        if sc.num_mel_bins != mel_bins:
            raise VicokdError(f"{path}: AST checkpoint expects {sc.num_mel_bins} mel bins, the "
                              f"data has {mel_bins}")
        tc = ASTConfig(**{**sc.to_dict(), "max_length": audio_length})
        target = ASTModel(tc)
        state = source.state_dict()
        key = "embeddings.position_embeddings"
        old = state[key]                                            # [1, 2 + F*Told, D]
        f_dim, t_old = source.embeddings.get_shape(sc)
        f_new, t_new = target.embeddings.get_shape(tc)
        grid = old[:, 2:].reshape(1, f_dim, t_old, -1).permute(0, 3, 1, 2)   # [1, D, F, Told]
        grid = F.interpolate(grid, size=(f_new, t_new), mode="bilinear", align_corners=False)
        state[key] = torch.cat([old[:, :2], grid.permute(0, 2, 3, 1).reshape(1, f_new * t_new, -1)],
                               1)
        target.load_state_dict(state)
        return target

    def spec(self) -> dict:
        return {"source": "transformers", "config": self.net.config.to_dict()}

    def set_grad_checkpointing(self) -> None:
        (getattr(self.net, "activation_checkpointing_enable", None)
         or self.net.gradient_checkpointing_enable)()

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.net(input_values=fbank).pooler_output


class AudioMLP(nn.Module):
    """fbank segments [B, Lf, M] -> [B, H]: mean-pooled over time, then Linear-ReLU layers (the
    small audio encoder of the authors' code, in place of the paper's AST)."""

    def __init__(self, mel_bins: int, hidden_sizes: list[int], out_size: int, dropout: float):
        super().__init__()
        layers, width = [], mel_bins
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, out_size))
        self.net = nn.Sequential(*layers)
        self.hidden_size = out_size

    def spec(self) -> dict:
        return {"source": "mlp"}

    def set_grad_checkpointing(self) -> None:
        pass                                    # a few Linear layers: nothing worth recomputing

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.net(fbank.mean(1))


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


def frozen_config_to_dict(cfg: FrozenEncodersConfig) -> dict:
    return asdict(cfg)


def frozen_config_from_dict(d: dict) -> FrozenEncodersConfig:
    d = dict(d)
    return FrozenEncodersConfig(vit=EncoderConfig(**d.pop("vit")), ast=EncoderConfig(**d.pop("ast")),
                                features=FeaturesConfig(**d.pop("features")), **d)


def frozen_config_from_section(model_section: dict, mel_bins: int, audio_length: int
                               ) -> FrozenEncodersConfig:
    """The frozen encoders of the `model:` section (sizes as a finetuned model's encoders)."""
    section = fill("model", model_section)
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
