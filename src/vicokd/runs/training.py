"""One training run, whatever it trains: the skeleton that the teacher, teacher-vc and every
student share (docs/model.md, docs/distillation.md). A run is

    spec = RunSpec(...)            what differs between runs: method, seeds, audio, sections
    metrics = train_run(spec, files, outputs)

and `train_run` reads top to bottom: the loop's settings, the data, the frozen teacher (when the
method distills), the model's initialisation, the loss, the checkpoint's fingerprint, `fit`, the
four outputs. The rule modules (teacher.py, teacher_vc.py, student.py) only build their spec.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch

from ..config import fill, without_speed_keys
from ..data.dataset import (DataFiles, input_identity, model_input_sizes, require_audio,
                            require_frame_labels, split_datasets)
from ..distill import LossConfig, check_student_teacher, freeze, make_loss
from ..errors import VicokdError
from ..experiments import Method
from ..model_configs import model_config
from ..models import build_model, load_model_file, resolve_device
from ..runner import optional_input
from ..train import fit, train_config
from .outputs import RunOutputs, checkpoint_path, write_outputs

log = logging.getLogger(__name__)


@dataclass
class RunSpec:
    """What defines one training run. `section_name` is "teacher" or "student": the config
    section `section` (complete) comes from; `model_section` is the complete `model:`."""
    name: str                       # the run's name in logs: teacher, teacher-vc, cokd-frame-seed0
    backbone: str
    method: Method
    supervision: str
    seed: int                       # the loop's seed: sampling, shuffling, dropout
    init_seed: int                  # the weights' initialisation
    audio: bool                     # the model hears (the teachers) or not (the students)
    loss: LossConfig
    section_name: str
    section: dict
    model_section: dict
    teacher_path: str | None = None     # the frozen teacher's model.pt, when the method distills

    def metadata(self) -> dict:
        """What metrics.json records of the run beside its figures."""
        return {"method": self.method.name, "supervision": self.supervision, "seed": self.seed,
                "terms": list(self.method.terms),
                "loss": {**asdict(self.loss),
                         "weights": {t: self.loss.weights[t] for t in self.method.terms}}}


def run_sections(model_section: dict, section_name: str, section: dict) -> tuple[dict, dict]:
    """The `model:` section and the run's own, complete: the schema's defaults for what a
    caller (a rule's params, a test) did not give. The one place below the Snakefile where
    defaults are filled for a run."""
    return fill("model", model_section), fill(section_name, section)


def load_teacher(path, backbone: str, classes: list[str], device) -> torch.nn.Module:
    """The frozen teacher of model.pt, checked against the run (backbone, classes, audio)."""
    teacher, blob = load_model_file(path)
    blob_classes = blob.get("classes")
    if teacher.cfg.backbone != backbone:
        raise VicokdError(f"{path}: a '{teacher.cfg.backbone}' teacher, the student is "
                          f"'{backbone}'")
    if not teacher.cfg.audio:
        raise VicokdError(f"{path}: not an audio-visual teacher (no audio branch)")
    if blob_classes is not None and list(blob_classes) != list(classes):
        raise VicokdError(f"{path}: the teacher's classes {list(blob_classes)} differ from the "
                          f"data's {list(classes)}")
    if teacher.cfg.num_classes != len(classes):
        raise VicokdError(f"{path}: the teacher has {teacher.cfg.num_classes} classes, the data "
                          f"{len(classes)}")
    return freeze(teacher.to(device))


def train_run(spec: RunSpec, files: DataFiles, outputs: RunOutputs, on_epoch_end=None) -> dict:
    """Train one run and write its four outputs (runs/outputs.py); returns the metrics."""
    distills = spec.method.needs_teacher
    if spec.audio:
        require_audio(files, "the teacher" + (f" ({spec.name})" if spec.name != "teacher" else ""))
    elif distills:
        require_audio(files, f"method '{spec.method.name}' (it distills from the audio-visual "
                             "teacher)")
    if distills and (spec.teacher_path is None or files.audio is None):
        raise VicokdError(f"method '{spec.method.name}' distills from the teacher: it needs the "
                          "teacher's model.pt and audio.h5")
    if not (spec.audio or distills):            # nobody in this run hears
        files = DataFiles(frames=files.frames, labels=files.labels, split=files.split,
                          audio=None, masks=files.masks)
    tcfg = train_config(spec.section, spec.model_section, seed=spec.seed)
    train_set, test_set = split_datasets(files, spec.model_section, tcfg.seed,
                                         bool(spec.section["cache"]))
    if spec.supervision == "frame":
        require_frame_labels(train_set, "teacher.supervision: sequence" if spec.audio
                             else "experiments.supervision: [sequence]")
    sizes = model_input_sizes(train_set, spec.model_section, audio=spec.audio)
    teacher = None
    if distills:
        teacher = load_teacher(spec.teacher_path, spec.backbone, train_set.classes,
                               resolve_device(tcfg.device))
        sizes.update(mel_bins=teacher.cfg.mel_bins, audio_length=teacher.cfg.audio_length)
    mcfg = model_config(spec.model_section, spec.backbone, train_set.num_classes,
                        audio=spec.audio, visibility_head=spec.method.vc_visibility == "learned",
                        **sizes)
    torch.manual_seed(spec.init_seed)                  # the weights' initialisation
    model = build_model(mcfg)
    if teacher is not None:
        check_student_teacher(model, teacher)
    loss_fn = make_loss(spec.method, spec.supervision, spec.loss, teacher)

    # What may resume from a checkpoint: everything that changes the numbers (speed options
    # do not), and the identity of the data (another one: start afresh, vicokd.train.DATA_KEYS).
    fingerprint = {"model": without_speed_keys("model", spec.model_section),
                   spec.section_name: without_speed_keys(spec.section_name, spec.section),
                   "backbone": spec.backbone, "method": spec.method.name,
                   "supervision": spec.supervision, "seed": spec.seed,
                   "init_seed": spec.init_seed, "classes": train_set.classes,
                   "audio_shape": list(train_set.audio_shape or ()),
                   "train": train_set.ids, "test": test_set.ids,
                   "inputs": input_identity(files, teacher=spec.teacher_path if distills else None)}
    ckpt = checkpoint_path(outputs.model)
    log.info("%s %s: terms %s, %d train / %d test sequences, %d views, %d classes, "
             "checkpoint %s", spec.backbone, spec.name, "+".join(spec.method.terms) or "none",
             len(train_set), len(test_set), train_set.views, train_set.num_classes, ckpt)
    result = fit(model, loss_fn, train_set, test_set, tcfg, ckpt, fingerprint, on_epoch_end)

    config = {"model": spec.model_section, spec.section_name: spec.section,
              "backbone": spec.backbone, "method": spec.method.name,
              "supervision": spec.supervision, "seed": spec.seed}
    metrics = write_outputs(outputs, model, result, test_set, config, tcfg.epochs,
                            spec.metadata())
    log.info("%s %s: test mAP %.2f (chance %.2f), frame mAP %.2f, %.1fs", spec.backbone,
             spec.name, metrics["map"] or float("nan"), metrics["chance"] or float("nan"),
             metrics["frame_map"] or float("nan"), metrics["seconds"])
    return metrics


def data_files(inputs) -> DataFiles:
    """The artifacts a training rule's inputs name (audio.h5 and masks.h5 only for some jobs;
    see workflow/rules/common.smk)."""
    return DataFiles(frames=inputs.frames, labels=inputs.labels, split=inputs.split,
                     audio=optional_input(inputs, "audio"), masks=optional_input(inputs, "masks"))
