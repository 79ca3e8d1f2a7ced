"""YOLO through ultralytics, as the detector and the masks rules use it: the offline set-up,
the device, loading weights from disk, and the frames.h5 contract they read.

ultralytics reaches for the network in several places (settings sync, font download during
dataset checks, AMP check, weights named like an official release). `prepare_ultralytics`
closes each of them and must run before `ultralytics` is imported.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from ..errors import VicokdError
from ..storage import atomic_path, check_dataset

PERSON = "person"


# --------------------------------------------------------------------------- offline set-up

def prepare_ultralytics(config_dir: str | os.PathLike) -> Path:
    """Make ultralytics work with no network; call before `import ultralytics`.

    Its settings (and the font that dataset checks would otherwise download) live in
    `config_dir/Ultralytics`; settings sync and online checks are switched off. Returns the
    settings folder ultralytics actually uses (if it was imported earlier, its own)."""
    config_dir = Path(config_dir).resolve()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        settings_dir = config_dir / "Ultralytics"
    else:  # too late to move its settings: equip the folder it already chose
        from ultralytics.utils import USER_CONFIG_DIR
        settings_dir = Path(USER_CONFIG_DIR)
    settings_dir.mkdir(parents=True, exist_ok=True)
    _install_font(settings_dir)
    from ultralytics import settings  # noqa: E402  (after the environment is set)
    if settings.get("sync", True):
        settings.update({"sync": False})
    return settings_dir


def _install_font(settings_dir: Path) -> None:
    """Put a local TTF where ultralytics' check_font looks first, under the names it asks for."""
    import matplotlib
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = settings_dir / name
        if not target.exists():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)


def select_device(requested: str, where: str, key: str) -> str:
    """'cuda' or 'cpu' from the config value `key` (auto|cpu|cuda); a demanded but absent GPU
    is an error. `where` names the file the job was making."""
    import torch
    if requested not in ("auto", "cpu", "cuda"):
        raise VicokdError(f"{where}: {key} must be auto, cpu or cuda, found {requested!r}")
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise VicokdError(f"{where}: {key} is 'cuda' but no CUDA GPU is available "
                          f"(set {key} to auto or cpu)")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested


# --------------------------------------------------------------------------- loading weights

def load_detector(weights: str | os.PathLike | None):
    """Load YOLO weights from a file on disk; returns (model, index of the person class).

    Only an existing path is handed to ultralytics: a bare name such as `yolov10x.pt` would
    make it download the official release."""
    if not weights:
        raise VicokdError("config.yaml: masks.weights is empty and no bootstrap detector was given")
    path = Path(weights)
    if not path.is_file():
        raise VicokdError(f"{path}: YOLO weights file not found (masks.weights)")
    from ultralytics import YOLO
    quiet = logging.getLogger("ultralytics")
    level = quiet.level
    quiet.setLevel(logging.ERROR)     # its warnings about foreign files advise other commands
    try:
        model = YOLO(str(path.resolve()), task="detect")
        task = getattr(model, "task", None)
        names = dict(model.names)
    except Exception as exc:  # ultralytics raises many kinds on a bad checkpoint
        raise VicokdError(f"{path}: not loadable as YOLO weights ({type(exc).__name__}: "
                          f"{_reason(exc)}); masks.weights must be a detection checkpoint saved "
                          "by ultralytics (e.g. official YOLOv10 weights on disk), or null to "
                          "train the bootstrap detector") from None
    finally:
        quiet.setLevel(level)
    if task != "detect":
        raise VicokdError(f"{path}: not a detection model (task={task!r})")
    person = [i for i, n in names.items() if str(n).lower() == PERSON]
    if not person:
        raise VicokdError(f"{path}: the detector has no '{PERSON}' class (classes: "
                          f"{', '.join(map(str, list(names.values())[:10]))}...)")
    return model, int(person[0])


def _reason(exc: Exception) -> str:
    """Ultralytics' message without its emoji prefix and its advice, which names commands that
    download an official model (nothing is downloaded here)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = re.sub(r"^\W*ERROR[^\w/.]*", "", text)
    for advice in (" Use an official", " Recommend fix", " i.e. 'yolo"):
        text = text.split(advice)[0]
    return text.strip() or type(exc).__name__


# --------------------------------------------------------------------------- letterbox

# ultralytics pads letterboxed images with this grey (LetterBox's padding_value).
LETTERBOX_PAD = 114


def letterbox_batch(frames, imgsz: tuple[int, int], stride: int = 32, auto: bool = False):
    """A batch of same-sized uint8 RGB frames [B, H, W, 3] (a torch tensor, on any device) as
    the model input ultralytics' LetterBox makes of each (resize keeping the aspect ratio to fit
    `imgsz` (h, w), centred, padded with grey 114; `auto`: padded only up to a multiple of
    `stride`): float [B, 3, h', w'] in 0-1, on the frames' device, in one batched resize.

    The resize is bilinear with half-pixel centres, like OpenCV's INTER_LINEAR, rounded to whole
    levels as OpenCV's uint8 output is: pixels differ from LetterBox's by at most one level
    (OpenCV's fixed-point weights), tests/test_masks.py checks it against LetterBox itself."""
    import torch
    import torch.nn.functional as F

    _, hgt, wid, _ = frames.shape
    new_h, new_w = imgsz
    r = min(new_h / hgt, new_w / wid)
    unpad_w, unpad_h = max(round(wid * r), 1), max(round(hgt * r), 1)
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if auto:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    x = frames.permute(0, 3, 1, 2).float()
    if (unpad_h, unpad_w) != (hgt, wid):
        x = F.interpolate(x, size=(unpad_h, unpad_w), mode="bilinear", align_corners=False)
        x = x.round_().clamp_(0, 255)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=float(LETTERBOX_PAD))
    return x.div_(255)


# --------------------------------------------------------------------------- frames

def check_frames(path, ds) -> None:
    """frames.h5 contract: uint8 [V, T, H, W, 3]."""
    check_dataset(path, ds, 5, np.uint8, {4: 3})
