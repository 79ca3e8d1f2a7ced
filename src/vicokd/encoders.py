"""The encoders of the model: the visual ViT (transformers or timm) and the audio AST or MLP.

`model.encoders` in config.yaml says how they are used:

- `finetune`: the encoders are part of the model and train end to end with it (the paper's
  setting, config/paper.yaml). Inputs are frames [.., 3, S, S] and fbank segments [.., Lf, M].
- `frozen` (the embedded default): they run once per home, label-free, in the `features` stage
  (vicokd.frozen), and the models train on the cached features.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import default
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
