"""The dataclass configs of the three backbones (one per model, defaults the schema's), built
from the `model:` section of config.yaml; stored in checkpoints and model.pt as plain dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .config import default
from .encoders import AUDIO_ENCODERS, ENCODER_MODES, EncoderConfig, encoder_config
from .errors import VicokdError
from .experiments import BACKBONES


@dataclass
class AVModelConfig:
    """Sizes shared by every backbone. `audio=False` builds the visual-only student.
    Field defaults are the schema's (`model:` and `audio.mel_bins`)."""
    num_classes: int
    mel_bins: int = default("audio.mel_bins")
    audio_length: int = 38              # L: fbank frames per decoded frame (derived, not config)
    frames: int = default("model.frames")              # T: frames sampled per sequence
    image_size: int = default("model.image_size")      # ViT input (resized on the fly)
    hidden_size: int = default("model.hidden_size")    # D
    vit: EncoderConfig = field(default_factory=lambda: encoder_config(
        default("model.vit"), patch_size=default("model.patch_size")))
    ast: EncoderConfig = field(default_factory=lambda: encoder_config(default("model.ast")))
    attention_heads: int = default("model.attention_heads")   # cross-modal attention
    temporal_layers: int = default("model.temporal.layers")
    temporal_heads: int = default("model.temporal.heads")
    dropout: float = default("model.dropout")
    audio: bool = True
    gradient_checkpointing: bool = default("model.gradient_checkpointing")
    max_views: int = 16                 # size of the learned view embedding table
    encoders: str = default("model.encoders")   # finetune: frames/fbank in; frozen: features in
    feature_size: int = default("model.features.components")   # K of the cached features
    audio_encoder: str = default("model.audio_encoder")        # ast | mlp
    mlp_hidden_sizes: list[int] = field(default_factory=lambda: default("model.mlp.hidden_sizes"))
    visibility_head: bool = False       # a per-view, per-frame visibility (learned visibility)

    @property
    def backbone(self) -> str:
        raise NotImplementedError


@dataclass
class MultiTransConfig(AVModelConfig):
    fusion_layers: int = default("model.fusion.layers")
    fusion_heads: int = default("model.fusion.heads")

    @property
    def backbone(self) -> str:
        return "multitrans"


@dataclass
class MultiASLConfig(AVModelConfig):
    topk_divisor: int = default("model.topk_divisor")   # k = max(1, T // topk_divisor)
    action_selection_weight: float = default("model.action_selection_weight")

    @property
    def backbone(self) -> str:
        return "multiasl"


@dataclass
class MultiTSFConfig(AVModelConfig):
    device_layers: int = default("model.fusion.layers")
    device_heads: int = default("model.fusion.heads")
    presence_weight: float = default("model.presence_weight")

    @property
    def backbone(self) -> str:
        return "multitsf"


CONFIG_CLASSES = {"multitrans": MultiTransConfig, "multiasl": MultiASLConfig,
                  "multitsf": MultiTSFConfig}


def model_config(section: dict, backbone: str, num_classes: int, mel_bins: int,
                 audio_length: int, audio: bool = True, feature_size: int | None = None,
                 visibility_head: bool = False) -> AVModelConfig:
    """Build a backbone's dataclass config from the complete `model:` section of config.yaml
    (vicokd.config.fill gives a partial one the schema's defaults)."""
    if backbone not in CONFIG_CLASSES:
        raise VicokdError(f"config model: unknown backbone '{backbone}' (one of {', '.join(BACKBONES)})")
    cls = CONFIG_CLASSES[backbone]
    names = {f.name for f in fields(cls)} - {"vit", "ast", "audio", "num_classes", "mel_bins",
                                             "audio_length", "feature_size"}
    kwargs = {key: value for key, value in section.items() if key in names}
    kwargs["vit"] = encoder_config(section["vit"], patch_size=section["patch_size"])
    kwargs["ast"] = encoder_config(section["ast"])
    kwargs["temporal_layers"] = section["temporal"]["layers"]
    kwargs["temporal_heads"] = section["temporal"]["heads"]
    if backbone == "multitrans":
        kwargs["fusion_layers"] = section["fusion"]["layers"]
        kwargs["fusion_heads"] = section["fusion"]["heads"]
    elif backbone == "multitsf":
        kwargs["device_layers"] = section["fusion"]["layers"]
        kwargs["device_heads"] = section["fusion"]["heads"]
    kwargs["mlp_hidden_sizes"] = [int(h) for h in section["mlp"]["hidden_sizes"]]
    # K of the cached features: as the data has it, else as the config asks
    kwargs["feature_size"] = int(feature_size if feature_size is not None
                                 else section["features"]["components"])
    if kwargs["encoders"] not in ENCODER_MODES:
        raise VicokdError(f"config model.encoders: '{kwargs['encoders']}' is not one of "
                          f"{', '.join(ENCODER_MODES)}")
    if kwargs["audio_encoder"] not in AUDIO_ENCODERS:
        raise VicokdError(f"config model.audio_encoder: '{kwargs['audio_encoder']}' is not one of "
                          f"{', '.join(AUDIO_ENCODERS)}")
    return cls(num_classes=num_classes, mel_bins=mel_bins, audio_length=audio_length,
               audio=audio, visibility_head=visibility_head, **kwargs)


def config_to_dict(cfg: AVModelConfig) -> dict:
    """Plain-dict form (stored in checkpoints and model.pt)."""
    return {"backbone": cfg.backbone, **asdict(cfg)}


def config_from_dict(d: dict) -> AVModelConfig:
    d = dict(d)
    cls = CONFIG_CLASSES[d.pop("backbone")]
    d["vit"] = EncoderConfig(**d["vit"])
    d["ast"] = EncoderConfig(**d["ast"])
    return cls(**d)
