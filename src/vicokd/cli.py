"""The `vicokd` command: deploy a trained visual-only student on new recordings.

    vicokd predict results/home1/multiasl/vicokd-sequence-seed0/model.pt cam1.mp4 cam2.mp4 ...

The views of one sequence (one mp4 per view, as many as the student was trained on) are
decoded at the rate and size the model was trained on (recorded in model.pt; `--fps`, `--size`
may only restate them), T frames are taken at the evaluation positions, and the student's
sequence and frame scores are printed as JSON (or written with `--out`). No audio is read: the
student never needs it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .errors import VicokdError


def trained_setting(model_path, name: str, given, recorded):
    """The decode `name` ("fps" or "size") to use: the one model.pt records; `given` (the
    command line's) must be positive and, when the file records one, equal to it."""
    if given is not None and not (math.isfinite(given) and given > 0):
        raise VicokdError(f"--{name} must be a positive number, got {given}")
    if recorded is None:
        if given is None:
            raise VicokdError(f"{model_path}: records no decode {name} (a model.pt from an older "
                              f"version); pass --{name} as decode.{name} of its run")
        return given
    if given is not None and abs(float(given) - float(recorded)) > 1e-9:
        raise VicokdError(f"{model_path}: trained on frames decoded at {name} {recorded:g}, "
                          f"--{name} {given:g} differs (leave it out to use the model's)")
    return recorded


def trained_encoders(model_path, folder, fingerprint: str | None):
    """The frozen encoders a student trained on features needs: `folder` (--encoders), else
    results/{env}/encoders of its run; checked against the fingerprint model.pt records."""
    from .frozen import FrozenEncoders, folder_fingerprint

    given = folder is not None
    folder = Path(folder) if given else Path(model_path).resolve().parents[2] / "encoders"
    if not (folder / "frozen.json").is_file():
        where = "--encoders" if given else "its run's home (results/{env}/encoders)"
        raise VicokdError(f"{model_path}: trained on frozen encoders' features, it needs that "
                          f"home's encoders folder; none at {folder} ({where}): pass the "
                          "results/{env}/encoders of its run with --encoders")
    if fingerprint is not None and folder_fingerprint(folder) != fingerprint:
        raise VicokdError(f"{folder}: not the frozen encoders {model_path} was trained with "
                          "(their fingerprint differs): pass the results/{env}/encoders of its "
                          "run with --encoders")
    return FrozenEncoders.load(folder)


def predict(model_path: str | Path, videos: list[str | Path], fps: float | None = None,
            size: int | None = None, threshold: float = 0.5,
            encoders: str | Path | None = None) -> dict:
    """Scores of one multi-view sequence (one mp4 per view) from a student model.pt; `fps` and
    `size` default to the decode rate and size the model was trained at. A model trained on
    frozen features (model.encoders: frozen) needs its home's encoders folder (`encoders`;
    default: results/{env}/encoders beside the run's folder)."""
    import numpy as np
    import torch

    from .config import fill
    from .data.frames import normalise_frames, resize_frames
    from .data.sampling import sample_indices
    from .data.decode import decode_sequence
    from .data.media import frame_count, probe
    from .models import load_model_file

    model, blob = load_model_file(model_path)
    if model.cfg.audio:
        raise VicokdError(f"{model_path}: an audio-visual teacher; `vicokd predict` deploys "
                          f"visual-only students (a student run's model.pt)")
    classes = list(blob.get("classes") or [f"class{k}" for k in range(model.cfg.num_classes)])
    trained = blob.get("data") or {}
    fps = float(trained_setting(model_path, "fps", fps, trained.get("fps")))
    size = int(trained_setting(model_path, "size", size, trained.get("size")))
    views = trained.get("views")
    if views is not None and len(videos) != views:
        raise VicokdError(f"{model_path}: a student of {views} views, given {len(videos)} "
                          f"video(s): one mp4 per view, in the order of training")
    norm = fill("model", (blob.get("run_config") or {}).get("model"))["normalize"]
    t, image_size = model.cfg.frames, model.cfg.image_size

    infos = [probe(v, 16000, need_audio=False) for v in videos]
    duration = min(i.video_duration for i in infos)
    seq = {"views": [str(v) for v in videos], "fps": [i.fps for i in infos],
           "frames": [i.frames for i in infos], "duration": duration}
    frames = decode_sequence(Path("."), seq, fps, size)                 # [V, L, H, W, 3]
    idx = sample_indices(frames.shape[1], t, train=False)
    mean, std = float(norm["image_mean"]), float(norm["image_std"])
    if model.cfg.encoders == "frozen":
        frozen = trained_encoders(model_path, encoders, trained.get("encoders_fingerprint"))
        # features of every decoded frame (each frame's change to the next one is a feature)
        x = frozen.video(normalise_frames(resize_frames(frames, frozen.cfg.image_size), mean,
                                          std))[:, idx]
    else:
        x = normalise_frames(resize_frames(frames[:, idx], image_size), mean, std)
    model.eval()
    with torch.no_grad():
        out = model(x[None])
    seq_scores = torch.sigmoid(out["sequence_logits"][0]).numpy()
    frame_scores = torch.sigmoid(out["frame_logits"][0]).numpy()
    return {
        "model": str(model_path),
        "videos": [str(v) for v in videos],
        "duration": duration,
        "decoded_frames": int(frame_count(duration, fps)),
        "classes": classes,
        "sequence_scores": {c: round(float(s), 6) for c, s in zip(classes, seq_scores)},
        "predicted": [c for c, s in zip(classes, seq_scores) if s >= threshold],
        "frame_times": [round(float(i) / fps, 3) for i in idx],
        "frame_scores": np.round(frame_scores, 6).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vicokd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="score one multi-view sequence with a trained student")
    p.add_argument("model", help="a student run's model.pt")
    p.add_argument("videos", nargs="+", help="one mp4 per view of the sequence, in view order")
    p.add_argument("--fps", type=float, help="decode rate (default and only value: the model's)")
    p.add_argument("--size", type=int, help="decoded frame size (default and only value: the model's)")
    p.add_argument("--threshold", type=float, default=0.5, help="score above which a class is listed")
    p.add_argument("--out", help="write the JSON here instead of printing it")
    p.add_argument("--encoders", help="the home's frozen encoders folder (model.encoders: frozen; "
                                      "default: results/{env}/encoders of the model's run)")
    args = parser.parse_args(argv)
    try:
        result = predict(args.model, args.videos, args.fps, args.size, args.threshold,
                         args.encoders)
        if args.out:
            from .storage import write_json

            try:
                write_json(args.out, result)
            except OSError as exc:
                raise VicokdError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
        else:
            print(json.dumps(result, indent=2))
    except VicokdError as exc:
        print(f"vicokd: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
